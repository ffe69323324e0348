//go:build linux

package afpacket

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
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/internal/testutil"
	"github.com/gvs-lb/gvs/ipvs"
	"golang.org/x/sys/unix"
)

// The ring tests run in network namespaces (docs/lab.md "Rules every lab and test
// obeys"): nothing is created in the root namespace, every namespace carries a random
// gt<hex> prefix, addresses come from 198.18.0.0/15 (and the IPv6 benchmarking range
// 2001:2::/48, RFC 5180, for the IPv6 cases; the frames never leave the lab), and
// t.Cleanup deletes the namespaces, which deletes the veths in them.
//
// Entering a namespace: rlIn runs a function on a new goroutine that locks its OS
// thread and setns(2)es that thread into the namespace; it never unlocks, so the
// runtime ends the thread with the goroutine and no other goroutine ever runs in the
// namespace. Sockets keep the namespace they were created in, so everything else runs
// on ordinary goroutines.

// rlSkip skips a test that cannot run here, or fails it when GVS_LAB_REQUIRED=1.
func rlSkip(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("GVS_LAB_REQUIRED") == "1" {
		t.Fatalf("lab required (GVS_LAB_REQUIRED=1) but: %s", msg)
	}
	t.Skip("skipping namespace test: " + msg)
}

// rlLab is a set of namespaces joined by veth pairs.
type rlLab struct {
	t      testing.TB
	prefix string
}

// newRLLab checks that namespace tests can run and returns an empty lab.
func newRLLab(t testing.TB) *rlLab {
	t.Helper()
	if os.Geteuid() != 0 {
		rlSkip(t, "needs root (CAP_NET_ADMIN, CAP_NET_RAW)")
	}
	for _, tool := range []string{"ip", "sysctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			rlSkip(t, "needs %s (iproute2, procps)", tool)
		}
	}
	var b [3]byte
	rand.Read(b[:])
	return &rlLab{t: t, prefix: "gt" + hex.EncodeToString(b[:])}
}

func (l *rlLab) run(args ...string) {
	l.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// ns creates namespace <prefix>-name with lo up and the kernel's IPv6 off (no DAD,
// router or MLD chatter on the links), and returns its name.
func (l *rlLab) ns(name string) string {
	l.t.Helper()
	ns := l.prefix + "-" + name
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		rlSkip(l.t, "cannot create a network namespace: %v: %s", err, out)
	}
	l.t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	l.run("ip", "netns", "exec", ns, "sysctl", "-qw",
		"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	l.run("ip", "-n", ns, "link", "set", "lo", "up")
	return ns
}

// link joins interface ifa in namespace a to ifb in b with a veth pair, sets their
// MACs, brings them up and waits until both send (testutil.WaitLinkUp). The pair is
// created inside a: the root namespace never holds it.
func (l *rlLab) link(a, ifa string, maca [6]byte, b, ifb string, macb [6]byte) {
	l.t.Helper()
	l.run("ip", "-n", a, "link", "add", "name", ifa, "type", "veth", "peer", "name", ifb, "netns", b)
	l.run("ip", "-n", a, "link", "set", ifa, "address", net.HardwareAddr(maca[:]).String(), "up")
	l.run("ip", "-n", b, "link", "set", ifb, "address", net.HardwareAddr(macb[:]).String(), "up")
	testutil.WaitLinkUp(l.t, a, ifa)
	testutil.WaitLinkUp(l.t, b, ifb)
}

// rlIn runs fn in namespace ns (see the file comment).
func rlIn(ns string, fn func() error) error {
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

// openRing opens a ring in namespace ns and closes it at cleanup.
func (l *rlLab) openRing(ns, ifname string, cfg Config) *Ring {
	l.t.Helper()
	var r *Ring
	err := rlIn(ns, func() (err error) {
		r, err = Open(ifname, cfg)
		return err
	})
	if err != nil {
		l.t.Fatal(err)
	}
	// Closed, and the last batch handed back, so the ring releases its socket now
	// rather than when a finalizer gets to it during a later test (which would upset
	// descriptor counts). Every test has joined its readers by then.
	l.t.Cleanup(func() { r.Close(); r.ReadBatch(nil) })
	return r
}

// rlRaw is a plain AF_PACKET socket in a peer namespace: an injector and an
// independent receiver (no ring, no filter).
type rlRaw struct {
	t  testing.TB
	fd int
}

func (l *rlLab) raw(ns, ifname string) *rlRaw {
	l.t.Helper()
	p := &rlRaw{t: l.t, fd: -1}
	err := rlIn(ns, func() error {
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

func (p *rlRaw) send(frames ...[]byte) {
	p.t.Helper()
	for _, f := range frames {
		if _, err := unix.Write(p.fd, f); err != nil {
			p.t.Fatalf("inject: %v", err)
		}
	}
}

// recv returns the next frame, or fails the test after the receive timeout.
func (p *rlRaw) recv() []byte {
	p.t.Helper()
	buf := make([]byte, 1<<16)
	n, _, err := unix.Recvfrom(p.fd, buf, 0)
	if err != nil {
		p.t.Fatalf("receive: %v", err)
	}
	return buf[:n]
}

// rlWatchdog closes r after d unless stopped: a test waiting for frames that never
// come then fails instead of hanging. A failed test also says how many frames the
// kernel's per-CPU receive backlogs dropped meanwhile: they are shared by every
// namespace, so another test's flood can drop this test's frames there.
func rlWatchdog(t testing.TB, r *Ring, d time.Duration) {
	before := rlBacklogDrops()
	tm := time.AfterFunc(d, func() { r.Close() })
	t.Cleanup(func() {
		tm.Stop()
		if t.Failed() {
			t.Logf("the host's receive backlogs dropped %d frames during the test (/proc/net/softnet_stat)", rlBacklogDrops()-before)
		}
	})
}

// rlBacklogDrops sums the second column of /proc/net/softnet_stat: the frames each
// CPU's receive backlog dropped because it was full (0 when unreadable).
func rlBacklogDrops() uint64 {
	b, err := os.ReadFile("/proc/net/softnet_stat")
	if err != nil {
		return 0
	}
	var sum uint64
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			n, _ := strconv.ParseUint(f[1], 16, 64)
			sum += n
		}
	}
	return sum
}

// rlReadN reads frames from r until it has n of them (copies) or r is closed.
func rlReadN(r *Ring, n int) ([][]byte, error) {
	var got [][]byte
	frames := make([]dataplane.Frame, r.BatchSize())
	for len(got) < n {
		k, err := r.ReadBatch(frames)
		if err != nil {
			return got, err
		}
		for _, f := range frames[:k] {
			if f.Off < dataplane.Headroom {
				return got, fmt.Errorf("frame with %d bytes of headroom, want ≥ %d", f.Off, dataplane.Headroom)
			}
			got = append(got, append([]byte(nil), f.Bytes()...))
		}
	}
	return got, nil
}

// rlPair is the smallest lab: a generator namespace and a director namespace joined
// by one veth pair, eth0 on both sides.
func rlPair(t testing.TB) (l *rlLab, gen, dir string) {
	l = newRLLab(t)
	gen, dir = l.ns("gen"), l.ns("dir")
	l.link(gen, "eth0", rlGenMAC, dir, "eth0", rlDirMAC)
	return l, gen, dir
}

// TestRingFilter sends frames from the generator namespace and checks what reaches a
// ring in the director namespace: exactly the frames the filter passes, byte for byte
// as they were sent (802.1Q tags put back), with headroom; then the same after a
// filter reload.
func TestRingFilter(t *testing.T) { rlEachVersion(t, testRingFilter) }

func testRingFilter(t *testing.T, version int) {
	l, gen, dir := rlPair(t)
	r := l.openRing(dir, "eth0", Config{Version: version, Packets: 1024, Filter: rlDirFilter()})
	inj := l.raw(gen, "eth0")
	rlWatchdog(t, r, 10*time.Second)

	pass, drop := rlFilterCases()
	check := func(pass, drop [][]byte) {
		t.Helper()
		// Every frame is sent from one CPU, so the kernel handles them in order (one
		// backlog): once a marker sent last has arrived, every frame before it has
		// met the filter and been counted.
		unpin := rlPinToOneCPU(t)
		defer unpin()
		before, err := r.Stats()
		if err != nil {
			t.Fatal(err)
		}
		// Interleave, so a dropped frame sits between passed ones.
		for i := range max(len(pass), len(drop)) {
			if i < len(drop) {
				inj.send(drop[i])
			}
			if i < len(pass) {
				inj.send(pass[i])
			}
		}
		got, err := rlReadN(r, len(pass))
		if err != nil {
			t.Fatalf("after %d of %d frames: %v", len(got), len(pass), err)
		}
		want := map[string]bool{}
		for _, p := range pass {
			want[string(p)] = true
		}
		for _, g := range got {
			if !want[string(g)] {
				t.Errorf("unexpected frame % x", g)
			}
			delete(want, string(g))
		}
		for w := range want {
			t.Errorf("missing frame % x", w)
		}
		// Nothing else passed: the kernel counts every frame the filter let through,
		// and the marker (a passing frame with its last byte changed) comes last.
		marker := slices.Clone(pass[0])
		marker[len(marker)-1] ^= 0xff
		inj.send(marker)
		if m, err := rlReadN(r, 1); err != nil || !bytes.Equal(m[0], marker) {
			t.Fatalf("the marker frame did not arrive next: %v", err)
		}
		after, err := r.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if n := after.Packets - before.Packets; n != uint64(len(pass)+1) {
			t.Errorf("kernel counted %d frames through the filter, want %d and the marker", n, len(pass))
		}
		if after.Drops != 0 || after.RXBad != 0 || after.RXTruncated != 0 {
			t.Errorf("drops: %+v", after)
		}
	}
	check(pass, drop)
	// The groups VRRP and neighbour discovery for the IPv6 VIP need are joined.
	groups := []string{"01005e000012", "333300000012", "3333ff000100"}
	if got := rlMulticast(t, dir, "eth0"); !rlHasAll(got, groups) {
		t.Errorf("multicast groups %v, want %v among them", got, groups)
	}

	// Reload: now only 198.18.0.99 (IPv4 frames to "other" in both lists).
	if err := r.SetFilter(&Filter{VIPs: []netip.Addr{rlOther}}); err != nil {
		t.Fatal(err)
	}
	check(drop[:3], append(append([][]byte(nil), pass...), drop[3:]...))
	if got := rlMulticast(t, dir, "eth0"); slices.ContainsFunc(groups, func(g string) bool { return slices.Contains(got, g) }) {
		t.Errorf("multicast groups %v after the reload, want none of %v", got, groups)
	}
}

// rlPinToOneCPU keeps the calling goroutine on its OS thread and that thread on the
// CPU it runs on, until the returned function is called.
func rlPinToOneCPU(t testing.TB) func() {
	t.Helper()
	runtime.LockOSThread()
	var old, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		t.Fatal(err)
	}
	var c uint32
	if _, _, errno := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&c)), 0, 0); errno != 0 {
		t.Fatal(errno)
	}
	one.Set(int(c))
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		t.Fatal(err)
	}
	return func() {
		unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	}
}

// rlMulticast lists the link-layer multicast groups of an interface
// (/proc/net/dev_mcast: index, name, users, global use, address in hex).
func rlMulticast(t testing.TB, ns, ifname string) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/proc/net/dev_mcast").Output()
	if err != nil {
		t.Fatal(err)
	}
	var groups []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 5 && f[1] == ifname {
			groups = append(groups, f[4])
		}
	}
	return groups
}

func rlHasAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// rlFanoutID returns a random fanout group id, so parallel runs do not join each
// other's groups (ids are per network namespace, but be safe).
func rlFanoutID() uint16 {
	var b [2]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint16(b[:]) | 1
}

// TestRingFanout opens two rings in one fanout group and checks that flows are split
// between them, each flow on one ring only, and that a fragmented datagram arrives
// reassembled (PACKET_FANOUT_FLAG_DEFRAG) on one ring.
func TestRingFanout(t *testing.T) { rlEachVersion(t, testRingFanout) }

func testRingFanout(t *testing.T, version int) {
	l, gen, dir := rlPair(t)
	id := rlFanoutID()
	rings := []*Ring{
		l.openRing(dir, "eth0", Config{Version: version, Packets: 4096, FanoutID: id, Filter: rlDirFilter()}),
		l.openRing(dir, "eth0", Config{Version: version, Packets: 4096, FanoutID: id, Filter: rlDirFilter()}),
	}
	for _, r := range rings {
		rlWatchdog(t, r, 10*time.Second)
	}
	inj := l.raw(gen, "eth0")

	const flows, perFlow = 64, 3
	var frames [][]byte
	for i := range perFlow {
		for f := range flows {
			src := netip.AddrFrom4([4]byte{198, 19, 1, byte(f)})
			payload := rlUDP(uint16(20000+f), 80, []byte(fmt.Sprintf("flow %d packet %d", f, i)))
			frames = append(frames, rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(src, rlVIP, 17, uint16(i), 0, payload))))
		}
	}
	// One UDP datagram of 3000 bytes in three fragments.
	dgram := rlUDP(30000, 53, make([]byte, 3000-8))
	for i := range dgram[8:] {
		dgram[8+i] = byte(i)
	}
	const fragID = 4242
	for off := 0; off < len(dgram); off += 1480 {
		end := min(off+1480, len(dgram))
		flags := uint16(off / 8)
		if end < len(dgram) {
			flags |= 0x2000
		}
		frames = append(frames, rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, fragID, flags, dgram[off:end])))
	}
	inj.send(frames...)

	// Read both rings until every flow packet and the datagram arrived; the reader
	// that sees the last one closes both rings to wake the other.
	want := int64(flows*perFlow + 1)
	var total atomic.Int64
	got := make([][][]byte, len(rings))
	errs := make([]error, len(rings))
	var wg sync.WaitGroup
	for i, r := range rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]dataplane.Frame, r.BatchSize())
			for {
				n, err := r.ReadBatch(buf)
				if err != nil {
					errs[i] = err
					return
				}
				for _, f := range buf[:n] {
					got[i] = append(got[i], append([]byte(nil), f.Bytes()...))
				}
				if total.Add(int64(n)) >= want {
					for _, o := range rings {
						o.Close()
					}
				}
			}
		}()
	}
	wg.Wait()
	if n := total.Load(); n != want {
		t.Fatalf("received %d frames, want %d (errors %v)", n, want, errs)
	}
	owner := map[netip.Addr]int{}
	reassembled := 0
	for i := range rings {
		var flowFrames int
		for _, b := range got[i] {
			var p header.Parsed
			if d := p.Decode(b); d != header.DropNone {
				t.Fatalf("ring %d: undecodable frame (%v): % x", i, d, b)
			}
			if p.Proto == 17 && p.DstPort == 53 {
				reassembled++
				if p.IsFragment || !bytes.Equal(b[p.L4Off:p.End], dgram) {
					t.Errorf("ring %d: datagram not reassembled: fragment %v, %d bytes", i, p.IsFragment, p.End-p.L4Off)
				}
				continue
			}
			src := netip.AddrFrom4([4]byte(p.Src[:4]))
			if o, ok := owner[src]; ok && o != i {
				t.Errorf("flow from %v on rings %d and %d", src, o, i)
			}
			owner[src] = i
			flowFrames++
		}
		if flowFrames == 0 {
			t.Errorf("ring %d got no flow: fanout did not split", i)
		}
		t.Logf("ring %d: %d frames", i, len(got[i]))
	}
	if reassembled != 1 || len(owner) != flows {
		t.Errorf("got %d reassembled datagrams and %d flows, want 1 and %d", reassembled, len(owner), flows)
	}
}

// TestRingWriteBatch checks that what WriteBatch sends arrives at the peer byte for
// byte: frames in Go memory of several sizes, then received frames forwarded in place
// from the ring with their MACs swapped, then received frames encapsulated in place
// into their headroom (IPIP, as the TUN method does) and sent from the ring.
func TestRingWriteBatch(t *testing.T) { rlEachVersion(t, testRingWriteBatch) }

func testRingWriteBatch(t *testing.T, version int) {
	l, gen, dir := rlPair(t)
	r := l.openRing(dir, "eth0", Config{Version: version, Packets: 1024, Filter: rlDirFilter()})
	peer := l.raw(gen, "eth0")
	rlWatchdog(t, r, 10*time.Second)

	expect := func(want ...[]byte) {
		t.Helper()
		for i, w := range want {
			if g := peer.recv(); !bytes.Equal(g, w) {
				t.Fatalf("frame %d at the peer:\n got % x\nwant % x", i, g, w)
			}
		}
	}

	t.Run("heap", func(t *testing.T) {
		var frames []dataplane.Frame
		var want [][]byte
		for _, n := range []int{0, 1, 100, 1500 - 28} {
			b := rlPad(rlEth(rlGenMAC, rlDirMAC, -1, header.EtherTypeIPv4, rlIPv4(rlVIP, rlClient, 17, uint16(n), 0, rlUDP(80, 40000, make([]byte, n)))))
			want = append(want, b)
			buf := make([]byte, 7+len(b)) // any offset works
			copy(buf[7:], b)
			frames = append(frames, dataplane.Frame{Buf: buf, Off: 7, Len: len(b)})
		}
		if n, err := r.WriteBatch(frames); n != len(frames) || err != nil {
			t.Fatalf("WriteBatch = %d, %v; want %d, nil", n, err, len(frames))
		}
		expect(want...)
	})

	// Frames sent by the peer, read from the ring, changed in place by fn and sent
	// back: the peer must receive exactly what fn made of them.
	roundTrip := func(t *testing.T, fn func(f *dataplane.Frame)) {
		t.Helper()
		var sent [][]byte
		for i := range 5 {
			sent = append(sent, rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, uint16(i), 0, rlUDP(40000, 80, []byte(fmt.Sprintf("packet %d", i)))))))
		}
		peer.send(sent...)
		frames := make([]dataplane.Frame, r.BatchSize())
		var want [][]byte
		for len(want) < len(sent) {
			n, err := r.ReadBatch(frames)
			if err != nil {
				t.Fatal(err)
			}
			for i := range frames[:n] {
				fn(&frames[i])
				want = append(want, append([]byte(nil), frames[i].Bytes()...))
			}
			if w, err := r.WriteBatch(frames[:n]); w != n || err != nil {
				t.Fatalf("WriteBatch = %d, %v; want %d, nil", w, err, n)
			}
		}
		expect(want...)
	}

	t.Run("in-place", func(t *testing.T) {
		roundTrip(t, func(f *dataplane.Frame) {
			e := header.Ethernet(f.Bytes())
			src, dst := e.SourceAddress(), e.DestinationAddress()
			e.SetSourceAddress(dst)
			e.SetDestinationAddress(src)
		})
	})

	t.Run("encapsulate", func(t *testing.T) {
		roundTrip(t, func(f *dataplane.Frame) {
			var p header.Parsed
			if d := p.Decode(f.Bytes()); d != header.DropNone {
				t.Fatalf("decode: %v", d)
			}
			inner := append([]byte(nil), f.Bytes()[p.L3Off:p.End]...)
			tun := header.Tunnel{EthSrc: rlDirMAC, EthDst: rlGenMAC, ID: 99}
			copy(tun.Src[:], rlGen.AsSlice())
			copy(tun.Dst[:], rlRS.AsSlice())
			out, ok := header.Encapsulate(f.Buf, f.Off, &p, &tun)
			if !ok {
				t.Fatal("Encapsulate refused a frame with Headroom")
			}
			// out ends where the frame's buffer ends (capacity is capped there).
			f.Off, f.Len = cap(f.Buf)-cap(out), len(out)
			if f.Off < 0 || f.Off+header.IPv4MinHeaderLen > f.Off+len(out) {
				t.Fatalf("bad encapsulated frame at %d", f.Off)
			}
			b := f.Bytes()
			outer := header.IPv4(b[header.EthernetHeaderLen:])
			if outer.Protocol() != header.IPProtoIPIP || !bytes.Equal(b[header.EthernetHeaderLen+header.IPv4MinHeaderLen:], inner) || header.Checksum(outer[:header.IPv4MinHeaderLen], 0) != 0xffff {
				t.Fatalf("bad encapsulation: % x", b)
			}
		})
	})
}

// TestRingClose checks Close: it wakes a blocked ReadBatch, which then reports
// net.ErrClosed; it is idempotent; the socket and the ring are released once the
// reader handed its last batch back; Stats survive it.
func TestRingClose(t *testing.T) { rlEachVersion(t, testRingClose) }

func testRingClose(t *testing.T, version int) {
	l, gen, dir := rlPair(t)
	inj := l.raw(gen, "eth0")

	t.Run("wakes reader", func(t *testing.T) {
		testutil.CheckLeaks(t)
		fds := rlCountFDs(t)
		r := l.openRing(dir, "eth0", Config{Version: version, Packets: 256, Filter: rlDirFilter()})
		errc := make(chan error, 1)
		go func() {
			_, err := r.ReadBatch(make([]dataplane.Frame, 8))
			errc <- err
		}()
		testutil.Eventually(t, 5*time.Second, func() bool { return testutil.Parked("afpacket.(*Ring).ReadBatch") },
			"the reader blocked in ReadBatch")
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("ReadBatch after Close: %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not wake ReadBatch")
		}
		if err := r.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := r.WriteBatch([]dataplane.Frame{{Buf: make([]byte, 60), Len: 60}}); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("WriteBatch after Close: %v", err)
		}
		if n := rlCountFDs(t); n != fds {
			t.Fatalf("%d descriptors open after Close, want %d", n, fds)
		}
	})

	t.Run("batch outstanding", func(t *testing.T) {
		fds := rlCountFDs(t)
		r := l.openRing(dir, "eth0", Config{Version: version, Packets: 256, Filter: rlDirFilter()})
		rlWatchdog(t, r, 10*time.Second)
		pass, _ := rlFilterCases()
		inj.send(pass[0])
		frames := make([]dataplane.Frame, 8)
		n, err := r.ReadBatch(frames)
		if err != nil || n != 1 {
			t.Fatalf("ReadBatch = %d, %v", n, err)
		}
		// Another goroutine closes while the worker still holds the batch: the
		// memory must stay mapped until the worker hands it back.
		done := make(chan struct{})
		go func() { r.Close(); close(done) }()
		<-done
		frames[0].Bytes()[0] ^= 0 // would fault if unmapped
		if !bytes.Equal(frames[0].Bytes(), pass[0]) {
			t.Fatal("frame changed under the reader")
		}
		if rlCountFDs(t) == fds {
			t.Fatal("ring released while a batch was out")
		}
		if _, err := r.ReadBatch(frames); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadBatch after Close: %v", err)
		}
		if n := rlCountFDs(t); n != fds {
			t.Fatalf("%d descriptors open after the batch came back, want %d", n, fds)
		}
		st, err := r.Stats()
		if err != nil || st.RXFrames != 1 || st.Packets != 1 {
			t.Fatalf("Stats after Close = %+v, %v; want 1 frame", st, err)
		}
	})
}

// rlCountFDs counts this process's open descriptors.
func rlCountFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestRingSteadyStateAllocatesNothing checks the hot path's contract with
// AllocsPerRun: ReadBatch of frames the peer sent and WriteBatch of them straight
// out of the ring allocate nothing.
func TestRingSteadyStateAllocatesNothing(t *testing.T) {
	rlEachVersion(t, testRingSteadyStateAllocatesNothing)
}

func testRingSteadyStateAllocatesNothing(t *testing.T, version int) {
	l, gen, dir := rlPair(t)
	r := l.openRing(dir, "eth0", Config{Version: version, Packets: 1024, Filter: rlDirFilter()})
	rlWatchdog(t, r, 20*time.Second)
	pass, _ := rlFilterCases()
	inj := l.raw(gen, "eth0")
	frames := make([]dataplane.Frame, r.BatchSize())
	var failed error
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := unix.Write(inj.fd, pass[0]); err != nil {
			failed = err
			return
		}
		n, err := r.ReadBatch(frames)
		if err != nil {
			failed = err
			return
		}
		if _, err := r.WriteBatch(frames[:n]); err != nil {
			failed = err
		}
	})
	if failed != nil {
		t.Fatal(failed)
	}
	if allocs != 0 {
		t.Fatalf("ReadBatch+WriteBatch allocate %v times per batch, want 0", allocs)
	}
}

// rlBlock lays frames out in a TPACKET_V3 block the way tpacket_rcv does: block
// descriptor, then per frame a tpacket3_hdr whose tp_mac leaves room for the
// sockaddr_ll and the reserve, frames TPACKET_ALIGN'ed. vlan[i] ≥ 0 marks frame i as
// received with that 802.1Q TCI moved out of the data.
func rlBlock(size int, frames [][]byte, vlan []int) []byte {
	ne := binary.NativeEndian
	blk := make([]byte, size)
	ne.PutUint32(blk[bdBlockStatus:], unix.TP_STATUS_USER)
	ne.PutUint32(blk[bdNumPkts:], uint32(len(frames)))
	ne.PutUint32(blk[bdOffsetFirstPkt:], bdLen)
	const mac = 96 - header.EthernetHeaderLen + ringReserve
	off := bdLen
	for i, f := range frames {
		h := blk[off:]
		ne.PutUint32(h[tpSnaplen:], uint32(len(f)))
		ne.PutUint32(h[tpLen:], uint32(len(f)))
		ne.PutUint16(h[tpMac:], mac)
		status := uint32(unix.TP_STATUS_USER)
		if i < len(vlan) && vlan[i] >= 0 {
			status |= unix.TP_STATUS_VLAN_VALID
			ne.PutUint32(h[tpVLANTCI:], uint32(vlan[i]))
		}
		ne.PutUint32(h[tpStatus:], status)
		copy(h[mac:], f)
		next := (mac + len(f) + 15) &^ 15
		if i < len(frames)-1 {
			ne.PutUint32(h[tpNextOffset:], uint32(next))
		}
		off += next
	}
	return blk
}

func TestParseFrame(t *testing.T) {
	ne := binary.NativeEndian
	a := rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, 1, 0, rlUDP(1, 2, nil))))
	b := rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, 2, 0, rlUDP(3, 4, []byte("b")))))
	second := bdLen + (96-header.EthernetHeaderLen+ringReserve+len(a)+15)&^15
	tests := []struct {
		name     string
		mutate   func(blk []byte) // on the first frame's header
		wantV    frameVerdict
		wantNext int
		want     []byte
	}{
		{name: "good", wantV: frameOK, wantNext: second, want: a},
		{name: "truncated", mutate: func(h []byte) { ne.PutUint32(h[tpLen:], 1500) }, wantV: frameTruncated, wantNext: second},
		{name: "snaplen past block", mutate: func(h []byte) { ne.PutUint32(h[tpSnaplen:], 1<<31) }, wantV: frameBad, wantNext: second}, // a bad frame's length does not bound the next header
		{name: "snaplen below header", mutate: func(h []byte) { ne.PutUint32(h[tpSnaplen:], 13); ne.PutUint32(h[tpLen:], 13) }, wantV: frameBad, wantNext: second},
		{name: "no headroom", mutate: func(h []byte) { ne.PutUint16(h[tpMac:], tpFrameStart+dataplane.Headroom-1) }, wantV: frameBad, wantNext: second},
		{name: "next backwards", mutate: func(h []byte) { ne.PutUint32(h[tpNextOffset:], 16) }, wantV: frameOK, want: a},
		{name: "next into frame", mutate: func(h []byte) { ne.PutUint32(h[tpNextOffset:], tpHdrLen) }, wantV: frameOK, want: a},
		{name: "next past block", mutate: func(h []byte) { ne.PutUint32(h[tpNextOffset:], 1<<20) }, wantV: frameOK, want: a},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blk := rlBlock(4096, [][]byte{a, b}, nil)
			if tt.mutate != nil {
				tt.mutate(blk[bdLen:])
			}
			f, next, v, _ := parseFrame(blk, bdLen, true)
			if v != tt.wantV {
				t.Fatalf("verdict %d, want %d", v, tt.wantV)
			}
			if next != tt.wantNext {
				t.Errorf("next %d, want %d", next, tt.wantNext)
			}
			if v == frameOK && (!bytes.Equal(f.Bytes(), tt.want) || f.Off < dataplane.Headroom || cap(f.Buf) != len(f.Buf)) {
				t.Errorf("frame off %d len %d cap %d: % x", f.Off, f.Len, cap(f.Buf), f.Bytes())
			}
		})
	}

	t.Run("vlan", func(t *testing.T) {
		wire := rlPad(rlEth(rlDirMAC, rlGenMAC, 0x2007, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, 1, 0, rlUDP(1, 2, nil))))
		untagged := append(append([]byte(nil), wire[:12]...), wire[16:]...)
		blk := rlBlock(4096, [][]byte{untagged}, []int{0x2007})
		f, next, v, _ := parseFrame(blk, bdLen, false)
		if v != frameOK || next != 0 || !bytes.Equal(f.Bytes(), wire) || f.Off < dataplane.Headroom {
			t.Fatalf("verdict %d next %d off %d:\n got % x\nwant % x", v, next, f.Off, f.Bytes(), wire)
		}
	})

	t.Run("header out of block", func(t *testing.T) {
		blk := rlBlock(4096, [][]byte{a}, nil)
		for _, off := range []int{0, bdLen - 1, len(blk) - tpHdrLen + 1, len(blk)} {
			if _, next, v, _ := parseFrame(blk, off, true); v != frameBad || next != 0 {
				t.Errorf("offset %d: verdict %d next %d, want bad, 0", off, v, next)
			}
		}
	})
}

// rlFakeRing is a Ring over Go memory holding the given blocks, for the reader's
// logic without a kernel.
func rlFakeRing(blocks ...[]byte) *Ring {
	bs := len(blocks[0])
	r := &Ring{blockSize: bs, nblocks: len(blocks), mem: make([]byte, 0, bs*len(blocks))}
	for _, b := range blocks {
		r.mem = append(r.mem, b...)
	}
	return r
}

func TestRingFillWalksBlocks(t *testing.T) {
	var fr [][]byte
	for i := range 5 {
		fr = append(fr, rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, uint16(i), 0, nil))))
	}
	r := rlFakeRing(rlBlock(4096, fr[:3], nil), rlBlock(4096, fr[3:], nil), rlBlock(4096, nil, nil))
	binary.NativeEndian.PutUint32(r.block(2)[bdBlockStatus:], unix.TP_STATUS_KERNEL)
	frames := make([]dataplane.Frame, 2)
	var got [][]byte
	for range 4 {
		n, tr, bad := r.fill(frames)
		if tr|bad != 0 {
			t.Fatalf("drops %d %d", tr, bad)
		}
		for _, f := range frames[:n] {
			got = append(got, f.Bytes())
		}
		r.returnBlocks()
	}
	if len(got) != len(fr) {
		t.Fatalf("got %d frames, want %d", len(got), len(fr))
	}
	for i := range fr {
		if !bytes.Equal(got[i], fr[i]) {
			t.Errorf("frame %d out of order", i)
		}
	}
	for i := range 3 {
		if s := blockDesc(r.block(i)).status(); s != unix.TP_STATUS_KERNEL {
			t.Errorf("block %d status %#x after reading, want the kernel's", i, s)
		}
	}
	if r.rx.cur != 2 || r.rx.open {
		t.Errorf("reader at block %d (open %v), want 2 (waiting)", r.rx.cur, r.rx.open)
	}

	// A batch holds at most half the ring, and never wraps onto held blocks.
	var blocks [][]byte
	for i := range 4 {
		blocks = append(blocks, rlBlock(4096, fr[i:i+1], nil))
	}
	r = rlFakeRing(blocks...)
	if n, _, _ := r.fill(make([]dataplane.Frame, 8)); n != 2 || r.rx.pending != 2 {
		t.Fatalf("fill = %d frames, %d pending; want 2, 2", n, r.rx.pending)
	}
	if n, _, _ := r.fill(make([]dataplane.Frame, 8)); n != 0 {
		t.Fatalf("fill read more than half the ring: %d frames", n)
	}
	r.returnBlocks()
	if n, _, _ := r.fill(make([]dataplane.Frame, 8)); n != 2 {
		t.Fatalf("fill after returning blocks = %d frames, want 2", n)
	}
	r.returnBlocks()
	if n, _, _ := r.fill(make([]dataplane.Frame, 8)); n != 0 {
		t.Fatalf("fill re-read returned blocks: %d frames", n)
	}
}

// FuzzRingBlock feeds arbitrary block contents to the reader: whatever the
// descriptor and frame headers say, it must not panic, every frame it returns must
// have its headroom, and frames must not overlap (each is filled with its own byte,
// headroom included, and must still hold it afterwards).
func FuzzRingBlock(f *testing.F) {
	a := rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, 1, 0, nil)))
	big := rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, 1, 0, make([]byte, 1400)))
	// A well-formed block of three frames.
	f.Add(rlBlock(4096, [][]byte{a, a, big}, nil)[:2048])
	// A tagged frame, as the kernel stores it.
	f.Add(rlBlock(4096, [][]byte{a[:56], a}, []int{7, -1})[:1024])
	// Num_pkts larger than what follows.
	blk := rlBlock(4096, [][]byte{a}, nil)
	binary.NativeEndian.PutUint32(blk[bdNumPkts:], 1000)
	f.Add(blk[:512])
	f.Fuzz(func(t *testing.T, data []byte) {
		blk := make([]byte, 4096)
		copy(blk, data)
		binary.NativeEndian.PutUint32(blk[bdBlockStatus:], unix.TP_STATUS_USER)
		r := rlFakeRing(blk)
		frames := make([]dataplane.Frame, 4)
		var all []dataplane.Frame
		for range 64 {
			n, _, _ := r.fill(frames)
			if n == 0 {
				break
			}
			for _, f := range frames[:n] {
				if f.Off < dataplane.Headroom || f.Len < header.EthernetHeaderLen || f.Off+f.Len != len(f.Buf) || cap(f.Buf) != len(f.Buf) {
					t.Fatalf("bad frame: off %d len %d buf %d cap %d", f.Off, f.Len, len(f.Buf), cap(f.Buf))
				}
				all = append(all, f)
			}
		}
		for i, f := range all {
			for j := range f.Buf {
				f.Buf[j] = byte(i + 1)
			}
		}
		for i, f := range all {
			for _, c := range f.Buf {
				if c != byte(i+1) {
					t.Fatalf("frame %d overlaps another", i)
				}
			}
		}
	})
}

// rlPinned runs fn on a goroutine locked to its own OS thread pinned to cpu (when
// the machine has it), and returns a channel closed when fn returns. The thread is
// never unlocked, so its affinity dies with it and no other goroutine inherits it.
func rlPinned(cpu int, fn func()) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if runtime.NumCPU() > cpu {
			var set unix.CPUSet
			set.Set(cpu)
			unix.SchedSetaffinity(0, &set)
		}
		fn()
	}()
	return done
}

// rlThreadCPU returns the CPU time the calling thread has used.
func rlThreadCPU() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_THREAD, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rlBenchFrames returns batches of 60-byte UDP frames to the VIP from 256 clients.
func rlBenchFrames(batch int) []dataplane.Frame {
	frames := make([]dataplane.Frame, batch)
	for i := range frames {
		src := netip.AddrFrom4([4]byte{198, 19, 2, byte(i)})
		b := rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(src, rlVIP, 17, 0, 0, rlUDP(uint16(10000+i), 53, nil))))
		frames[i] = dataplane.Frame{Buf: b, Len: len(b)}
	}
	return frames
}

// rlGenerateGrace is how long rlGenerate lets the last frames drain.
const rlGenerateGrace = 50 * time.Millisecond

// rlGenerate sends n frames from gen as fast as the ring takes them, on CPU 1, then
// closes stop after a grace period for the last frames to drain.
func rlGenerate(gen *Ring, n int, stop dataplane.Link) <-chan struct{} {
	frames := rlBenchFrames(gen.BatchSize())
	return rlPinned(1, func() {
		for sent := 0; sent < n; {
			k, err := gen.WriteBatch(frames[:min(len(frames), n-sent)])
			if err != nil {
				break
			}
			sent += max(k, 1)
		}
		time.Sleep(rlGenerateGrace)
		stop.Close()
	})
}

// rlRXPackets reads an interface's rx_packets counter in namespace ns.
func rlRXPackets(b *testing.B, ns, ifname string) uint64 {
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/sys/class/net/"+ifname+"/statistics/rx_packets").Output()
	if err != nil {
		b.Fatal(err)
	}
	var n uint64
	fmt.Sscan(string(out), &n)
	return n
}

// BenchmarkRingForward measures the live data path without the Director (docs/lab.md
// "Measuring the live data path fairly"): a generator namespace sends 60-byte UDP
// frames through a veth into the director namespace, where a ring reads them, rewrites
// the MACs in place and sends them out of a second interface to a sink namespace,
// ReadBatch → WriteBatch straight from the ring. Generator and forwarder are pinned to
// CPUs 1 and 0. ns/op is per generated frame; fwd-pps is the forwarding rate while
// traffic lasted, drop-% the frames lost (ring full or queue full).
//
// The batch sizes compare sendmmsg(2) batches (and ReadBatch's) of the default 64
// frames with 256.
func BenchmarkRingForward(b *testing.B) {
	for _, v := range []int{2, 3} {
		for _, batch := range []int{DefaultBatchSize, 256} {
			b.Run("v"+strconv.Itoa(v)+"/batch"+strconv.Itoa(batch), func(b *testing.B) {
				benchmarkRingForward(b, Config{Version: v, BatchSize: batch}, b.N)
			})
		}
	}
}

// BenchmarkRingBurst sends bursts of 150,000 frames as fast as the generator can
// (about 300 ms on the development VM when it is quiet, more under load: burst-ms
// says) through the forwarder of BenchmarkRingForward, for rings of several sizes:
// what a ring sized by time rides out (docs/lab.md "Receive ring: V2 or V3").
// ring-full is the kernel's count of frames it dropped because the ring was full,
// drop-% all frames lost on the way. Run it with -benchtime 1x.
func BenchmarkRingBurst(b *testing.B) {
	const burst = 150000
	v3PerBlock := (DefaultBlockSize - bdLen) / ringMinSlot
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"v2/default", Config{Version: 2}},
		{"v2/4096", Config{Version: 2, Packets: 4096}},
		{"v3/64blocks", Config{Version: 3, Packets: 64 * v3PerBlock}},
		{"v3/256blocks", Config{Version: 3, Packets: 256 * v3PerBlock}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				benchmarkRingForward(b, c.cfg, burst)
			}
		})
	}
}

// benchmarkRingForward forwards n frames through a ring of cfg (its filter set
// here) and reports what came through.
func benchmarkRingForward(b *testing.B, cfg Config, count int) {
	l := newRLLab(b)
	gen, dir, snk := l.ns("gen"), l.ns("dir"), l.ns("snk")
	snkMAC, outMAC := rlMAC(0x05), rlMAC(0x13)
	l.link(gen, "eth0", rlGenMAC, dir, "eth0", rlDirMAC)
	l.link(dir, "eth1", outMAC, snk, "eth0", snkMAC)
	cfg.Filter = rlDirFilter()
	in := l.openRing(dir, "eth0", cfg)
	out := l.openRing(dir, "eth1", Config{Packets: 256, Filter: &Filter{}, BatchSize: cfg.BatchSize})
	tx := l.openRing(gen, "eth0", Config{Packets: 256, Filter: &Filter{}})
	snk0 := rlRXPackets(b, snk, "eth0")

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	genDone := rlGenerate(tx, count, in)
	var fwd int
	var last time.Time
	var cpu time.Duration
	fwdDone := rlPinned(0, func() {
		cpu0 := rlThreadCPU()
		defer func() { cpu = rlThreadCPU() - cpu0 }()
		frames := make([]dataplane.Frame, in.BatchSize())
		for {
			n, err := in.ReadBatch(frames)
			if err != nil {
				return
			}
			for i := range frames[:n] {
				e := header.Ethernet(frames[i].Bytes())
				e.SetDestinationAddress(snkMAC)
				e.SetSourceAddress(outMAC)
			}
			k, err := out.WriteBatch(frames[:n])
			if err != nil {
				return
			}
			fwd += k
			last = time.Now()
		}
	})
	<-genDone
	genTime := time.Since(start) - rlGenerateGrace
	<-fwdDone
	b.StopTimer()
	if fwd == 0 {
		b.Fatal("nothing forwarded")
	}
	delivered := rlRXPackets(b, snk, "eth0") - snk0
	st, _ := in.Stats()
	b.ReportMetric(float64(fwd)/last.Sub(start).Seconds(), "fwd-pps")
	b.ReportMetric(100*(1-float64(delivered)/float64(count)), "drop-%")
	b.ReportMetric(float64(st.Drops), "ring-full")
	b.ReportMetric(float64(genTime.Milliseconds()), "burst-ms")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(fwd), "fwd-cpu-ns/frame")
}

// BenchmarkRingPump measures the whole live pipeline: Pump with a Director (DR, one
// UDP service, two real servers) on a ring, one-armed as in the lab topology: the
// generator's frames come back to its namespace rewritten for the real servers.
func BenchmarkRingPump(b *testing.B) {
	l, gen, dir := rlPair(b)
	in := l.openRing(dir, "eth0", Config{Filter: rlDirFilter()})
	tx := l.openRing(gen, "eth0", Config{Packets: 256, Filter: &Filter{}})
	opts := dataplane.DefaultOptions()
	opts.MAC = net.HardwareAddr(rlDirMAC[:])
	d, err := dataplane.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	err = d.Apply([]ipvs.Service{{Key: ipvs.AddrKey(ipvs.UDP, netip.AddrPortFrom(rlVIP, 53)), Scheduler: "rr", RealServers: []ipvs.RealServer{
		{Addr: netip.AddrPortFrom(rlRS, 53), Weight: 1, MAC: ipvs.MACFrom(net.HardwareAddr{2, 0, 0, 0, 0, 5}), Method: ipvs.DR},
		{Addr: netip.AddrPortFrom(netip.MustParseAddr("198.18.0.6"), 53), Weight: 1, MAC: ipvs.MACFrom(net.HardwareAddr{2, 0, 0, 0, 0, 6}), Method: ipvs.DR},
	}}})
	if err != nil {
		b.Fatal(err)
	}
	w := d.NewWorker(in.BatchSize())
	gen0 := rlRXPackets(b, gen, "eth0")

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	genDone := rlGenerate(tx, b.N, in)
	var perr error
	var cpu time.Duration
	link := &rlTimedLink{Link: in}
	pumpDone := rlPinned(0, func() {
		cpu0 := rlThreadCPU()
		perr = dataplane.Pump(context.Background(), link, w, func() int64 { return int64(time.Since(start)) })
		cpu = rlThreadCPU() - cpu0
	})
	<-genDone
	<-pumpDone
	b.StopTimer()
	if perr != nil {
		b.Fatal(perr)
	}
	if w.C.Forwarded == 0 {
		b.Fatalf("nothing forwarded: %+v", w.C)
	}
	delivered := rlRXPackets(b, gen, "eth0") - gen0
	b.ReportMetric(float64(link.sent)/link.last.Sub(start).Seconds(), "fwd-pps")
	b.ReportMetric(100*(1-float64(delivered)/float64(b.N)), "drop-%")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(link.sent), "fwd-cpu-ns/frame")
}

// rlTimedLink counts what is written through it and when the last write happened.
type rlTimedLink struct {
	dataplane.Link
	sent int
	last time.Time
}

func (l *rlTimedLink) WriteBatch(frames []dataplane.Frame) (int, error) {
	n, err := l.Link.WriteBatch(frames)
	l.sent += n
	l.last = time.Now()
	return n, err
}

// TestRingCompletesOffloadedChecksums sends UDP and TCP from the generator
// namespace's own stack: veth keeps the sender's CHECKSUM_PARTIAL, so the ring gets
// frames whose L4 checksum field holds only the pseudo-header sum
// (TP_STATUS_CSUMNOTREADY; without completion the UDP checksum here does not verify).
// ReadBatch must mark them CsumPartial, and header.CompleteChecksum (what the Director
// runs for such frames) must make them verify, as they would on a wire.
func TestRingCompletesOffloadedChecksums(t *testing.T) {
	rlEachVersion(t, testRingCompletesOffloadedChecksums)
}

func testRingCompletesOffloadedChecksums(t *testing.T, version int) {
	l, gen, dir := rlPair(t)
	l.run("ip", "-n", gen, "addr", "add", rlGen.String()+"/24", "dev", "eth0")
	l.run("ip", "-n", gen, "neigh", "add", rlVIP.String(), "lladdr", net.HardwareAddr(rlDirMAC[:]).String(), "dev", "eth0", "nud", "permanent")
	r := l.openRing(dir, "eth0", Config{Version: version, Packets: 256, Filter: rlDirFilter()})
	rlWatchdog(t, r, 10*time.Second)
	err := rlIn(gen, func() error {
		c, err := net.Dial("udp4", netip.AddrPortFrom(rlVIP, 53).String())
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte("an offloaded datagram")); err != nil {
			return err
		}
		// The SYN leaves at connect time; nobody answers, the dial times out.
		d := net.Dialer{Timeout: 100 * time.Millisecond}
		if c, err := d.Dial("tcp4", netip.AddrPortFrom(rlVIP, 80).String()); err == nil {
			c.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	frames := make([]dataplane.Frame, 4)
	var got [][]byte
	for len(got) < 2 {
		n, err := r.ReadBatch(frames)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range frames[:n] {
			if !f.CsumPartial {
				t.Errorf("a frame the sender left to offload is not marked CsumPartial")
			}
			got = append(got, append([]byte(nil), f.Bytes()...))
		}
	}
	protos := map[uint8]bool{}
	for _, b := range got {
		var p header.Parsed
		if d := p.Decode(b); d != header.DropNone {
			t.Fatalf("decode: %v", d)
		}
		header.CompleteChecksum(b, &p)
		protos[p.Proto] = true
		sum := header.PseudoHeaderSum(p.Src[:4], p.Dst[:4], p.Proto, uint32(p.End-p.L4Off))
		if s := header.Checksum(b[p.L4Off:p.End], sum); s != 0xffff {
			t.Errorf("protocol %d: checksum does not verify (sum %#04x)", p.Proto, s)
		}
	}
	if !protos[6] || !protos[17] {
		t.Errorf("got protocols %v, want TCP and UDP", protos)
	}
}
