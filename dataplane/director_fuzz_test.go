package dataplane

import (
	"net/netip"
	"testing"

	"github.com/gvs-lb/gvs/ipvs"
)

// FuzzProcess feeds arbitrary frames (and times) through a Director with a NAT, a
// DR and a persistent UDP service and checks the invariants every input must keep:
// no panic, every frame counted exactly once, output frames within their buffers, and
// connection counters that never go negative.
func FuzzProcess(f *testing.F) {
	seeds := [][]byte{
		dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, syn: true}.frame(f),
		dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, ack: true, plen: 20}.frame(f),
		dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, fin: true, ack: true}.frame(f),
		dtPkt{srcMAC: dtRS2MAC, src: dtRS2, dst: dtClient, sport: 8080, dport: 40000, syn: true, ack: true}.frame(f),
		dtPkt{src: dtClient, dst: dtVIP, sport: 40001, dport: 53, udp: true, plen: 30}.frame(f),
		dtPkt{src: dtClient, dst: dtVIP, sport: 40002, dport: 80, syn: true, ttl: 1}.frame(f),
		dtPkt{src: dtClient, dst: dtVIP, sport: 40003, dport: 443, syn: true, df: true, plen: 1400}.frame(f),
		dtPkt{src: netip.MustParseAddr("2001:2::7"), dst: netip.MustParseAddr("2001:db8::100"), sport: 1, dport: 80, syn: true}.frame(f),
	}
	for i, s := range seeds {
		f.Add(s, uint16(i))
	}
	f.Fuzz(func(t *testing.T, frame []byte, tick uint16) {
		o := testOptions()
		o.ConnMax = 64
		o.ScheduleICMP = true // ICMP errors quoting unknown flows schedule too
		nat := rrService(ipvs.NAT, 8080)
		dr := rrService(ipvs.DR, 0)
		dr.Key = ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(dtVIP, 443))
		udp := rrService(ipvs.TUN, 0)
		udp.Key, udp.Persistence = ipvs.AddrKey(ipvs.UDP, netip.AddrPortFrom(dtVIP, 53)), 60e9
		h := newHarness(t, o, nat, dr, udp)
		now := int64(0)
		// Process the input twice with a step in time, and a mutated copy (the
		// second half of the input as a frame of its own), so state carries over.
		for round, b := range [][]byte{frame, frame, frame[len(frame)/2:]} {
			in := []Frame{inFrame(b)}
			out := h.w.Process(in, now, nil)
			for _, fr := range out {
				if fr.Off < 0 || fr.Len < 0 || fr.Off+fr.Len > len(fr.Buf) {
					t.Fatalf("round %d: output frame out of its buffer: off %d len %d cap %d", round, fr.Off, fr.Len, len(fr.Buf))
				}
			}
			now += int64(tick) * 1e7
		}
		var sum uint64
		for _, n := range h.w.C.Reasons {
			sum += n
		}
		if h.w.C.In != 3 || h.w.C.In != h.w.C.Forwarded+sum {
			t.Fatalf("frames not counted exactly once: in %d forwarded %d reasons %d", h.w.C.In, h.w.C.Forwarded, sum)
		}
		for _, sv := range h.d.Services() {
			for _, dv := range sv.Dests {
				if dv.ActiveConns < 0 || dv.InactConns < 0 || dv.PersistConns < 0 {
					t.Fatalf("negative counters on %v: %+v", dv.Addr, dv)
				}
			}
		}
	})
}
