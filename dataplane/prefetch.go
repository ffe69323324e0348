package dataplane

import "github.com/gvs-lb/gvs/dataplane/header"

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
