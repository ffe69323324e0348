//go:build linux

package afpacket

import (
	"encoding/binary"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/header"
	"golang.org/x/sys/unix"
)

// BenchmarkRingLatency takes the latency a V2 ring adds at one frame at a time apart,
// stage by stage (docs/lab.md "Receive ring: V2 or V3"): a generator thread writes a
// frame to its end of a veth, the director's ring reads it and sends it back with its
// MACs swapped, the generator takes it back by polling its socket (so that its own
// wake-up is not measured). Per frame:
//
//   - in: from the generator's write to the kernel's timestamp in the slot's header
//     (tp_sec, tp_nsec; the veth and packet_rcv, on the generator's CPU);
//   - dwell: from that timestamp to the reader having the frame (the wake-up);
//   - send: the WriteBatch (sendmmsg) that sends it back;
//   - rtt: the whole round trip.
//
// Ways to wait: "poller" (the runtime's poller, no nap), "nap" (the poller and the
// default PollDelay), "ppoll" (a reader locked to its thread blocking in ppoll(2),
// as a C forwarder does), "spinN" (Config.Spin of N µs, then the poller). Where:
// "apart" puts the reader on CPU 0 and the generator on CPU 1, "same" both on CPU 1.
// Gaps: "b2b" sends the next frame as soon as the last is back; "gapN" waits N µs
// (busy, on the generator's CPU) in between. fwd-cpu-µs/frame is the process's CPU
// time but the generator thread's, per frame.
func BenchmarkRingLatency(b *testing.B) {
	if runtime.NumCPU() < 2 {
		b.Skip("needs two CPUs")
	}
	for _, gap := range []time.Duration{0, 150 * time.Microsecond} {
		for _, where := range []string{"apart", "same"} {
			for _, mode := range []string{"poller", "nap", "ppoll", "spin50", "spin200"} {
				name := mode + "/" + where + "/b2b"
				if gap > 0 {
					name = mode + "/" + where + "/gap" + strconv.Itoa(int(gap/time.Microsecond))
				}
				b.Run(name, func(b *testing.B) { benchmarkRingLatency(b, mode, where == "same", gap) })
			}
		}
	}
}

// rlSetProcessAffinity pins every thread of the process to cpus (-1: all CPUs).
// Threads made later inherit their creator's affinity.
func rlSetProcessAffinity(cpu int) {
	var set unix.CPUSet
	if cpu < 0 {
		for i := range runtime.NumCPU() {
			set.Set(i)
		}
	} else {
		set.Set(cpu)
	}
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		if tid, err := strconv.Atoi(t.Name()); err == nil {
			unix.SchedSetaffinity(tid, &set)
		}
	}
}

func rlProcessCPU() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rlPercentiles returns p50 and p99 of v in µs.
func rlPercentiles(v []int64) (p50, p99 float64) {
	if len(v) == 0 {
		return 0, 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return float64(s[len(s)/2]) / 1e3, float64(s[len(s)*99/100]) / 1e3
}

func benchmarkRingLatency(b *testing.B, mode string, same bool, gap time.Duration) {
	l, gen, dir := rlPair(b)
	cfg := Config{Version: 2, Packets: 1024, Filter: rlDirFilter(), PollDelay: -1}
	switch mode {
	case "nap":
		cfg.PollDelay = 0 // the default
	case "spin50":
		cfg.Spin = 50 * time.Microsecond
	case "spin200":
		cfg.Spin = 200 * time.Microsecond
	}
	r := l.openRing(dir, "eth0", cfg)
	peer := l.raw(gen, "eth0")
	if err := unix.SetNonblock(peer.fd, true); err != nil {
		b.Fatal(err)
	}
	frame := rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, 1, 0, rlUDP(40000, 80, []byte("ping")))))
	fwdCPU, genCPU := 0, 1
	if same {
		fwdCPU = 1
	}
	rlSetProcessAffinity(fwdCPU)
	b.Cleanup(func() { rlSetProcessAffinity(-1) })

	n := b.N
	tp := make([]int64, n)   // kernel timestamp of frame i
	rd := make([]int64, n)   // when the reader had it
	sent := make([]int64, n) // when its WriteBatch returned
	var seen atomic.Int64
	var stop atomic.Bool
	record := func() {
		i := int(seen.Load())
		if i >= n {
			return
		}
		now := time.Now().UnixNano()
		x := &r.v2
		s := r.slot((x.cur - 1 + x.nframes) % x.nframes)
		sec, nsec := binary.NativeEndian.Uint32(s[16:]), binary.NativeEndian.Uint32(s[20:])
		tp[i], rd[i] = int64(sec)*1e9+int64(nsec), now
	}
	swap := func(frames []dataplane.Frame) {
		for i := range frames {
			e := header.Ethernet(frames[i].Bytes())
			e.SetDestinationAddress(rlGenMAC)
			e.SetSourceAddress(rlDirMAC)
		}
	}
	sentOne := func() {
		if i := seen.Load(); i < int64(n) {
			sent[i] = time.Now().UnixNano()
			seen.Add(1)
		}
	}
	fwdDone := make(chan struct{})
	if mode == "ppoll" {
		go func() {
			defer close(fwdDone)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			frames := make([]dataplane.Frame, r.BatchSize())
			fds := []unix.PollFd{{Fd: int32(r.fd), Events: unix.POLLIN}}
			var ts unix.Timespec
			for !stop.Load() {
				k, _, _, _ := r.fillV2(frames)
				if k == 0 {
					r.returnSlots()
					if !r.ready() {
						ts = unix.NsecToTimespec(int64(50 * time.Millisecond)) // ppoll(2) leaves the time remaining in it
						// Raw, as a C forwarder blocks: the thread keeps its P.
						unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), 1, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
					}
					continue
				}
				record()
				swap(frames[:k])
				r.WriteBatch(frames[:k])
				sentOne()
				r.returnSlots()
			}
		}()
	} else {
		go func() {
			defer close(fwdDone)
			frames := make([]dataplane.Frame, r.BatchSize())
			for {
				k, err := r.ReadBatch(frames)
				if err != nil {
					return
				}
				record()
				swap(frames[:k])
				r.WriteBatch(frames[:k])
				sentOne()
			}
		}()
	}

	t0 := make([]int64, n)
	back := make([]int64, n)
	var genThreadCPU time.Duration
	cpu0 := rlProcessCPU()
	b.ResetTimer()
	genDone := rlPinned(genCPU, func() {
		g0 := rlThreadCPU()
		defer func() { genThreadCPU = rlThreadCPU() - g0 }()
		buf := make([]byte, 2048)
		for i := range n {
			if gap > 0 {
				for end := time.Now().Add(gap); time.Now().Before(end); {
				}
			}
			t0[i] = time.Now().UnixNano()
			if _, err := unix.Write(peer.fd, frame); err != nil {
				b.Error(err)
				return
			}
			deadline := time.Now().Add(time.Second)
			for {
				_, err := unix.Read(peer.fd, buf)
				if err == nil {
					back[i] = time.Now().UnixNano()
					break
				}
				if (err != unix.EAGAIN && err != unix.EINTR) || time.Now().After(deadline) {
					b.Errorf("frame %d not back: %v", i, err)
					return
				}
			}
		}
	})
	<-genDone
	b.StopTimer()
	fwdCPUTime := rlProcessCPU() - cpu0 - genThreadCPU
	stop.Store(true)
	if mode == "ppoll" {
		<-fwdDone // it holds no reference: the ring must stay mapped until it stops
	}
	r.Close()
	<-fwdDone
	if b.Failed() {
		return
	}
	m := int(min(seen.Load(), int64(n)))
	var in, dwell, send, rtt []int64
	for i := range m {
		in = append(in, tp[i]-t0[i])
		dwell = append(dwell, rd[i]-tp[i])
		send = append(send, sent[i]-rd[i])
		rtt = append(rtt, back[i]-t0[i])
	}
	for _, s := range []struct {
		name string
		v    []int64
	}{{"in", in}, {"dwell", dwell}, {"send", send}, {"rtt", rtt}} {
		p50, p99 := rlPercentiles(s.v)
		b.ReportMetric(p50, s.name+"-p50-µs")
		if s.name == "dwell" || s.name == "rtt" {
			b.ReportMetric(p99, s.name+"-p99-µs")
		}
	}
	b.ReportMetric(float64(fwdCPUTime.Nanoseconds())/1e3/float64(max(m, 1)), "fwd-cpu-µs/frame")
}
