package cluster

import (
	"net/netip"
	"time"
)

// Sink is where received entries go: the connection table, through the daemon.
// Upsert has the kernel receiver's semantics (docs/cluster.md §4.4): look the entry up
// by its key; an active entry naming another real server replaces the one there, an
// inactive one is ignored; otherwise only the inactive flag changes (and the timer
// restarts); a new entry is bound to its real server if that exists and kept unbound
// if not; a Timeout of 0 (a v0 record) means the state's own timeout. It never
// evicts a live entry and reports false when it refused e (conn_max).
//
// origin is the sender's index (1–255) as the Node numbers sources; 0 is never passed.
type Sink interface {
	Upsert(e *Entry, origin uint8, now time.Time) bool
}

// EntryMeta is what the refresh sweeper and a bulk push read of an entry besides
// the entry itself.
type EntryMeta struct {
	// Origin is 0 for an entry this director owns (created here or adopted by a local
	// packet), else the index of the source that sent it.
	Origin uint8
	// LastActive is the entry's last packet on this director; LastSync when this
	// director last sent it (zero: never).
	LastActive time.Time
	LastSync   time.Time
}

// Table is the connection table as the sweeper and bulk pushes walk it. Walk visits
// at most max entries from cursor (0 starts at the beginning) and returns where the
// next walk continues, with done when it reached the end. When fn returns true the
// entry was sent: the table records now as its LastSync. A pass from cursor 0 to done
// visits no entry twice, even while entries are inserted (those may or may not be
// visited). Walk must not call back into the Node.
type Table interface {
	Walk(cursor uint64, max int, now time.Time, fn func(e *Entry, m *EntryMeta) bool) (next uint64, done bool)
}

// Transport carries the Node's datagrams. SendSync sends a sync message to the group
// (or every sync peer) on sync port index port; SendControl sends a control datagram to
// the group or every peer. Both must not block for long: a full socket buffer is an
// error, counted.
type Transport interface {
	SendSync(port int, b []byte) error
	SendControl(b []byte) error
}

// source is one address that sent sync messages.
type source struct {
	addr      netip.Addr
	origin    uint8
	firstSeen time.Time
	messages  uint64
	records   uint64 // records received and accepted by the codec (before Sink)
	bytes     uint64
	pushed    bool // a bulk push was started for it as a new non-gvs source
	retired   bool // its director restarted: entries of this origin are orphans
}
