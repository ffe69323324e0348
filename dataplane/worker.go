package dataplane

import (
	"sync/atomic"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/sched"
)

// A Frame is one Ethernet frame held in a buffer with headroom: the frame is
// Buf[Off:Off+Len], and Buf[:Off] may be used to prepend headers (TUN encapsulation)
// in place. Input buffers should keep Headroom bytes in front of the frame.
type Frame struct {
	Buf      []byte
	Off, Len int
	// CsumPartial marks a frame whose TCP/UDP checksum the sender left to checksum
	// offload (TP_STATUS_CSUMNOTREADY): the Director completes it in software before
	// forwarding (see header.CompleteChecksum).
	CsumPartial bool
}

// Bytes returns the frame.
func (f *Frame) Bytes() []byte { return f.Buf[f.Off : f.Off+f.Len] }

// Stats are the IPVS counters of a service or real server (ipvsadm --stats).
type Stats struct {
	Conns, InPkts, OutPkts, InBytes, OutBytes uint64
}

// Counters are a worker's frame counters. Every frame handed to Process is counted
// once in In and then either in Forwarded or under one reason in Reasons; generated
// ICMP errors are counted in Generated.
type Counters struct {
	In, Forwarded, Generated uint64
	// ICMPSuppressed counts ICMP errors that were due but not sent: RFC 1122 §3.2.2
	// forbids them (the offending packet was multicast, an ICMP error…), or more than
	// one per input frame was due in a batch.
	ICMPSuppressed uint64
	// ICMPRateLimited counts ICMP errors that were due but over a rate limit
	// (icmp_ratelimit, icmp_msgs_per_sec: docs/defense.md §2).
	ICMPRateLimited uint64
	// SloppyCreated counts TCP connections created by a packet without SYN
	// (sloppy_tcp): flows picked up mid-stream, as after a failover or a router
	// moving flows between cluster directors.
	SloppyCreated uint64
	Reasons       [NumReasons]uint64
	Malformed     [header.NumDrops]uint64
}

// A Worker runs the pipeline for one goroutine: it owns its scratch space, its
// counters and the buffers of the ICMP errors it generates. It is not safe for
// concurrent use; use one Worker per goroutine (per AF_PACKET ring). Its counters
// and stats may be read only by that goroutine or after it stopped.
type Worker struct {
	d    *Director
	p    header.Parsed
	key  conntrack.Key
	conn conntrack.Conn
	pk   sched.Packet
	// out is the frames to send of the current Process call: its out, appended to by
	// the pipeline's steps (queue) and handed back by Process, which clears it. Held
	// here rather than passed through and returned by every step, whose spills of
	// it each packet paid.
	out []Frame

	C        Counters
	dstats   []Stats // by dest id
	sstats   []Stats // by service id
	icmp     [][]byte
	nicmp    int
	ipid     uint16
	s        *snapshot // the generation of the current batch (or newer: see destInfo)
	now      int64     // the current batch's time
	batchGen uint64    // the generation the last batch started on
	pub      published
	flows    *flowCache // this worker's established flows (see flowCache)
	nc       newConn    // the current packet's exchange with Pick (newconn.go)
	svcMemo  svcMemo    // the last new flow's service (newconn.go)
	twoPass  bool       // tests: In, then schedule, instead of InOrInsert
	inRefAll bool       // tests: every step at a slot's Ref through InRef, none through StepRef

	// Cluster sync (sync.go): the sync-event ring (nil until sync is on; never nil
	// in a batch whose settings carry the rules: syncRingsLocked) and a scratch
	// connection for the table's answers.
	ring     atomic.Pointer[syncRing]
	syncConn conntrack.Conn
	fh       uint64 // the current inbound packet's flowHash (its slot and its events' check word), or 0: not computed

	// tableRefs counts the frames of the current batch that went to the connection
	// table, lookups those of them whose flow was looked up in its bucket (not
	// stepped at its flow slot's Ref: Table.StepRef or InRef): lookups decides whether the
	// next batch is prefetched (prefetch.go).
	tableRefs, lookups int
	// churn counts the frames of the current batch that made a new connection, and
	// refSteps0 is refSteps at the batch's start. The two together (churn plus the
	// Ref steps since refSteps0) are the batch's short-flow frames, whose slots and
	// entries are cold lines: they decide whether the next batch gets the flow pass
	// (prefetchFlows).
	churn     int
	refSteps0 uint64
	// ackRefs counts the lookups that were TCP segments without SYN, FIN or RST:
	// fewer than 1/prefetchShare of the batch, and the next prefetch is narrow.
	ackRefs    int
	prefetched uint64 // batches prefetched (for tests)
	flowPasses uint64 // batches given the flow pass, prefetchFlows (for tests)
	refSteps   uint64 // table packets stepped at their flow slot's Ref (the flow pass's gate; tests)
	// The flow hashes the prefetch computed (conntrack.Table.Hash of each frame's
	// peeked client tuple, 0 for a frame it did not peek), by frame, and the current
	// frame's, which inbound hands to the table instead of hashing the key again
	// (prefetch.go). 0: none, the table hashes.
	hashes []uint64
	hash   uint64
	steps  []uint32 // prefetchFlows' scratch, a batch's worth
}

// NewWorker returns a worker whose Process calls take at most batch frames.
func (d *Director) NewWorker(batch int) *Worker {
	w := &Worker{d: d, icmp: make([][]byte, batch), flows: new(flowCache), hashes: make([]uint64, batch), steps: make([]uint32, batch)}
	for i := range w.icmp {
		w.icmp[i] = make([]byte, header.ICMPErrorMaxFrame)
	}
	w.flows.prefault()
	d.mu.Lock()
	if d.opts.Sync != nil {
		w.ring.Store(newSyncRing())
	}
	d.wmu.Lock()
	d.workers = append(d.workers, w)
	d.wmu.Unlock()
	d.mu.Unlock()
	return w
}

// DestStats returns the worker's counters for a dest id.
func (w *Worker) DestStats(id uint32) Stats {
	if int(id) < len(w.dstats) {
		return w.dstats[id]
	}
	return Stats{}
}

// ServiceStats returns the worker's counters for a service id.
func (w *Worker) ServiceStats(id uint32) Stats {
	if int(id) < len(w.sstats) {
		return w.sstats[id]
	}
	return Stats{}
}

// sync sizes the per-dest and per-service stats for a new snapshot (allocates only
// when the configuration grew, never per packet).
func (w *Worker) sync(s *snapshot) {
	w.s = s
	w.svcMemo = svcMemo{} // the old generation's: not kept alive by it
	if n := len(s.dests); n > len(w.dstats) {
		w.dstats = append(w.dstats, make([]Stats, n-len(w.dstats))...)
	}
	if n := int(s.nsvc); n > len(w.sstats) {
		w.sstats = append(w.sstats, make([]Stats, n-len(w.sstats))...)
	}
}

// Generation returns the configuration generation the last batch ran on: 1 for the
// first Apply, one more for each Apply or SetOptions since. New connections of that
// batch were scheduled from exactly that generation's real servers.
func (w *Worker) Generation() uint64 { return w.batchGen }

// Generation returns the generation the Director published last.
func (d *Director) Generation() uint64 { return d.snap.Load().gen }

// destInfo returns the data-path settings of dest id and the generation they come
// from. A connection or template made by a worker on a newer generation can name a
// dest this batch's generation does not know; the worker then moves to the newest
// generation, which knows every id ever handed out (ids are published before any
// pool can return them). Per-dest and per-service stats are sized for the generation
// returned. nil: no generation knows id (a connection table fed from elsewhere).
//
// The per-packet test (id < len(s.dests)) is written at each call site, so the hot
// path pays no call; destInfo itself is the rare case.
func (w *Worker) destInfo(id uint32) (*snapshot, *destInfo) {
	s := w.newest()
	if int(id) >= len(s.dests) {
		return s, nil
	}
	return s, &s.dests[id]
}

// newest moves the worker to the newest generation.
func (w *Worker) newest() *snapshot {
	s := w.d.snap.Load()
	w.sync(s)
	return s
}

// Process runs a batch of frames through the pipeline at time now (nanoseconds on
// the caller's clock: monotonic live, pcap timestamps in replay) and appends the frames
// to send to out, which it returns. Forwarded frames are the input frames rewritten in
// place (Off/Len may move for encapsulation); generated ICMP errors live in the
// worker's buffers until the next Process call. len(in) must not exceed the batch
// size given to NewWorker. Same input and same times give the same output.
func (w *Worker) Process(in []Frame, now int64, out []Frame) []Frame {
	s := w.d.snap.Load()
	if s != w.s {
		w.sync(s)
	}
	w.batchGen = s.gen
	w.nicmp = 0
	w.now = now
	w.out = out
	var hashes []uint64 // the prefetch's, by frame; none: w.hash stays 0
	if len(in) > 1 {
		if (w.churn+int(w.refSteps-w.refSteps0))*prefetchShare >= len(in) {
			w.prefetchFlows(in)
		}
		if w.lookups*prefetchShare >= len(in) && !w.d.table.BucketsSmall() {
			hashes = w.prefetch(in, w.ackRefs*prefetchShare < len(in))
		}
	}
	w.tableRefs, w.lookups, w.ackRefs, w.churn, w.refSteps0 = 0, 0, 0, 0, w.refSteps
	w.hash = 0
	p := &w.p
	for i := range in {
		if hashes != nil {
			w.hash = hashes[i]
		}
		f := &in[i]
		w.C.In++
		b := f.Bytes()
		// The common frame, in the loop: no call but Decode's and inbound's.
		// Untagged IPv4 with a 20-byte header (no source route), TCP or UDP, not a
		// fragment — what DecodeFast takes — sent to the director's own MAC and
		// to a VIP goes straight to inbound: admit's first test would pass it (its
		// other three tests are the decode's, known here), it is no ARP request or
		// neighbour solicitation, and processFrame's protocol and fragment tests
		// would pass it. Any other frame takes processFrame, which decides it
		// again from the start, told what is known.
		known := frameRaw
		if p.DecodeFast(b) {
			known = frameDecoded
			if s.set.toOwnMAC(b) {
				// A VIP: in a small set's IPv4 list, or a large set's table.
				if v := &s.vips; v.inSmall4(&p.Dst) || v.v4 == nil && v.contains(&p.Dst, false) {
					if owned := w.d.owned.Load(); owned == nil || owned.contains(&p.Dst, false) {
						w.inbound(s, f, b)
					} else {
						w.drop(ReasonNotOwned)
					}
					continue
				}
				known = frameNotVIP
			}
		}
		w.processFrame(s, f, b, known)
	}
	w.hash = 0
	if s.set.sync != nil {
		if r := w.ring.Load(); r != nil {
			r.publish() // the batch's sync events, with one atomic store (sync.go)
		}
	}
	w.d.now.Store(now)
	// Publish at most every publishEvery under load (full batches), and after every
	// partial batch: the link is not saturated then, so the copy costs little, and
	// the counters are current when traffic stops.
	if now-w.pub.at >= publishEvery || now < w.pub.at || len(in) < len(w.icmp) {
		w.publish(now)
	}
	// Expiry is amortised over batches so it never stops the world: a few entries per
	// frame, more when the table fell behind.
	w.d.table.Expire(now, 4*len(in)+64)
	out, w.out = w.out, nil // the caller's, not kept
	return out
}
