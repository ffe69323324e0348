package cluster

import (
	"errors"
	"time"

	"github.com/gvs-lb/gvs/ipvssync"
)

// outMsg is one encoded sync message waiting for the socket.
type outMsg struct {
	port    int // index into sync_ports: UDP port SyncPort+port
	b       []byte
	records int
}

// sender batches entries into sync messages, one open message per sync port, and
// queues completed ones (docs/cluster.md §4.3). A message is completed when the next
// record would not fit, or when its first record has waited sync_flush. At most
// sync_qlen_max messages wait; beyond that a completed message is dropped and
// counted, as the kernel frees it. It belongs to the Node's goroutine.
type sender struct {
	cfg     *Config
	c       *counters
	bld     []ipvssync.Builder
	started []time.Time // when each open message got its first record
	queue   []outMsg    // FIFO, len ≤ cfg.SyncQLenMax
	free    [][]byte    // message buffers to reuse
	rec     ipvssync.Record
}

func newSender(cfg *Config, c *counters) *sender {
	s := &sender{cfg: cfg, c: c, bld: make([]ipvssync.Builder, cfg.SyncPorts), started: make([]time.Time, cfg.SyncPorts)}
	for i := range s.bld {
		s.bld[i].Reset(cfg.SyncVersion, cfg.SyncID, cfg.SyncMaxLen)
	}
	return s
}

// portFor spreads entries over the sync ports by their key, as the kernel spreads
// connections over its sync threads; one entry always uses the same port, so its
// updates stay in order.
func (s *sender) portFor(e *Entry) int {
	if len(s.bld) == 1 {
		return 0
	}
	h := uint32(e.CPort)<<16 | uint32(e.VPort)
	for _, b := range e.CAddr.AsSlice() {
		h = h*16777619 ^ uint32(b)
	}
	return int(h % uint32(len(s.bld)))
}

// add encodes e into its port's open message, completing the message first if e does
// not fit. It reports whether e was taken.
func (s *sender) add(e *Entry, now time.Time) bool {
	toRecord(e, &s.rec)
	p := s.portFor(e)
	b := &s.bld[p]
	err := b.Add(&s.rec)
	if errors.Is(err, ipvssync.ErrFull) {
		s.complete(p, now)
		err = b.Add(&s.rec)
	}
	if err != nil {
		s.c.drop(dropBadEntry)
		return false
	}
	if b.Count() == 1 {
		s.started[p] = now
	}
	if !b.Fits(false) {
		s.complete(p, now)
	}
	return true
}

// complete moves port p's open message, if it has records, to the queue, and records
// how long its first record waited (gvs_sync_flush_latency_seconds).
func (s *sender) complete(p int, now time.Time) {
	b := &s.bld[p]
	if b.Count() == 0 {
		return
	}
	s.c.flushLatency.observe(now.Sub(s.started[p]))
	if len(s.queue) >= s.cfg.SyncQLenMax {
		s.c.drop(dropQueueFull)
	} else {
		var buf []byte
		if n := len(s.free); n > 0 {
			buf, s.free = s.free[n-1][:0], s.free[:n-1]
		}
		s.queue = append(s.queue, outMsg{port: p, b: append(buf, b.Bytes()...), records: b.Count()})
	}
	b.Reset(s.cfg.SyncVersion, s.cfg.SyncID, s.cfg.SyncMaxLen)
}

// tick completes the open messages whose first record waited sync_flush.
func (s *sender) tick(now time.Time) {
	for p := range s.bld {
		if s.bld[p].Count() > 0 && now.Sub(s.started[p]) >= s.cfg.SyncFlush {
			s.c.flushes.Add(1)
			s.complete(p, now)
		}
	}
}

// flushAll completes every open message now (before a bulk-done, at drain).
func (s *sender) flushAll(now time.Time) {
	for p := range s.bld {
		s.complete(p, now)
	}
}

// room returns how many more messages the queue takes.
func (s *sender) room() int { return s.cfg.SyncQLenMax - len(s.queue) }

// drain hands every queued message to send, in order, and recycles the buffers.
func (s *sender) drain(send func(m *outMsg)) {
	for i := range s.queue {
		send(&s.queue[i])
		s.free = append(s.free, s.queue[i].b)
		s.queue[i] = outMsg{}
	}
	s.queue = s.queue[:0]
}
