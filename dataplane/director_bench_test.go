package dataplane

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/ipvs"
)

// flowFrame returns template with client address 198.19.(i>>16).(i>>8)… and source
// port varied per flow i, and a fixed IPv4 header checksum (Decode verifies it; the TCP
// checksum is not looked at on this path).
func flowFrame(template []byte, i int) []byte {
	b := append([]byte(nil), template...)
	ip := header.IPv4(b[header.EthernetHeaderLen:])
	b[header.EthernetHeaderLen+12] = 198
	b[header.EthernetHeaderLen+13] = 19 + byte(i>>24)
	b[header.EthernetHeaderLen+14] = byte(i >> 16)
	b[header.EthernetHeaderLen+15] = byte(i >> 8)
	binary.BigEndian.PutUint16(b[header.EthernetHeaderLen+20:], uint16(1024+i&0xff))
	ip.SetChecksum(0)
	ip.SetChecksum(^header.Checksum(b[header.EthernetHeaderLen:header.EthernetHeaderLen+20], 0))
	return b
}

// batchOf copies frames into headroom buffers; restore puts the original bytes back
// (the pipeline rewrites in place) — a memcpy of a few dozen bytes per frame, which
// is included in the figures.
type benchBatch struct {
	orig [][]byte
	in   []Frame
}

func newBatch(frames [][]byte) *benchBatch {
	bb := &benchBatch{orig: frames}
	for _, f := range frames {
		bb.in = append(bb.in, inFrame(f))
	}
	return bb
}

// restoreDR undoes what DR changes: the destination MAC (the director only forwards
// frames sent to it), the TTL and the IPv4 header checksum — nine bytes per frame.
func (bb *benchBatch) restoreDR() {
	for i := range bb.in {
		f := &bb.in[i]
		copy(f.Buf[f.Off:f.Off+6], bb.orig[i][:6])
		o := f.Off + header.EthernetHeaderLen
		f.Buf[o+8] = bb.orig[i][header.EthernetHeaderLen+8]
		f.Buf[o+10], f.Buf[o+11] = bb.orig[i][header.EthernetHeaderLen+10], bb.orig[i][header.EthernetHeaderLen+11]
	}
}

func (bb *benchBatch) restore() {
	for i := range bb.in {
		f := &bb.in[i]
		f.Off, f.Len = Headroom, len(bb.orig[i])
		copy(f.Buf[Headroom:], bb.orig[i])
	}
}

const benchBatchSize = 64

// benchTuple is an IPv4 client address, source port and header checksum, as they sit
// in a frame (network byte order).
type benchTuple [8]byte

func (f *Frame) setTuple(t *benchTuple) {
	b := f.Buf[f.Off+header.EthernetHeaderLen:]
	copy(b[12:16], t[:4])
	copy(b[20:22], t[4:6])
	copy(b[10:12], t[6:8])
}

// BenchmarkEstablishedDR4 is the steady state of a DR director: ACKs of established
// IPv4 flows, 64 per Process call, one core. ns/op is per packet.

// BenchmarkEstablished1M is the same with 1,000,000 live connections: hot4k sends
// the packets of 4,096 random flows among them (a busy working set in a big table),
// uniform draws from 262,144 random flows so that every packet's table bucket and
// entry miss the CPU caches and the flow cache cannot help: the DRAM-bound worst case.
func BenchmarkEstablished1M(b *testing.B) {
	b.Run("hot4k", func(b *testing.B) { benchEstablished(b, 1_000_000, 4096) })
	b.Run("uniform", func(b *testing.B) { benchEstablished(b, 1_000_000, 262144) })
}

func BenchmarkEstablishedDR4(b *testing.B) {
	benchEstablished(b, 64, 64)
}

// BenchmarkEstablishedSync is BenchmarkEstablishedDR4 and hot4k with cluster sync off
// and on (sync.go): what the sync rules cost an established packet, the flow cache's
// countdown, the table's count and rules, and the drain of the rings (by the daemon's
// drainer on another core, here inline every 64 batches) included.
func BenchmarkEstablishedSync(b *testing.B) {
	for _, c := range []struct {
		name            string
		flows, distinct int
	}{{"dr4", 64, 64}, {"hot4k", 1_000_000, 4096}} {
		for _, on := range []bool{false, true} {
			name := c.name + "/off"
			if on {
				name = c.name + "/on"
			}
			b.Run(name, func(b *testing.B) {
				o := testOptions()
				if on {
					o = syncOptions()
				}
				benchEstablishedWith(b, o, []ipvs.Service{rrService(ipvs.DR, 80)}, c.flows, c.distinct)
			})
		}
	}
}

// BenchmarkEstablishedManyVIPs is BenchmarkEstablishedDR4 with more VIPs than a small
// set's IPv4 list holds (addrSetLinear): every frame's VIP test asks the VIP set's
// hash table.
func BenchmarkEstablishedManyVIPs(b *testing.B) {
	svcs := []ipvs.Service{rrService(ipvs.DR, 80)}
	for i := range addrSetLinear {
		s := rrService(ipvs.DR, 80)
		s.Key = ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 1, byte(i)}), 80))
		svcs = append(svcs, s)
	}
	benchEstablishedWith(b, testOptions(), svcs, 64, 64)
}

func benchEstablished(b *testing.B, flows, distinct int) {
	benchEstablishedWith(b, testOptions(), []ipvs.Service{rrService(ipvs.DR, 80)}, flows, distinct)
}

func benchEstablishedWith(b *testing.B, o Options, svcs []ipvs.Service, flows, distinct int) {
	o.ConnMax = 1 << 21
	o.ConnShards = 256
	d, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Apply(svcs); err != nil {
		b.Fatal(err)
	}
	w := d.NewWorker(benchBatchSize)
	syn := dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, syn: true}.frame(b)
	ack := dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, ack: true, plen: 10}.frame(b)
	out := make([]Frame, 0, 2*benchBatchSize)
	// Establish every flow: SYN then ACK, batch by batch.
	for i := 0; i < flows; i += benchBatchSize {
		var syns, acks [][]byte
		for j := i; j < min(i+benchBatchSize, flows); j++ {
			syns = append(syns, flowFrame(syn, j))
			acks = append(acks, flowFrame(ack, j))
		}
		out = w.Process(newBatch(syns).in, 0, out[:0])
		out = w.Process(newBatch(acks).in, 0, out[:0])
	}
	if d.Table().Len() != flows {
		b.Fatalf("%d connections, want %d (reasons %v)", d.Table().Len(), flows, w.C.Reasons)
	}
	// Pre-build batches holding `distinct` random flows. Beyond ringFrames flows the
	// frame buffers are reused like the slots of a receive ring (live, a frame is
	// fresh in cache, not a DRAM miss): per packet the harness writes the flow's
	// client address, port and IPv4 checksum (8 bytes, read in sequence) into the slot.
	const ringFrames = 4096
	rng := rand.New(rand.NewPCG(1, 2))
	var batches []*benchBatch
	var tuples []benchTuple
	for range max(1, min(distinct, ringFrames)/benchBatchSize) {
		var fs [][]byte
		for range benchBatchSize {
			fs = append(fs, flowFrame(ack, rng.IntN(flows)))
		}
		batches = append(batches, newBatch(fs))
	}
	if distinct > ringFrames {
		for range distinct {
			f := flowFrame(ack, rng.IntN(flows))
			var t benchTuple
			copy(t[:], f[header.EthernetHeaderLen+12:header.EthernetHeaderLen+16])
			copy(t[4:], f[header.EthernetHeaderLen+20:header.EthernetHeaderLen+22])
			copy(t[6:], f[header.EthernetHeaderLen+10:header.EthernetHeaderLen+12])
			tuples = append(tuples, t)
		}
	}
	fwd := w.C.Forwarded
	defer lockThread()()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := threadCPU()
	for i := 0; i < b.N; i += benchBatchSize {
		bb := batches[(i/benchBatchSize)%len(batches)]
		bb.restoreDR()
		if tuples != nil {
			k := i % len(tuples)
			for j := range bb.in {
				bb.in[j].setTuple(&tuples[(k+j)%len(tuples)])
			}
		}
		out = w.Process(bb.in, 1e9, out[:0])
		if i%4096 == 0 {
			d.DrainSync(1<<20, func(*conntrack.Conn) {}) // the daemon's drainer, timed here
		}
	}
	b.StopTimer()
	cpu := threadCPU() - cpu0
	if w.C.Forwarded-fwd < uint64(b.N) {
		b.Fatalf("forwarded %d of %d", w.C.Forwarded-fwd, b.N)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/packet") // see threadCPU
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpps")
}

// BenchmarkNewConnection measures SYNs of new flows at a steady 6,400 a second of trace
// time (10 ms per batch of 64): service lookup, scheduling, insertion and the
// amortised expiry of the flows of earlier rounds. Source ports move on every round
// (4,096 frames), so a client tuple comes back only after 128 s of trace time. With
// the kernel's 60 s SYN_RECV timeout the flows of the last 60 s would be 384,000
// connections, but they are all unconfirmed (SYN_RECV), so the unconfirmed budget
// (docs/defense.md §7: a service's share is conn_max/4 by default) holds the table
// at 262,144 in steady state, evicting the oldest (every lookup and insert is a cache
// miss; the "conns" metric says how many); with a 1 s timeout about 6,400 (the CPU
// cost alone).
func BenchmarkNewConnection(b *testing.B) {
	b.Run("live=400k", func(b *testing.B) { benchNewConnection(b, 60*time.Second, nil) })
	b.Run("live=6k", func(b *testing.B) { benchNewConnection(b, time.Second, nil) })
	// With the per-source limit on (docs/defense.md §3), at a rate no SYN exceeds:
	// the cost of the check itself.
	b.Run("live=6k,source_limit", func(b *testing.B) {
		benchNewConnection(b, time.Second, func(o *Options) {
			o.Defense.SourceConnRate, o.Defense.SourceConnBurst = 100_000_000, 1_000_000
		})
	})
}

func benchNewConnection(b *testing.B, synRecv time.Duration, tweak func(*Options)) {
	o := testOptions()
	if tweak != nil {
		tweak(&o)
	}
	o.Timeouts.TCP[conntrack.StateSynRecv] = synRecv
	o.ConnMax = 1 << 20
	o.ConnShards = 256
	d, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	if err := d.Apply([]ipvs.Service{rrService(ipvs.DR, 80)}); err != nil {
		b.Fatal(err)
	}
	w := d.NewWorker(benchBatchSize)
	syn := dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, syn: true}.frame(b)
	// 4,096 frame buffers reused round after round, like the slots of a receive
	// ring (the pipeline's frames are fresh in cache live, not DRAM misses).
	const nflows = 1 << 12
	var batches []*benchBatch
	for i := 0; i < nflows; i += benchBatchSize {
		var fs [][]byte
		for j := i; j < i+benchBatchSize; j++ {
			fs = append(fs, flowFrame(syn, j))
		}
		batches = append(batches, newBatch(fs))
	}
	out := make([]Frame, 0, 2*benchBatchSize)
	now := int64(0)
	const step = 10 * int64(time.Millisecond)
	round := 0
	// Each round moves every flow's source port on (the IPv4 header checksum does
	// not cover it and the TCP checksum is not verified), so every SYN is new. The
	// port is written into the frame buffers too, so that per batch only what DR
	// rewrites has to be put back (restoreDR), as in the established benchmarks.
	next := func(bb *benchBatch, i int) {
		if i%len(batches) == 0 {
			round++
			for _, x := range batches {
				for j, f := range x.orig {
					p := binary.BigEndian.Uint16(f[header.EthernetHeaderLen+20:])
					p = 1024 + (p-1024+256)%(256*200)
					binary.BigEndian.PutUint16(f[header.EthernetHeaderLen+20:], p)
					binary.BigEndian.PutUint16(x.in[j].Buf[x.in[j].Off+header.EthernetHeaderLen+20:], p)
				}
			}
		}
		bb.restoreDR()
		out = w.Process(bb.in, now, out[:0])
		now += step
	}
	// Warm up until the first flows have expired and ten rounds more, so that the
	// table, slabs and wheels are at their steady size (amortised allocation).
	for i := range int(int64(synRecv)/step) + 10*len(batches) {
		next(batches[i%len(batches)], i)
	}
	conns := w.dstats[0].Conns + w.dstats[1].Conns
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += benchBatchSize {
		k := i / benchBatchSize
		next(batches[k%len(batches)], k)
	}
	b.StopTimer()
	if got := w.dstats[0].Conns + w.dstats[1].Conns - conns; got < uint64(b.N) {
		b.Fatalf("%d new connections for %d SYNs (reasons %v)", got, b.N, w.C.Reasons)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/packet")
	b.ReportMetric(float64(d.Table().Len()), "conns")
}
