//go:build linux

package afxdp

import (
	"bufio"
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/header"
	"golang.org/x/sys/unix"
)

// holdEnv names the interface TestHelperHold attaches to, in the namespace the
// parent test runs it in (ip netns exec).
const holdEnv = "GVS_AFXDP_HOLD"

// TestHelperHold is not a test: run by TestSIGKILLReattach in a namespace, it opens
// a device, prints "ready <program ID>" and waits (at most 60 s) to be killed.
func TestHelperHold(t *testing.T) {
	ifname := os.Getenv(holdEnv)
	if ifname == "" {
		t.Skip("helper process for TestSIGKILLReattach")
	}
	d, err := Open(ifname, Config{Filter: testFilter(), RingSize: 64, Frames: 128})
	if err != nil {
		t.Fatal(err)
	}
	id, err := d.ProgramID()
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("ready " + itoa(id) + "\n")
	time.Sleep(60 * time.Second)
	d.Close()
}

// TestSIGKILLReattach: a gvs killed with SIGKILL leaves no program behind (its BPF
// link dies with its file descriptors), so the next start attaches exactly one; while
// it runs, a second Open on the same interface is refused as "another gvs".
func TestSIGKILLReattach(t *testing.T) {
	l, dir, _ := veth(t)
	cmd := exec.Command("ip", "netns", "exec", dir, os.Args[0], "-test.run=^TestHelperHold$", "-test.count=1")
	cmd.Env = append(os.Environ(), holdEnv+"=eth0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			cmd.Process.Kill() // only the process this test started, by its PID
		}
		cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
	}()
	var old string
	select {
	case line := <-ready:
		var ok bool
		if old, ok = strings.CutPrefix(strings.TrimSpace(line), "ready "); !ok {
			t.Fatalf("helper said %q", line)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("helper never attached")
	}
	if ids := l.xdpIDs(dir, "eth0"); len(ids) != 1 || ids[0] != old {
		t.Fatalf("with the helper attached ip link shows %v, want [%s]", ids, old)
	}
	_, err = l.tryOpen(dir, "eth0", Config{RingSize: 64, Frames: 128})
	var fe *ForeignProgramError
	if !errors.As(err, &fe) || !fe.Running || fe.Name != ProgramName || itoa(fe.ID) != old {
		t.Fatalf("Open beside a running gvs: %v, want a ForeignProgramError for the running gvs (ID %s)", err, old)
	}
	// SIGKILL: the process gets no chance to detach anything.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = true
	cmd.Wait()
	// The kernel releases the link with the last file descriptor; that is done by
	// the time the killed process is reaped, but allow a moment (bounded).
	for i := 0; i < 50 && len(l.xdpIDs(dir, "eth0")) != 0; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if ids := l.xdpIDs(dir, "eth0"); len(ids) != 0 {
		t.Fatalf("after SIGKILL ip link still shows %v", ids)
	}
	d := l.open(dir, "eth0", Config{RingSize: 64, Frames: 128})
	id, _ := d.ProgramID()
	if ids := l.xdpIDs(dir, "eth0"); len(ids) != 1 || ids[0] != itoa(id) || ids[0] == old {
		t.Fatalf("after restart ip link shows %v, want exactly the new program %d", ids, id)
	}
	checkNetlink(t, dir, "eth0", id)
}

// checkNetlink asserts that rtnetlink reports exactly program id on ifname.
func checkNetlink(t *testing.T, ns, ifname string, id uint32) {
	t.Helper()
	var st xdpState
	err := inNS(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		st, err = queryXDP(ifi.Index)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	ids := st.ids()
	if _, ok := ids[id]; !ok || len(ids) != 1 {
		t.Fatalf("netlink reports programs %v, want exactly %d", ids, id)
	}
}

// netlinkAttach attaches prog to ifname in ns through netlink in generic mode, the
// way ip link set dev X xdpgeneric does: the attachment outlives the process.
func netlinkAttach(t *testing.T, ns, ifname string, prog *ebpf.Program) {
	t.Helper()
	err := inNS(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		return setXDP(ifi.Index, prog.FD(), unix.XDP_FLAGS_SKB_MODE)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func foreignProgram(t *testing.T) *ebpf.Program {
	t.Helper()
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "foreign_xdp", Type: ebpf.XDP, License: "Apache-2.0",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, xdpPass), asm.Return()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestReplaceLeftover: a gvs program attached through netlink (as an older gvs or
// ip link set … xdp did; it outlives its process) is replaced, never stacked.
func TestReplaceLeftover(t *testing.T) {
	l, dir, _ := veth(t)
	m, err := newMaps(1, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	left, err := newProgram(m, progOptions{})
	if err != nil {
		t.Fatal(err)
	}
	netlinkAttach(t, dir, "eth0", left)
	left.Close()
	if ids := l.xdpIDs(dir, "eth0"); len(ids) != 1 {
		t.Fatalf("leftover not attached: %v", ids)
	}
	d := l.open(dir, "eth0", Config{RingSize: 64, Frames: 128})
	id, _ := d.ProgramID()
	if ids := l.xdpIDs(dir, "eth0"); len(ids) != 1 || ids[0] != itoa(id) {
		t.Fatalf("ip link shows %v, want exactly the new program %d", ids, id)
	}
	checkNetlink(t, dir, "eth0", id)
	d.Close()
	d.Sockets()[0].ReadBatch(nil)
	if ids := l.xdpIDs(dir, "eth0"); len(ids) != 0 {
		t.Fatalf("after Close ip link shows %v", ids)
	}
}

// TestForeignProgram: someone else's program, attached through netlink or held by a
// BPF link, is refused with its name; with ReplaceForeign it is replaced.
func TestForeignProgram(t *testing.T) {
	for _, how := range []string{"netlink", "bpf_link"} {
		t.Run(how, func(t *testing.T) {
			l, dir, _ := veth(t)
			p := foreignProgram(t)
			if how == "netlink" {
				netlinkAttach(t, dir, "eth0", p)
			} else {
				err := inNS(dir, func() error {
					ifi, err := net.InterfaceByName("eth0")
					if err != nil {
						return err
					}
					lk, err := link.AttachXDP(link.XDPOptions{Program: p, Interface: ifi.Index, Flags: link.XDPGenericMode})
					if err == nil {
						t.Cleanup(func() { lk.Close() })
					}
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			before := l.xdpIDs(dir, "eth0")
			_, err := l.tryOpen(dir, "eth0", Config{RingSize: 64, Frames: 128})
			var fe *ForeignProgramError
			if !errors.Is(err, ErrForeignProgram) || !errors.As(err, &fe) || fe.Name != "foreign_xdp" || fe.Running {
				t.Fatalf("Open: %v, want ErrForeignProgram naming foreign_xdp", err)
			}
			if !strings.Contains(err.Error(), `"foreign_xdp"`) {
				t.Errorf("the message does not name the program: %v", err)
			}
			if after := l.xdpIDs(dir, "eth0"); strings.Join(after, ",") != strings.Join(before, ",") || len(after) != 1 {
				t.Fatalf("a refused Open changed the interface: %v → %v", before, after)
			}
			d := l.open(dir, "eth0", Config{RingSize: 64, Frames: 128, ReplaceForeign: true})
			id, _ := d.ProgramID()
			if ids := l.xdpIDs(dir, "eth0"); len(ids) != 1 || ids[0] != itoa(id) {
				t.Fatalf("after replacing ip link shows %v, want exactly %d", ids, id)
			}
			checkNetlink(t, dir, "eth0", id)
		})
	}
}

// TestChecksumPartial: a datagram a local stack sends over veth arrives with its
// checksum partial and is marked; after header.CompleteChecksum it verifies. A
// crafted frame with a complete checksum is not marked.
func TestChecksumPartial(t *testing.T) {
	l, dir, cli := veth(t)
	l.run("ip", "-n", cli, "neigh", "replace", vip4.String(), "lladdr", "02:00:00:00:00:03", "dev", "eth0")
	d := l.open(dir, "eth0", Config{Filter: testFilter(), RingSize: 64, Frames: 128})
	s := d.Sockets()[0]
	err := inNS(cli, func() error {
		c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netipAddrPort(vip4, 53)))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("a datagram whose checksum the stack leaves to the device"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	l.raw(cli, "eth0").send(udp4(cli4, vip4, 40000, 53, []byte("complete")))
	var marks []bool
	var verified []bool
	readN(t, s, 2, func(batch []dataplane.Frame) {
		for i := range batch {
			f := &batch[i]
			marks = append(marks, f.CsumPartial)
			b := f.Bytes()
			var p header.Parsed
			if p.Decode(b) != header.DropNone {
				t.Fatalf("frame %x does not decode", b)
			}
			if f.CsumPartial {
				header.CompleteChecksum(b, &p)
			}
			src, dst := b[p.L3Off+ipv4Src:p.L3Off+ipv4Src+4], b[p.L3Off+ipv4Dst:p.L3Off+ipv4Dst+4]
			verified = append(verified, header.Checksum(b[p.L4Off:p.End], header.PseudoHeaderSum(src, dst, header.IPProtoUDP, uint32(p.End-p.L4Off))) == 0xffff)
		}
	})
	if len(marks) != 2 || !marks[0] || marks[1] || !verified[0] || !verified[1] {
		t.Fatalf("partial marks %v, checksums verify %v: want [true false], [true true]", marks, verified)
	}
	if st, _ := s.SocketStats(); st.RXCsumPartial != 1 {
		t.Errorf("RXCsumPartial = %d, want 1", st.RXCsumPartial)
	}
}

// TestQueues: veth has one receive queue (ETHTOOL_GCHANNELS) and its driver is
// named veth (ETHTOOL_GDRVINFO), which Config.Checksums' auto mode relies on.
func TestQueues(t *testing.T) {
	_, dir, _ := veth(t)
	var n int
	var drv string
	err := inNS(dir, func() (err error) {
		if n, err = Queues("eth0"); err != nil {
			return err
		}
		drv, err = Driver("eth0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || drv != "veth" {
		t.Fatalf("Queues %d, Driver %q: want 1, veth", n, drv)
	}
}

// TestRefusals: what the kernel or driver refuses fails Open cleanly — an error, no
// program left attached — which is what lets the daemon fall back to AF_PACKET.
func TestRefusals(t *testing.T) {
	l, dir, _ := veth(t)
	// veth has native XDP but no zero-copy sockets.
	if _, err := l.tryOpen(dir, "eth0", Config{RingSize: 64, Frames: 128, Bind: BindZeroCopy}); err == nil {
		t.Error("zero-copy on veth accepted")
	} else {
		t.Logf("zero-copy on veth: %v", err)
	}
	if ids := l.xdpIDs(dir, "eth0"); len(ids) != 0 {
		t.Errorf("a refused Open left %v attached", ids)
	}
	// A bridge has no driver-mode XDP.
	if out, err := exec.Command("ip", "-n", dir, "link", "add", "d0", "type", "bridge").CombinedOutput(); err != nil {
		labSkip(t, "no bridge interfaces here: %v: %s", err, out)
	}
	l.run("ip", "-n", dir, "link", "set", "d0", "up")
	if _, err := l.tryOpen(dir, "d0", Config{RingSize: 64, Frames: 128, Attach: AttachDriver}); err == nil {
		t.Error("driver-mode XDP on a bridge accepted")
	} else {
		t.Logf("driver mode on a bridge: %v", err)
	}
	if ids := l.xdpIDs(dir, "d0"); len(ids) != 0 {
		t.Errorf("a refused Open left %v attached", ids)
	}
	// Generic mode works anywhere.
	d := l.open(dir, "d0", Config{RingSize: 64, Frames: 128})
	if d.Mode() != "generic" {
		t.Errorf("auto mode on a bridge: %s, want generic", d.Mode())
	}
}

// TestMultiQueue: one socket per receive queue (veth made with 4), each in the
// XSKMAP at its queue; frames of many flows all arrive, on whichever queue the
// kernel put them.
func TestMultiQueue(t *testing.T) {
	l := newLab(t)
	dir, cli := l.ns("dir"), l.ns("cli")
	l.run("ip", "-n", dir, "link", "add", "eth0", "numtxqueues", "4", "numrxqueues", "4", "type", "veth",
		"peer", "name", "eth0", "netns", cli, "numtxqueues", "4", "numrxqueues", "4")
	l.run("ip", "-n", dir, "link", "set", "eth0", "address", "02:00:00:00:00:03", "up")
	l.run("ip", "-n", cli, "link", "set", "eth0", "address", "02:00:00:00:00:02", "up")
	l.addr(cli, "eth0", "198.18.0.2/24")
	l.run("ip", "-n", cli, "neigh", "replace", vip4.String(), "lladdr", "02:00:00:00:00:03", "dev", "eth0")
	d := l.open(dir, "eth0", Config{Filter: testFilter(), RingSize: 64, Frames: 256})
	if n := len(d.Sockets()); n != 4 {
		t.Fatalf("%d sockets, want 4", n)
	}
	for q, s := range d.Sockets() {
		if s.Queue() != q {
			t.Errorf("socket %d is bound to queue %d", q, s.Queue())
		}
	}
	const flows = 64
	// Datagrams from the client's stack, one per source port: the kernel spreads
	// them over its transmit queues, which veth maps onto the peer's receive queues.
	err := inNS(cli, func() error {
		for i := range flows {
			c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netipAddrPort(vip4, 53)))
			if err != nil {
				return err
			}
			_, err = c.Write([]byte{byte(i)})
			c.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, len(d.Sockets()))
	total := make(chan int, flows)
	var wg sync.WaitGroup
	for q, s := range d.Sockets() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			frames := make([]dataplane.Frame, 8)
			for {
				n, err := s.ReadBatch(frames)
				if err != nil {
					return
				}
				counts[q] += n
				total <- n
			}
		}()
	}
	got := 0
	deadline := time.After(10 * time.Second)
	for got < flows {
		select {
		case n := <-total:
			got += n
		case <-deadline:
			t.Errorf("%d datagrams of %d arrived", got, flows)
			got = flows
		}
	}
	ps, _ := d.ProgramStats()
	d.Close()
	wg.Wait()
	used := 0
	for _, c := range counts {
		if c > 0 {
			used++
		}
	}
	// A frame is redirected to the socket of the queue it came in on: one on a
	// queue whose socket were missing would be counted under no_socket.
	if ps[ReasonNoSocket] != 0 || ps[ReasonVIP4] != flows || used < 2 {
		t.Errorf("program %v, frames per queue %v: want %d redirected, none without a socket, over several queues", ps, counts, flows)
	}
	t.Logf("frames per queue: %v", counts)
}

// TestQueueWithoutSocket: frames on a receive queue that has no socket (here:
// Open told to serve only queue 0 of two, as after ethtool -L raised the count) are
// passed to the kernel, counted (no_socket), and the next batch read logs a warning
// that says what happened and what to do.
func TestQueueWithoutSocket(t *testing.T) {
	l := newLab(t)
	dir, cli := l.ns("dir"), l.ns("cli")
	l.run("ip", "-n", dir, "link", "add", "eth0", "numtxqueues", "2", "numrxqueues", "2", "type", "veth",
		"peer", "name", "eth0", "netns", cli, "numtxqueues", "2", "numrxqueues", "2")
	l.run("ip", "-n", dir, "link", "set", "eth0", "address", "02:00:00:00:00:03", "up")
	l.run("ip", "-n", cli, "link", "set", "eth0", "address", "02:00:00:00:00:02", "up")
	l.addr(cli, "eth0", "198.18.0.2/24")
	l.run("ip", "-n", cli, "neigh", "replace", vip4.String(), "lladdr", "02:00:00:00:00:03", "dev", "eth0")
	var logs syncBuffer
	d := l.open(dir, "eth0", Config{Filter: testFilter(), RingSize: 64, Frames: 256, Queues: 1,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	d.watchEvery = 0
	const flows = 64
	err := inNS(cli, func() error {
		for i := range flows {
			c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netipAddrPort(vip4, 53)))
			if err != nil {
				return err
			}
			_, err = c.Write([]byte{byte(i)})
			c.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var ps ProgramStats
	for range 500 { // the peer's NAPI may run a moment later: wait, bounded
		if ps, _ = d.ProgramStats(); ps[ReasonVIP4] == flows {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ps[ReasonVIP4] != flows || ps[ReasonNoSocket] == 0 || ps[ReasonNoSocket] == flows {
		t.Fatalf("program %v: want %d redirects, some of them on queue 1 without a socket", ps, flows)
	}
	readN(t, d.Sockets()[0], 1, nil)
	if s := logs.String(); !strings.Contains(s, "receive queues without a socket") || !strings.Contains(s, "queues_served=1 queues_now=2") ||
		!strings.Contains(s, "frames="+strconv.FormatUint(ps[ReasonNoSocket], 10)) {
		t.Errorf("log:\n%s\nwant the warning with the count and the queue numbers", s)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
