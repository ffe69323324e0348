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
// error, counted. OpenPush opens the sender of one bulk push: its messages go where
// SendSync's go, from the same address and another UDP source port, by which the
// joiner counts the push's records (docs/cluster.md §6).
type Transport interface {
	SendSync(port int, b []byte) error
	SendControl(b []byte) error
	OpenPush() (PushSender, error)
}

// PushSender is one bulk push's own socket. SendSync is Transport.SendSync's; Port is
// the socket's UDP source port; Close releases it (once the push is done).
type PushSender interface {
	SendSync(port int, b []byte) error
	Port() uint16
	Close() error
}

// maxSourcePorts bounds the source ports a sync source's records are counted by: its
// live sync's and those of the pushes it makes at once (one per joiner). The least
// recently heard port gives its place to a new one, counted
// (gvs_sync_source_ports_evicted_total).
const maxSourcePorts = 8

// portCount is the records received from one source port.
type portCount struct {
	port    uint16
	records uint64
	first   uint64 // the source's message count when the port took its place
	used    uint64 // and when it was last heard from (0: the place is free)
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
	ports     [maxSourcePorts]portCount
}

// countPort adds k records received from source port port; it reports false when a
// port heard before lost its place to it.
func (s *source) countPort(port uint16, k uint64) bool {
	lru := 0
	for i := range s.ports {
		pc := &s.ports[i]
		if pc.port == port && pc.used != 0 {
			pc.records += k
			pc.used = s.messages
			return true
		}
		if pc.used < s.ports[lru].used {
			lru = i
		}
	}
	evicted := s.ports[lru].used != 0
	s.ports[lru] = portCount{port: port, records: k, first: s.messages, used: s.messages}
	return !evicted
}

// portCount returns source port port's place (zero if it has none).
func (s *source) portCount(port uint16) portCount {
	for i := range s.ports {
		if s.ports[i].port == port && s.ports[i].used != 0 {
			return s.ports[i]
		}
	}
	return portCount{}
}

// recvMark is what had arrived from a source when a bulk push was asked of it, so the
// push's records are counted from there: by its source port when its bulk-done names
// one, else by the address.
type recvMark struct {
	records uint64
	ports   [maxSourcePorts]portCount
}

// markLocked returns what has arrived from addr so far.
func (n *Node) markLocked(addr netip.Addr) recvMark {
	s := n.sources[addr]
	if s == nil {
		return recvMark{}
	}
	return recvMark{records: s.records, ports: s.ports}
}

// sinceLocked returns the records that arrived from addr since mark: from source
// port port, or from any port when port is 0. A port that lost its place since (or
// took it since) counts from when it took it.
func (n *Node) sinceLocked(addr netip.Addr, mark *recvMark, port uint16) uint64 {
	s := n.sources[addr]
	if s == nil {
		return 0
	}
	if port == 0 {
		if s.records < mark.records { // a new source since (the peer restarted)
			return s.records
		}
		return s.records - mark.records
	}
	cur := s.portCount(port)
	for i := range mark.ports {
		if pc := &mark.ports[i]; pc.port == port && pc.used != 0 && pc.first == cur.first {
			return cur.records - pc.records
		}
	}
	return cur.records
}
