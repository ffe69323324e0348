package dataplane

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/dataplane/internal/frametest"
	"github.com/gvs-lb/gvs/ipvs"
)

// TestScheduleICMP checks schedule_icmp (docs/ipvs-semantics.md §5.7): an ICMP error
// to a VIP that quotes a flow the director has no connection for is dropped as
// unrelated by default; with the sysctl set, a connection is scheduled from the quoted
// header (inverted: the client is the quote's destination), the error goes to that real
// server, and the client's next packet follows it.
func TestScheduleICMP(t *testing.T) {
	quote := frametest.L3(t, frametest.TCP4(t, frametest.Opts{Flags: header.TCPFlagACK}, dtVIP.String(), dtClient.String(), 80, 40000))
	icmp := frametest.ICMP4Error(t, frametest.Opts{DstMAC: [6]byte(dtDirMAC)}, "198.51.100.1", dtVIP.String(), 3, 4, quote, 28)

	off := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	if got := off.run(icmp, sec); len(got) != 0 || off.w.C.Reasons[ReasonICMPUnrelated] != 1 {
		t.Fatalf("schedule_icmp 0: %d frames sent, icmp_unrelated %d", len(got), off.w.C.Reasons[ReasonICMPUnrelated])
	}

	o := testOptions()
	o.ScheduleICMP = true
	for _, scheduler := range []string{"rr", "sh", "mh"} {
		svc := rrService(ipvs.DR, 80)
		svc.Scheduler = scheduler
		h := newHarness(t, o, svc)
		got := h.run(icmp, sec)
		if len(got) != 1 {
			t.Fatalf("%s: schedule_icmp 1: %d frames sent (reasons %v)", scheduler, len(got), h.w.C.Reasons)
		}
		rs := ipvs.MAC(got[0][:6])
		if rs != ipvs.MACFrom(dtRS1MAC) && rs != ipvs.MACFrom(dtRS2MAC) {
			t.Fatalf("%s: the error went to %v, no real server", scheduler, rs)
		}
		if h.d.Table().Len() != 1 {
			t.Fatalf("%s: %d entries after scheduling the error, want its connection", scheduler, h.d.Table().Len())
		}
		ack := dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, ack: true}.frame(t)
		next := h.run(ack, sec+1)
		if len(next) != 1 || ipvs.MAC(next[0][:6]) != rs {
			t.Fatalf("%s: the client's next packet did not follow the error to %v: %d frames", scheduler, rs, len(next))
		}
		if scheduler == "rr" {
			continue
		}
		// sh and mh hash the client: the error's quote is inverted, so it must pick what
		// the client's own SYN picks on a fresh director.
		fresh := newHarness(t, o, svc)
		syn := fresh.run(dtPkt{src: dtClient, dst: dtVIP, sport: 40000, dport: 80, syn: true}.frame(t), sec)
		if len(syn) != 1 || ipvs.MAC(syn[0][:6]) != rs {
			t.Errorf("%s: the error went to %v, the client's SYN goes elsewhere", scheduler, rs)
		}
	}
}

// TestSetOptionsUnderTraffic checks that the options a reload changes reach the hot
// path with the next generation and keep every connection, and that what cannot
// change at run time is refused with nothing changed.
func TestSetOptionsUnderTraffic(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	syn := dtPkt{src: dtClient, dst: dtVIP, sport: 40001, dport: 80, syn: true}.frame(t)
	first := h.run(syn, sec)
	if len(first) != 1 {
		t.Fatal("SYN not forwarded")
	}
	ack := dtPkt{src: dtClient, dst: dtVIP, sport: 40002, dport: 80, ack: true}.frame(t)
	if got := h.run(ack, sec); len(got) != 0 {
		t.Fatal("an ACK without a connection was forwarded with sloppy_tcp off")
	}
	gen := h.d.Generation()
	o := h.d.Options()
	o.SloppyTCP = true
	o.ConnMax = 2
	o.ConnUnconfirmedMax = conntrack.UnconfirmedOff // refuse at the cap, as IPVS: no eviction
	o.Timeouts.TCP[1] = 7 * time.Second
	if err := h.d.SetOptions(o); err != nil {
		t.Fatal(err)
	}
	if h.d.Generation() != gen+1 {
		t.Errorf("generation %d after SetOptions, want %d", h.d.Generation(), gen+1)
	}
	if got := h.run(ack, 2*sec); len(got) != 1 {
		t.Error("sloppy_tcp set by SetOptions did not reach the hot path")
	}
	if h.d.Table().Max() != 2 || h.d.Table().Timeouts().TCP[1] != 7*time.Second {
		t.Errorf("table settings: max %d, established timeout %v", h.d.Table().Max(), h.d.Table().Timeouts().TCP[1])
	}
	// The table is full (2 entries): a third flow is refused, the old ones carry on.
	if got := h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 40003, dport: 80, syn: true}.frame(t), 2*sec); len(got) != 0 || h.w.C.Reasons[ReasonTableFull] != 1 {
		t.Errorf("conn_max 2: third flow sent %d frames, table_full %d", len(got), h.w.C.Reasons[ReasonTableFull])
	}
	if got := h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 40001, dport: 80, ack: true}.frame(t), 2*sec); len(got) != 1 || string(got[0][:6]) != string(first[0][:6]) {
		t.Error("the first connection did not survive SetOptions")
	}

	bad := h.d.Options()
	bad.ConnShards *= 2
	if err := h.d.SetOptions(bad); err == nil {
		t.Error("a conn_shards change was accepted at run time")
	}
	tun := rrService(ipvs.TUN, 80)
	if err := h.d.Apply([]ipvs.Service{tun}); err != nil {
		t.Fatal(err)
	}
	noAddr := h.d.Options()
	noAddr.Addr4 = netip.Addr{}
	if err := h.d.SetOptions(noAddr); err == nil {
		t.Error("removing the director's address under a TUN service was accepted")
	}
	if h.d.Options().Addr4 != testOptions().Addr4 || !h.d.Options().SloppyTCP {
		t.Error("a refused SetOptions changed the options")
	}
}

// TestSloppyCreatedCounted checks Counters.SloppyCreated (gvs_sloppy_created_total):
// with sloppy_tcp on, a connection a packet without SYN creates is counted, on both
// new-connection paths (a plain service's and a persistent one's), and one a SYN
// creates is not.
func TestSloppyCreatedCounted(t *testing.T) {
	for _, persistent := range []bool{false, true} {
		o := testOptions()
		o.SloppyTCP = true
		svc := rrService(ipvs.DR, 80)
		if persistent {
			svc.Persistence = 5 * time.Minute
		}
		h := newHarness(t, o, svc)
		if got := h.run(dtPkt{src: dtClient, dst: dtVIP, sport: 41000, dport: 80, syn: true}.frame(t), sec); len(got) != 1 {
			t.Fatalf("persistent %v: SYN not forwarded", persistent)
		}
		for i := range 3 {
			ack := dtPkt{src: dtClient, dst: dtVIP, sport: uint16(41001 + i), dport: 80, ack: true}.frame(t)
			if got := h.run(ack, sec); len(got) != 1 {
				t.Fatalf("persistent %v: mid-stream ACK %d not forwarded with sloppy_tcp on", persistent, i)
			}
		}
		h.w.Flush(sec)
		if n := h.d.Totals().Counters.SloppyCreated; n != 3 {
			t.Errorf("persistent %v: SloppyCreated %d, want 3 (the SYN's connection does not count)", persistent, n)
		}
	}
}
