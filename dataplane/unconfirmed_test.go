package dataplane

import (
	"net/netip"
	"testing"

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
