package cluster

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/ipvssync"
)

// fakeTable is a connection table with the kernel receiver's semantics, small enough
// to be obviously right: the Sink and the Table of one test director.
type fakeTable struct {
	mu      sync.Mutex
	entries map[Key]*fakeEntry
	order   []Key // insertion order: a walk's cursor stays valid while entries arrive
	max     int   // conn_max; 0 = unlimited
}

type fakeEntry struct {
	e    Entry
	m    EntryMeta
	recv time.Time // when a sync record last refreshed it (receivers' timer)
}

// aliveAt reports whether k's entry exists and its timer, restarted by each record
// received for it, has not run out at now.
func (t *fakeTable) aliveAt(k Key, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	fe := t.entries[k]
	return fe != nil && (fe.recv.IsZero() || now.Before(fe.recv.Add(fe.e.Timeout)))
}

func newFakeTable() *fakeTable { return &fakeTable{entries: map[Key]*fakeEntry{}} }

func (t *fakeTable) Upsert(e *Entry, origin uint8, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := e.Key()
	if old := t.entries[k]; old != nil {
		if old.e.DAddr != e.DAddr || old.e.DPort != e.DPort {
			if e.Flags&FlagInactive != 0 {
				return true // a stale expiry message for the old server: ignored
			}
		} else {
			old.e.Flags = old.e.Flags&^FlagInactive | e.Flags&FlagInactive
			old.e.State, old.e.Timeout, old.recv = e.State, e.Timeout, now
			return true
		}
	} else if t.max > 0 && len(t.entries) >= t.max {
		return false
	}
	if t.entries[k] == nil {
		t.order = append(t.order, k)
	}
	t.entries[k] = &fakeEntry{e: *e, m: EntryMeta{Origin: origin}, recv: now}
	return true
}

// own adds an entry this director created, last sent at lastSync (zero: never).
func (t *fakeTable) own(e Entry, active, lastSync time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.entries[e.Key()] == nil {
		t.order = append(t.order, e.Key())
	}
	t.entries[e.Key()] = &fakeEntry{e: e, m: EntryMeta{LastActive: active, LastSync: lastSync}}
}

func (t *fakeTable) Walk(cursor uint64, max int, now time.Time, fn func(*Entry, *EntryMeta) bool) (uint64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := t.order
	i := int(cursor)
	for ; i < len(keys) && max > 0; i, max = i+1, max-1 {
		fe := t.entries[keys[i]]
		if fn(&fe.e, &fe.m) {
			fe.m.LastSync = now
		}
	}
	return uint64(i), i >= len(keys)
}

func (t *fakeTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

func (t *fakeTable) get(k Key) (fakeEntry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fe, ok := t.entries[k]
	if !ok {
		return fakeEntry{}, false
	}
	return *fe, true
}

// datagram is one datagram in flight in a fakeNet.
type datagram struct {
	from    netip.AddrPort
	to      string // node id; "" = everyone but the sender (multicast, loop off)
	control bool
	b       []byte
}

// fakeNet is a LAN of test directors: what one sends reaches every other one (as
// multicast with the loop off does) when the test calls deliver. filter, when set, may
// drop a datagram.
type fakeNet struct {
	t         *testing.T
	pushPorts uint16 // push sockets opened so far: each gets source port 40001+n, never reused
	now       time.Time
	nodes     map[string]*testNode
	order     []string
	inFlight  []datagram
	filter    func(d *datagram, to string) bool // false drops
	syncMsgs  int                               // sync datagrams sent
	syncLen   int                               // their bytes
	// concurrent: a test drives a node from several goroutines (TestConcurrentUse),
	// so a lock held may be another goroutine's and unlocked cannot tell.
	concurrent bool
}

type testNode struct {
	id       string
	addr     netip.Addr
	n        *Node
	table    *fakeTable
	down     bool // crashed: sends and receives nothing
	noPushes bool // OpenPush fails, as for a gvs without push sockets
	pushes   []*fakePush
}

func newFakeNet(t *testing.T) *fakeNet {
	return &fakeNet{t: t, now: time.Unix(1_700_000_000, 0), nodes: map[string]*testNode{}}
}

type netTransport struct {
	net  *fakeNet
	self *testNode
}

func (tr *netTransport) SendSync(port int, b []byte) error { return tr.sendFrom(40000, b) }

func (tr *netTransport) sendFrom(srcPort uint16, b []byte) error {
	if tr.self.down {
		return nil
	}
	tr.net.syncMsgs++
	tr.net.syncLen += len(b)
	tr.net.inFlight = append(tr.net.inFlight, datagram{from: netip.AddrPortFrom(tr.self.addr, srcPort), b: slices.Clone(b)})
	return nil
}

func (tr *netTransport) OpenPush() (PushSender, error) {
	tr.unlocked("OpenPush")
	if tr.self.noPushes {
		return nil, errors.New("no push sockets here")
	}
	tr.net.pushPorts++
	p := &fakePush{tr: tr, port: 40000 + tr.net.pushPorts}
	tr.self.pushes = append(tr.self.pushes, p)
	return p, nil
}

// unlocked fails the test when the node calls what with its lock held: opening and
// closing a push's socket are system calls its receive goroutines must not wait for.
// (A fakeNet runs its nodes on one goroutine, so a lock held is the caller's; a test
// that drives a node from several sets concurrent, and the check is left to the
// others.)
func (tr *netTransport) unlocked(what string) {
	if tr.net.concurrent {
		return
	}
	if !tr.self.n.mu.TryLock() {
		tr.net.t.Errorf("%s: %s called with the node's lock held", tr.self.id, what)
		return
	}
	tr.self.n.mu.Unlock()
}

// fakePush is a push socket on a fakeNet: a source port of its own.
type fakePush struct {
	tr     *netTransport
	port   uint16
	closed bool
}

func (p *fakePush) SendSync(_ int, b []byte) error {
	if p.closed {
		return errors.New("push socket used after Close")
	}
	return p.tr.sendFrom(p.port, b)
}

func (p *fakePush) Port() uint16 { return p.port }

func (p *fakePush) Close() error {
	p.tr.unlocked("a push socket's Close")
	if p.closed {
		return errors.New("push socket closed twice")
	}
	p.closed = true
	return nil
}

// openPushes returns how many of tn's push sockets are open.
func (tn *testNode) openPushes() int {
	k := 0
	for _, p := range tn.pushes {
		if !p.closed {
			k++
		}
	}
	return k
}

func (tr *netTransport) SendControl(b []byte) error {
	if tr.self.down {
		return nil
	}
	tr.net.inFlight = append(tr.net.inFlight, datagram{from: netip.AddrPortFrom(tr.self.addr, 8849), control: true, b: slices.Clone(b)})
	return nil
}

// add creates a director (COLD) with address 198.18.0.<20+i>.
func (w *fakeNet) add(id string, mod func(*Config)) *testNode {
	w.t.Helper()
	tn := &testNode{id: id, addr: netip.AddrFrom4([4]byte{198, 18, 0, byte(21 + len(w.order))}), table: newFakeTable()}
	cfg := DefaultConfig(id)
	cfg.Self = []netip.Addr{tn.addr}
	cfg.Sources = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}
	if mod != nil {
		mod(&cfg)
	}
	seq := uint64(len(w.order)) << 32
	n, err := NewNode(cfg, Deps{Sink: tn.table, Table: tn.table, Transport: &netTransport{net: w, self: tn},
		Rand: func() uint64 { seq++; return seq }})
	if err != nil {
		w.t.Fatal(err)
	}
	tn.n = n
	w.nodes[id] = tn
	w.order = append(w.order, id)
	return tn
}

// deliver hands every datagram in flight (and those sent in reaction) to its
// receivers, in order, bounded.
func (w *fakeNet) deliver() {
	for round := 0; len(w.inFlight) > 0; round++ {
		if round > 10000 {
			w.t.Fatal("datagrams keep coming: a loop")
		}
		d := w.inFlight[0]
		w.inFlight = w.inFlight[1:]
		for _, id := range w.order {
			tn := w.nodes[id]
			if tn.down || tn.addr == d.from.Addr() || (d.to != "" && d.to != id) {
				continue
			}
			if w.filter != nil && !w.filter(&d, id) {
				continue
			}
			if d.control {
				tn.n.HandleControl(d.from, d.b, w.now)
			} else {
				tn.n.HandleSync(d.from, d.b, w.now)
			}
		}
	}
}

// run advances the clock by d in 10 ms steps, ticking every live node and delivering.
func (w *fakeNet) run(d time.Duration) {
	for end := w.now.Add(d); w.now.Before(end); {
		w.now = w.now.Add(10 * time.Millisecond)
		for _, id := range w.order {
			if tn := w.nodes[id]; !tn.down {
				tn.n.Tick(w.now)
			}
		}
		w.deliver()
	}
}

// runUntil runs 10 ms steps until cond holds, at most max; it reports the time taken.
func (w *fakeNet) runUntil(max time.Duration, cond func() bool) (time.Duration, bool) {
	start := w.now
	for w.now.Sub(start) < max {
		if cond() {
			return w.now.Sub(start), true
		}
		w.run(10 * time.Millisecond)
	}
	return w.now.Sub(start), cond()
}

func (w *fakeNet) start(ids ...string) {
	for _, id := range ids {
		w.nodes[id].n.Start(w.now)
	}
	w.deliver()
}

// conn returns a DR TCP connection from client i to the VIP, served by real server rs.
func conn(i int, rs byte) Entry {
	return Entry{Proto: 6, CAddr: netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)}), CPort: uint16(10000 + i%50000),
		VAddr: netip.MustParseAddr("198.18.100.1"), VPort: 80, DAddr: netip.AddrFrom4([4]byte{198, 18, 0, rs}), DPort: 80,
		Method: ipvs.DR, State: StateEstablished, Timeout: 900 * time.Second}
}

func (tn *testNode) String() string { return fmt.Sprintf("%s(%s)", tn.id, tn.addr) }

func keyOf(e Entry) Key { return e.Key() }

// fullMessage returns a v1 message of 40 DR connections.
func fullMessage(tb testing.TB) []byte {
	var bld ipvssync.Builder
	bld.Reset(ipvssync.V1, 0, ipvssync.MaxLen)
	for i := range 40 {
		var r ipvssync.Record
		e := conn(i, 5)
		toRecord(&e, &r)
		if err := bld.Add(&r); err != nil {
			tb.Fatal(err)
		}
	}
	return slices.Clone(bld.Bytes())
}

func netipAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
