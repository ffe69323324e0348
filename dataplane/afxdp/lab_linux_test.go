//go:build linux

package afxdp

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"
	"golang.org/x/sys/unix"
)

// The socket tests run in network namespaces (docs/lab.md "Rules every lab and test
// obeys"): nothing is created in or attached to the root namespace, every namespace
// carries a random gx<hex> prefix, addresses come from 198.18.0.0/15 and
// 2001:db8::/32, and t.Cleanup closes the devices (detaching their programs) and
// deletes the namespaces, which deletes the veths in them.
//
// Entering a namespace: inNS runs a function on a new goroutine that locks its OS
// thread and setns(2)es it into the namespace; it never unlocks, so the runtime ends
// the thread with the goroutine. Open runs entirely on that thread (netlink, ethtool,
// bpf_link attach and bind all use the calling thread's namespace); the sockets and
// links it makes keep that namespace, so everything else runs on ordinary goroutines.

func labSkip(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("GVS_LAB_REQUIRED") == "1" {
		t.Fatalf("lab required (GVS_LAB_REQUIRED=1) but: %s", msg)
	}
	t.Skip("skipping namespace test: " + msg)
}

type lab struct {
	t      testing.TB
	prefix string
}

func newLab(t testing.TB) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		labSkip(t, "needs root (CAP_NET_ADMIN, CAP_BPF)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		labSkip(t, "needs ip (iproute2)")
	}
	var b [3]byte
	rand.Read(b[:])
	return &lab{t: t, prefix: "gx" + hex.EncodeToString(b[:])}
}

func (l *lab) run(args ...string) string {
	l.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ns creates namespace <prefix>-name with lo up and IPv6 without DAD.
func (l *lab) ns(name string) string {
	l.t.Helper()
	ns := l.prefix + "-" + name
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		labSkip(l.t, "cannot create a network namespace: %v: %s", err, out)
	}
	l.t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	l.run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	l.run("ip", "-n", ns, "link", "set", "lo", "up")
	return ns
}

// link joins ifa in namespace a to ifb in b with a veth pair created inside a, sets
// MACs, brings both up and waits until both send (testutil.WaitLinkUp).
func (l *lab) link(a, ifa string, maca [6]byte, b, ifb string, macb [6]byte) {
	l.t.Helper()
	l.run("ip", "-n", a, "link", "add", "name", ifa, "type", "veth", "peer", "name", ifb, "netns", b)
	l.run("ip", "-n", a, "link", "set", ifa, "address", net.HardwareAddr(maca[:]).String(), "up")
	l.run("ip", "-n", b, "link", "set", ifb, "address", net.HardwareAddr(macb[:]).String(), "up")
	testutil.WaitLinkUp(l.t, a, ifa)
	testutil.WaitLinkUp(l.t, b, ifb)
}

func (l *lab) addr(ns, ifname string, prefixes ...string) {
	l.t.Helper()
	for _, p := range prefixes {
		l.run("ip", "-n", ns, "addr", "add", p, "dev", ifname, "nodad")
	}
}

// inNS runs fn on a thread in namespace ns (see the file comment).
func inNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		f.Close()
		if err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// open opens a device in ns and closes it at cleanup (before the namespace goes).
func (l *lab) open(ns, ifname string, c Config) *Device {
	l.t.Helper()
	d, err := l.tryOpen(ns, ifname, c)
	if err != nil {
		l.t.Fatal(err)
	}
	return d
}

func (l *lab) tryOpen(ns, ifname string, c Config) (*Device, error) {
	var d *Device
	err := inNS(ns, func() (err error) {
		d, err = Open(ifname, c)
		return err
	})
	if d != nil {
		l.t.Cleanup(func() { d.Close() })
	}
	return d, err
}

var xdpIDRe = regexp.MustCompile(`prog/xdp id (\d+)`)

// xdpIDs returns the IDs of the XDP programs `ip link show` lists on ifname in ns.
func (l *lab) xdpIDs(ns, ifname string) []string {
	l.t.Helper()
	out := l.run("ip", "-d", "-n", ns, "link", "show", "dev", ifname)
	var ids []string
	for _, m := range xdpIDRe.FindAllStringSubmatch(out, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// rawSock is a plain AF_PACKET socket in a peer namespace: injector and independent
// receiver.
type rawSock struct {
	t  testing.TB
	fd int
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (l *lab) raw(ns, ifname string) *rawSock {
	l.t.Helper()
	p := &rawSock{t: l.t, fd: -1}
	err := inNS(ns, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		p.fd = fd
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
			return err
		}
		tv := unix.NsecToTimeval(int64(2 * time.Second))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	})
	if p.fd >= 0 {
		l.t.Cleanup(func() { unix.Close(p.fd) })
	}
	if err != nil {
		l.t.Fatal(err)
	}
	return p
}

func (p *rawSock) send(frames ...[]byte) {
	p.t.Helper()
	for _, f := range frames {
		if _, err := unix.Write(p.fd, f); err != nil {
			p.t.Fatalf("inject: %v", err)
		}
	}
}

// recvMatching returns the first frame for which keep is true, or nil once the
// receive timeout (2 s) passes without one; it reads at most 1000 frames.
func (p *rawSock) recvMatching(keep func([]byte) bool) []byte {
	p.t.Helper()
	buf := make([]byte, 1<<16)
	for range 1000 {
		n, _, err := unix.Recvfrom(p.fd, buf, 0)
		if err != nil {
			return nil
		}
		if keep(buf[:n]) {
			return append([]byte(nil), buf[:n]...)
		}
	}
	return nil
}

func netipAddrPort(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }
