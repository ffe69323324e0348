package cluster

import (
	"context"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"
	"golang.org/x/sys/unix"
)

// inNetns runs fn on a thread switched into namespace ns: sockets fn opens belong to
// ns for their whole life. If the thread cannot be switched back, it is left locked,
// so the runtime discards it instead of reusing it in the wrong namespace.
func inNetns(t *testing.T, ns string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	fn()
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatalf("could not leave namespace %s: %v", ns, err) // the thread stays locked and dies with the goroutine
	}
	runtime.UnlockOSThread()
}

// vethPair makes two namespaces joined by a veth pair, eth0 on each side, with
// 198.18.0.21/24 and 198.18.0.22/24.
func vethPair(t *testing.T) (a, b string) {
	a, b = netns(t), netns(t)
	ipn(t, a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b)
	ipn(t, a, "addr", "add", "198.18.0.21/24", "dev", "eth0")
	ipn(t, b, "addr", "add", "198.18.0.22/24", "dev", "eth0")
	ipn(t, a, "link", "set", "eth0", "up")
	ipn(t, b, "link", "set", "eth0", "up")
	return a, b
}

// TestUDPTwoDirectors runs two Nodes over real sockets in two namespaces, by
// multicast and by unicast sync_peers: both become ready, and connections one
// director enqueues arrive in the other's table.
func TestUDPTwoDirectors(t *testing.T) {
	for _, unicast := range []bool{false, true} {
		name := "multicast"
		if unicast {
			name = "unicast"
		}
		t.Run(name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			nsA, nsB := vethPair(t)
			addrs := []netip.Addr{netip.MustParseAddr("198.18.0.21"), netip.MustParseAddr("198.18.0.22")}
			type dir struct {
				n     *Node
				table *fakeTable
			}
			var dirs [2]dir
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 2)
			for i, ns := range []string{nsA, nsB} {
				ucfg := UDPConfig{Interface: "eth0", Group: netip.MustParseAddr("224.0.0.81"), SyncPort: 8848, Ports: 2,
					ControlPort: 8850, TTL: 1}
				if unicast {
					ucfg.Peers = []netip.Addr{addrs[1-i]}
				}
				var u *UDP
				var err error
				inNetns(t, ns, func() { u, err = ListenUDP(ucfg) })
				if err != nil {
					t.Fatal(err)
				}
				cfg := DefaultConfig([]string{"d1", "d2"}[i])
				cfg.Self, cfg.SyncPorts = []netip.Addr{addrs[i]}, 2
				cfg.Sources = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}
				tbl := newFakeTable()
				n, err := NewNode(cfg, Deps{Sink: tbl, Table: tbl, Transport: u})
				if err != nil {
					t.Fatal(err)
				}
				dirs[i] = dir{n, tbl}
				n.Start(time.Now())
				go func() { done <- Run(ctx, n, u, RealClock, 10*time.Millisecond) }()
			}
			t.Cleanup(func() {
				cancel()
				for range 2 {
					if err := <-done; err != nil {
						t.Errorf("Run: %v", err)
					}
				}
			})
			testutil.Eventually(t, 5*time.Second, func() bool { return dirs[0].n.Warm() && dirs[1].n.Warm() },
				"the directors never became ready")
			for i := range 100 {
				e := conn(i, 5)
				dirs[0].n.Enqueue(&e, time.Now())
			}
			testutil.Eventually(t, 5*time.Second, func() bool { return dirs[1].table.len() == 100 },
				"d2 never received d1's 100 connections")
			testutil.Eventually(t, 5*time.Second, func() bool {
				p := dirs[1].n.Peers(time.Now())
				return len(p) == 1 && p[0].NodeID == "d1" && p[0].Live && p[0].SentRecords == 100 && p[0].Lost == 0
			}, "d2's view of d1")
			if st := dirs[1].n.Stats(); len(st.Drops) != 0 || st.RecvRecords != 100 {
				t.Fatalf("d2's stats: %+v", st)
			}
			if st := dirs[0].n.Stats(); st.Drops["self"] != 0 {
				t.Fatalf("d1 heard itself: %+v", st)
			}
		})
	}
}
