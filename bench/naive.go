package bench

import (
	"encoding/binary"
	"runtime"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
)

// Naive is the comparator for the in-process pipeline: the load balancer a Go
// programmer writes in an afternoon. A map from the 5-tuple to a real server,
// round-robin on a miss, the entry deleted on FIN or RST; it rewrites the MACs and
// decrements the TTL (IPv4 header checksum updated), and knows nothing else — no
// state machine, timeouts, templates, schedulers, counters per real server, ICMP or
// NAT. It exists so `gvs bench replay --baseline` and BenchmarkReplayVsNaive can
// say how much IPVS's semantics cost over the obvious program on the same frames.
//
// It handles untagged IPv4 and IPv6 (no extension headers) TCP and UDP; anything
// else is dropped and counted.
type Naive struct {
	rs        [][6]byte
	mac       [6]byte
	flows     map[naiveKey]uint32
	next      uint32
	Forwarded uint64
	Dropped   uint64
}

type naiveKey struct {
	src, dst     [16]byte
	sport, dport uint16
	proto        uint8
}

// NewNaive returns a comparator sending to the real servers' MACs from mac.
func NewNaive(realServers [][6]byte, mac [6]byte) *Naive {
	return &Naive{rs: realServers, mac: mac, flows: make(map[naiveKey]uint32)}
}

// Process forwards a batch in place, appending the frames to send to out.
func (n *Naive) Process(in []dataplane.Frame, out []dataplane.Frame) []dataplane.Frame {
	for i := range in {
		if n.one(in[i].Bytes()) {
			n.Forwarded++
			out = append(out, in[i])
		} else {
			n.Dropped++
		}
	}
	return out
}

func (n *Naive) one(b []byte) bool {
	if len(b) < 14 || len(n.rs) == 0 {
		return false
	}
	var k naiveKey
	var l4 int
	switch binary.BigEndian.Uint16(b[12:]) {
	case 0x0800:
		if len(b) < 34 {
			return false
		}
		ihl := int(b[14]&0x0f) * 4
		if ihl < 20 || b[22] <= 1 {
			return false
		}
		k.proto = b[23]
		copy(k.src[:4], b[26:30])
		copy(k.dst[:4], b[30:34])
		l4 = 14 + ihl
		// TTL−1: the checksum word holding the TTL goes down by 0x0100.
		b[22]--
		sum := uint32(binary.BigEndian.Uint16(b[24:])) + 0x0100
		binary.BigEndian.PutUint16(b[24:], uint16(sum+sum>>16))
	case 0x86dd:
		if len(b) < 54 || b[21] <= 1 {
			return false
		}
		k.proto = b[20]
		copy(k.src[:], b[22:38])
		copy(k.dst[:], b[38:54])
		l4 = 54
		b[21]--
	default:
		return false
	}
	if (k.proto != 6 && k.proto != 17) || len(b) < l4+4 {
		return false
	}
	k.sport, k.dport = binary.BigEndian.Uint16(b[l4:]), binary.BigEndian.Uint16(b[l4+2:])
	rs, ok := n.flows[k]
	if !ok {
		rs = n.next
		n.next = (n.next + 1) % uint32(len(n.rs))
		n.flows[k] = rs
	}
	if k.proto == 6 && len(b) > l4+13 && b[l4+13]&0x05 != 0 { // FIN or RST
		delete(n.flows, k)
	}
	copy(b[0:6], n.rs[rs][:])
	copy(b[6:12], n.mac[:])
	return true
}

// NaiveResult is what a naive replay measured.
type NaiveResult struct {
	Packets         int
	Process         time.Duration
	NsPerPacket     float64
	AllocsPerPacket float64
	Forwarded       uint64
}

// ReplayNaive runs the trace through n in batches, timing only Process, as Replay
// times the Director.
func ReplayNaive(n *Naive, t *Trace, batch int) NaiveResult {
	if batch <= 0 {
		batch = 64
	}
	out := make([]dataplane.Frame, 0, batch)
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	var spent time.Duration
	for i := 0; i < len(t.Frames); i += batch {
		j := min(i+batch, len(t.Frames))
		start := time.Now()
		out = n.Process(t.Frames[i:j], out[:0])
		spent += time.Since(start)
	}
	runtime.ReadMemStats(&ms1)
	r := NaiveResult{Packets: len(t.Frames), Process: spent, Forwarded: n.Forwarded}
	if r.Packets > 0 {
		r.NsPerPacket = float64(spent.Nanoseconds()) / float64(r.Packets)
		r.AllocsPerPacket = float64(ms1.Mallocs-ms0.Mallocs) / float64(r.Packets)
	}
	return r
}

// Clone returns a deep copy of the trace, so two replays (each rewrites frames in
// place) can start from the same bytes.
func (t *Trace) Clone() *Trace {
	c := &Trace{Times: t.Times, Bytes: t.Bytes, Load: t.Load, Frames: make([]dataplane.Frame, len(t.Frames))}
	arena := make([]byte, 0, t.Bytes+len(t.Frames)*dataplane.Headroom)
	for i, f := range t.Frames {
		base := len(arena)
		arena = append(arena, f.Buf[:f.Off+f.Len]...)
		c.Frames[i] = dataplane.Frame{Buf: arena[base : base+f.Off+f.Len : base+f.Off+f.Len], Off: f.Off, Len: f.Len, CsumPartial: f.CsumPartial}
	}
	return c
}

// CopyFrom restores t's frames from src, a Clone of the same trace (between benchmark
// rounds: replays rewrite frames in place, and TUN moves Off).
func (t *Trace) CopyFrom(src *Trace) {
	for i := range t.Frames {
		f, s := &t.Frames[i], &src.Frames[i]
		copy(f.Buf, s.Buf)
		f.Off, f.Len, f.CsumPartial = s.Off, s.Len, s.CsumPartial
	}
}
