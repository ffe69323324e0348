package daemon

import (
	"context"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/internal/cluster"
	"github.com/gvs-lb/gvs/sched"
)

// The connection table as the cluster runtime reaches it (docs/cluster.md §4.1): the
// daemon translates between conntrack's entries and cluster.Entry, so neither
// package knows the other, and drains the workers' sync-event rings into the Node.

// tableAdapter is the Sink and Table of a Daemon's Node.
type tableAdapter struct {
	d *Daemon
}

var _ clusterTable = (*tableAdapter)(nil)

func newTableAdapter(d *Daemon) *tableAdapter { return &tableAdapter{d: d} }

// ns is t on the Director's clock (nanoseconds since New).
func (a *tableAdapter) ns(t time.Time) int64 { return int64(t.Sub(a.d.start)) }

// at is the Director's clock's ns as a time; zero stays the zero time.
func (a *tableAdapter) at(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return a.d.start.Add(time.Duration(ns))
}

// Upsert applies a received entry (cluster.Sink): its real server is looked up in the
// running configuration as the kernel receiver does; without it the entry is kept
// unbound until the server appears (bindUnbound).
func (a *tableAdapter) Upsert(e *cluster.Entry, origin uint8, now time.Time) bool {
	var r conntrack.Remote
	if !remoteOf(e, &r) {
		return false
	}
	dest, _ := a.d.d.SyncDest(&r.Key, r.DAddr, r.DPort)
	return a.d.d.Table().Upsert(&r, dest, origin, a.ns(now))
}

// Walk visits the table for the refresh sweeper and bulk pushes (cluster.Table).
func (a *tableAdapter) Walk(cursor uint64, max int, now time.Time, fn func(e *cluster.Entry, m *cluster.EntryMeta) bool) (uint64, bool) {
	var e cluster.Entry
	var m cluster.EntryMeta
	return a.d.d.Table().Walk(cursor, max, a.ns(now), func(c *conntrack.Conn, sm *conntrack.SyncMeta) bool {
		entryOf(c, &e)
		m = cluster.EntryMeta{Origin: sm.Origin, LastActive: a.at(sm.LastActive), LastSync: a.at(sm.LastSync)}
		return fn(&e, &m)
	})
}

// rawAddr is a's bytes as conntrack keeps addresses: IPv4 in the first 4 bytes.
func rawAddr(a netip.Addr) (b [16]byte) {
	if a.Is4() {
		v4 := a.As4()
		copy(b[:], v4[:])
		return b
	}
	return a.As16()
}

// addrOf is the address conntrack's raw bytes hold.
func addrOf(b *[16]byte, v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16(*b)
	}
	return netip.AddrFrom4([4]byte(b[:4]))
}

// Flag translation: the two packages number the same properties each their own way.
var flagPairs = [...]struct {
	c cluster.Flags
	t conntrack.Flags
}{
	{cluster.FlagTemplate, conntrack.FlagTemplate},
	{cluster.FlagNoOutput, conntrack.FlagNoOutput},
	{cluster.FlagInactive, conntrack.FlagInactive},
	{cluster.FlagNoCPort, conntrack.FlagNoCPort},
	{cluster.FlagAssured, conntrack.FlagAssured},
}

// entryOf translates a table entry (or a ring event's snapshot) into e. A fwmark
// template's virtual address holds the mark, which the record's fwmark also carries.
func entryOf(c *conntrack.Conn, e *cluster.Entry) {
	k := &c.Key
	*e = cluster.Entry{
		Proto: k.Proto, CAddr: addrOf(&k.CAddr, k.IPv6), VAddr: addrOf(&k.VAddr, k.IPv6), DAddr: addrOf(&c.DAddr, k.IPv6),
		CPort: k.CPort, VPort: k.VPort, DPort: c.DPort, Method: c.Method, State: uint8(c.State), Timeout: c.Timeout,
	}
	for _, p := range flagPairs {
		if c.Flags&p.t != 0 {
			e.Flags |= p.c
		}
	}
	if k.Proto == 0 && c.Flags&conntrack.FlagTemplate != 0 {
		e.FwMark = binary.BigEndian.Uint32(k.VAddr[:4])
	}
}

// remoteOf translates a received entry into the table's Remote; it reports false for
// an entry whose addresses mix families (a record carries one family).
func remoteOf(e *cluster.Entry, r *conntrack.Remote) bool {
	v6 := e.VAddr.Is6()
	if e.CAddr.Is6() != v6 || (e.DAddr.IsValid() && e.DAddr.Is6() != v6) {
		return false
	}
	*r = conntrack.Remote{
		Key:   conntrack.Key{Proto: e.Proto, IPv6: v6, CAddr: rawAddr(e.CAddr), CPort: e.CPort, VAddr: rawAddr(e.VAddr), VPort: e.VPort},
		DPort: e.DPort, Method: e.Method, State: conntrack.State(e.State), Timeout: e.Timeout,
	}
	if e.DAddr.IsValid() {
		r.DAddr = rawAddr(e.DAddr)
	}
	for _, p := range flagPairs {
		if e.Flags&p.c != 0 {
			r.Flags |= p.t
		}
	}
	return true
}

// eventEvery is how often the workers' sync-event rings are drained into the Node;
// sync_flush (100 ms) bounds how long a record waits after that.
const eventEvery = 5 * time.Millisecond

// eventBatch is how many events one drain hands over before it looks again.
const eventBatch = 1024

// drainEvents moves the workers' sync events into the Node every eventEvery, adopted
// entries included (docs/cluster.md §6), and binds received entries whose real server
// a new configuration brought.
func (c *clusterRun) drainEvents(ctx context.Context, d *Daemon) error {
	tick, stop := d.clock.NewTicker(eventEvery)
	defer stop()
	var e cluster.Entry
	var now time.Time
	enqueue := func(conn *conntrack.Conn) {
		entryOf(conn, &e)
		c.node.Enqueue(&e, now)
	}
	var gen uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case now = <-tick:
			for d.d.DrainSync(eventBatch, enqueue) == eventBatch {
			}
			c.refreshDigest(d)
			if c.vrrpMode() {
				// The heartbeats say ANNOUNCED while a VRRP instance here is
				// MASTER (docs/cluster.md §14).
				c.node.SetAnnounced(c.vrrpMasters.Load() > 0)
			}
			if g := d.d.Generation(); g != gen {
				gen = g
				c.bindUnbound(d)
			}
		}
	}
}

// bindUnbound binds received entries that wait for their real server to the servers
// the running configuration has: called when the Director takes a new configuration,
// and only while unbound entries exist. Each entry is resolved with its own key, as
// the receiver resolves a record (SyncDest), so the entries of port-0 and fwmark
// services bind too; the cost is the unbound entries', not the table's.
func (c *clusterRun) bindUnbound(d *Daemon) {
	n := d.d.Table().Rebind(func(k *conntrack.Key, daddr [16]byte, dport uint16) *sched.Dest {
		dest, _ := d.d.SyncDest(k, daddr, dport)
		return dest
	})
	if n > 0 {
		c.log.Info("cluster: received connections bound to real servers the configuration now has", "bound", n)
	}
}
