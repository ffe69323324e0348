package dataplane_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/dataplane/internal/frametest"
	"github.com/gvs-lb/gvs/dataplane/linktest"
	"github.com/gvs-lb/gvs/internal/testutil"
	"github.com/gvs-lb/gvs/ipvs"
)

var (
	ptClientMAC = [6]byte{2, 0, 0, 0, 0, 2}
	ptDirMAC    = [6]byte{2, 0, 0, 0, 0, 3}
	ptRS1MAC    = net.HardwareAddr{2, 0, 0, 0, 0, 5}
	ptRS2MAC    = net.HardwareAddr{2, 0, 0, 0, 0, 6}
	ptVIP       = netip.MustParseAddr("198.18.0.100")
	ptClient    = netip.MustParseAddr("198.19.0.7")
)

// ptUDP builds a client → VIP UDP frame (IPv4 header checksum set, UDP checksum 0).
func ptUDP(sport uint16) []byte {
	b := make([]byte, 14+20+8+18)
	copy(b[0:], ptDirMAC[:])
	copy(b[6:], ptClientMAC[:])
	binary.BigEndian.PutUint16(b[12:], header.EtherTypeIPv4)
	ip := b[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	s, d := ptClient.As4(), ptVIP.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	binary.BigEndian.PutUint16(ip[10:], ^header.Checksum(ip[:20], 0))
	binary.BigEndian.PutUint16(ip[20:], sport)
	binary.BigEndian.PutUint16(ip[22:], 53)
	binary.BigEndian.PutUint16(ip[24:], uint16(len(ip)-20))
	return b
}

// ptWorker returns a worker of a director with one UDP DR service and two real
// servers.
func ptWorker(t testing.TB, batch int) *dataplane.Worker {
	t.Helper()
	opts := dataplane.DefaultOptions()
	opts.MAC = net.HardwareAddr(ptDirMAC[:])
	opts.ConnMax, opts.ConnShards = 1<<12, 4
	d, err := dataplane.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Apply([]ipvs.Service{{Key: ipvs.AddrKey(ipvs.UDP, netip.AddrPortFrom(ptVIP, 53)), Scheduler: "rr", RealServers: []ipvs.RealServer{
		{Addr: netip.AddrPortFrom(netip.MustParseAddr("198.18.0.5"), 53), Weight: 1, MAC: ipvs.MACFrom(ptRS1MAC), Method: ipvs.DR},
		{Addr: netip.AddrPortFrom(netip.MustParseAddr("198.18.0.6"), 53), Weight: 1, MAC: ipvs.MACFrom(ptRS2MAC), Method: ipvs.DR},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return d.NewWorker(batch)
}

func ptClock() func() int64 {
	start := time.Now()
	return func() int64 { return int64(time.Since(start)) }
}

// TestPumpForwards runs Pump between a pair of in-memory links: client frames written
// on one end come back from the director rewritten for DR, spread over both real
// servers, and Pump stops cleanly when its context is cancelled.
// TestHeadroomFitsEncapsulation checks that Headroom holds the largest growth of
// header.Encapsulate: a tagged frame with an IPv6 outer header.
func TestHeadroomFitsEncapsulation(t *testing.T) {
	f := frametest.TCP4(t, frametest.Opts{VLAN: 1}, "198.51.100.7", "192.0.2.10", 40000, 80)
	buf := make([]byte, dataplane.Headroom+len(f))
	copy(buf[dataplane.Headroom:], f)
	var p header.Parsed
	if d := p.Decode(buf[dataplane.Headroom:]); d != header.DropNone {
		t.Fatalf("decode: %v", d)
	}
	if _, ok := header.Encapsulate(buf, dataplane.Headroom, &p, &header.Tunnel{IPv6: true}); !ok {
		t.Error("Headroom too small for a tagged frame with an IPv6 outer header")
	}
}

func TestPumpForwards(t *testing.T) {
	testutil.CheckLeaks(t)
	dir, wire := linktest.NewPair()
	defer wire.Close()
	w := ptWorker(t, dir.BatchSize())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- dataplane.Pump(ctx, dir, w, ptClock()) }()

	var out []dataplane.Frame
	for i := range 8 {
		b := ptUDP(uint16(10000 + i))
		out = append(out, dataplane.Frame{Buf: b, Len: len(b)})
	}
	if n, err := wire.WriteBatch(out); n != len(out) || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	in := make([]dataplane.Frame, 16)
	perRS := map[string]int{}
	for got := 0; got < len(out); {
		n, err := wire.ReadBatch(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range in[:n] {
			e := header.Ethernet(f.Bytes())
			if src := e.SourceAddress(); src != ptDirMAC {
				t.Errorf("source MAC %x, want the director's", src)
			}
			dst := e.DestinationAddress()
			perRS[net.HardwareAddr(dst[:]).String()]++
		}
		got += n
	}
	if perRS[ptRS1MAC.String()] != 4 || perRS[ptRS2MAC.String()] != 4 {
		t.Errorf("frames per real server %v, want 4 each (rr)", perRS)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Pump after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Pump did not stop on cancel")
	}
}

// TestPumpAllocatesNothing counts the heap allocations of the whole process while
// Pump forwards frames of an established flow: none per iteration.
func TestPumpAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("counts process-wide allocations")
	}
	dir, wire := linktest.NewPair()
	w := ptWorker(t, dir.BatchSize())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- dataplane.Pump(ctx, dir, w, ptClock()) }()

	b := ptUDP(10000)
	out := []dataplane.Frame{{Buf: b, Len: len(b)}, {Buf: b, Len: len(b)}}
	in := make([]dataplane.Frame, 4)
	roundTrip := func() {
		wire.WriteBatch(out)
		for got := 0; got < len(out); {
			n, err := wire.ReadBatch(in)
			if err != nil {
				t.Error(err)
				return
			}
			got += n
		}
	}
	for range 100 { // warm up: the connection exists, every buffer has been used
		roundTrip()
	}
	const rounds = 2000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range rounds {
		roundTrip()
	}
	runtime.ReadMemStats(&after)
	// A few allocations by the runtime itself (timers, the GC) may land in the
	// window; one per iteration would show up as thousands.
	t.Logf("%d allocations over %d iterations", after.Mallocs-before.Mallocs, rounds)
	if n := after.Mallocs - before.Mallocs; n > rounds/100 {
		t.Errorf("%d allocations over %d iterations of Pump", n, rounds)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// failLink is a Link whose writes fail for good.
type failLink struct{ dataplane.Link }

var errBroken = errors.New("broken link")

func (failLink) WriteBatch([]dataplane.Frame) (int, error) { return 0, errBroken }

func TestPumpReturnsLinkErrors(t *testing.T) {
	testutil.CheckLeaks(t)
	dir, wire := linktest.NewPair()
	defer dir.Close()
	b := ptUDP(10000)
	wire.WriteBatch([]dataplane.Frame{{Buf: b, Len: len(b)}})
	err := dataplane.Pump(context.Background(), failLink{dir}, ptWorker(t, dir.BatchSize()), ptClock())
	if !errors.Is(err, errBroken) {
		t.Fatalf("Pump = %v, want the write error", err)
	}
	// Closed by someone else: a clean stop.
	dir2, _ := linktest.NewPair()
	dir2.Close()
	if err := dataplane.Pump(context.Background(), dir2, ptWorker(t, dir2.BatchSize()), ptClock()); err != nil {
		t.Fatalf("Pump on a closed link = %v, want nil", err)
	}
}
