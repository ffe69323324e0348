package dataplane

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/ipvs"
)

// TestFloodLeavesRoomForRealClient: spoofed SYNs fill a table of conn_max 40 (DR and
// NAT); a real client's SYN evicts the oldest unconfirmed entry, its handshake
// completes, and its connection then survives the rest of the flood (docs/defense.md
// §7). UDP datagrams from spoofed sources to a second service do not take the TCP
// service's room.
func TestFloodLeavesRoomForRealClient(t *testing.T) {
	for _, m := range []ipvs.Method{ipvs.DR, ipvs.NAT} {
		t.Run(m.String(), func(t *testing.T) {
			o := testOptions()
			o.ConnMax = 40
			o.ConnShards = 4
			h := newHarness(t, o, rrService(m, 80), udpService(m, 53))
			spoof := func(i int, udp bool) []byte {
				src := netip.AddrFrom4([4]byte{198, 18, 200 + byte(i>>8&3), byte(i)})
				if udp {
					return dtPkt{src: src, dst: dtVIP, sport: 5000, dport: 53, udp: true}.frame(t)
				}
				return dtPkt{src: src, dst: dtVIP, sport: 5000, dport: 80, syn: true}.frame(t)
			}
			now := sec
			for i := range 500 {
				if len(h.run(spoof(i, false), now)) != 1 || len(h.run(spoof(i, true), now)) != 1 {
					t.Fatalf("spoofed packet %d refused (table_full %d)", i, h.w.C.Reasons[ReasonTableFull])
				}
				if i == 250 {
					// A real client's handshake in the middle of the flood.
					syn := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, syn: true}.frame(t)
					if len(h.run(syn, now)) != 1 {
						t.Fatal("real SYN refused")
					}
					if m == ipvs.NAT {
						synack := dtPkt{src: dtRS1, dst: dtClient, sport: 80, dport: 40000, syn: true, ack: true}.frame(t)
						if out := h.run(synack, now); len(out) != 1 {
							synack = dtPkt{src: dtRS2, dst: dtClient, sport: 80, dport: 40000, syn: true, ack: true}.frame(t)
							if len(h.run(synack, now)) != 1 {
								t.Fatal("SYN-ACK not forwarded")
							}
						}
					}
					ack := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, ack: true}.frame(t)
					if len(h.run(ack, now)) != 1 {
						t.Fatal("real ACK not forwarded")
					}
				}
			}
			if h.w.C.Reasons[ReasonTableFull] != 0 {
				t.Fatalf("table_full %d", h.w.C.Reasons[ReasonTableFull])
			}
			data := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, ack: true, plen: 100}.frame(t)
			if len(h.run(data, now)) != 1 {
				t.Fatal("the real client's connection was evicted by the flood")
			}
			st := h.d.Table().Unconfirmed()
			if st.Evicted < 900 || h.d.Table().Len() > 40 {
				t.Fatalf("%+v len %d", st, h.d.Table().Len())
			}
		})
	}
}

// udpService is a UDP service on dtVIP:port with the two real servers.
func udpService(m ipvs.Method, port uint16) ipvs.Service {
	s := rrService(m, port)
	s.Key = ipvs.AddrKey(ipvs.UDP, netip.AddrPortFrom(dtVIP, port))
	return s
}

// BenchmarkSYNFlood: one worker (one core) takes a flood of spoofed SYNs, each from
// a new source (4,096 addresses, the source port moved every round), at 6.4 Mpps of
// trace time, with one real client among every 64 frames doing a handshake: its SYN
// with one batch, its ACK with the next. conn_max 20,000 with the default
// unconfirmed budget: the flood holds a quarter of it and evicts its own oldest.
// Reported: ns/packet over every frame, and the share of real handshakes whose ACK
// was forwarded (the connection made by the SYN was still there).
func BenchmarkSYNFlood(b *testing.B) {
	for _, budget := range []int{0, conntrack.UnconfirmedOff} {
		name := "budget"
		if budget != 0 {
			name = "budget=off"
		}
		b.Run(name, func(b *testing.B) { benchSYNFlood(b, budget) })
	}
}

func benchSYNFlood(b *testing.B, budget int) {
	o := testOptions()
	o.ConnMax = 20000
	o.ConnShards = 256
	o.ConnUnconfirmedMax = budget
	d, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Apply([]ipvs.Service{rrService(ipvs.DR, 80)}); err != nil {
		b.Fatal(err)
	}
	w := d.NewWorker(benchBatchSize)
	syn := dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, syn: true}.frame(b)
	const nflows = 1 << 12
	var batches []*benchBatch
	for i := 0; i < nflows; i += benchBatchSize - 1 {
		var fs [][]byte
		for j := i; j < i+benchBatchSize-1; j++ {
			fs = append(fs, flowFrame(syn, j))
		}
		batches = append(batches, newBatch(fs))
	}
	real := netip.MustParseAddr("203.0.113.7")
	realSYN := newBatch([][]byte{dtPkt{src: real, dst: dtVIP, sport: 1, dport: 80, syn: true}.frame(b)})
	realACK := newBatch([][]byte{dtPkt{src: real, dst: dtVIP, sport: 1, dport: 80, ack: true}.frame(b)})
	setPort := func(bb *benchBatch, p uint16) {
		binary.BigEndian.PutUint16(bb.orig[0][header.EthernetHeaderLen+20:], p)
		binary.BigEndian.PutUint16(bb.in[0].Buf[bb.in[0].Off+header.EthernetHeaderLen+20:], p)
	}
	out := make([]Frame, 0, 2*benchBatchSize)
	now := int64(0)
	const step = 10 * int64(time.Millisecond)
	var tries, ok int
	rport := uint16(1024)
	k := 0
	next := func() {
		bb := batches[k%len(batches)]
		if k%len(batches) == 0 {
			for _, x := range batches {
				for j, f := range x.orig {
					p := binary.BigEndian.Uint16(f[header.EthernetHeaderLen+20:]) + 256
					binary.BigEndian.PutUint16(f[header.EthernetHeaderLen+20:], p)
					binary.BigEndian.PutUint16(x.in[j].Buf[x.in[j].Off+header.EthernetHeaderLen+20:], p)
				}
			}
		}
		bb.restoreDR()
		out = w.Process(bb.in, now, out[:0])
		if k%2 == 0 {
			rport++
			setPort(realSYN, rport)
			realSYN.restoreDR()
			out = w.Process(realSYN.in, now, out[:0])
		} else {
			setPort(realACK, rport)
			realACK.restoreDR()
			tries++
			if out = w.Process(realACK.in, now, out[:0]); len(out) == 1 {
				ok++
			}
		}
		now += step
		k++
	}
	for range 3 * len(batches) {
		next()
	}
	tries, ok = 0, 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += benchBatchSize {
		next()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
	b.ReportMetric(100*float64(ok)/float64(max(tries, 1)), "%real_ok")
	b.ReportMetric(float64(d.Table().Len()), "conns")
}
