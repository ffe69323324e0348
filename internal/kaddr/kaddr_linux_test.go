package kaddr

import (
	"errors"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"testing"

	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"
)

// openInNewNetns opens a Handle in a network namespace of its own (only lo, up),
// created for a locked OS thread that is never unlocked, so the runtime discards
// the thread and the namespace goes with the socket.
func openInNewNetns(t testing.TB) Handle {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("GVS_LAB_REQUIRED") == "1" {
			t.Fatal("needs root (a network namespace of its own)")
		}
		t.Skip("needs root (a network namespace of its own)")
	}
	type res struct {
		h   Handle
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- res{nil, err}
			return
		}
		h, err := Open()
		if err == nil {
			nh := h.(*netlinkHandle)
			err = nh.c.Link.Set(&rtnetlink.LinkMessage{Index: 1, Flags: unix.IFF_UP, Change: unix.IFF_UP})
		}
		ch <- res{h, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.h.Close() })
	return r.h
}

// TestNetlinkAddDeleteList: addresses with prefix, label, scope and broadcast, IPv4
// and IPv6, go in and out of the kernel as given; a second Add is ErrExists, a
// second Delete ErrNotFound.
func TestNetlinkAddDeleteList(t *testing.T) {
	h := openInNewNetns(t)
	addrs := []Addr{
		{Prefix: netip.MustParsePrefix("198.18.0.100/24"), Index: 1, Label: "lo:1", Broadcast: netip.MustParseAddr("198.18.0.255")},
		{Prefix: netip.MustParsePrefix("198.18.0.101/32"), Index: 1, Scope: ScopeHost},
		{Prefix: netip.MustParsePrefix("2001:db8::100/64"), Index: 1},
	}
	for _, a := range addrs {
		if err := h.Add(a); err != nil {
			t.Fatal(err)
		}
		if err := h.Add(a); !errors.Is(err, ErrExists) {
			t.Fatalf("second add of %v: %v, want ErrExists", a, err)
		}
	}
	got, err := h.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if !slices.Contains(got, a) {
			t.Fatalf("%v not listed in %v", a, got)
		}
	}
	for _, a := range addrs {
		if err := h.Delete(a); err != nil {
			t.Fatal(err)
		}
		if err := h.Delete(a); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete of %v: %v, want ErrNotFound", a, err)
		}
	}
	got, _ = h.List()
	for _, a := range addrs {
		if slices.ContainsFunc(got, func(x Addr) bool { return x.Prefix.Addr() == a.Prefix.Addr() }) {
			t.Fatalf("%v still listed after delete", a)
		}
	}
}

// BenchmarkNetlinkAddDelete: one VIP added and removed over rtnetlink, what a
// takeover and a handover cost in kernel work (in a namespace of its own).
func BenchmarkNetlinkAddDelete(b *testing.B) {
	h := openInNewNetns(b)
	a := Addr{Prefix: netip.MustParsePrefix("198.18.0.100/24"), Index: 1, Label: "lo:1"}
	b.ReportAllocs()
	for b.Loop() {
		if err := h.Add(a); err != nil {
			b.Fatal(err)
		}
		if err := h.Delete(a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNetlinkList: the listing taken before each takeover (the host's
// addresses: here lo's two and 100 more).
func BenchmarkNetlinkList(b *testing.B) {
	h := openInNewNetns(b)
	for i := range 100 {
		if err := h.Add(Addr{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(i + 1)}), 32), Index: 1}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.List(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestNetlinkRoutes: a route via a gateway, one from a source in table 100 and a
// blackhole go in and out; a second add is ErrExists, a second delete ErrNotFound.
func TestNetlinkRoutes(t *testing.T) {
	h := openInNewNetns(t)
	if err := h.Add(Addr{Prefix: netip.MustParsePrefix("198.18.0.3/24"), Index: 1}); err != nil {
		t.Fatal(err)
	}
	routes := []Route{
		{Dst: netip.MustParsePrefix("198.18.5.0/24"), Via: netip.MustParseAddr("198.18.0.1"), Index: 1},
		{Dst: netip.MustParsePrefix("198.18.6.0/24"), Src: netip.MustParseAddr("198.18.0.3"), Index: 1, Table: 100, Metric: 10, Scope: ScopeLink},
		{Dst: netip.MustParsePrefix("198.18.7.0/24"), Type: RouteBlackhole},
	}
	for _, r := range routes {
		if err := h.AddRoute(r); err != nil {
			t.Fatalf("%v: %v", r, err)
		}
		if err := h.AddRoute(r); !errors.Is(err, ErrExists) {
			t.Fatalf("second add of %v: %v", r, err)
		}
	}
	for _, r := range routes {
		if err := h.DeleteRoute(r); err != nil {
			t.Fatalf("%v: %v", r, err)
		}
		if err := h.DeleteRoute(r); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete of %v: %v", r, err)
		}
	}
}

// TestNetlinkRules: IPv4 and IPv6 rules (from, to, fwmark/mask, iif, oif, a
// priority or none, a table above 255) go in and out; a second add is ErrExists —
// also for a rule without priority, which the kernel alone would add twice — and a
// second delete ErrNotFound.
func TestNetlinkRules(t *testing.T) {
	h := openInNewNetns(t)
	rules := []Rule{
		{From: netip.MustParsePrefix("198.18.0.0/24"), Table: 100, Priority: 100, HasPriority: true},
		{To: netip.MustParsePrefix("198.18.9.0/24"), IIF: "lo", Table: 1000},
		{Mark: 7, Mask: 0xff, HasMark: true, OIF: "lo", Table: 101, Priority: 5, HasPriority: true},
		{IPv6: true, From: netip.MustParsePrefix("2001:db8:1::/64"), To: netip.MustParsePrefix("2001:db8:2::/48"), Table: 102},
		{IPv6: true, Mark: 1, HasMark: true, Table: 103, Priority: 7, HasPriority: true},
	}
	for _, r := range rules {
		if err := h.AddRule(r); err != nil {
			t.Fatalf("%v: %v", r, err)
		}
		if err := h.AddRule(r); !errors.Is(err, ErrExists) {
			t.Fatalf("second add of %v: %v", r, err)
		}
	}
	msgs, err := h.(*netlinkHandle).c.Rule.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if !slices.ContainsFunc(msgs, func(m rtnetlink.RuleMessage) bool { k, ok := ruleOf(&m); return ok && k.sameSelectors(r) }) {
			t.Errorf("rule %v not listed back", r)
		}
	}
	for _, r := range rules {
		if err := h.DeleteRule(r); err != nil {
			t.Fatalf("%v: %v", r, err)
		}
		if err := h.DeleteRule(r); !errors.Is(err, ErrNotFound) {
			t.Fatalf("second delete of %v: %v", r, err)
		}
	}
}

// BenchmarkNetlinkRuleAddDelete: one virtual rule added and removed over
// rtnetlink, with a priority (one request each way) and without (the rules are
// listed first, to find one already there), beside the host's three default rules
// per family and 50 more.
func BenchmarkNetlinkRuleAddDelete(b *testing.B) {
	for _, bc := range []struct {
		name string
		r    Rule
	}{
		{"priority", Rule{From: netip.MustParsePrefix("198.18.0.0/24"), Table: 100, Priority: 100, HasPriority: true}},
		{"none", Rule{From: netip.MustParsePrefix("198.18.0.0/24"), Table: 100}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := openInNewNetns(b)
			for i := range 50 {
				if err := h.AddRule(Rule{Mark: uint32(i + 1), HasMark: true, Table: 200, Priority: uint32(1000 + i), HasPriority: true}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := h.AddRule(bc.r); err != nil {
					b.Fatal(err)
				}
				if err := h.DeleteRule(bc.r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
