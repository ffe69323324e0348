package dataplane

import (
	"unsafe"

	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/internal/prefetch"
)

// Batch prefetch. A packet whose flow is not in the worker's flow cache goes to the
// shared connection table, and in a big table (or for a new flow) the bucket it reads
// is a cache miss: ~50 ns from L3, more from DRAM. When enough of the previous batch
// was looked up in the table's buckets (Worker.lookups: a table step at a cached
// flow's Ref, the first ACK and the FIN of a flow the cache holds, reads no bucket),
// Process first walks the batch, works out each frame's client
// tuple with a few loads at fixed offsets (header.PeekSourceTuple), and touches its
// bucket, so that the misses of the whole batch overlap instead of being paid one
// after another. When the flow cache serves the traffic (the busy established case)
// the pass is skipped and costs nothing. The pass is only a hint: the real parse comes
// after and decides everything.
//
// Of a flow's packets, those that open, close or reset it (SYN, FIN, RST) always go to
// the table, and the others mostly do not: the flow cache serves them once the flow is
// established. When few of the previous batch's table frames were TCP segments without
// those flags (fewer than 1/prefetchShare of the batch: short flows, new connections),
// the pass prefetches only the frames that have them (and UDP), and spends no hash on
// the frames the cache will serve; when more were (established flows the cache does
// not hold: a big table), it prefetches every frame.
//
// While the table's buckets are all in its small block (conntrack.Table.BucketsSmall:
// no shard has outgrown 256 buckets, which stay in cache) there is no bucket miss to
// hide, and the pass is not made: on gvs bench synth's default trace (about a
// thousand connections) skipping it made the replay 1.9% faster (88 pairs; the
// pass ran in 24 of 157 batches, about 900 ns each, and saved nothing).

// The flow cache's slots and the entries the table steps at a slot's Ref get a pass of
// their own (prefetchFlows), made whenever a quarter of the previous batch's frames
// made a new connection or were stepped at their slot's Ref (short flows; not the
// established flows, whose busy slots stay in cache): the slot a packet's flow
// hashes to (its first line, and for a SYN also the second, which the new flow's
// store writes) and, for a TCP segment its slot will send to the table at its Ref (a
// first ACK, a FIN), the table's entry. A new connection's entry is prefetched by the
// table itself, at the shard's insert before (conntrack's allocLocked). The pass
// costs about 160 instructions a frame it is made for (67 a packet on synth's default
// trace) and saves misses that cost 100 ns and more on a VM whose memory is slow (an
// AMD EPYC, 2 vCPUs): there `BenchmarkNewConnection/live=6k` 520 → 428 ns, live=400k
// 911 → 775, the default trace's replay 1–12% faster in five series of paired runs,
// established flows unchanged (docs/benchmarks.md §1, stop 32).

// prefetchShare is the fraction (1/prefetchShare) of a batch that must have been
// looked up in the table for the next batch to be prefetched.
const prefetchShare = 4

// opensOrCloses are the TCP flags of a segment that always goes to the table.
const opensOrCloses = header.TCPFlagSYN | header.TCPFlagFIN | header.TCPFlagRST

// prefetch touches the table bucket of every IPv4/IPv6 TCP or UDP frame in the batch
// (with narrow, of those but the TCP segments without SYN, FIN or RST), keyed as an
// inbound lookup (client = source), and returns the flow hash of each frame (0 for a
// frame it did not prefetch), which inbound hands to the table for the
// frame's lookup (Worker.hash) instead of hashing its key again. That is sound
// because a frame Decode reads as TCP or UDP with ports has the source tuple the
// peek read (header's FuzzDecode holds them equal), and inbound keys the lookup
// with that tuple.
func (w *Worker) prefetch(in []Frame, narrow bool) []uint64 {
	t := w.d.table
	w.prefetched++
	hashes := w.hashes[:len(in)]
	var addr [16]byte
	for i := range in {
		proto, v6, port, flags, ok := header.PeekSourceTuple(in[i].Bytes(), &addr)
		if !ok || (narrow && proto == header.IPProtoTCP && flags&opensOrCloses == 0) {
			hashes[i] = 0
			continue
		}
		hashes[i] = t.Hash(proto, v6, &addr, port)
	}
	t.Prefetch(hashes)
	return hashes
}

// prefetchFlows touches the flow-cache slot of every frame of the batch that
// header.PeekFlow4 reads (DecodeFast's kind: the common IPv4 TCP/UDP frame), then,
// for the TCP segments whose slot holds a flow that will go to the table at its Ref
// (the slot does not serve the segment's flags), the table's entry. Which slot and
// which entry are only hints: inbound decides everything again.
func (w *Worker) prefetchFlows(in []Frame) {
	w.flowPasses++
	fc := w.flows
	steps, n := w.steps[:len(in)], 0
	for i := range in {
		proto, c, v, cport, vport, flags, ok := header.PeekFlow4(in[i].Bytes())
		if !ok {
			continue
		}
		j := uint32(flowHash4(proto, c, cport, v, vport) >> (64 - flowCacheBits))
		e := &fc.slots[j]
		prefetch.Line(unsafe.Pointer(e))
		if flags&header.TCPFlagSYN != 0 {
			prefetch.Line(unsafe.Pointer(&e.daddr)) // store writes both lines
		} else if proto == header.IPProtoTCP && fc.isUsed(j) {
			steps[n] = j | uint32(flags)<<16 // j < 1<<16
			n++
		}
	}
	t := w.d.table
	for _, x := range steps[:n] {
		if e := &fc.slots[x&0xffff]; !e.serves(header.IPProtoTCP, uint8(x>>16)) {
			t.PrefetchRef(e.ref)
		}
	}
}

// The slot index fits the low half of a steps word.
var _ [1<<16 - flowCacheSize]struct{}
