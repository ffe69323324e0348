//go:build linux

package afxdp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afpacket"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/internal/testutil"
)

// veth builds the director/client pair of namespaces: dir's eth0 (198.18.0.3,
// 2001:db8::3) joined to cli's eth0 (198.18.0.2, 2001:db8::2).
func veth(t *testing.T) (l *lab, dir, cli string) {
	l = newLab(t)
	dir, cli = l.ns("dir"), l.ns("cli")
	l.link(dir, "eth0", dirMAC, cli, "eth0", cliMAC)
	l.addr(dir, "eth0", "198.18.0.3/24", "2001:db8::3/64")
	l.addr(cli, "eth0", "198.18.0.2/24", "2001:db8::2/64")
	return l, dir, cli
}

func testFilter() *afpacket.Filter {
	return &afpacket.Filter{VIPs: []netip.Addr{vip4, vip6}, NATRealServers: []netip.Addr{rs4, rs6}}
}

// readN reads until want frames came (calling each on every batch before the next
// ReadBatch), or closes s after a deadline of 5 s; it returns copies of the frames.
func readN(t *testing.T, s *Socket, want int, each func(batch []dataplane.Frame)) [][]byte {
	t.Helper()
	stop := time.AfterFunc(5*time.Second, func() { s.Close() })
	defer stop.Stop()
	frames := make([]dataplane.Frame, s.BatchSize())
	var got [][]byte
	for len(got) < want {
		n, err := s.ReadBatch(frames)
		if errors.Is(err, net.ErrClosed) {
			t.Fatalf("read %d frames of %d before the deadline", len(got), want)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range frames[:n] {
			if f.Off < dataplane.Headroom || f.Off+f.Len > len(f.Buf) {
				t.Fatalf("frame at %d+%d in a buffer of %d: want at least %d bytes of headroom", f.Off, f.Len, len(f.Buf), dataplane.Headroom)
			}
			got = append(got, slices.Clone(f.Bytes()))
		}
		if each != nil {
			each(frames[:n])
		}
	}
	return got
}

func swapMACs(b []byte) {
	var m [6]byte
	copy(m[:], b[0:6])
	copy(b[0:6], b[6:12])
	copy(b[6:12], m[:])
}

// udp4 returns a UDP/IPv4 frame with a complete checksum.
func udp4(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	f := ip4(src, dst, header.IPProtoUDP, 8+len(payload), false)
	u := f[ethLen+20:]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(8+len(payload)))
	copy(u[8:], payload)
	s, d := src.As4(), dst.As4()
	binary.BigEndian.PutUint16(u[6:], ^header.Checksum(u, header.PseudoHeaderSum(s[:], d[:], header.IPProtoUDP, uint32(len(u)))))
	return f
}

// TestSocketVeth: frames to a VIP, a NAT reply, ARP and NS for a VIP reach
// ReadBatch byte-exact with headroom; WriteBatch sends received frames in place and
// foreign memory by copy; the director's own address still answers ping (IPv4 and
// IPv6: ARP, NS and ICMP pass to the kernel); Close detaches the program.
func TestSocketVeth(t *testing.T) {
	l, dir, cli := veth(t)
	d := l.open(dir, "eth0", Config{Filter: testFilter(), RingSize: 256, Frames: 1024})
	if d.Driver() != "veth" || d.ZeroCopy() {
		t.Errorf("driver %q zero-copy %v, want veth in copy mode", d.Driver(), d.ZeroCopy())
	}
	if len(d.Sockets()) != 1 {
		t.Fatalf("%d sockets, want 1 (veth has one queue)", len(d.Sockets()))
	}
	id, err := d.ProgramID()
	if err != nil {
		t.Fatal(err)
	}
	if ids := l.xdpIDs(dir, "eth0"); len(ids) != 1 || ids[0] != itoa(id) {
		t.Fatalf("ip link shows XDP programs %v, want exactly [%d]", ids, id)
	}
	s := d.Sockets()[0]
	raw := l.raw(cli, "eth0")
	sent := [][]byte{
		udp4(cli4, vip4, 40000, 53, []byte("hello VIP")),
		ip6(cli6, vip6, header.IPProtoTCP, make([]byte, 20), false),
		arp(1, cli4, vip4, false),
		ns(cli6, vip6, false),
		ip4(rs4, cli4, header.IPProtoTCP, 20, false),
	}
	// Not gvs's: must not reach the socket (the kernel drops or answers them).
	raw.send(udp4(cli4, self4, 40000, 9, []byte("to the director itself")))
	raw.send(sent...)
	var echoed int
	got := readN(t, s, len(sent), func(batch []dataplane.Frame) {
		for i := range batch {
			swapMACs(batch[i].Bytes())
		}
		n, err := s.WriteBatch(batch)
		if err != nil {
			t.Fatal(err)
		}
		echoed += n
	})
	for i := range sent {
		if i >= len(got) || !bytes.Equal(got[i], sent[i]) {
			t.Fatalf("frame %d:\ngot  %x\nwant %x", i, got[i], sent[i])
		}
	}
	// A frame from the caller's memory is copied into the UMEM.
	own := udp4(vip4, cli4, 53, 40000, []byte("from elsewhere"))
	swapMACs(own)
	buf := append(make([]byte, dataplane.Headroom), own...)
	if n, err := s.WriteBatch([]dataplane.Frame{{Buf: buf, Off: dataplane.Headroom, Len: len(own)}}); n != 1 || err != nil {
		t.Fatalf("WriteBatch of a foreign buffer: %d, %v", n, err)
	}
	for i, f := range append(slices.Clone(sent), own) {
		want := slices.Clone(f)
		if i < len(sent) {
			swapMACs(want)
		}
		if r := raw.recvMatching(func(b []byte) bool { return bytes.Equal(b, want) }); r == nil {
			t.Errorf("frame %d sent back was not received: %x", i, want)
		}
	}
	st, err := s.SocketStats()
	if err != nil {
		t.Fatal(err)
	}
	if echoed != len(sent) || st.TXFrames != uint64(len(sent)+1) || st.TXCopied != 1 || st.RXFrames != uint64(len(sent)) {
		t.Errorf("echoed %d, stats %+v: want %d frames in place and 1 copied", echoed, st, len(sent))
	}
	if ls, err := s.Stats(); err != nil || ls.RXFrames != st.RXFrames || ls.TXFrames != st.TXFrames || ls.Drops != 0 || ls.TXDrops != 0 {
		t.Errorf("link stats %+v (%v) disagree with %+v", ls, err, st)
	}
	for _, args := range [][]string{{"ping", "-c", "1", "-W", "2", "198.18.0.3"}, {"ping", "-6", "-c", "1", "-W", "2", "2001:db8::3"}} {
		if out, err := exec.Command("ip", append([]string{"netns", "exec", cli}, args...)...).CombinedOutput(); err != nil {
			t.Errorf("%v with the program attached: %v\n%s", args, err, out)
		}
	}
	ps, err := d.ProgramStats()
	if err != nil {
		t.Fatal(err)
	}
	// The client's kernel answers the echoed datagram from the VIP with a port
	// unreachable, and asks for the VIP's MAC first: ARP may count more than one.
	want := ProgramStats{ReasonVIP4: 1, ReasonVIP6: 1, ReasonARP: max(1, ps[ReasonARP]), ReasonNS: 1, ReasonNAT4: 1}
	if ps != want {
		t.Errorf("program counters %v, want %v", ps, want)
	}
	d.Close()
	if _, err := s.ReadBatch(nil); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadBatch after Close: %v, want net.ErrClosed", err)
	}
	if ids := l.xdpIDs(dir, "eth0"); len(ids) != 0 {
		t.Errorf("after Close ip link shows XDP programs %v", ids)
	}
	if last, err := d.ProgramStats(); err != nil || last[ReasonVIP4] != 1 || last[ReasonNS] != 1 {
		t.Errorf("counters after Close: %v, %v; want the last values", last, err)
	}
	if err := d.SetFilter(testFilter()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("SetFilter after Close: %v, want net.ErrClosed", err)
	}
}

func itoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// TestCloseWakesRead: Close wakes a ReadBatch waiting for frames, which returns
// net.ErrClosed, as do later calls; Close is idempotent; no goroutine is left.
func TestCloseWakesRead(t *testing.T) {
	testutil.CheckLeaks(t)
	l, dir, _ := veth(t)
	d := l.open(dir, "eth0", Config{Filter: testFilter(), RingSize: 64, Frames: 128})
	s := d.Sockets()[0]
	errc := make(chan error, 1)
	go func() {
		_, err := s.ReadBatch(make([]dataplane.Frame, 8))
		errc <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadBatch woken by Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not wake ReadBatch")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.WriteBatch([]dataplane.Frame{{Buf: make([]byte, 60), Len: 60}}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteBatch after Close: %v, want net.ErrClosed", err)
	}
	if ids := l.xdpIDs(dir, "eth0"); len(ids) != 0 {
		t.Errorf("the last socket closed, ip link still shows %v", ids)
	}
}

// TestVerdictsWithSocket runs the attached program (BPF_PROG_TEST_RUN) with a
// socket in its XSKMAP: gvs's frames get XDP_REDIRECT, the rest XDP_PASS — the
// only two verdicts it has.
func TestVerdictsWithSocket(t *testing.T) {
	l, dir, _ := veth(t)
	d := l.open(dir, "eth0", Config{Filter: testFilter(), RingSize: 64, Frames: 128})
	for _, tc := range []struct {
		frame []byte
		want  uint32
	}{
		{udp4(cli4, vip4, 1, 53, nil), xdpRedirect},
		{ns(cli6, vip6, true), xdpRedirect},
		{arp(1, cli4, vip4, false), xdpRedirect},
		{ip4(rs4, cli4, header.IPProtoTCP, 20, false), xdpRedirect},
		{udp4(cli4, self4, 1, 53, nil), xdpPass},
		{arp(1, cli4, self4, false), xdpPass},
		{ns(cli6, netip.MustParseAddr("2001:db8::3"), false), xdpPass},
	} {
		d.mu.Lock()
		ret, err := d.prog.Run(&ebpf.RunOptions{Data: tc.frame})
		d.mu.Unlock()
		if err != nil || ret != tc.want {
			t.Errorf("%x: verdict %d (%v), want %d", tc.frame, ret, err, tc.want)
		}
	}
}

// TestOversizedFrame: a frame longer than a UMEM chunk can hold is dropped by the
// kernel and counted (KernelRXDropped, and Drops in the ring-shaped Stats), never
// delivered cut; the frames after it arrive.
func TestOversizedFrame(t *testing.T) {
	l, dir, cli := veth(t)
	for _, ns := range []string{dir, cli} {
		l.run("ip", "-n", ns, "link", "set", "eth0", "mtu", "3000")
	}
	d := l.open(dir, "eth0", Config{Filter: testFilter(), RingSize: 64, Frames: 128})
	s := d.Sockets()[0]
	raw := l.raw(cli, "eth0")
	big := udp4(cli4, vip4, 1, 53, make([]byte, 2500)) // > 2048 − 256
	small := udp4(cli4, vip4, 2, 53, []byte("after"))
	raw.send(big, small)
	got := readN(t, s, 1, nil)
	if !bytes.Equal(got[0], small) {
		t.Fatalf("got %d bytes, want the small frame after the big one", len(got[0]))
	}
	st, err := s.SocketStats()
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := s.Stats()
	if st.KernelRXDropped != 1 || ls.Drops != 1 {
		t.Errorf("kernel rx_dropped %d, link drops %d: want the oversized frame counted once", st.KernelRXDropped, ls.Drops)
	}
}

// TestWriteBadLengths: a frame longer than a UMEM chunk, or empty, is dropped and
// counted; the frames around it are sent.
func TestWriteBadLengths(t *testing.T) {
	l, dir, cli := veth(t)
	s := l.open(dir, "eth0", Config{RingSize: 64, Frames: 128}).Sockets()[0]
	raw := l.raw(cli, "eth0")
	ok := udp4(vip4, cli4, 53, 1, []byte("fits"))
	swapMACs(ok)
	huge := make([]byte, 3000)
	n, err := s.WriteBatch([]dataplane.Frame{{Buf: ok, Len: len(ok)}, {Buf: huge, Len: len(huge)}, {Buf: huge, Len: 0}, {Buf: ok, Len: len(ok)}})
	if n != 2 || err != nil {
		t.Fatalf("WriteBatch: %d, %v; want the 2 good frames sent", n, err)
	}
	for range 2 {
		if raw.recvMatching(func(b []byte) bool { return bytes.Equal(b, ok) }) == nil {
			t.Fatal("a good frame did not arrive")
		}
	}
	if st, _ := s.SocketStats(); st.TXTooLong != 2 || st.TXFrames != 2 {
		t.Errorf("stats %+v: want 2 sent and 2 dropped for their length", st)
	}
}
