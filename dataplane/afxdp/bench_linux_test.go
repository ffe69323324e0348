//go:build linux

package afxdp

import (
	"fmt"
	"net/netip"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afpacket"
	"github.com/gvs-lb/gvs/dataplane/header"
	"golang.org/x/sys/unix"
)

// The forwarding benchmarks mirror afpacket's BenchmarkRingForward (docs/lab.md
// "Measuring the live data path fairly") so the two backends can be read side by
// side: a generator namespace sends 60-byte UDP frames to the VIP through a veth
// into the director namespace (an AF_PACKET ring's sendmmsg, pinned to CPU 1), where
// the AF_XDP socket reads them, rewrites the MACs in place and sends them on (pinned
// to CPU 0). ns/op is per generated frame; fwd-pps is the forwarding rate while
// traffic lasted, drop-% the frames that did not arrive, fwd-cpu-ns/frame the
// forwarder thread's CPU per forwarded frame.

var (
	genMAC = [6]byte{2, 0, 0, 0, 0, 0x02}
	snkMAC = [6]byte{2, 0, 0, 0, 0, 0x05}
	outMAC = [6]byte{2, 0, 0, 0, 0, 0x13}
)

// benchFrames returns a batch of 60-byte UDP frames to the VIP from 256 clients.
func benchFrames(batch int) []dataplane.Frame {
	frames := make([]dataplane.Frame, batch)
	for i := range frames {
		src := netip.AddrFrom4([4]byte{198, 19, 2, byte(i)})
		b := udp4(src, vip4, uint16(10000+i), 53, make([]byte, 18)) // 14+20+8+18 = 60
		copy(b[0:6], dirMAC[:])
		copy(b[6:12], genMAC[:])
		frames[i] = dataplane.Frame{Buf: b, Len: len(b)}
	}
	return frames
}

// noIPv6 turns IPv6 off in the namespaces before their links exist, so that no
// router solicitation or MLD report is counted among the delivered frames.
func (l *lab) noIPv6(names ...string) {
	for _, ns := range names {
		l.run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	}
}

func pinned(cpu int, fn func()) <-chan struct{} {
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

func threadCPU() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_THREAD, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rxPackets(b *testing.B, ns, ifname string) uint64 {
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/sys/class/net/"+ifname+"/statistics/rx_packets").Output()
	if err != nil {
		b.Fatal(err)
	}
	var n uint64
	fmt.Sscan(string(out), &n)
	return n
}

// generate sends n frames from gen as fast as it takes them, on CPU 1, then closes
// stop after a grace period for the last frames to drain.
func generate(gen *afpacket.Ring, n int, stop dataplane.Link) <-chan struct{} {
	frames := benchFrames(gen.BatchSize())
	return pinned(1, func() {
		for sent := 0; sent < n; {
			k, err := gen.WriteBatch(frames[:min(len(frames), n-sent)])
			if err != nil {
				break
			}
			sent += max(k, 1)
		}
		time.Sleep(50 * time.Millisecond)
		stop.Close()
	})
}

func openRing(b *testing.B, ns, ifname string) *afpacket.Ring {
	var r *afpacket.Ring
	err := inNS(ns, func() (err error) {
		r, err = afpacket.Open(ifname, afpacket.Config{Packets: 256, Filter: &afpacket.Filter{}})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

// forward reads from in and writes to out, rewriting the MACs, until in is closed.
func forward(in, out *Socket, dst, src [6]byte) (fwd int, last time.Time, cpu time.Duration) {
	done := pinned(0, func() {
		cpu0 := threadCPU()
		defer func() { cpu = threadCPU() - cpu0 }()
		frames := make([]dataplane.Frame, in.BatchSize())
		for {
			n, err := in.ReadBatch(frames)
			if err != nil {
				return
			}
			for i := range frames[:n] {
				e := header.Ethernet(frames[i].Bytes())
				e.SetDestinationAddress(dst)
				e.SetSourceAddress(src)
			}
			k, err := out.WriteBatch(frames[:n])
			if err != nil {
				return
			}
			fwd += k
			last = time.Now()
		}
	})
	<-done
	return
}

func report(b *testing.B, in *Socket, start time.Time, fwd int, last time.Time, cpu time.Duration, delivered uint64) {
	if fwd == 0 {
		b.Fatal("nothing forwarded")
	}
	// Where frames were lost on the way in: the kernel's XDP_STATISTICS.
	if st, err := in.SocketStats(); err == nil {
		b.ReportMetric(float64(st.KernelRXRingFull), "rx-ring-full")
		b.ReportMetric(float64(st.KernelRXDropped), "rx-dropped")
		b.ReportMetric(float64(st.TXNoChunk+st.TXRingFull), "tx-drops")
	}
	b.ReportMetric(float64(fwd)/last.Sub(start).Seconds(), "fwd-pps")
	b.ReportMetric(100*(1-float64(delivered)/float64(b.N)), "drop-%")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(fwd), "fwd-cpu-ns/frame")
}

// BenchmarkSocketForward is BenchmarkRingForward on AF_XDP: in on eth0, out of eth1
// (a second device; the frames are copied from one UMEM into the other) to a sink.
func BenchmarkSocketForward(b *testing.B) {
	l := newLab(b)
	gen, dir, snk := l.ns("gen"), l.ns("dir"), l.ns("snk")
	l.noIPv6(gen, dir, snk)
	l.link(gen, "eth0", genMAC, dir, "eth0", dirMAC)
	l.link(dir, "eth1", outMAC, snk, "eth0", snkMAC)
	in := l.open(dir, "eth0", Config{Filter: testFilter()}).Sockets()[0]
	out := l.open(dir, "eth1", Config{}).Sockets()[0]
	tx := openRing(b, gen, "eth0")
	snk0 := rxPackets(b, snk, "eth0")

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	genDone := generate(tx, b.N, in)
	fwd, last, cpu := forward(in, out, snkMAC, outMAC)
	<-genDone
	b.StopTimer()
	report(b, in, start, fwd, last, cpu, rxPackets(b, snk, "eth0")-snk0)
}

// BenchmarkSocketForwardInPlace is one-armed, as gvs runs in the lab: frames go back
// out of the interface they came in on, sent from where the kernel wrote them (no
// copy in user space), and are counted at the generator.
func BenchmarkSocketForwardInPlace(b *testing.B) {
	l := newLab(b)
	gen, dir := l.ns("gen"), l.ns("dir")
	l.noIPv6(gen, dir)
	l.link(gen, "eth0", genMAC, dir, "eth0", dirMAC)
	s := l.open(dir, "eth0", Config{Filter: testFilter()}).Sockets()[0]
	tx := openRing(b, gen, "eth0")
	gen0 := rxPackets(b, gen, "eth0")

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	genDone := generate(tx, b.N, s)
	fwd, last, cpu := forward(s, s, genMAC, dirMAC)
	<-genDone
	b.StopTimer()
	report(b, s, start, fwd, last, cpu, rxPackets(b, gen, "eth0")-gen0)
	if st, err := s.SocketStats(); err == nil && st.TXCopied != 0 {
		b.Errorf("%d frames copied: in-place forwarding should copy none", st.TXCopied)
	}
}

// TestReadWriteAllocs: a ReadBatch/WriteBatch round (in place, and a frame copied
// from the caller's memory) allocates nothing.
func TestReadWriteAllocs(t *testing.T) {
	l, dir, cli := veth(t)
	s := l.open(dir, "eth0", Config{Filter: testFilter(), RingSize: 64, Frames: 256}).Sockets()[0]
	raw := l.raw(cli, "eth0")
	frame := udp4(cli4, vip4, 40000, 53, []byte("alloc test"))
	own := []dataplane.Frame{{Buf: append(make([]byte, dataplane.Headroom), frame...), Off: dataplane.Headroom, Len: len(frame)}}
	frames := make([]dataplane.Frame, s.BatchSize())
	stop := time.AfterFunc(10*time.Second, func() { s.Close() }) // bounds a lost frame
	defer stop.Stop()
	var failed error
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := unix.Write(raw.fd, frame); err != nil {
			failed = err
			return
		}
		n, err := s.ReadBatch(frames)
		if err != nil {
			failed = err
			return
		}
		if _, err := s.WriteBatch(frames[:n]); err != nil {
			failed = err
		}
		if _, err := s.WriteBatch(own); err != nil {
			failed = err
		}
	})
	if failed != nil {
		t.Fatal(failed)
	}
	if allocs != 0 {
		t.Errorf("%v allocations per round, want 0", allocs)
	}
}
