package cluster

import (
	"bufio"
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
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
	for _, tc := range []struct {
		name          string
		unicast, ipv6 bool
	}{{"multicast", false, false}, {"unicast", true, false}, {"multicast IPv6", false, true}} {
		unicast := tc.unicast
		t.Run(tc.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			nsA, nsB := vethPair(t)
			addrs := []netip.Addr{netip.MustParseAddr("198.18.0.21"), netip.MustParseAddr("198.18.0.22")}
			group := netip.MustParseAddr("224.0.0.81")
			sources := netip.MustParsePrefix("198.18.0.0/24")
			if tc.ipv6 {
				addrs = []netip.Addr{netip.MustParseAddr("2001:db8::21"), netip.MustParseAddr("2001:db8::22")}
				group, sources = netip.MustParseAddr("ff02::1:8848"), netip.MustParsePrefix("2001:db8::/64")
				for i, ns := range []string{nsA, nsB} {
					ipn(t, ns, "addr", "add", addrs[i].String()+"/64", "dev", "eth0", "nodad")
				}
			}
			type dir struct {
				n     *Node
				table *fakeTable
			}
			var dirs [2]dir
			var capture *tcpdump
			if !unicast && !tc.ipv6 {
				capture = startTcpdump(t, nsB)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 2)
			for i, ns := range []string{nsA, nsB} {
				ucfg := UDPConfig{Interface: "eth0", Group: group, SyncPort: 8848, Ports: 2,
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
				if m, want := u.MaxLen(), map[bool]int{false: 1472, true: 1452}[tc.ipv6]; m != want {
					t.Fatalf("sync_maxlen for a 1500-byte MTU: %d, want %d", m, want)
				}
				cfg := DefaultConfig([]string{"d1", "d2"}[i])
				cfg.Self, cfg.SyncPorts = []netip.Addr{addrs[i]}, 2
				cfg.Sources = []netip.Prefix{sources}
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
			if capture != nil {
				checkCapture(t, capture.stop(t), 100)
			}
		})
	}
}

// tcpdump captures sync traffic (UDP 8848–8849: the test's two sync ports) on eth0 in
// a namespace. --immediate-mode: without it libpcap holds packets in a ring block until
// the block times out, and a capture stopped early has none.
type tcpdump struct {
	cmd  *exec.Cmd
	file string
}

// startTcpdump starts a capture and waits until it listens; nil when tcpdump or
// tshark is missing (the capture check is then skipped, the test is not).
func startTcpdump(t *testing.T, ns string) *tcpdump {
	t.Helper()
	for _, tool := range []string{"tcpdump", "tshark"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("GVS_LAB_REQUIRED") == "1" {
				t.Fatalf("GVS_LAB_REQUIRED=1 but %s is missing", tool)
			}
			t.Logf("no %s: the wire capture is not checked", tool)
			return nil
		}
	}
	c := &tcpdump{file: filepath.Join(t.TempDir(), "sync.pcap")}
	c.cmd = exec.Command("ip", "netns", "exec", ns, "tcpdump", "-i", "eth0", "--immediate-mode", "-U", "-n", "-w", c.file, "udp portrange 8848-8849")
	stderr, _ := c.cmd.StderrPipe()
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.cmd.Process.Kill(); c.cmd.Wait() })
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "listening on") {
			go func() {
				for sc.Scan() {
				}
			}()
			return c
		}
	}
	t.Fatal("tcpdump ended before listening")
	return nil
}

func (c *tcpdump) stop(t *testing.T) string {
	t.Helper()
	c.cmd.Process.Signal(os.Interrupt)
	c.cmd.Wait()
	return c.file
}

// checkCapture has tshark read what crossed the wire: no malformed IPVS frame, every
// sync datagram from d1 to the group with TTL 1, and at least records records.
func checkCapture(t *testing.T, file string, records int) {
	t.Helper()
	run := func(args ...string) string {
		// The second sync port (8849 here) is IPVS too; Wireshark knows only 8848.
		cmd := exec.Command("tshark", append([]string{"-n", "-r", file, "-d", "udp.port==8849,ipvs"}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark %v: %v", args, err)
		}
		return string(out)
	}
	if out := strings.TrimSpace(run("-Y", "ipvs && _ws.malformed", "-T", "fields", "-e", "frame.number")); out != "" {
		t.Fatalf("malformed IPVS frames on the wire: %s", out)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(run("-Y", "ipvs", "-T", "fields", "-E", "separator=;",
		"-e", "ip.src", "-e", "ip.dst", "-e", "ip.ttl", "-e", "ipvs.conncount")), "\n") {
		f := strings.Split(line, ";")
		if len(f) != 4 || f[0] != "198.18.0.21" || f[1] != "224.0.0.81" || f[2] != "1" {
			t.Fatalf("sync frame %q: want from 198.18.0.21 to 224.0.0.81 with TTL 1", line)
		}
		k := 0
		for _, c := range f[3] {
			k = k*10 + int(c-'0')
		}
		n += k
	}
	if n < records {
		t.Fatalf("tshark counted %d records on the wire, want at least %d", n, records)
	}
	t.Logf("wire: %d sync records decoded by tshark, none malformed", n)
}

// TestUDPPushSocket: over real sockets, a bulk push leaves from a socket of its own,
// opened in the namespace of the transport's sockets though the Node runs on threads
// outside it, and the joiner counts the push by that socket's port; the socket is
// closed when the push is done.
func TestUDPPushSocket(t *testing.T) {
	for _, unicast := range []bool{false, true} {
		t.Run(map[bool]string{false: "multicast", true: "unicast"}[unicast], func(t *testing.T) {
			testutil.CheckLeaks(t)
			nsA, nsB := vethPair(t)
			addrs := []netip.Addr{netip.MustParseAddr("198.18.0.21"), netip.MustParseAddr("198.18.0.22")}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 2)
			started := 0
			t.Cleanup(func() {
				cancel()
				for range started {
					if err := <-done; err != nil {
						t.Errorf("Run: %v", err)
					}
				}
			})
			var nodes [2]*Node
			var tables [2]*fakeTable
			var udps [2]*UDP
			for i, ns := range []string{nsA, nsB} {
				ucfg := UDPConfig{Interface: "eth0", Group: netip.MustParseAddr("224.0.0.81"), SyncPort: 8848, Ports: 1,
					ControlPort: 8849, TTL: 1}
				if unicast {
					ucfg.Peers = []netip.Addr{addrs[1-i]}
				}
				var err error
				inNetns(t, ns, func() { udps[i], err = ListenUDP(ucfg) })
				if err != nil {
					t.Fatal(err)
				}
				cfg := DefaultConfig([]string{"d1", "d2"}[i])
				cfg.Self, cfg.Sources = []netip.Addr{addrs[i]}, []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}
				tables[i] = newFakeTable()
				if nodes[i], err = NewNode(cfg, Deps{Sink: tables[i], Table: tables[i], Transport: udps[i]}); err != nil {
					t.Fatal(err)
				}
			}
			const n = 2000
			for i := range n {
				tables[0].own(conn(i, 5), time.Now(), time.Now())
			}
			for i := range 2 {
				nodes[i].Start(time.Now())
				started++
				go func() { done <- Run(ctx, nodes[i], udps[i], RealClock, 10*time.Millisecond) }()
			}
			testutil.Eventually(t, 10*time.Second, func() bool { return nodes[1].Warm() && tables[1].len() == n },
				"d2 never became ready with d1's connections")
			nodes[0].mu.Lock()
			p := nodes[0].pushes["d2"]
			port, count, isDone := p.port, p.count, p.done
			nodes[0].mu.Unlock()
			if !isDone || port == 0 || count != n {
				t.Fatalf("d1's push to d2: done %v, port %d, %d records; want done from a socket of its own with %d", isDone, port, count, n)
			}
			nodes[1].mu.Lock()
			got := nodes[1].sources[addrs[0]].portCount(port).records
			nodes[1].mu.Unlock()
			if got != n {
				t.Fatalf("d2 counted %d records from d1's push port %d, want %d", got, port, n)
			}
			udps[0].mu.Lock()
			open := len(udps[0].pushes)
			udps[0].mu.Unlock()
			if open != 0 {
				t.Fatalf("%d push sockets still open after the push", open)
			}
		})
	}
}
