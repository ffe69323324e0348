package conntrack

import (
	"time"

	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/sched"
)

// refTable is a slow, obviously correct connection table for differential tests: a
// slice of entries in insertion order, scanned newest first (the real table inserts
// at the head of a hash chain), no hashing, no slabs, no wheel. Expiry is stated
// directly: at each tick boundary T (in order), every entry due by T that controls
// nobody is removed, then due entries that still control others are re-armed for 60 s;
// expire-now entries go at the start of the next Expire call. It shares the entry
// record and the transition function with the real table (the tables themselves are
// checked against the spec in state_test.go and trace_test.go).
type refTable struct {
	cfg      Config
	dest     func(id uint32) *sched.Dest // the test's dests by id
	tick     int64
	to       *timeoutsMs
	ents     []*refEntry
	clockSet bool
	lastTick int64
	noCPort  int
}

type refEntry struct {
	e     entry
	ctl   *refEntry
	onNow bool
	freed bool
}

func newRefTable(cfg Config, dest func(id uint32) *sched.Dest) *refTable {
	if cfg.Timeouts == (Timeouts{}) {
		cfg.Timeouts = DefaultTimeouts()
	}
	return &refTable{cfg: cfg, dest: dest, tick: int64(cfg.Tick), to: newTimeoutsMs(cfg.Timeouts)}
}

func (r *refTable) initClock(now int64) {
	if !r.clockSet {
		r.clockSet = true
		r.lastTick = floorDiv(now, r.tick)
	}
}

func (r *refTable) destOf(x *refEntry) *sched.Dest {
	if x.e.flags&fHasDest == 0 {
		return nil
	}
	return r.dest(x.e.dest)
}

func (r *refTable) fill(x *refEntry, c *Conn) {
	(&Table{}).fillLocked(0, 0, &x.e, c)
	c.Ref, c.Control = 0, 0
	if x.ctl != nil {
		c.Control = 1
	}
	fillDAddr(c, r.destOf(x))
}

func (r *refTable) In(k *Key, flags uint8, now int64, c *Conn) Result {
	res := r.in(k, k.CPort, flags, now, c)
	if res == notFound {
		res = Miss
		if k.CPort != 0 && r.noCPort > 0 {
			if res = r.in(k, 0, flags, now, c); res == notFound {
				res = Miss
			}
		}
	}
	return res
}

func (r *refTable) in(k *Key, cport uint16, flags uint8, now int64, c *Conn) Result {
	var x *refEntry
	for j := len(r.ents) - 1; j >= 0; j-- {
		e := &r.ents[j].e
		if e.proto == k.Proto && (e.flags&fIPv6 != 0) == k.IPv6 && e.caddr == k.CAddr &&
			e.cport == cport && e.vaddr == k.VAddr && e.vport == k.VPort &&
			e.flags&FlagTemplate == 0 && (cport == 0) == (e.flags&FlagNoCPort != 0) &&
			aliveLocked(e, now) {
			x = r.ents[j]
			break
		}
	}
	if x == nil {
		return notFound
	}
	d := r.destOf(x)
	if k.Proto == protoTCP && flags&tcpSYN != 0 {
		if (r.cfg.ExpireNodestConn && d != nil && d.Weight() == 0) ||
			(r.cfg.ConnReuseMode != 0 && newConnExpected(&x.e, r.cfg.ConnReuseMode)) {
			if x.e.nctl == 0 {
				r.expireNow(x, now)
			}
			return Miss
		}
	}
	if d != nil && !d.Available() {
		if r.cfg.ExpireNodestConn {
			r.expireNow(x, now)
			return Miss
		}
		r.fill(x, c)
		return DropNoDest
	}
	assure := transitionLocked(&x.e, d, DirIn, flags, r.to)
	x.e.expires = now + int64(x.e.timeout)*msNs
	r.assure(x, assure)
	r.fill(x, c)
	return Hit
}

func (r *refTable) expireNow(x *refEntry, now int64) {
	if x.e.expires > now {
		x.e.expires = now
	}
	x.onNow = true
}

func (r *refTable) assure(x *refEntry, assure bool) {
	if !assure || x.ctl == nil || x.e.flags&fCtlAssured != 0 {
		return
	}
	x.e.flags |= fCtlAssured
	if !x.ctl.freed && x.ctl.e.flags&FlagTemplate != 0 {
		x.ctl.e.flags |= FlagAssured
	}
}

func (r *refTable) Out(proto uint8, ipv6 bool, saddr [16]byte, sport uint16, daddr [16]byte, dport uint16, flags uint8, now int64, c *Conn) Result {
	for j := len(r.ents) - 1; j >= 0; j-- {
		x := r.ents[j]
		e := &x.e
		if e.proto != proto || (e.flags&fIPv6 != 0) != ipv6 || e.caddr != daddr || e.cport != dport || e.flags&FlagTemplate != 0 {
			continue
		}
		d := r.destOf(x)
		if ipvs.Method((e.flags&methodMask)>>methodShift) == ipvs.NAT {
			if d == nil || e.dport != sport || !destAddrEqual(d, &saddr, ipv6) {
				continue
			}
		} else if e.vaddr != saddr || e.vport != sport {
			continue
		}
		if !aliveLocked(e, now) {
			continue
		}
		assure := transitionLocked(e, d, DirOut, flags, r.to)
		e.expires = now + int64(e.timeout)*msNs
		r.assure(x, assure)
		r.fill(x, c)
		return Hit
	}
	return Miss
}

// Template returns the template it found (for the caller's control pointer).
func (r *refTable) Template(k *Key, now int64, c *Conn) *refEntry {
	for j := len(r.ents) - 1; j >= 0; j-- {
		x := r.ents[j]
		e := &x.e
		if e.proto != k.Proto || (e.flags&fIPv6 != 0) != k.IPv6 || e.caddr != k.CAddr ||
			e.cport != k.CPort || e.vport != k.VPort || e.flags&FlagTemplate == 0 || !vaddrMatch(k, &e.vaddr) {
			continue
		}
		if !aliveLocked(e, now) {
			continue
		}
		d := r.destOf(x)
		if d == nil || !d.Available() || (r.cfg.ExpireQuiescentTemplate && d.Weight() == 0) {
			if e.vport != 0xffff {
				e.vport, e.dport = 0xffff, 0xffff
			}
			return nil
		}
		e.expires = now + int64(e.timeout)*msNs
		r.fill(x, c)
		return x
	}
	return nil
}

func (r *refTable) full() bool { return len(r.ents) >= r.cfg.Max }

func (r *refTable) Insert(k *Key, dest *sched.Dest, dport uint16, m ipvs.Method, flags Flags, ctl *refEntry, tcpFlags uint8, now int64, c *Conn) Result {
	flags &= FlagOnePacket | FlagNoCPort
	if k.Proto != protoUDP {
		flags &^= FlagOnePacket
	}
	if dest != nil {
		flags |= FlagInactive
		if m != ipvs.NAT {
			flags |= FlagNoOutput
		}
	}
	ops := flags&FlagOnePacket != 0
	if !ops {
		r.initClock(now)
		if r.full() {
			return Full
		}
	}
	if ctl != nil && (ctl.freed || ctl.e.flags&FlagTemplate == 0) {
		ctl = nil
	}
	if ctl != nil {
		if !ops {
			ctl.e.nctl++
		}
		ctl.e.expires = now + int64(ctl.e.timeout)*msNs
	}
	x := &refEntry{ctl: ctl}
	var cref Ref
	if ctl != nil {
		cref = 1
	}
	(&Table{}).initEntry(&x.e, k, dest, dport, m, flags, cref)
	if dest != nil {
		dest.Bind(false)
	}
	assure := transitionLocked(&x.e, dest, DirIn, tcpFlags, r.to)
	x.e.expires = now + int64(x.e.timeout)*msNs
	if ops {
		r.fill(x, c)
		if dest != nil {
			dest.Unbind(false, x.e.flags&FlagInactive == 0)
		}
		return Hit
	}
	r.ents = append(r.ents, x)
	if flags&FlagNoCPort != 0 {
		r.noCPort++
	}
	r.assure(x, assure)
	r.fill(x, c)
	return Hit
}

func (r *refTable) InsertTemplate(k *Key, dest *sched.Dest, dport uint16, timeout int64, now int64, c *Conn) (*refEntry, Result) {
	r.initClock(now)
	if r.full() {
		return nil, Full
	}
	x := &refEntry{}
	(&Table{}).initEntry(&x.e, k, dest, dport, 0, FlagTemplate, 0)
	x.e.state = StateNone
	x.e.timeout = durMs(time.Duration(timeout))
	x.e.expires = now + int64(x.e.timeout)*msNs
	if dest != nil {
		dest.Bind(true)
	}
	r.ents = append(r.ents, x)
	r.fill(x, c)
	return x, Hit
}

// release removes x and applies the controller rules; it returns how many entries went.
func (r *refTable) release(x *refEntry, flush bool) int {
	for j, y := range r.ents {
		if y == x {
			r.ents = append(r.ents[:j], r.ents[j+1:]...)
			break
		}
	}
	x.freed = true
	if d := r.destOf(x); d != nil {
		d.Unbind(x.e.flags&FlagTemplate != 0, x.e.flags&FlagInactive == 0)
	}
	if x.e.flags&FlagNoCPort != 0 {
		r.noCPort--
	}
	n := 1
	if ct := x.ctl; ct != nil && !ct.freed && ct.e.nctl > 0 {
		ct.e.nctl--
		unassured := ct.e.flags&FlagTemplate == 0 || ct.e.flags&FlagAssured == 0
		if ct.e.nctl == 0 && (flush || (x.e.timeout == 0 && unassured)) {
			ct.e.timeout = 0
			n += r.release(ct, flush)
		}
	}
	return n
}

func (r *refTable) Expire(now int64) int {
	r.initClock(now)
	n := 0
	for _, x := range append([]*refEntry(nil), r.ents...) {
		if x.freed || !x.onNow {
			continue
		}
		x.onNow = false
		switch {
		case x.e.expires > now:
		case x.e.nctl == 0:
			n += r.release(x, false)
		default:
			postpone(&x.e, now)
		}
	}
	nowTick := floorDiv(now, r.tick)
	if nowTick-(r.lastTick+1) >= wheelSlots {
		// The table's catch-up pass: everything is judged at now, controlled
		// entries first.
		n += r.expireAt(now)
		r.lastTick = nowTick
		return n
	}
	for T := r.lastTick + 1; T <= nowTick; T++ {
		// Skip ticks at which nothing is due.
		if len(r.ents) == 0 {
			break
		}
		next := r.ents[0].e.expires
		for _, x := range r.ents {
			next = min(next, x.e.expires)
		}
		if due := ceilDiv(next, r.tick); due > T {
			T = due - 1
			continue
		}
		n += r.expireAt(T * r.tick)
	}
	if nowTick > r.lastTick {
		r.lastTick = nowTick
	}
	return n
}

// expireAt removes the entries due at ref that control nobody (which may free their
// controllers), then re-arms the due ones that still control others.
func (r *refTable) expireAt(ref int64) int {
	n := 0
	for again := true; again; {
		again = false
		for _, x := range r.ents {
			if x.e.expires <= ref && x.e.nctl == 0 {
				n += r.release(x, false)
				again = true
				break
			}
		}
	}
	for _, x := range r.ents {
		if x.e.expires <= ref {
			postpone(&x.e, ref)
		}
	}
	return n
}

func (r *refTable) dropWhere(match func(*refEntry) bool) {
	for again := true; again; {
		again = false
		for _, x := range r.ents {
			if x.e.nctl == 0 && match(x) {
				x.e.timeout = 0
				r.release(x, true)
				again = true
				break
			}
		}
	}
}

func (r *refTable) Flush() { r.dropWhere(func(*refEntry) bool { return true }) }

func (r *refTable) ExpireDest(id uint32) {
	if d := r.dest(id); d == nil || d.Available() {
		return
	}
	r.dropWhere(func(x *refEntry) bool { return x.e.flags&fHasDest != 0 && x.e.dest == id })
}
