package dataplane

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/ipvs"
)

// TestXmitShortcutMatchesSteps: xmit's one-block DR case against xmitSteps alone, on
// two identical directors, for every method, TTL, length, partial checksum, related
// flag, dest (with and without a MAC, past the generation's end) and with and
// without a configured director MAC: the frames sent, the frame and header state
// left, and every counter agree. Fails when one of the shortcut's tests is left out.
func TestXmitShortcutMatchesSteps(t *testing.T) {
	for _, ownMAC := range []bool{true, false} {
		for _, m := range []ipvs.Method{ipvs.DR, ipvs.NAT, ipvs.TUN} {
			svc := ipvs.Service{Key: ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(dtVIP, 80)), Scheduler: "rr", RealServers: []ipvs.RealServer{
				{Addr: netip.AddrPortFrom(dtRS1, 80), Weight: 1, MAC: ipvs.MACFrom(dtRS1MAC), Method: m},
				{Addr: netip.AddrPortFrom(dtRS2, 80), Weight: 1, Method: m}, // no MAC yet
			}}
			o := testOptions()
			if !ownMAC {
				o.MAC = nil
			}
			fast, steps := newHarness(t, o, svc), newHarness(t, o, svc)
			prime := dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, syn: true}.frame(t)
			fast.run(prime, 0)
			steps.run(prime, 0)
			ndest := len(fast.w.s.dests)
			for dest := range ndest + 2 {
				for _, ttl := range []uint8{1, 2, 64} {
					for _, plen := range []int{0, 1500} {
						for _, df := range []bool{false, true} {
							for _, partial := range []bool{false, true} {
								for _, related := range []bool{false, true} {
									b := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, ack: true, ttl: ttl, df: df, plen: plen}.frame(t)
									c := conntrack.Conn{Dest: uint32(dest), Method: m}
									c.Key.VAddr = [16]byte{198, 18, 0, 100}
									c.Key.VPort = 80
									c.DAddr = [16]byte{198, 18, 0, 10}
									c.DPort = 8080
									name := func() string { return fmt.Sprintf("%v dest %d ttl %d", m, dest, ttl) }
									got := xmitOnce(t, fast.w, b, partial, func(w *Worker, f *Frame, fb []byte) {
										w.xmit(w.s, f, fb, &c, related)
									})
									want := xmitOnce(t, steps.w, b, partial, func(w *Worker, f *Frame, fb []byte) {
										w.xmitSteps(w.s, f, fb, &c, related)
									})
									if !slices.EqualFunc(got.out, want.out, bytes.Equal) || got.partial != want.partial || got.ttl != want.ttl {
										t.Fatalf("ownMAC=%v %s plen %d df %v partial %v related %v: xmit sent %x (partial %v, ttl %d), xmitSteps %x (partial %v, ttl %d)",
											ownMAC, name(), plen, df, partial, related, got.out, got.partial, got.ttl, want.out, want.partial, want.ttl)
									}
									if fast.w.C != steps.w.C || !slices.Equal(fast.w.dstats, steps.w.dstats) || !slices.Equal(fast.w.sstats, steps.w.sstats) {
										t.Fatalf("ownMAC=%v %s plen %d df %v partial %v related %v: counters differ: xmit %+v %+v, xmitSteps %+v %+v",
											ownMAC, name(), plen, df, partial, related, fast.w.C, fast.w.dstats, steps.w.C, steps.w.dstats)
									}
								}
							}
						}
					}
				}
			}
		}
	}
}

type xmitResult struct {
	out     [][]byte
	partial bool
	ttl     uint8
}

// xmitOnce decodes a copy of b into w's header state as Process would and runs send
// on it, returning copies of the frames sent.
func xmitOnce(t *testing.T, w *Worker, b []byte, partial bool, send func(w *Worker, f *Frame, fb []byte)) xmitResult {
	t.Helper()
	f := inFrame(append([]byte(nil), b...))
	f.CsumPartial = partial
	fb := f.Bytes()
	if d := w.p.Decode(fb); d != 0 {
		t.Fatalf("test frame does not decode: %v", d)
	}
	w.nicmp, w.out = 0, nil
	send(w, &f, fb)
	var r xmitResult
	for _, o := range w.out {
		r.out = append(r.out, append([]byte(nil), o.Bytes()...))
	}
	r.partial, r.ttl = f.CsumPartial, w.p.TTL
	return r
}

// TestXmitSourceMAC: a forwarded frame leaves from the configured director MAC, or
// without one from the MAC it was sent to, and goes to its real server's MAC.
func TestXmitSourceMAC(t *testing.T) {
	other := net.HardwareAddr{2, 0, 0, 0, 0, 0x77}
	for _, m := range []ipvs.Method{ipvs.DR, ipvs.NAT} {
		for _, ownMAC := range []bool{true, false} {
			o := testOptions()
			to, want := dtDirMAC, dtDirMAC
			if !ownMAC {
				o.MAC = nil
				to, want = other, other
			}
			h := newHarness(t, o, rrService(m, 80))
			for sport := uint16(1); sport <= 2; sport++ {
				out := h.run(dtPkt{dstMAC: to, src: dtClient, dst: dtVIP, sport: sport, dport: 80, syn: true}.frame(t), 0)
				if len(out) != 1 {
					t.Fatalf("%v ownMAC=%v: %d frames sent, want 1", m, ownMAC, len(out))
				}
				if dst, src := net.HardwareAddr(out[0][0:6]), net.HardwareAddr(out[0][6:12]); src.String() != want.String() ||
					(dst.String() != dtRS1MAC.String() && dst.String() != dtRS2MAC.String()) {
					t.Fatalf("%v ownMAC=%v: sent %v > %v, want %v > a real server's MAC", m, ownMAC, src, dst, want)
				}
			}
		}
	}
}
