package cluster

import (
	"sync/atomic"
	"time"

	"github.com/gvs-lb/gvs/ipvssync"
)

// dropReason is why the cluster runtime dropped a datagram, a record or an entry it
// was asked to send. Every drop is counted under one (no silent drop).
type dropReason uint8

const (
	dropNone dropReason = iota
	// sync receive, whole datagram
	dropSelf   // from one of this director's own addresses (multicast loop, a reflected copy)
	dropSource // sender outside sync_sources
	dropSyncID // syncid other than ours (when ours is not 0)
	dropDecode // malformed (the ipvssync reason is counted too)
	// sync receive, one record
	dropProtocol          // neither TCP nor UDP: gvs has no such service
	dropMethod            // forwarding bits outside the defined methods
	dropPersistenceEngine // carries a persistence engine gvs does not have
	dropSink              // the connection table refused it (conn_max, …)
	// sync send
	dropQueueFull // sync_qlen_max messages already waiting
	dropSendError // the socket refused the datagram
	dropBadEntry  // an entry that cannot be encoded (mixed families, IPv6 in v0)
	// control channel
	dropControlMalformed
	dropControlAuth    // missing or wrong HMAC, or an HMAC when none is configured
	dropControlVersion // a control protocol version gvs does not speak
	dropControlForeign // another cluster (node id collision or foreign syncid)
	dropControlReplay  // a datagram number already seen in the sender's incarnation
	numDropReasons
)

var dropNames = [...]string{
	"none", "self", "source", "syncid", "malformed",
	"protocol", "method", "persistence_engine", "table",
	"queue_full", "send_error", "bad_entry",
	"control_malformed", "control_auth", "control_version", "control_foreign", "control_replay",
}

func (r dropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// counters are the cluster runtime's totals. They are written by the runtime's one
// goroutine and read by anyone (metrics, gvs adm), hence atomics.
type counters struct {
	drops       [numDropReasons]atomic.Uint64
	decodeDrops [ipvssync.NumReasons]atomic.Uint64 // datagrams or rests dropped by the codec, by reason
	decodeLost  atomic.Uint64                      // records those drops cost

	sentMessages, sentRecords, sentBytes atomic.Uint64
	recvMessages, recvRecords, recvBytes atomic.Uint64
	flushes                              atomic.Uint64 // messages sent because sync_flush expired, not full
	swept                                atomic.Uint64 // entries re-sent by the refresh sweeper
	bulkSent                             atomic.Uint64 // records sent by bulk pushes
	joinIncomplete                       atomic.Uint64 // joins that ended by join_wait, not by bulk-done
	configMismatch                       atomic.Uint64 // heartbeats whose config digest differs from ours
	resyncDeferred                       atomic.Uint64 // heartbeats whose loss would have asked for a push, held back by the back-off
	bulkShort                            atomic.Uint64 // bulk pushes to this director whose records arrived short of their bulk-done's count
	portsEvicted                         atomic.Uint64 // source ports that lost their place in a source's per-port counts to a new one
	flushLatency                         latency       // how long each sent message's first record waited
}

// flushBuckets are gvs_sync_flush_latency_seconds' bucket bounds: from a message
// filled at once to one that waited a whole sync_flush (100 ms by default, the
// kernel's 2 s).
var flushBuckets = [...]time.Duration{
	time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond,
}

// latency is a histogram over flushBuckets, written by the runtime's goroutine and
// read by the collector.
type latency struct {
	buckets [len(flushBuckets)]atomic.Uint64 // observations at most each bound (not cumulative)
	count   atomic.Uint64
	sumNs   atomic.Int64
}

func (l *latency) observe(d time.Duration) {
	d = max(d, 0)
	for i, b := range flushBuckets {
		if d <= b {
			l.buckets[i].Add(1)
			break
		}
	}
	l.sumNs.Add(int64(d))
	l.count.Add(1)
}

// histogram returns the count, the sum in seconds and the cumulative bucket counts
// by upper bound in seconds, as Prometheus wants them. Read while observe runs, the
// count may run ahead of the buckets by the observations in flight; it is read
// first and the buckets are capped at it so the series stays monotonic.
func (l *latency) histogram() (uint64, float64, map[float64]uint64) {
	n := l.count.Load()
	sum := time.Duration(l.sumNs.Load()).Seconds()
	m := make(map[float64]uint64, len(flushBuckets))
	var cum uint64
	for i, b := range flushBuckets {
		cum += l.buckets[i].Load()
		m[b.Seconds()] = min(cum, n)
	}
	return n, sum, m
}

// Stats is a snapshot of the counters, for metrics and gvs adm.
type Stats struct {
	Drops          map[string]uint64 // by reason, only the non-zero ones
	DecodeDrops    map[string]uint64 // by ipvssync.Reason, only the non-zero ones
	DecodeLost     uint64
	SentMessages   uint64
	SentRecords    uint64
	SentBytes      uint64
	RecvMessages   uint64
	RecvRecords    uint64
	RecvBytes      uint64
	Flushes        uint64
	Swept          uint64
	BulkSent       uint64
	JoinIncomplete uint64
	ConfigMismatch uint64
	ResyncDeferred uint64
	BulkShort      uint64
	PortsEvicted   uint64
}

func (c *counters) drop(r dropReason) { c.drops[r].Add(1) }

func (c *counters) snapshot() Stats {
	s := Stats{Drops: map[string]uint64{}, DecodeDrops: map[string]uint64{}}
	for i := range c.drops {
		if n := c.drops[i].Load(); n != 0 {
			s.Drops[dropReason(i).String()] = n
		}
	}
	for i := range c.decodeDrops {
		if n := c.decodeDrops[i].Load(); n != 0 {
			s.DecodeDrops[ipvssync.Reason(i).String()] = n
		}
	}
	s.DecodeLost = c.decodeLost.Load()
	s.SentMessages, s.SentRecords, s.SentBytes = c.sentMessages.Load(), c.sentRecords.Load(), c.sentBytes.Load()
	s.RecvMessages, s.RecvRecords, s.RecvBytes = c.recvMessages.Load(), c.recvRecords.Load(), c.recvBytes.Load()
	s.Flushes, s.Swept, s.BulkSent = c.flushes.Load(), c.swept.Load(), c.bulkSent.Load()
	s.JoinIncomplete, s.ConfigMismatch = c.joinIncomplete.Load(), c.configMismatch.Load()
	s.ResyncDeferred, s.BulkShort, s.PortsEvicted = c.resyncDeferred.Load(), c.bulkShort.Load(), c.portsEvicted.Load()
	return s
}

// A name for every reason, checked by the compiler: adding a reason without a name
// fails here.
var _ = [1]struct{}{}[len(dropNames)-int(numDropReasons)]
