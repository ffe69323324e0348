package daemon

import (
	"net/netip"
	"testing"

	"github.com/gvs-lb/gvs/ipvs"
)

// TestConfTableKeys: the configured table, indexed by packed keys (skey), finds
// each service by its ipvs.Key — both families, one address with two ports
// and two protocols, an IPv4-mapped address of an IPv6 service, fwmark
// services of one mark in both families — and no other; a packed key gives
// the ipvs.Key back (a deleted service's record, admUntag), and an edit's
// deleted and added keys are found, or not, as after the edit.
func TestConfTableKeys(t *testing.T) {
	keys := []ipvs.Key{
		ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort("198.18.0.1:80")),
		ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort("198.18.0.1:443")),
		ipvs.AddrKey(ipvs.UDP, netip.MustParseAddrPort("198.18.0.1:80")),
		ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort("198.18.0.1:0")),
		ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort("[2001:db8::1]:80")),
		ipvs.AddrKey(ipvs.UDP, netip.MustParseAddrPort("[2001:db8::1]:80")),
		{Protocol: ipvs.TCP, Addr: netip.MustParseAddrPort("[::ffff:198.18.0.1]:80"), IPv6: true},
		ipvs.MarkKey(1, false),
		ipvs.MarkKey(1, true),
		ipvs.MarkKey(2, false),
	}
	svcs := make([]ipvs.Service, len(keys))
	for i, k := range keys {
		svcs[i] = ipvs.Service{Key: k, Scheduler: "rr", MHTableSize: i}
	}
	var d Daemon
	d.st.conf = newConfTable(svcs)
	for i, k := range keys {
		if got := packKey(k).key(); got != k {
			t.Fatalf("packKey(%v).key() = %v", k, got)
		}
		s := d.confService(k)
		if s == nil || s.Key != k || s.MHTableSize != i {
			t.Fatalf("confService(%v) = %+v, want service %d", k, s, i)
		}
	}
	absent := []ipvs.Key{
		ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort("198.18.0.1:81")),
		ipvs.AddrKey(ipvs.UDP, netip.MustParseAddrPort("198.18.0.1:443")),
		ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort("198.18.0.2:80")),
		ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort("[2001:db8::2]:80")),
		ipvs.MarkKey(2, true),
		ipvs.MarkKey(3, false),
	}
	for _, k := range absent {
		if s := d.confService(k); s != nil {
			t.Fatalf("confService(%v) = %v, want none", k, s.Key)
		}
	}

	// A tagged service deleted: its key comes back whole with the tag.
	del, add := keys[2], ipvs.AddrKey(ipvs.UDP, netip.MustParseAddrPort("198.18.0.1:443"))
	if !d.st.conf.setTag(packKey(del), 7) {
		t.Fatalf("no entry to tag for %v", del)
	}
	e := d.st.conf.edit()
	e.del(packKey(del))
	e.put(ipvs.Service{Key: add, Scheduler: "wrr"})
	d.st.conf.apply(e)
	if d.confService(del) != nil || d.confService(keys[0]) == nil || d.confService(keys[1]) == nil {
		t.Fatalf("after deleting %v: found it, or lost its siblings", del)
	}
	if s := d.confService(add); s == nil || s.Scheduler != "wrr" {
		t.Fatalf("added %v not found: %v", add, s)
	}
	if dr := d.st.conf.takeDropped(); len(dr) != 1 || dr[0].k.key() != del || dr[0].tag != 7 {
		t.Fatalf("dropped tags %v, want %v with tag 7", dr, del)
	}
}
