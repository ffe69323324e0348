package cluster

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/gvs-lb/gvs/ipvssync"
)

// push is one bulk push in progress (or finished, kept to answer a repeated request).
// It sends from a socket and a sender of its own, so that its messages hold its
// records only and the joiner counts them by their source port (docs/cluster.md §6).
type push struct {
	target string // the joiner; "" for a push to a new non-gvs source (no bulk-done)
	inc    uint64 // the joiner's incarnation
	reqID  uint32
	cursor uint64
	credit float64
	count  uint64
	done   bool
	snd    *sender    // its messages; nil before its first step and once done
	out    syncWriter // its socket, or the Transport when none could be opened
	sock   PushSender // its socket (nil: none)
	port   uint16     // its socket's source port, announced in its bulk-done (0: none)
}

// bulkRequestLocked starts a push for a joiner's request, or repeats the bulk-done of
// a push already finished for the same request (the first one may have been lost).
func (n *Node) bulkRequestLocked(m *ctlMsg, now time.Time) {
	if p := n.pushes[m.NodeID]; p != nil && p.reqID == m.ReqID && p.inc == m.Incarnation {
		if p.done {
			n.sendControlLocked(&ctlMsg{Type: ctlBulkDone, ReqID: p.reqID, Target: p.target, Count: p.count, PushPort: p.port})
		}
		return
	}
	n.log.Info("cluster: bulk push started", "to", m.NodeID, "request", m.ReqID)
	if old := n.pushes[m.NodeID]; old != nil {
		n.retireLocked(old)
	}
	n.pushes[m.NodeID] = &push{target: m.NodeID, inc: m.Incarnation, reqID: m.ReqID}
}

// A pushSocket is a push's socket opened by Tick before it takes the Node's lock, or
// the reason none could be opened.
type pushSocket struct {
	sock PushSender
	err  error
}

// openPushSockets opens a socket for each bulk push that has none yet, without the
// Node's lock: opening one takes system calls (and, on a sync interface in another
// network namespace, a thread switched into it) that the receive goroutines must not
// wait for. It first starts the pushes to new non-gvs sources, so they get theirs in
// the same tick. A push that starts between this and pushLocked (a request received
// meanwhile) gets its socket at the next tick.
func (n *Node) openPushSockets(now time.Time) []pushSocket {
	n.mu.Lock()
	want := 0
	if n.state != StateCold {
		n.newSourcePushesLocked(now)
		for _, p := range n.pushes {
			if !p.done && p.snd == nil {
				want++
			}
		}
	}
	n.mu.Unlock()
	if want == 0 {
		return nil
	}
	socks := make([]pushSocket, want)
	for i := range socks {
		socks[i].sock, socks[i].err = n.tr.OpenPush()
	}
	return socks
}

// openLocked gives p its sender and the socket opened for it. Without a socket of
// its own (the Transport could not open one) it sends through the Transport's, and
// its bulk-done names no port: the joiner then counts every record from our address.
func (n *Node) openLocked(p *push, s pushSocket) {
	p.snd, p.out = newSender(&n.cfg, &n.c), n.tr
	if s.err != nil {
		n.logOnceLocked("openpush", "cluster: no socket of its own for a bulk push; sending it from the sync socket, "+
			"so the joiner cannot tell its records from the others", "err", s.err)
		return
	}
	p.sock, p.out, p.port = s.sock, s.sock, s.sock.Port()
}

// retireLocked releases p's sender, and hands its socket to Tick to close once the
// Node's lock is released.
func (n *Node) retireLocked(p *push) {
	if p.sock != nil {
		n.closing = append(n.closing, p.sock)
	}
	p.snd, p.out, p.sock = nil, nil, nil
}

// syncable reports whether an entry's state is one the kernel sends (for the sweeper:
// a connection in SYN states is never sent, nor refreshed).
func syncable(e *Entry) bool {
	if e.Flags&FlagTemplate != 0 || e.Proto != ipvssync.ProtoTCP {
		return true
	}
	switch uint16(e.State) {
	case ipvssync.TCPEstablished, ipvssync.TCPFinWait, ipvssync.TCPClose, ipvssync.TCPCloseWait, ipvssync.TCPTimeWait:
		return true
	}
	return false
}

// sweepLocked runs the refresh sweeper for elapsed: it looks at sync_sweep_rate
// entries a second and re-sends those this director owns that saw traffic since
// they were last sent and whose copies on the receivers would expire within half
// their timeout (docs/cluster.md §4.3). The kernel has no such sweeper: a quiet
// flow synced once expires on the backups while alive on its director.
func (n *Node) sweepLocked(elapsed time.Duration, now time.Time) {
	if n.cfg.SweepRate == 0 {
		return
	}
	// Credit never exceeds one second's worth, so a stalled sweeper does not burst.
	n.sweepCredit = min(n.sweepCredit+float64(n.cfg.SweepRate)*elapsed.Seconds(), float64(n.cfg.SweepRate))
	budget := int(n.sweepCredit)
	if budget == 0 {
		return
	}
	n.sweepCredit -= float64(budget)
	next, done := n.table.Walk(n.sweepCursor, budget, now, func(e *Entry, m *EntryMeta) bool {
		if m.Origin != 0 || m.LastSync.IsZero() || !m.LastActive.After(m.LastSync) || !syncable(e) {
			return false
		}
		if m.LastSync.Add(e.Timeout).Sub(now) >= e.Timeout/2 {
			return false
		}
		if !n.snd.add(e, now) {
			return false
		}
		n.c.swept.Add(1)
		return true
	})
	n.sweepCursor = next
	if done {
		n.sweepCursor = 0
	}
}

// pushLocked advances every bulk push by bulk_rate entries walked a second (so at
// most bulk_rate records sent: entries owned by others are walked past), never filling
// the send queue past half (incremental sync keeps the other half), and finishes
// those that walked the whole table with a bulk-done.
func (n *Node) pushLocked(elapsed time.Duration, now time.Time, socks []pushSocket) []pushSocket {
	if len(n.pushes) == 0 {
		return socks
	}
	// Orphans are entries whose origin is no live peer; the live director with the
	// lowest node id re-sends them.
	var orphan [256]bool
	for o := 1; o < 256; o++ {
		s := n.byOrigin[o]
		orphan[o] = s == nil || s.retired || !n.liveAddrLocked(s.addr, now)
	}
	lowest := true
	for _, p := range n.peers {
		if n.live(p, now) && p.state != StateSyncing && p.state != StateCold && p.id < n.cfg.NodeID {
			lowest = false
		}
	}
	perMsg := (n.cfg.SyncMaxLen - ipvssync.HeaderLenV1) / ipvssync.RecordLenV4
	for _, p := range n.pushes {
		if p.done {
			continue
		}
		if p.snd == nil {
			if len(socks) == 0 {
				continue // started after openPushSockets counted: its socket comes next tick
			}
			n.openLocked(p, socks[0])
			socks = socks[1:]
		}
		p.credit = min(p.credit+float64(n.cfg.BulkRate)*elapsed.Seconds(), float64(n.cfg.BulkRate))
		// At most half the send queue's messages a step, as before the push had a
		// sender of its own: the sync network's and the receivers' buffers are
		// shared with the incremental sync, which must keep flowing.
		budget := min(int(p.credit), (p.snd.room()-n.cfg.SyncQLenMax/2)*perMsg)
		if budget > 0 {
			p.credit -= float64(budget)
			next, done := n.table.Walk(p.cursor, budget, now, func(e *Entry, m *EntryMeta) bool {
				if m.Origin != 0 && !(orphan[m.Origin] && lowest) {
					return false
				}
				if !p.snd.add(e, now) {
					return false
				}
				p.count++
				n.c.bulkSent.Add(1)
				return true
			})
			p.cursor = next
			if done {
				p.done = true
				p.snd.flushAll(now)
			}
		}
		p.snd.tick(now)
		n.writeLocked(p.snd, p.out)
		if p.done {
			n.retireLocked(p)
			if p.target != "" {
				n.sendControlLocked(&ctlMsg{Type: ctlBulkDone, ReqID: p.reqID, Target: p.target, Count: p.count, PushPort: p.port})
			}
			n.log.Info("cluster: bulk push done", "to", p.target, "records", p.count, "port", p.port)
		}
	}
	return socks
}

// newSourcePushesLocked starts a push to each source that sends sync but has not sent
// a heartbeat within a peer timeout of its first datagram: it is not gvs (a kernel
// IPVS master), and a push to it once makes a mixed cluster converge both ways.
func (n *Node) newSourcePushesLocked(now time.Time) {
	for src, s := range n.sources {
		if !s.pushed && now.Sub(s.firstSeen) >= n.cfg.PeerTimeout && !n.isPeerAddrLocked(src) {
			s.pushed = true
			if n.pushes[""] == nil || n.pushes[""].done {
				n.log.Info("cluster: new sync source without heartbeats (kernel IPVS?); pushing our entries", "source", src)
				n.pushes[""] = &push{}
			}
		}
	}
}

func (n *Node) isPeerAddrLocked(a netip.Addr) bool {
	for _, p := range n.peers {
		if p.addr == a {
			return true
		}
	}
	return false
}

func (n *Node) liveAddrLocked(a netip.Addr, now time.Time) bool {
	for _, p := range n.peers {
		if p.addr == a && n.live(p, now) {
			return true
		}
	}
	return false
}

// joinState is a joining director's view of its bulk sync (docs/cluster.md §6).
type joinState struct {
	start time.Time
	reqID uint32
	peers map[string]*joinPeer
}

// joinPeer is the bulk sync expected from one peer.
type joinPeer struct {
	reqID     uint32
	requested time.Time
	mark      recvMark // what had arrived from it when we asked
	gotDone   bool
	doneCount uint64
	donePort  uint16 // the push's source port (0: an older peer, count by address)
	doneAt    time.Time
	retried   bool
	complete  bool
}

// askLocked asks peer id (at addr) for a new bulk push, counting its records from now.
func (jp *joinPeer) askLocked(n *Node, id string, addr netip.Addr, now time.Time) {
	jp.reqID, jp.requested, jp.gotDone = uint32(n.rand()), now, false
	jp.mark = n.markLocked(addr)
	n.sendControlLocked(&ctlMsg{Type: ctlBulkReq, ReqID: jp.reqID, Target: id})
}

// receivedLocked returns the records of the push asked for that arrived from addr.
func (jp *joinPeer) receivedLocked(n *Node, addr netip.Addr) uint64 {
	return n.sinceLocked(addr, &jp.mark, jp.donePort)
}

// heartbeat adds a peer heard while joining to those the join waits for, and asks it
// again if it shows no push for us a peer timeout after the request (the request was
// lost, or it restarted).
func (j *joinState) heartbeat(n *Node, p *peer, now time.Time) {
	jp := j.peers[p.id]
	if jp == nil {
		jp = &joinPeer{reqID: j.reqID, requested: j.start}
		j.peers[p.id] = jp
	}
	if jp.complete || jp.gotDone {
		return
	}
	pushing := p.pushTarget == n.cfg.NodeID && p.pushReqID == jp.reqID
	if !pushing && now.Sub(jp.requested) >= n.cfg.PeerTimeout {
		jp.askLocked(n, p.id, p.addr, now)
	}
}

// done records a peer's bulk-done for the current request.
func (j *joinState) done(n *Node, m *ctlMsg, now time.Time) {
	jp := j.peers[m.NodeID]
	if jp == nil {
		jp = &joinPeer{reqID: j.reqID, requested: j.start}
		j.peers[m.NodeID] = jp
	}
	if m.ReqID != jp.reqID || jp.complete {
		return
	}
	jp.gotDone, jp.doneCount, jp.donePort, jp.doneAt = true, m.Count, m.PushPort, now
}

// progress ends the join once every live peer's bulk arrived in full — checked a
// sync_flush after its bulk-done, when its last messages are in — with one re-request
// for a short count; or when join_wait expires, which is counted. A director that hears
// no peer within the peer timeout is the first and is ready at once.
func (j *joinState) progress(n *Node, now time.Time) {
	all := true
	for id, jp := range j.peers {
		p := n.peers[id]
		if jp.complete || p == nil || !n.live(p, now) {
			continue
		}
		if !jp.gotDone || now.Sub(jp.doneAt) < n.cfg.SyncFlush {
			all = false
			continue
		}
		if jp.donePort == 0 {
			n.logOnceLocked("noport:"+id, "cluster: a peer's bulk-done names no push port (an older gvs, or it could not open one); "+
				"counting every record from its address, which can hide a short push", "peer", id)
		}
		got := jp.receivedLocked(n, p.addr)
		if got < jp.doneCount {
			n.c.bulkShort.Add(1)
		}
		switch {
		case got >= jp.doneCount:
			jp.complete = true
		case !jp.retried:
			n.log.Warn("cluster: bulk sync from a peer arrived short; asking again", "peer", id,
				"sent", jp.doneCount, "received", got, "port", jp.donePort)
			jp.retried = true
			jp.askLocked(n, id, p.addr, now)
			all = false
		default:
			n.log.Warn("cluster: bulk sync from a peer arrived short twice; going on without the rest", "peer", id,
				"sent", jp.doneCount, "received", got)
			jp.complete = true
		}
	}
	switch {
	case all && now.Sub(j.start) >= n.cfg.PeerTimeout:
		n.log.Info("cluster: bulk sync complete", "peers", len(j.peers), "took", now.Sub(j.start))
	case n.cfg.JoinWait > 0 && now.Sub(j.start) >= n.cfg.JoinWait:
		n.c.joinIncomplete.Add(1)
		n.log.Warn("cluster: join_wait expired before bulk sync completed; going ready without it", "join_wait", n.cfg.JoinWait)
	default:
		return
	}
	n.join = nil
	n.joinTook = now.Sub(j.start)
	if n.state == StateSyncing {
		n.state = StateReady
	}
}

// JoinStatus is a joining director's bulk-sync progress, for gvs adm --cluster.
type JoinStatus struct {
	Since time.Duration // since Start
	Peers []JoinPeerStatus
}

// JoinPeerStatus is the bulk expected from one peer.
type JoinPeerStatus struct {
	NodeID   string
	Done     bool   // its bulk-done arrived
	Sent     uint64 // the count its bulk-done announced
	Received uint64 // records received from it since the request
	Complete bool   // counted in full (or given up on after a second short count)
}

// Join returns the join in progress, or nil when the node is not joining.
func (n *Node) Join(now time.Time) *JoinStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	j := n.join
	if j == nil {
		return nil
	}
	st := &JoinStatus{Since: now.Sub(j.start)}
	for id, jp := range j.peers {
		var recv uint64
		if p := n.peers[id]; p != nil {
			port := jp.donePort
			if !jp.gotDone && p.pushTarget == n.cfg.NodeID && p.pushReqID == jp.reqID {
				port = p.pushPort // the push under way, as its heartbeat names it
			}
			recv = n.sinceLocked(p.addr, &jp.mark, port)
		}
		st.Peers = append(st.Peers, JoinPeerStatus{NodeID: id, Done: jp.gotDone || jp.complete, Sent: jp.doneCount,
			Received: recv, Complete: jp.complete})
	}
	slices.SortFunc(st.Peers, func(a, b JoinPeerStatus) int { return strings.Compare(a.NodeID, b.NodeID) })
	return st
}

// Incarnation returns the node's current incarnation (0 before Start).
func (n *Node) Incarnation() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.inc
}
