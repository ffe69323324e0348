//go:build linux

package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMain lets the test binary stand in for gvs inside the namespaces: the lab
// starts its helpers as `<Exe> lab serve ...`, and Exe defaults to
// os.Executable(), which under `go test` is this binary.
// Any other command (`run -c FILE` from StartDirector) fails as an unknown one:
// a test binary given stray arguments must never run the tests again.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-") {
		if os.Args[1] != "lab" {
			fmt.Fprintf(os.Stderr, "gvs (test stand-in): unknown command %q\n", os.Args[1])
			os.Exit(2)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := RunHelper(ctx, os.Args[2:], os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "gvs lab:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if gvsErr == nil && gvsBin != "" {
		os.RemoveAll(filepath.Dir(gvsBin)) // the gvs binary gvsBinary built
	}
	os.Exit(code)
}

// needLab skips the test when namespaces cannot be built here, or fails it
// under GVS_LAB_REQUIRED=1 (CI).
func needLab(t *testing.T, m Mode) {
	t.Helper()
	if err := Preflight(m); err != nil {
		if os.Getenv("GVS_LAB_REQUIRED") == "1" {
			t.Fatalf("GVS_LAB_REQUIRED=1 but the lab cannot run: %v", err)
		}
		t.Skipf("skipping namespace test: %v (set GVS_LAB_REQUIRED=1 to make this a failure)", err)
	}
}

// testPrefix is "gt" and 6 random hex digits: unique per run.
func testPrefix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	return "gt" + hex.EncodeToString(b)
}

// upLab builds a lab for one test and tears it down at its end, checking that
// nothing of the prefix is left. Logs are printed if the test failed. Unless spec
// says otherwise, the lab gets a prefix of its own and its state, logs, configs and
// control sockets go to a directory of the test's: nothing host-global is shared
// with another lab or a lab the user runs.
func upLab(t *testing.T, spec Spec) *Lab {
	t.Helper()
	needLab(t, spec.Mode)
	if spec.Prefix == "" {
		spec.Prefix = testPrefix(t)
	}
	if spec.StateDir == "" {
		spec.StateDir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := Up(ctx, spec)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, l)
		}
		if err := l.Down(); err != nil {
			t.Errorf("Down: %v", err)
		}
		assertGone(t, l.Spec().StateDir, l.Prefix())
	})
	return l
}

func dumpLogs(t *testing.T, l *Lab) {
	t.Helper()
	for _, p := range l.Procs() {
		b, _ := os.ReadFile(p.Log)
		t.Logf("%s %s (pid %d) log:\n%s", p.Host, p.Name, p.PID, b)
	}
}

// assertGone checks that no namespace, state file or run dir of prefix is left.
func assertGone(t *testing.T, dir, prefix string) {
	t.Helper()
	have, err := namespaces(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for ns := range have {
		if strings.HasPrefix(ns, prefix+"-") {
			t.Errorf("namespace %s left after Down", ns)
		}
	}
	for _, p := range []string{statePath(dir, prefix), runDir(dir, prefix)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after Down (%v)", p, err)
		}
	}
}

// rootSnapshot is what the test's own namespace holds: link names and MACs, and
// IPv4 addresses.
type rootSnapshot struct {
	links map[string]string // name -> MAC
	addrs []string
}

func snapshotRoot(t *testing.T) rootSnapshot {
	t.Helper()
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	s := rootSnapshot{links: map[string]string{}}
	for _, i := range ifs {
		s.links[i.Name] = i.HardwareAddr.String()
		as, _ := i.Addrs()
		for _, a := range as {
			s.addrs = append(s.addrs, i.Name+" "+a.String())
		}
	}
	return s
}

// assertRootUntouched checks that the lab made nothing in the test's namespace:
// no new link of a lab name or lab MAC, and no address of the lab's range.
func assertRootUntouched(t *testing.T, before rootSnapshot, l *Lab) {
	t.Helper()
	after := snapshotRoot(t)
	names := map[string]bool{bridgeInside: true, bridgeOutside: true, tunDev: true}
	for _, h := range l.Hosts() {
		for _, k := range h.Links {
			names[k.Port] = true
		}
	}
	for name, mac := range after.links {
		if _, ok := before.links[name]; ok {
			continue
		}
		if names[name] || strings.HasPrefix(mac, "02:00:00:00:") {
			t.Errorf("link %s (%s) appeared in the root namespace", name, mac)
		}
	}
	lab := netip.MustParsePrefix("198.18.0.0/15")
	for _, a := range after.addrs {
		_, cidr, _ := strings.Cut(a, " ")
		if p, err := netip.ParsePrefix(cidr); err == nil && lab.Contains(p.Addr()) && !slices.Contains(before.addrs, a) {
			t.Errorf("address %s appeared in the root namespace", a)
		}
	}
}

// httpGet fetches url from inside host's namespace, with a Go client whose
// sockets are made there.
func httpGet(l *Lab, host, url string) (string, error) {
	return httpGetWithin(l, host, url, 3*time.Second)
}

func httpGetWithin(l *Lab, host, url string, timeout time.Duration) (string, error) {
	return l.HTTPGet(host, url, timeout)
}

// udpAskIn sends msg to addr from host's namespace and returns the answer.
func udpAskIn(l *Lab, host string, addr netip.AddrPort, msg string) (string, error) {
	return l.UDPAsk(host, addr, msg, 2*time.Second)
}

func mustSysctl(t *testing.T, ns, key string) string {
	t.Helper()
	v, err := readSysctl(ns, key)
	if err != nil {
		t.Fatalf("%s: %s: %v", ns, key, err)
	}
	return v
}

// ifaceIn returns an interface of host's namespace and its addresses.
func ifaceIn(t *testing.T, l *Lab, host, name string) (*net.Interface, []string) {
	t.Helper()
	var ifi *net.Interface
	var addrs []string
	if err := l.Do(host, func() error {
		var err error
		if ifi, err = net.InterfaceByName(name); err != nil {
			return err
		}
		as, err := ifi.Addrs()
		for _, a := range as {
			addrs = append(addrs, a.String())
		}
		return err
	}); err != nil {
		t.Fatalf("%s: %s: %v", host, name, err)
	}
	return ifi, addrs
}

// allAddrsIn returns every address on every interface of host's namespace.
func allAddrsIn(t *testing.T, l *Lab, host string) []string {
	t.Helper()
	var all []string
	if err := l.Do(host, func() error {
		ifs, err := net.Interfaces()
		for _, i := range ifs {
			as, _ := i.Addrs()
			for _, a := range as {
				all = append(all, i.Name+" "+a.String())
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return all
}

func TestDR(t *testing.T) {
	needLab(t, DR)
	before := snapshotRoot(t)
	l := upLab(t, Spec{Mode: DR, Directors: 2})
	s := l.Spec()
	assertRootUntouched(t, before, l)

	have, err := namespaces(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range l.Hosts() {
		if !have[h.NS] {
			t.Errorf("namespace %s missing", h.NS)
		}
	}

	t.Run("addresses and MACs", func(t *testing.T) {
		for _, h := range l.Hosts() {
			if h.Role == Switch {
				continue
			}
			last := h.Addr().As4()[3]
			ifi, addrs := ifaceIn(t, l, h.Name, "eth0")
			if want := fmt.Sprintf("02:00:00:00:00:%02x", last); ifi.HardwareAddr.String() != want {
				t.Errorf("%s eth0 MAC %s, want %s", h.Name, ifi.HardwareAddr, want)
			}
			if !slices.Contains(addrs, h.Links[0].Addr.String()) {
				t.Errorf("%s eth0 addresses %v, want %v", h.Name, addrs, h.Links[0].Addr)
			}
			if lo, _ := ifaceIn(t, l, h.Name, "lo"); lo.Flags&net.FlagUp == 0 {
				t.Errorf("%s: lo is down", h.Name)
			}
		}
	})

	t.Run("VIP on real servers only", func(t *testing.T) {
		vip := s.VIP.String() + "/32"
		for _, h := range l.Hosts() {
			switch h.Role {
			case RealServer:
				if _, addrs := ifaceIn(t, l, h.Name, "lo"); !slices.Contains(addrs, vip) {
					t.Errorf("%s lo: %v, want the VIP %s", h.Name, addrs, vip)
				}
				for _, dev := range []string{"all", "lo"} {
					if v := mustSysctl(t, h.NS, "net.ipv4.conf."+dev+".arp_ignore"); v != "1" {
						t.Errorf("%s %s.arp_ignore=%s, want 1", h.Name, dev, v)
					}
					if v := mustSysctl(t, h.NS, "net.ipv4.conf."+dev+".arp_announce"); v != "2" {
						t.Errorf("%s %s.arp_announce=%s, want 2", h.Name, dev, v)
					}
				}
			case Director, Client:
				for _, a := range allAddrsIn(t, l, h.Name) {
					if strings.Contains(a, " "+s.VIP.String()+"/") {
						t.Errorf("%s holds the VIP in its kernel: %s", h.Name, a)
					}
				}
			}
			if h.Role == Director {
				for _, key := range []string{"net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding", "net.ipv4.conf.eth0.forwarding"} {
					if v := mustSysctl(t, h.NS, key); v != "0" {
						t.Errorf("%s %s=%s, want 0", h.Name, key, v)
					}
				}
			}
		}
	})

	t.Run("real servers answer", func(t *testing.T) {
		for _, name := range []string{"rs1", "rs2"} {
			h, _ := l.Host(name)
			got, err := httpGet(l, "client", "http://"+h.Addr().String()+"/")
			if err != nil || got != name+"\n" {
				t.Errorf("GET %s from the client: %q, %v; want %q", h.Addr(), got, err, name+"\n")
			}
			ans, err := udpAskIn(l, "client", netip.AddrPortFrom(h.Addr(), s.UDPPort), "ping")
			if err != nil || ans != name+": ping" {
				t.Errorf("UDP echo %s:%d: %q, %v", h.Addr(), s.UDPPort, ans, err)
			}
		}
		if _, err := exec.LookPath("curl"); err == nil {
			rs2, _ := l.Host("rs2")
			cmd, err := l.Command(context.Background(), "client", "curl", "-s", "-m", "3", "http://"+rs2.Addr().String()+"/")
			if err != nil {
				t.Fatal(err)
			}
			out, err := cmd.Output()
			if err != nil || string(out) != "rs2\n" {
				t.Errorf("ip netns exec %s curl: %q, %v", l.Prefix()+"-client", out, err)
			}
		}
	})

	t.Run("status and guide", func(t *testing.T) {
		r, err := Status(s.StateDir, l.Prefix())
		if err != nil {
			t.Fatal(err)
		}
		if r.Stale || !r.OwnerAlive || len(r.Hosts) != len(l.Hosts()) || len(r.Procs) != 2 {
			t.Errorf("status %+v", r)
		}
		for _, h := range r.Hosts {
			if !h.Present {
				t.Errorf("status: %s missing", h.NS)
			}
			if h.Name == "rs1" && !slices.Contains(h.Addrs, "lo "+s.VIP.String()+"/32") {
				t.Errorf("status rs1 addresses %v", h.Addrs)
			}
		}
		for _, p := range r.Procs {
			if !p.Running {
				t.Errorf("status: %s %s not running", p.Host, p.Name)
			}
		}
		var b bytes.Buffer
		r.WriteTo(&b)
		if !strings.Contains(b.String(), l.Prefix()+"-rs2") {
			t.Errorf("status text lacks rs2:\n%s", b.String())
		}
		b.Reset()
		if err := l.WriteGuide(&b); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"ip netns exec " + l.Prefix() + "-client curl -s http://198.18.0.100/",
			"ip netns exec " + l.Prefix() + "-dir1 tcpdump -e -n -i eth0 host 198.18.0.100",
			"ip netns exec " + l.Prefix() + "-rs1 tcpdump -e -n -i eth0",
			"run -c " + l.ConfigPath("dir2"),
		} {
			if !strings.Contains(b.String(), want) {
				t.Errorf("guide lacks %q:\n%s", want, b.String())
			}
		}
		if _, err := os.Stat(l.ConfigPath("dir1")); err != nil {
			t.Errorf("director config: %v", err)
		}
	})
	if t.Failed() {
		return
	}

	// Down stops the processes (checked here) and removes every name (checked by
	// upLab's cleanup, after this second, idempotent call).
	procs := l.Procs()
	if err := l.Down(); err != nil {
		t.Fatalf("Down: %v", err)
	}
	for _, p := range procs {
		if alive(procID{PID: p.PID, Start: p.Start}) {
			t.Errorf("%s %s pid %d still runs after Down", p.Host, p.Name, p.PID)
		}
	}
	assertGone(t, s.StateDir, l.Prefix())
}

// TestNAT checks what holds without a director: the client, outside, reaches
// a real server's address through the gateway, but the answer goes to dir1 (the
// real servers' default route), whose kernel does not forward it.
func TestNAT(t *testing.T) {
	l := upLab(t, Spec{Mode: NAT, RealServers: 2})
	s := l.Spec()
	client, _ := l.Host("client")
	dir1, _ := l.Host("dir1")
	rs1, _ := l.Host("rs1")
	gw, _ := l.Host("gw")
	if client.Addr() != netip.MustParseAddr("198.18.1.2") {
		t.Fatalf("client at %v", client.Addr())
	}
	if v := mustSysctl(t, gw.NS, "net.ipv4.ip_forward"); v != "1" {
		t.Errorf("gateway ip_forward=%s", v)
	}
	if v := mustSysctl(t, dir1.NS, "net.ipv4.conf.eth0.forwarding"); v != "0" {
		t.Errorf("dir1 eth0.forwarding=%s", v)
	}
	out, err := output(context.Background(), "ip", "-n", rs1.NS, "route", "get", client.Addr().String())
	if err != nil || !strings.Contains(string(out), "via "+dir1.Addr().String()) {
		t.Errorf("rs1 route to the client: %q, %v; want via %v", out, err, dir1.Addr())
	}

	// Watch dir1's eth0 while the client tries rs1 directly.
	capFD := openCapture(t, l, "dir1")
	if _, err := httpGetWithin(l, "client", "http://"+rs1.Addr().String()+"/", time.Second); err == nil {
		t.Error("the client reached rs1 directly without a director")
	}
	synAck := func(f frame) bool {
		return f.dstMAC.String() == dir1.MAC().String() && f.src == netip.AddrPortFrom(rs1.Addr(), s.HTTPPort) &&
			f.dst.Addr() == client.Addr() && f.tcpFlags&(tcpSYN|tcpACK) == tcpSYN|tcpACK
	}
	if !waitFrame(t, capFD, 2*time.Second, synAck) {
		t.Errorf("no SYN-ACK from rs1 to the client reached dir1's eth0")
	}
	// The real servers still answer inside.
	if got, err := httpGet(l, "dir1", "http://"+rs1.Addr().String()+"/"); err != nil || got != "rs1\n" {
		t.Errorf("GET rs1 from dir1: %q, %v", got, err)
	}
}

// TestTUN injects a director's IP-in-IP SYN into rs1 and watches rs1 answer it
// with a SYN-ACK from the VIP: the userspace decapsulator delivered it.
func TestTUN(t *testing.T) {
	l := upLab(t, Spec{Mode: TUN, RealServers: 1})
	s := l.Spec()
	client, _ := l.Host("client")
	dir1, _ := l.Host("dir1")
	rs1, _ := l.Host("rs1")

	capFD := openCapture(t, l, "rs1")
	const sport, seq = 40000, 0x01020304
	syn := ipv4(unix.IPPROTO_TCP, client.Addr().As4(), s.VIP.As4(), tcpSYNSegment(client.Addr(), s.VIP, sport, s.HTTPPort, seq))
	ipChecksum(syn)
	pkt := ipv4(protoIPIP, dir1.Addr().As4(), rs1.Addr().As4(), syn)
	ipChecksum(pkt)
	if err := l.Do("dir1", func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, pkt, 0, &unix.SockaddrInet4{Addr: rs1.Addr().As4()})
	}); err != nil {
		t.Fatalf("inject from dir1: %v", err)
	}
	answered := func(f frame) bool {
		return f.srcMAC.String() == rs1.MAC().String() && f.src == netip.AddrPortFrom(s.VIP, s.HTTPPort) &&
			f.dst == netip.AddrPortFrom(client.Addr(), sport) && f.tcpFlags&(tcpSYN|tcpACK) == tcpSYN|tcpACK && f.ack == seq+1
	}
	if !waitFrame(t, capFD, 3*time.Second, answered) {
		t.Fatal("rs1 sent no SYN-ACK from the VIP to the client")
	}
	// The decapsulator logs its first packet just after writing it to tun0.
	for _, p := range l.Procs() {
		if p.Name != "rs-tun" {
			continue
		}
		var b []byte
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if b, _ = os.ReadFile(p.Log); bytes.Contains(b, []byte("first packet decapsulated")) {
				break
			}
		}
		if !bytes.Contains(b, []byte("first packet decapsulated")) {
			t.Errorf("decapsulator log:\n%s", b)
		}
	}
}

// TestUpFailureTearsDown makes the real servers' start fail once the network is
// built, and checks that Up removes everything.
func TestUpFailureTearsDown(t *testing.T) {
	needLab(t, DR)
	exe := filepath.Join(t.TempDir(), "failing-gvs")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\necho 'injected failure' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	prefix, stateDir := testPrefix(t), t.TempDir()
	l, err := Up(context.Background(), Spec{Prefix: prefix, Exe: exe, StateDir: stateDir})
	if err == nil {
		l.Down()
		t.Fatal("Up succeeded with a failing server")
	}
	if !strings.Contains(err.Error(), "injected failure") || !strings.Contains(err.Error(), prefix+"-rs1") {
		t.Errorf("error does not say what failed where: %v", err)
	}
	assertGone(t, stateDir, prefix)
}

// TestUpInterrupted interrupts Up while it waits for a server that never gets
// ready, and checks that the server process is killed and everything removed.
func TestUpInterrupted(t *testing.T) {
	needLab(t, DR)
	dir := t.TempDir()
	exe := filepath.Join(dir, "hanging-gvs")
	pidFile := filepath.Join(dir, "pid")
	script := "#!/bin/sh\necho $$ > " + pidFile + ".tmp\nmv " + pidFile + ".tmp " + pidFile + "\nexec sleep 30\n"
	if err := os.WriteFile(exe, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	errInterrupt := errors.New("interrupted by the test")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	go func() {
		// The interrupt: once the hanging server runs, as Ctrl-C would come.
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(pidFile); err == nil {
				break
			}
		}
		cancel(errInterrupt)
	}()
	prefix, stateDir := testPrefix(t), t.TempDir()
	l, err := Up(ctx, Spec{Prefix: prefix, Exe: exe, StateDir: stateDir})
	if err == nil {
		l.Down()
		t.Fatal("Up succeeded with a server that never gets ready")
	}
	if !errors.Is(err, errInterrupt) {
		t.Errorf("error %v, want the interrupt", err)
	}
	assertGone(t, stateDir, prefix)
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the hanging server never ran: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if st, _, err := procStat(pid); err == nil && st != 'Z' {
		t.Errorf("hanging server pid %d still runs (state %c)", pid, st)
	}
}

// TestUpRefusesTakenNames checks that Up touches nothing it did not make: a
// namespace of the prefix that exists without a state file stops it.
func TestUpRefusesTakenNames(t *testing.T) {
	needLab(t, DR)
	prefix := testPrefix(t)
	ns := prefix + "-rs1"
	if err := ipBatch(context.Background(), "", []string{"netns add " + ns}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ipBatch(context.Background(), "", []string{"netns del " + ns}) })
	stateDir := t.TempDir()
	_, err := Up(context.Background(), Spec{Prefix: prefix, StateDir: stateDir})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("Up: %v, want ErrExists", err)
	}
	have, _ := namespaces(context.Background())
	if !have[ns] {
		t.Error("Up removed a namespace it did not make")
	}
	if _, err := os.Stat(statePath(stateDir, prefix)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file left: %v", err)
	}
}

// TestDownByPrefix removes a lab the way `gvs lab down` in another process does:
// from the state file, by prefix.
func TestDownByPrefix(t *testing.T) {
	l := upLab(t, Spec{RealServers: 1})
	procs, stateDir := l.Procs(), l.Spec().StateDir
	if _, err := Up(context.Background(), Spec{Prefix: l.Prefix(), StateDir: stateDir}); !errors.Is(err, ErrExists) {
		t.Errorf("second Up with the same prefix: %v, want ErrExists", err)
	}
	o, err := Open(stateDir, l.Prefix())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := httpGet(o, "client", "http://198.18.0.5/"); err != nil || got != "rs1\n" {
		t.Errorf("GET through the opened lab: %q, %v", got, err)
	}
	if err := Down(stateDir, l.Prefix()); err != nil {
		t.Fatalf("Down(prefix): %v", err)
	}
	for _, p := range procs {
		if alive(procID{PID: p.PID, Start: p.Start}) {
			t.Errorf("%s %s pid %d still runs", p.Host, p.Name, p.PID)
		}
	}
	assertGone(t, stateDir, l.Prefix())
	if err := Down(stateDir, l.Prefix()); err != nil {
		t.Errorf("second Down(prefix): %v", err)
	}
}

// TestStart runs extra processes through the lab's hook: one that stays up is
// recorded and stopped by Down; one that exits at once (a director with no gvs
// run behind it, here) is reported with its log.
func TestStart(t *testing.T) {
	l := upLab(t, Spec{RealServers: 1})
	ctx := context.Background()
	p, err := l.Start(ctx, "dir1", "echo", "lab", "serve", "--name", "dir1", "--http", ":8080", "--udp", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := httpGet(l, "client", "http://198.18.0.3:8080/"); err != nil || got != "dir1\n" {
		t.Errorf("GET the started server: %q, %v", got, err)
	}
	if !slices.ContainsFunc(l.Procs(), func(q Proc) bool { return q.PID == p.PID }) {
		t.Errorf("started process not recorded: %+v", l.Procs())
	}
	_, err = l.StartDirector(ctx, "dir1", "")
	if err == nil || !strings.Contains(err.Error(), `unknown command "run"`) || !strings.Contains(err.Error(), l.ConfigPath("dir1")) {
		t.Errorf("StartDirector without gvs run: %v", err)
	}
	if n := len(l.Procs()); n != 2 {
		t.Errorf("%d processes recorded, want serve and echo", n)
	}
	if _, err := l.StartDirector(ctx, "rs1", ""); err == nil {
		t.Error("StartDirector on a real server succeeded")
	}
}

// TestDownBusy checks Down with a namespace held by a process the lab did not
// start: the names go, the process is left alone, and the error says so.
func TestDownBusy(t *testing.T) {
	l := upLab(t, Spec{RealServers: 1})
	cmd := exec.Command("ip", "netns", "exec", l.Prefix()+"-rs1", "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if pids, _ := nsPIDs(context.Background(), l.Prefix()+"-rs1"); slices.Contains(pids, cmd.Process.Pid) {
			break
		}
	}
	err := l.Down()
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), strconv.Itoa(cmd.Process.Pid)) {
		t.Errorf("Down: %v, want ErrBusy naming pid %d", err, cmd.Process.Pid)
	}
	if st, _, err := procStat(cmd.Process.Pid); err != nil || st == 'Z' {
		t.Errorf("Down ended a process it did not start")
	}
	assertGone(t, l.Spec().StateDir, l.Prefix())
}

// TestDownWithoutState removes a prefix's namespaces when the state file is
// lost, and leaves a longer prefix's alone.
func TestDownWithoutState(t *testing.T) {
	needLab(t, DR)
	prefix := testPrefix(t)
	mine := []string{prefix + "-sw", prefix + "-rs1", prefix + "-rs10", prefix + "-dir2"}
	other := prefix + "x-rs1"
	var add []string
	for _, ns := range append(slices.Clone(mine), other) {
		add = append(add, "netns add "+ns)
	}
	if err := ipBatch(context.Background(), "", add); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, ns := range append(mine, other) {
			ipBatch(context.Background(), "", []string{"netns del " + ns})
		}
	})
	if err := Down(t.TempDir(), prefix); err != nil { // a state dir without its state file
		t.Fatalf("Down: %v", err)
	}
	have, _ := namespaces(context.Background())
	for _, ns := range mine {
		if have[ns] {
			t.Errorf("%s left", ns)
		}
	}
	if !have[other] {
		t.Errorf("Down(%s) removed %s", prefix, other)
	}
}

// TestDownStale removes a non-detached lab whose creator is dead, and leaves
// one whose creator runs.
func TestDownStale(t *testing.T) {
	needLab(t, DR)
	dir := t.TempDir()
	self, err := selfID()
	if err != nil {
		t.Fatal(err)
	}
	dead := procID{PID: self.PID, Start: self.Start + 1} // our PID, another start time: not us
	mk := func(owner procID) string {
		p := testPrefix(t)
		st := &state{Version: stateVersion, Prefix: p, Owner: owner, Spec: toJSON(Spec{Mode: DR, Subnet: defaultSubnet, Outside: defaultSubnet, VIP: netip.MustParseAddr("198.18.0.100")}),
			Namespaces: []string{p + "-sw"}}
		if err := createState(dir, st); err != nil {
			t.Fatal(err)
		}
		if err := ipBatch(context.Background(), "", []string{"netns add " + p + "-sw"}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { Down(dir, p) })
		return p
	}
	gone, live := mk(dead), mk(self)
	removed, err := DownStale(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{gone}) {
		t.Errorf("removed %v, want [%s]", removed, gone)
	}
	assertGone(t, dir, gone)
	if _, err := os.Stat(statePath(dir, live)); err != nil {
		t.Errorf("live lab's state removed: %v", err)
	}
}

// --- frames --------------------------------------------------------------------

const (
	tcpSYN = 0x02
	tcpACK = 0x10
)

// frame is what the tests read from a captured Ethernet frame carrying IPv4 TCP.
type frame struct {
	srcMAC, dstMAC net.HardwareAddr
	src, dst       netip.AddrPort
	tcpFlags       byte
	ack            uint32
}

func parseFrame(b []byte) (frame, bool) {
	const eth = 14
	if len(b) < eth+20 || binary.BigEndian.Uint16(b[12:]) != 0x0800 {
		return frame{}, false
	}
	ip := b[eth:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ip[9] != unix.IPPROTO_TCP || len(ip) < ihl+20 {
		return frame{}, false
	}
	tcp := ip[ihl:]
	src, _ := netip.AddrFromSlice(ip[12:16])
	dst, _ := netip.AddrFromSlice(ip[16:20])
	return frame{
		dstMAC: net.HardwareAddr(b[0:6]), srcMAC: net.HardwareAddr(b[6:12]),
		src:      netip.AddrPortFrom(src, binary.BigEndian.Uint16(tcp[0:])),
		dst:      netip.AddrPortFrom(dst, binary.BigEndian.Uint16(tcp[2:])),
		tcpFlags: tcp[13], ack: binary.BigEndian.Uint32(tcp[8:]),
	}, true
}

// openCapture opens an AF_PACKET socket on eth0 of host's namespace: every frame
// in and out, as tcpdump sees them.
func openCapture(t *testing.T, l *Lab, host string) int {
	t.Helper()
	fd := -1
	if err := l.Do(host, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto); err != nil {
			return err
		}
		tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	}); err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		t.Fatalf("capture in %s: %v", host, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// waitFrame reads captured frames until one matches or the time is up.
func waitFrame(t *testing.T, fd int, d time.Duration, match func(frame) bool) bool {
	t.Helper()
	buf := make([]byte, 65536)
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			t.Fatalf("capture: %v", err)
		}
		if f, ok := parseFrame(buf[:n]); ok && match(f) {
			return true
		}
	}
	return false
}

// tcpSYNSegment builds a 20-byte TCP SYN with its checksum over the pseudo-header.
func tcpSYNSegment(src, dst netip.Addr, sport, dport uint16, seq uint32) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], seq)
	b[12] = 5 << 4
	b[13] = tcpSYN
	binary.BigEndian.PutUint16(b[14:], 64240)
	pseudo := make([]byte, 0, 12+len(b))
	pseudo = append(pseudo, src.AsSlice()...)
	pseudo = append(pseudo, dst.AsSlice()...)
	pseudo = append(pseudo, 0, unix.IPPROTO_TCP, 0, byte(len(b)))
	pseudo = append(pseudo, b...)
	binary.BigEndian.PutUint16(b[16:], checksum(pseudo))
	return b
}

// ipChecksum fills in an IPv4 header's checksum.
func ipChecksum(p []byte) {
	ihl := int(p[0]&0x0f) * 4
	p[10], p[11] = 0, 0
	binary.BigEndian.PutUint16(p[10:], checksum(p[:ihl]))
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
