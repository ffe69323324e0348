package daemon

import (
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"

	"github.com/gvs-lb/gvs/internal/kaddr"
)

// kernelInNewNetns opens a kaddr Handle in a network namespace of its own with lo
// up, made on a locked OS thread that is never unlocked: the runtime discards the
// thread, and the namespace goes when the sockets close.
func kernelInNewNetns(t *testing.T) kaddr.Handle {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("GVS_LAB_REQUIRED") == "1" {
			t.Fatal("GVS_LAB_REQUIRED=1 but not root (a network namespace of its own)")
		}
		t.Skip("needs root (a network namespace of its own)")
	}
	type res struct {
		h   kaddr.Handle
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- res{nil, err}
			return
		}
		c, err := rtnetlink.Dial(nil)
		if err != nil {
			ch <- res{nil, err}
			return
		}
		err = c.Link.Set(&rtnetlink.LinkMessage{Index: 1, Flags: unix.IFF_UP, Change: unix.IFF_UP})
		c.Close()
		if err != nil {
			ch <- res{nil, err}
			return
		}
		h, err := kaddr.Open()
		ch <- res{h, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.h.Close() })
	return r.h
}

// TestKernelVIPsNetlink: against the kernel, an instance's address, a route using
// it as source and a rule from it go on in keepalived's order; a reload's change
// (kernelVIPs.update) moves all three to another address with no failure — the
// new route needs its address first, the old address goes after its route and
// rule — and a release removes everything, leaving no record.
func TestKernelVIPsNetlink(t *testing.T) {
	h := kernelInNewNetns(t)
	record := filepath.Join(t.TempDir(), "gvs.kernel-addrs.json")
	kv := newKernelVIPs(slog.New(slog.DiscardHandler), h, record)
	set := func(ip string, table uint32) ([]kernelAddr, []kernelRoute, []kaddr.Rule) {
		a := netip.MustParseAddr(ip)
		return []kernelAddr{{Addr: kaddr.Addr{Prefix: netip.PrefixFrom(a, 24), Index: 1}, Dev: "lo"}},
			[]kernelRoute{{Route: kaddr.Route{Dst: netip.MustParsePrefix("198.18.5.0/24"), Src: a, Via: netip.MustParseAddr("198.18.0.1"), Index: 1, Table: table}, Dev: "lo"}},
			[]kaddr.Rule{{From: netip.PrefixFrom(a, 32), Table: table}}
	}
	present := func(ip string) bool {
		l, err := h.List()
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(l, func(x kaddr.Addr) bool { return x.Prefix.Addr() == netip.MustParseAddr(ip) })
	}
	// held reports whether the kernel has r (an identical rule is refused).
	held := func(r kaddr.Rule) bool {
		err := h.AddRule(r)
		if err == nil {
			h.DeleteRule(r)
		}
		return errors.Is(err, kaddr.ErrExists)
	}
	addrs, routes, rules := set("198.18.0.200", 100)
	kv.take("VI_1", addrs)
	kv.takeRoutes("VI_1", routes)
	kv.takeRules("VI_1", rules)
	if n := kv.failed.Load() + kv.refused.Load(); n != 0 || !present("198.18.0.200") || !held(rules[0]) {
		t.Fatalf("after the takeover: %d failures, address there %v, rule there %v", n, present("198.18.0.200"), held(rules[0]))
	}
	if err := h.AddRoute(routes[0].Route); !errors.Is(err, kaddr.ErrExists) {
		t.Fatalf("the route is not there: %v", err)
	}

	addrs2, routes2, rules2 := set("198.18.0.201", 101)
	if got := kv.update("VI_1", addrs2, routes2, rules2); len(got) != 1 || got[0].Prefix.Addr() != netip.MustParseAddr("198.18.0.201") {
		t.Fatalf("update returned %v, want the new address to announce", got)
	}
	if n := kv.failed.Load() + kv.refused.Load(); n != 0 {
		t.Fatalf("%d failures moving the entries", n)
	}
	if present("198.18.0.200") || !present("198.18.0.201") || held(rules[0]) || !held(rules2[0]) {
		t.Fatal("after the update the old entries are there or the new ones are not")
	}
	if err := h.DeleteRoute(routes[0].Route); !errors.Is(err, kaddr.ErrNotFound) {
		t.Fatalf("the old route is still there: %v", err)
	}
	if err := h.AddRoute(routes2[0].Route); !errors.Is(err, kaddr.ErrExists) {
		t.Fatalf("the new route is not there: %v", err)
	}

	kv.releaseAll()
	if n := kv.failed.Load(); n != 0 || present("198.18.0.201") || held(rules2[0]) {
		t.Fatalf("after the release: %d failures, address there %v, rule there %v", n, present("198.18.0.201"), held(rules2[0]))
	}
	if err := h.DeleteRoute(routes2[0].Route); !errors.Is(err, kaddr.ErrNotFound) {
		t.Fatalf("the route is still there after the release: %v", err)
	}
	if _, err := os.Stat(record); !os.IsNotExist(err) {
		t.Fatalf("the record outlived the release: %v", err)
	}
}
