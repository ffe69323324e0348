package cluster

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/gvs-lb/gvs/ipvssync"
)

// NodeState is a director's place in the cluster's life cycle (docs/cluster.md §6).
type NodeState uint8

const (
	StateCold      NodeState = iota // not started
	StateSyncing                    // started, waiting for bulk sync from the live peers
	StateReady                      // has the cluster's connections; its VIPs may be announced
	StateAnnounced                  // at least one VIP announced
	StateDraining                   // withdrawn, still forwarding and syncing until exit
	numNodeStates
)

var nodeStateNames = [...]string{"COLD", "SYNCING", "READY", "ANNOUNCED", "DRAINING"}

func (s NodeState) String() string {
	if s < numNodeStates {
		return nodeStateNames[s]
	}
	return "UNKNOWN"
}

// Bounds on what strangers can make a Node remember.
const (
	maxSources = 4096 // sync source addresses with counters of their own
	maxPeers   = 256  // node ids heard on the control channel
	maxLogKeys = 1024 // causes logged once each
)

// Deps are the Node's collaborators. Sink, Table and Transport are required.
type Deps struct {
	Sink      Sink
	Table     Table
	Transport Transport
	Logger    *slog.Logger  // nil discards
	Rand      func() uint64 // incarnations and request ids; nil uses math/rand/v2
}

// Node is one director's cluster runtime: sync sender and receiver, control channel,
// membership, bulk sync and the refresh sweeper (docs/cluster.md §4–6). It is driven
// by its owner — Enqueue for entries the data path flagged, HandleSync and
// HandleControl for datagrams, Tick on a timer — each given the time, so tests run it
// on a fake clock. All methods are safe for concurrent use; they serialise on one mutex
// (none is on the per-packet path).
type Node struct {
	mu    sync.Mutex
	cfg   Config
	sink  Sink
	table Table
	tr    Transport
	log   *slog.Logger
	rand  func() uint64
	c     counters
	snd   *sender
	msg   ipvssync.Message

	state NodeState
	inc   uint64

	sources    map[netip.Addr]*source
	byOrigin   [256]*source
	nextOrigin int

	peers   map[string]*peer
	join    *joinState
	pushes  map[string]*push // by the node id pushed to; "" for a new non-gvs source
	closing []PushSender     // finished pushes' sockets, closed by Tick once it releases the lock

	lastTick    time.Time
	lastHB      time.Time
	sweepCursor uint64
	sweepCredit float64
	logged      map[string]bool
	ctlBuf      []byte
	ctlIn       ctlMsg
	rxEntry     Entry
	ctlSeq      uint64        // control datagrams sent in this incarnation
	overflow    *source       // shared by sources beyond maxSources
	joinTook    time.Duration // how long the last join's bulk sync took
}

// peer is another gvs director, known from its heartbeats.
type peer struct {
	id         string
	addr       netip.Addr
	inc        uint64
	state      NodeState
	digest     [16]byte
	health     uint64
	firstHeard time.Time
	lastHeard  time.Time
	sentRecs   uint64 // as last reported
	baseSent   uint64 // its sentRecs when loss counting (re)started
	baseRecv   uint64 // records received from it then
	lost       uint64 // records it reported sent that did not arrive, since the baseline
	resyncs    uint64
	pullReq    uint32        // our bulk request to it that its bulk-done has not answered yet (0: none)
	pullAt     time.Time     // when we sent it
	pullSent   time.Time     // when we last sent it (it is repeated while the peer shows no push for it)
	pullDone   bool          // that push's bulk-done came less than a sync_flush ago
	pullEnd    time.Time     // when the last push we asked for ended (its bulk-done came)
	backoff    time.Duration // the wait after a push asked for because of loss before loss asks again
	pushTarget string
	pushReqID  uint32
	pushPort   uint16 // that push's source port, once its socket is open
	mismatch   bool
	wasLive    bool
	lastSeq    uint64 // the highest datagram number accepted in this incarnation
}

// NewNode returns a COLD node; call Start to join the cluster.
func NewNode(cfg Config, d Deps) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if d.Sink == nil || d.Table == nil || d.Transport == nil {
		return nil, errors.New("cluster: NewNode needs a Sink, a Table and a Transport")
	}
	n := &Node{
		cfg: cfg, sink: d.Sink, table: d.Table, tr: d.Transport, log: d.Logger, rand: d.Rand,
		sources: map[netip.Addr]*source{}, peers: map[string]*peer{}, pushes: map[string]*push{},
		logged: map[string]bool{}, nextOrigin: 1,
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.rand == nil {
		n.rand = rand.Uint64
	}
	n.snd = newSender(&n.cfg, &n.c)
	n.msg.Records = make([]ipvssync.Record, 0, ipvssync.MaxRecords)
	return n, nil
}

// Start leaves COLD: the node picks a new incarnation, asks every peer for a bulk push
// and waits in SYNCING (docs/cluster.md §6).
func (n *Node) Start(now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.inc, n.ctlSeq = n.rand(), 0
	n.state = StateSyncing
	n.lastTick = now
	n.join = &joinState{start: now, reqID: uint32(n.rand()), peers: map[string]*joinPeer{}}
	n.sendControlLocked(&ctlMsg{Type: ctlBulkReq, ReqID: n.join.reqID})
	n.heartbeatLocked(now)
	n.log.Info("cluster: joining, bulk sync requested", "node", n.cfg.NodeID, "join_wait", n.cfg.JoinWait)
}

// Enqueue takes an entry the data path decided to sync (ipvssync.Rules.Needed) and
// sends it within sync_flush.
func (n *Node) Enqueue(e *Entry, now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.snd.add(e, now)
	n.transmitLocked()
}

// HandleSync processes one datagram received on a sync port.
func (n *Node) HandleSync(from netip.AddrPort, b []byte, now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	addr := from.Addr().Unmap()
	if why := n.screenLocked(addr); why != dropNone {
		n.c.drop(why)
		return
	}
	res := ipvssync.Decode(&n.msg, b)
	if res.Drop == ipvssync.ReasonShort || res.Drop == ipvssync.ReasonSizeMismatch {
		n.c.drop(dropDecode)
		n.c.decodeDrops[res.Drop].Add(1)
		n.logOnceLocked("decode:"+res.Drop.String(), "cluster: sync datagram dropped", "from", addr, "reason", res.Drop)
		return
	}
	if n.cfg.SyncID != 0 && n.msg.SyncID != n.cfg.SyncID {
		n.c.drop(dropSyncID)
		n.logOnceLocked("syncid", "cluster: sync message with a foreign syncid dropped", "from", addr,
			"syncid", n.msg.SyncID, "ours", n.cfg.SyncID)
		return
	}
	if res.Drop != ipvssync.ReasonNone {
		n.c.decodeDrops[res.Drop].Add(1)
		n.c.decodeLost.Add(uint64(res.Lost))
		n.logOnceLocked("decode:"+res.Drop.String(), "cluster: rest of a sync message dropped", "from", addr,
			"reason", res.Drop, "records_lost", res.Lost)
	}
	for i, k := range res.Skipped {
		if k != 0 {
			n.c.decodeDrops[i].Add(uint64(k))
		}
	}
	src := n.sourceLocked(addr, now)
	src.messages++
	src.bytes += uint64(len(b))
	k := uint64(len(n.msg.Records) + res.SkippedTotal())
	src.records += k
	if !src.countPort(from.Port(), k) {
		n.c.portsEvicted.Add(1)
		n.logOnceLocked("ports:"+addr.String(), "cluster: a sync source sends from more ports than are counted; a bulk push from it may be asked for again",
			"from", addr, "ports", maxSourcePorts)
	}
	n.c.recvMessages.Add(1)
	n.c.recvBytes.Add(uint64(len(b)))
	e := &n.rxEntry // not a local: passed to the Sink, it would escape
	for i := range n.msg.Records {
		if why := fromRecord(&n.msg.Records[i], e); why != dropNone {
			n.c.drop(why)
			continue
		}
		if !n.sink.Upsert(e, src.origin, now) {
			n.c.drop(dropSink)
			continue
		}
		n.c.recvRecords.Add(1)
	}
}

// screenLocked applies the source checks every received datagram passes first.
func (n *Node) screenLocked(addr netip.Addr) dropReason {
	if slices.Contains(n.cfg.Self, addr) {
		return dropSelf
	}
	if len(n.cfg.Sources) == 0 {
		return dropNone
	}
	for _, p := range n.cfg.Sources {
		if p.Contains(addr) {
			return dropNone
		}
	}
	n.logOnceLocked("source:"+addr.String(), "cluster: datagram from outside sync_sources dropped", "from", addr)
	return dropSource
}

// sourceLocked returns the sync source for addr, numbering new ones. Origins 1–254 go
// to the first 254 sources; later ones share 255.
func (n *Node) sourceLocked(addr netip.Addr, now time.Time) *source {
	if s := n.sources[addr]; s != nil {
		return s
	}
	if len(n.sources) >= maxSources {
		// Without sync_sources any address may send; past this many, the rest share
		// one entry rather than grow the map without bound.
		n.logOnceLocked("sources", "cluster: too many sync sources; narrow sync_sources", "max", maxSources)
		if n.overflow == nil {
			n.overflow = &source{firstSeen: now, origin: 255, pushed: true}
		}
		return n.overflow
	}
	s := &source{addr: addr, firstSeen: now, origin: 255}
	if n.nextOrigin < 255 {
		s.origin = uint8(n.nextOrigin)
		n.byOrigin[s.origin] = s
		n.nextOrigin++
	}
	n.sources[addr] = s
	return s
}

// recvFromLocked returns the records received from addr so far.
func (n *Node) recvFromLocked(addr netip.Addr) uint64 {
	if s := n.sources[addr]; s != nil {
		return s.records
	}
	return 0
}

// HandleControl processes one datagram received on the control port.
func (n *Node) HandleControl(from netip.AddrPort, b []byte, now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	addr := from.Addr().Unmap()
	if why := n.screenLocked(addr); why != dropNone {
		n.c.drop(why)
		return
	}
	m := &n.ctlIn
	if err := decodeControl(m, b, n.cfg.AuthKey); err != nil {
		why := dropControlMalformed
		switch {
		case errors.Is(err, errCtlAuth):
			why = dropControlAuth
		case errors.Is(err, errCtlVersion):
			why = dropControlVersion
		}
		n.c.drop(why)
		n.logOnceLocked("control:"+why.String()+addr.String(), "cluster: control datagram dropped", "from", addr, "err", err)
		return
	}
	if m.NodeID == n.cfg.NodeID {
		n.c.drop(dropControlForeign)
		n.logOnceLocked("nodeid:"+addr.String(), "cluster: another director uses our node_id; give each a unique one",
			"node_id", m.NodeID, "from", addr)
		return
	}
	if p := n.peers[m.NodeID]; p != nil && p.inc == m.Incarnation && m.Seq != 0 {
		if m.Seq <= p.lastSeq {
			n.c.drop(dropControlReplay)
			n.logOnceLocked("replay:"+m.NodeID, "cluster: control datagram replayed (or reordered) dropped",
				"peer", m.NodeID, "seq", m.Seq, "last", p.lastSeq)
			return
		}
		p.lastSeq = m.Seq
	}
	switch m.Type {
	case ctlHeartbeat:
		if n.cfg.SyncID != 0 && m.SyncID != n.cfg.SyncID {
			n.c.drop(dropControlForeign)
			n.logOnceLocked("ctlsyncid:"+addr.String(), "cluster: heartbeat with a foreign syncid dropped",
				"from", addr, "syncid", m.SyncID, "ours", n.cfg.SyncID)
			return
		}
		n.heartbeatInLocked(addr, m, now)
	case ctlBulkReq:
		if m.Target == "" || m.Target == n.cfg.NodeID {
			n.bulkRequestLocked(m, now)
		}
	case ctlBulkDone:
		if p := n.peers[m.NodeID]; p != nil && m.Target == n.cfg.NodeID && m.ReqID == p.pullReq {
			p.pullReq, p.pullDone, p.pullEnd = 0, true, now
		}
		if m.Target == n.cfg.NodeID && n.join != nil {
			n.join.done(n, m, now)
		}
	}
}

func (n *Node) heartbeatInLocked(addr netip.Addr, m *ctlMsg, now time.Time) {
	p := n.peers[m.NodeID]
	if p == nil && len(n.peers) >= maxPeers {
		n.c.drop(dropControlForeign)
		n.logOnceLocked("peers", "cluster: too many peers; ignoring new node ids (set sync_auth_key_file and sync_sources)", "max", maxPeers)
		return
	}
	restarted := false
	if p == nil || p.inc != m.Incarnation {
		restarted = true
		if p == nil {
			p = &peer{id: m.NodeID}
			n.peers[m.NodeID] = p
		}
		n.log.Info("cluster: peer up", "peer", m.NodeID, "addr", addr, "incarnation", m.Incarnation, "state", m.State)
		if p.inc != 0 {
			// A restart: what its previous incarnation sent is nobody's now (the new
			// one starts empty), so that origin is retired and its entries become
			// orphans; the new incarnation gets a new origin.
			if s := n.sources[addr]; s != nil && s != n.overflow {
				s.retired = true
				delete(n.sources, addr)
			}
		}
		p.inc, p.firstHeard, p.lastSeq = m.Incarnation, now, m.Seq
		p.baseSent, p.baseRecv, p.lost, p.pullReq = m.SentRecords, n.recvFromLocked(addr), 0, 0
		p.pullDone, p.pullEnd, p.backoff = false, time.Time{}, 0
	}
	// A peer heard again after a silence (a partition between directors that the
	// router did not see, or a stalled host) may have sent what never arrived: pull its
	// entries as from a rejoined peer. Each side does so, so both converge.
	back := !p.wasLive && !p.lastHeard.IsZero() && !restarted
	p.addr, p.lastHeard, p.state, p.health, p.sentRecs = addr, now, m.State, m.Health, m.SentRecords
	p.pushTarget, p.pushReqID, p.pushPort = m.PushTarget, m.PushReqID, m.PushPort
	p.wasLive = true
	if back && n.state != StateSyncing && n.state != StateCold {
		n.log.Info("cluster: peer heard again after a silence; pulling its entries", "peer", p.id)
		n.pullLocked(p, addr, m.SentRecords, now)
	}
	p.digest = m.Digest
	if mismatch := m.Digest != n.cfg.ConfigDigest; mismatch != p.mismatch {
		p.mismatch = mismatch
		if mismatch {
			n.log.Warn("cluster: peer's configuration differs from ours (config digest)", "peer", p.id)
		} else {
			n.log.Info("cluster: peer's configuration matches ours again", "peer", p.id)
		}
	}
	if p.mismatch {
		n.c.configMismatch.Add(1)
	}
	n.repeatPullLocked(p, now)
	n.lossLocked(p, addr, m, now)
	if n.join != nil {
		n.join.heartbeat(n, p, now)
	}
}

// The back-off between pushes asked for because of loss (docs/cluster.md §5): the
// first is asked at once, the next waits pullBackoffMin after the previous one ended,
// each later one twice the wait before, at most pullBackoffMax; a peer not asked for
// pullQuiet after its last push starts again from pullBackoffMin.
const (
	pullBackoffMin = 2 * time.Second
	pullBackoffMax = 32 * time.Second
	pullQuiet      = 2 * pullBackoffMax
)

// lossLocked updates p's loss estimate from its heartbeat m — what it says it sent
// since the baseline less what arrived from it — and asks it for a bulk push when the
// estimate reaches resync_threshold, unless a push we asked for runs, ended less than
// a sync_flush ago, or ended less than the back-off ago.
func (n *Node) lossLocked(p *peer, addr netip.Addr, m *ctlMsg, now time.Time) {
	if p.pullDone && now.Sub(p.pullEnd) >= n.cfg.SyncFlush {
		p.pullDone = false
	}
	sent, recv := m.SentRecords-p.baseSent, n.recvFromLocked(addr)-p.baseRecv
	p.lost = 0
	if sent > recv {
		p.lost = sent - recv
	}
	if p.lost < uint64(n.cfg.ResyncThreshold) || n.state == StateSyncing ||
		p.state == StateSyncing || p.state == StateCold {
		return
	}
	switch {
	case n.pullingLocked(p, now):
		// While the push we asked for runs, the peer is not asked for another: a
		// new request restarts its push from the start, and on a busy host, where
		// the push's own records arrive late or overflow the socket, asking at every
		// heartbeat restarted it for ever and the receiver never caught up (the
		// lab's TestClusterBulk). The same request again restarts nothing, and a
		// push already done answers it with its bulk-done once more, so a lost
		// bulk-done does not hold further requests back until join_wait (for ever
		// when join_wait is 0).
		n.sendControlLocked(&ctlMsg{Type: ctlBulkReq, ReqID: p.pullReq, Target: p.id})
	case p.pullDone:
		// Within a sync_flush of the push's end: its last records may still come.
	default:
		// What the push lost, and what was lost while it ran, counts from its
		// request on: the push repaired what was lost before. A push that overflows
		// this director's socket loses records of its own, and asking again at once
		// overflows it again, so the next push waits the back-off.
		end := p.pullEnd
		if p.pullReq != 0 { // its bulk-done never came: it ended at join_wait
			end = p.pullAt.Add(n.cfg.JoinWait)
		}
		if wait := end.Add(p.backoff); now.Before(wait) {
			n.c.resyncDeferred.Add(1)
			n.logOnceLocked("backoff:"+p.id, "cluster: sync records from a peer were lost again soon after the last push it made us; "+
				"the next push waits (the wait doubles while the loss goes on)", "peer", p.id, "lost", p.lost, "until", wait)
			return
		}
		switch {
		case p.backoff == 0 || now.Sub(end) >= pullQuiet:
			p.backoff = pullBackoffMin
		default:
			p.backoff = min(2*p.backoff, pullBackoffMax)
		}
		n.log.Warn("cluster: sync records from a peer were lost; asking it for a bulk push",
			"peer", p.id, "lost", p.lost, "resync_threshold", n.cfg.ResyncThreshold, "next_wait", p.backoff)
		n.pullLocked(p, addr, m.SentRecords, now)
	}
}

// repeatPullLocked repeats our request to p when p has shown no push for it a peer
// timeout after we sent it (lost: a partition that heals one way first drops the
// request the side that hears first sends), at most once a peer timeout. The same
// request restarts no push, and a push already done answers with its bulk-done again.
func (n *Node) repeatPullLocked(p *peer, now time.Time) {
	if p.pullReq == 0 || !n.pullingLocked(p, now) || (p.pushTarget == n.cfg.NodeID && p.pushReqID == p.pullReq) ||
		now.Sub(p.pullSent) < n.cfg.PeerTimeout {
		return
	}
	p.pullSent = now
	n.sendControlLocked(&ctlMsg{Type: ctlBulkReq, ReqID: p.pullReq, Target: p.id})
}

// pullLocked asks peer p (at addr, which reported sentRecs records sent) for a bulk
// push of its entries, and restarts the loss count from there.
func (n *Node) pullLocked(p *peer, addr netip.Addr, sentRecs uint64, now time.Time) {
	p.resyncs++
	p.pullReq, p.pullAt, p.pullSent = uint32(n.rand()), now, now
	n.sendControlLocked(&ctlMsg{Type: ctlBulkReq, ReqID: p.pullReq, Target: p.id})
	p.baseSent, p.baseRecv, p.lost, p.pullDone = sentRecs, n.recvFromLocked(addr), 0, false
}

// pullingLocked reports whether the bulk push we last asked p for may still be
// under way: its bulk-done has not come, and join_wait (the longest wait for a bulk;
// 0, for ever) has not passed since we asked.
func (n *Node) pullingLocked(p *peer, now time.Time) bool {
	return p.pullReq != 0 && (n.cfg.JoinWait == 0 || now.Sub(p.pullAt) < n.cfg.JoinWait)
}

// live reports whether p was heard within the peer timeout.
func (n *Node) live(p *peer, now time.Time) bool {
	return !p.lastHeard.IsZero() && now.Sub(p.lastHeard) <= n.cfg.PeerTimeout
}

// Tick does the periodic work: flushes messages older than sync_flush, runs the
// refresh sweeper and bulk pushes for the time since the last tick, sends heartbeats,
// advances the join and notes peers that went silent. Call it every few tens of ms.
// Push sockets are opened before the lock is taken and closed after it is released.
func (n *Node) Tick(now time.Time) {
	socks := n.openPushSockets(now)
	n.mu.Lock()
	socks = n.tickLocked(now, socks)
	closing := n.closing
	n.closing = nil
	n.mu.Unlock()
	for _, s := range socks {
		if s.sock != nil { // opened for a push that was replaced meanwhile
			s.sock.Close()
		}
	}
	for _, s := range closing {
		s.Close()
	}
}

// tickLocked is Tick's work under the lock; it returns the sockets no push took.
func (n *Node) tickLocked(now time.Time, socks []pushSocket) []pushSocket {
	if n.state == StateCold {
		return socks
	}
	elapsed := min(max(now.Sub(n.lastTick), 0), time.Second)
	n.lastTick = now
	n.sweepLocked(elapsed, now)
	socks = n.pushLocked(elapsed, now, socks)
	n.snd.tick(now)
	n.transmitLocked()
	if now.Sub(n.lastHB) >= n.cfg.Heartbeat {
		n.heartbeatLocked(now)
	}
	for _, p := range n.peers {
		if p.wasLive && !n.live(p, now) {
			p.wasLive = false
			n.log.Warn("cluster: peer silent", "peer", p.id, "last_heard", p.lastHeard, "peer_timeout", n.cfg.PeerTimeout)
		}
	}
	if n.join != nil {
		n.join.progress(n, now)
	}
	return socks
}

// syncWriter is where a sender's messages go: the Transport, or a push's own socket.
type syncWriter interface {
	SendSync(port int, b []byte) error
}

// transmitLocked writes the completed messages.
func (n *Node) transmitLocked() { n.writeLocked(n.snd, n.tr) }

// writeLocked writes s's completed messages to w.
func (n *Node) writeLocked(s *sender, w syncWriter) {
	s.drain(func(m *outMsg) {
		if err := w.SendSync(m.port, m.b); err != nil {
			n.c.drop(dropSendError)
			n.logOnceLocked("send", "cluster: sending a sync message failed", "err", err)
			return
		}
		n.c.sentMessages.Add(1)
		n.c.sentRecords.Add(uint64(m.records))
		n.c.sentBytes.Add(uint64(len(m.b)))
	})
}

func (n *Node) heartbeatLocked(now time.Time) {
	n.lastHB = now
	m := ctlMsg{Type: ctlHeartbeat, State: n.state, Digest: n.cfg.ConfigDigest,
		SentMsgs: n.c.sentMessages.Load(), SentRecords: n.c.sentRecords.Load(),
		Health: n.cfg.HealthDigest, SyncID: n.cfg.SyncID}
	for target, p := range n.pushes {
		if !p.done && target != "" {
			m.PushTarget, m.PushReqID, m.PushPort = target, p.reqID, p.port
			break
		}
	}
	n.sendControlLocked(&m)
}

func (n *Node) sendControlLocked(m *ctlMsg) {
	n.ctlSeq++
	m.NodeID, m.Incarnation, m.Seq = n.cfg.NodeID, n.inc, n.ctlSeq
	n.ctlBuf = encodeControl(n.ctlBuf[:0], m, n.cfg.AuthKey)
	if err := n.tr.SendControl(n.ctlBuf); err != nil {
		n.c.drop(dropSendError)
		n.logOnceLocked("sendctl", "cluster: sending a control datagram failed", "err", err)
	}
}

// logOnceLocked logs msg the first time key is seen: one line per cause, the counters
// tell how often.
func (n *Node) logOnceLocked(key, msg string, args ...any) {
	if n.logged[key] {
		return
	}
	if len(n.logged) >= maxLogKeys {
		// So many causes (a flood from many addresses): stay quiet, the counters
		// go on counting.
		if !n.logged[""] {
			n.logged[""] = true
			n.log.Warn("cluster: too many distinct problems to log each once; see the drop counters", "first_unlogged", msg)
		}
		return
	}
	n.logged[key] = true
	n.log.Warn(msg, args...)
}

// SetAnnounced records whether any VIP is announced (READY ↔ ANNOUNCED); the gate
// owner calls it.
func (n *Node) SetAnnounced(on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case on && n.state == StateReady:
		n.state = StateAnnounced
	case !on && n.state == StateAnnounced:
		n.state = StateReady
	}
}

// SetConfigDigest replaces the config digest the heartbeats carry (a reload changed
// the scheduling-relevant configuration). Peers are compared with it at once, from
// the digests they last sent, and a change is logged as a heartbeat's would be.
func (n *Node) SetConfigDigest(d [16]byte) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cfg.ConfigDigest = d
	for _, p := range n.peers {
		if mismatch := p.digest != d; mismatch != p.mismatch {
			p.mismatch = mismatch
			if mismatch {
				n.log.Warn("cluster: peer's configuration differs from ours (config digest) after our reload", "peer", p.id)
			} else {
				n.log.Info("cluster: peer's configuration matches ours again after our reload", "peer", p.id)
			}
		}
	}
}

// Drain enters DRAINING: the gate closes, sync continues.
func (n *Node) Drain() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state != StateCold {
		n.state = StateDraining
	}
}

// Undrain leaves DRAINING for READY; the gate then rises again.
func (n *Node) Undrain() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state == StateDraining {
		n.state = StateReady
	}
}

// State returns the node's state.
func (n *Node) State() NodeState {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state
}

// Warm reports whether the node left SYNCING: the gate's sync condition.
func (n *Node) Warm() bool {
	s := n.State()
	return s == StateReady || s == StateAnnounced || s == StateDraining
}

// ConfigMatch reports whether every live peer's config digest equals ours.
func (n *Node) ConfigMatch(now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.peers {
		if n.live(p, now) && p.mismatch {
			return false
		}
	}
	return true
}

// PeerInfo is one peer as gvs adm --cluster shows it.
type PeerInfo struct {
	NodeID      string
	Addr        netip.Addr
	Incarnation uint64
	State       NodeState
	Live        bool
	LastHeard   time.Time
	DigestMatch bool
	SentRecords uint64 // as it reports
	RecvRecords uint64 // received here from its address
	Lost        uint64 // its reported records that did not arrive (current estimate)
	Resyncs     uint64 // targeted bulk pushes asked of it because of loss
}

// Peers returns the known peers sorted by node id.
func (n *Node) Peers(now time.Time) []PeerInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]PeerInfo, 0, len(n.peers))
	for _, p := range n.peers {
		out = append(out, PeerInfo{NodeID: p.id, Addr: p.addr, Incarnation: p.inc, State: p.state,
			Live: n.live(p, now), LastHeard: p.lastHeard, DigestMatch: !p.mismatch, SentRecords: p.sentRecs,
			RecvRecords: n.recvFromLocked(p.addr), Lost: p.lost, Resyncs: p.resyncs})
	}
	slices.SortFunc(out, func(a, b PeerInfo) int {
		if a.NodeID < b.NodeID {
			return -1
		}
		if a.NodeID > b.NodeID {
			return 1
		}
		return 0
	})
	return out
}

// Stats returns a snapshot of the counters.
func (n *Node) Stats() Stats { return n.c.snapshot() }

// A name for every state, checked by the compiler.
var _ = [1]struct{}{}[len(nodeStateNames)-int(numNodeStates)]
