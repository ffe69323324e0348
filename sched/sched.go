package sched

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Packet is what a scheduler may look at when it picks a real server for a new
// connection. Addresses are raw: an IPv4 address occupies the first 4 bytes.
type Packet struct {
	Src, Dst         [16]byte
	SrcPort, DstPort uint16
	IPv6             bool
	Protocol         uint8
	// Inverse is set when the header came from an ICMP error's embedded packet:
	// the client is then the destination (sh/mh hash the "inverse" fields).
	Inverse bool
	// Now is the Director's clock in nanoseconds (monotonic, or pcap time in replay).
	Now int64
}

// SrcFold and DstFold return the packet's addresses folded like FoldAddr.
func (p *Packet) SrcFold() uint32 { return foldRaw(&p.Src, p.IPv6) }
func (p *Packet) DstFold() uint32 { return foldRaw(&p.Dst, p.IPv6) }

func foldRaw(b *[16]byte, v6 bool) uint32 {
	if !v6 {
		return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	return FoldAddr16(*b)
}

// A Scheduler picks a real server for a new connection. It is called with its Pool's
// lock held, so it keeps its state without locks of its own (but for this package's
// schedulers that keep no state: see stateless); dests is the service's list in
// kernel order (head first) and must not be retained or modified. Schedule returns
// nil when no destination is available.
type Scheduler interface {
	Name() string
	Schedule(dests []*Dest, p *Packet) *Dest
}

// stateless is implemented by this package's schedulers that keep no state (lc,
// wlc, sed, nq, fo, ovf, none): their Schedule reads the list and the dests'
// atomic fields alone, so a Pool runs it without its lock, from the view it
// publishes (Pool.Schedule), as the kernel runs them under RCU alone, where rr,
// wrr and the others take the service's scheduler lock. statelessIndex is the
// scheduler's index in statelessOf: a view names its scheduler by that byte, not
// by an interface (two words more for the collector in every service's pool).
type stateless interface {
	statelessIndex() uint8
}

// statelessOf is the stateless schedulers, by statelessIndex.
var statelessOf = [...]Scheduler{lc{}, wlc{}, sed{}, nq{}, fo{}, ovf{}, none{}}

// wlcIndex is wlc's statelessIndex, which Pool.Schedule tests for.
const wlcIndex = 1

func (lc) statelessIndex() uint8   { return 0 }
func (wlc) statelessIndex() uint8  { return wlcIndex }
func (sed) statelessIndex() uint8  { return 2 }
func (nq) statelessIndex() uint8   { return 3 }
func (fo) statelessIndex() uint8   { return 4 }
func (ovf) statelessIndex() uint8  { return 5 }
func (none) statelessIndex() uint8 { return 6 }

// packetBlind is implemented by this package's schedulers whose choice does not
// depend on the Packet they are given (rr, wrr, lc, wlc, sed, nq, fo, ovf, twos,
// none): see ReadsPacket.
type packetBlind interface {
	packetBlind()
}

func (lc) packetBlind()    {}
func (wlc) packetBlind()   {}
func (sed) packetBlind()   {}
func (nq) packetBlind()    {}
func (fo) packetBlind()    {}
func (ovf) packetBlind()   {}
func (none) packetBlind()  {}
func (*rr) packetBlind()   {}
func (*wrr) packetBlind()  {}
func (*twos) packetBlind() {}

// ReadsPacket reports whether s's choice may depend on the Packet its Schedule is
// given: true for sh, mh, dh, lblc and lblcr (they hash or look up its addresses;
// lblc and lblcr keep its time) and for a Scheduler of another package; false for
// the others, whose caller may pass any Packet (a scheduling path spares filling it).
func ReadsPacket(s Scheduler) bool {
	_, blind := s.(packetBlind)
	return !blind
}

// A poolView is a stateless scheduler (its index in statelessOf) and the list it
// schedules from, published together by a Pool (Pool.view). Immutable once
// published.
type poolView struct {
	dests []*Dest
	sched uint8
}

// Hooks is implemented by schedulers whose state derives from the destination list;
// the Pool calls each method exactly where IPVS calls init_service, add_dest, del_dest
// and upd_dest (docs/ipvs-semantics.md §2.4), always with the list as it is after the change.
// Schedulers without such state (lc, wlc, ...) do not implement it.
type Hooks interface {
	// Init is called when the scheduler is bound to a service (with its current list).
	Init(dests []*Dest)
	// AddDest is called after d was inserted at the head of the list.
	AddDest(dests []*Dest, d *Dest)
	// DelDest is called after d was unlinked; at is the index d had in the old list.
	DelDest(dests []*Dest, d *Dest, at int)
	// UpdDest is called after d's weight or thresholds were edited in place.
	UpdDest(dests []*Dest, d *Dest)
}

// Flags are a service's scheduler flags (IP_VS_SVC_F_SCHED1..3).
type Flags uint8

const (
	FlagSched1 Flags = 1 << iota // sh-fallback, mh-fallback
	FlagSched2                   // sh-port, mh-port
	FlagSched3
)

// Errors returned by Pool changes; they read like ipvsadm's messages.
var (
	ErrDestExists   = errors.New("destination already exists")
	ErrNoDest       = errors.New("no such destination")
	ErrWeight       = errors.New("weight must not be negative")
	ErrThresholds   = errors.New("lower threshold is greater than upper threshold")
	ErrTooManyDests = errors.New("too many destinations for the scheduler's table")
)

// A Pool is one virtual service's real servers in kernel list order plus its
// scheduler. It is safe for concurrent use. A Scheduler value belongs to one Pool: its
// state follows that pool's list through the hooks.
type Pool struct {
	mu    sync.Mutex
	dests []*Dest // head first; replaced (copy on write), never modified in place
	s     Scheduler
	// first is the list of the pool's first dest, written once before any list
	// names it: a service of one real server (the common one) makes no list
	// object of its own, an object less per service for the collector to mark.
	first    [1]*Dest
	firstSet bool
	spare    *Dest // zero storage made with the pool (NewPoolOf) for its first dest (NewDest)
	// view is what Schedule reads without the lock: the scheduler and the list when
	// the scheduler is stateless and the list is not empty, else nil. Replaced
	// under mu whenever either changes (publishLocked), never modified; the first
	// one is firstView, in the pool, as the first list is first.
	view         atomic.Pointer[poolView]
	firstView    poolView
	firstViewSet bool
}

// NewPool returns an empty pool scheduled by s (nil: every pick fails, like "none").
func NewPool(s Scheduler) *Pool {
	p := new(Pool)
	p.schedule(s)
	return p
}

// schedule makes s the empty pool's scheduler, its hooks told of the empty list.
func (p *Pool) schedule(s Scheduler) {
	p.s = s
	if h, ok := s.(Hooks); ok {
		h.Init(nil)
	}
	p.publishLocked()
}

// publishLocked publishes the view of the pool's scheduler and list (Pool.view):
// in the pool's own storage the first time, then a new one each time.
//
// Precondition: p.mu is held, or p is not shared yet.
func (p *Pool) publishLocked() {
	sl, ok := p.s.(stateless)
	if !ok || len(p.dests) == 0 {
		p.view.Store(nil)
		return
	}
	v := &p.firstView
	if p.firstViewSet {
		v = new(poolView)
	}
	p.firstViewSet = true
	v.dests, v.sched = p.dests, sl.statelessIndex()
	p.view.Store(v)
}

// NewPoolOf returns an empty pool scheduled by a fresh scheduler of the named kind
// (New), made in one allocation with room for its first dest (Pool.NewDest) and,
// for a scheduler with state of its own (rr), with the scheduler: a service of
// one real server is one object for the collector to mark, not four.
func NewPoolOf(name string, opts Options) (*Pool, error) {
	return new(PoolRoom).Init(name, opts)
}

// A PoolRoom is the storage of a pool that NewPoolOf makes, for a caller that
// makes it in one allocation with what it keeps beside the pool (the
// Director's service: one object per service for the collector to mark, not
// two): the pool, an rr scheduler's state and the pool's first dest. It must
// not be copied once Init has run.
type PoolRoom struct {
	p  Pool
	rr rr
	d  Dest
}

// Init makes r's pool as NewPoolOf does and returns it (r's own).
func (r *PoolRoom) Init(name string, opts Options) (*Pool, error) {
	if name == "rr" && opts.Flags&^(FlagSched1|FlagSched2|FlagSched3) == 0 {
		r.p.schedule(&r.rr)
	} else {
		s, err := New(name, opts)
		if err != nil {
			return nil, err
		}
		r.p.schedule(s)
	}
	r.p.spare = &r.d
	return &r.p, nil
}

// NewDest returns what NewDest does, in the pool's room for its first dest when
// it has that room unused (NewPoolOf); the dest is not in the pool yet (Add).
func (p *Pool) NewDest(id uint32, addr netip.Addr, port uint16, weight int32, upper, lower uint32) *Dest {
	p.mu.Lock()
	d := p.spare
	p.spare = nil
	p.mu.Unlock()
	if d == nil {
		return NewDest(id, addr, port, weight, upper, lower)
	}
	d.init(id, addr, port, weight, upper, lower)
	return d
}

// Schedule picks a dest for a new connection, or nil when none is available. A
// stateless scheduler runs without the pool's lock, on the list of the last change
// published (the kernel's RCU reader's view: a dest deleted meanwhile may still be
// picked, as one picked just before its delete is bound after it).
func (p *Pool) Schedule(pk *Packet) *Dest {
	if v := p.view.Load(); v != nil {
		if v.sched == wlcIndex {
			// The default scheduler, called directly: no call through the
			// interface and its wrapper of wlc's value method.
			return leastWeighted(v.dests, false)
		}
		return statelessOf[v.sched].Schedule(v.dests, pk)
	}
	p.mu.Lock()
	var d *Dest
	if p.s != nil {
		d = p.s.Schedule(p.dests, pk)
	}
	p.mu.Unlock()
	return d
}

// Scheduler returns the pool's scheduler.
func (p *Pool) Scheduler() Scheduler {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.s
}

// SetScheduler binds a new scheduler; it is initialised with the current list, as
// ipvsadm -E with another -s does. If the list is longer than the new scheduler's
// table (mh, see Sizer) it returns ErrTooManyDests and keeps the old scheduler, as the
// kernel restores the old one when init_service fails.
func (p *Pool) SetScheduler(s Scheduler) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if sz, ok := s.(Sizer); ok && len(p.dests) > sz.MaxDests() {
		return fmt.Errorf("%w: %d destinations, %s allows %d", ErrTooManyDests, len(p.dests), s.Name(), sz.MaxDests())
	}
	p.s = s
	if h, ok := s.(Hooks); ok {
		h.Init(p.dests)
	}
	p.publishLocked()
	return nil
}

// Dests returns the current list in kernel order. The slice is shared and read-only.
func (p *Pool) Dests() []*Dest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dests
}

// Find returns the dest at addr:port, or nil.
func (p *Pool) Find(addr netip.Addr, port uint16) *Dest {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, d := p.findLocked(addr, port)
	return d
}

// Precondition: p.mu is held.
func (p *Pool) findLocked(addr netip.Addr, port uint16) (int, *Dest) {
	raw, v6 := rawAddr(addr)
	for i, d := range p.dests {
		if d.raw == raw && d.v6 == v6 && d.port == port {
			return i, d
		}
	}
	return -1, nil
}

// Sizer is implemented by schedulers that bound the number of dests (mh: its table size).
type Sizer interface {
	MaxDests() int
}

// Add inserts d at the head of the list (docs/ipvs-semantics.md §2.1): it validates the weight
// and thresholds, sets AVAILABLE, clears OVERLOAD where the thresholds allow, and calls
// the scheduler's AddDest hook. A dest whose counters survive from an earlier delete
// may be passed again (the kernel's trash); give it the new settings with Dest.Revive
// first. A dest that is in a list (this pool's or another's) is refused.
func (p *Pool) Add(d *Dest) error {
	w, u, l := d.weight.Load(), d.uThreshold.Load(), d.lThreshold.Load()
	if err := validate(w, u, l); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, old := p.findLocked(d.Addr(), d.port); old != nil || d.Available() {
		return fmt.Errorf("%w: %s", ErrDestExists, netip.AddrPortFrom(d.Addr(), d.port))
	}
	if sz, ok := p.s.(Sizer); ok && len(p.dests)+1 > sz.MaxDests() {
		return fmt.Errorf("%w: %s allows %d", ErrTooManyDests, p.s.Name(), sz.MaxDests())
	}
	p.updateLocked(d, w, u, l, true)
	if len(p.dests) == 0 && !p.firstSet {
		p.first[0], p.firstSet = d, true
		p.dests = p.first[:]
	} else {
		list := make([]*Dest, 0, len(p.dests)+1)
		list = append(list, d)
		p.dests = append(list, p.dests...)
	}
	if h, ok := p.s.(Hooks); ok {
		h.AddDest(p.dests, d)
	}
	p.publishLocked()
	return nil
}

// Edit changes the weight and thresholds of the dest at addr:port in place (§2.2).
func (p *Pool) Edit(addr netip.Addr, port uint16, weight int32, upper, lower uint32) error {
	if err := validate(weight, upper, lower); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, d := p.findLocked(addr, port)
	if d == nil {
		return fmt.Errorf("%w: %s", ErrNoDest, netip.AddrPortFrom(addr.Unmap(), port))
	}
	p.updateLocked(d, weight, upper, lower, false)
	if h, ok := p.s.(Hooks); ok {
		h.UpdDest(p.dests, d)
	}
	return nil
}

// Delete unlinks the dest at addr:port (§2.3): it clears AVAILABLE, so connections
// still bound to it see a deleted dest, and calls the DelDest hook. It returns the
// dest so the caller can keep it (its counters) in a trash.
func (p *Pool) Delete(addr netip.Addr, port uint16) (*Dest, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, d := p.findLocked(addr, port)
	if d == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoDest, netip.AddrPortFrom(addr.Unmap(), port))
	}
	d.clearFlag(FlagAvailable)
	list := make([]*Dest, 0, len(p.dests)-1)
	list = append(list, p.dests[:at]...)
	p.dests = append(list, p.dests[at+1:]...)
	if h, ok := p.s.(Hooks); ok {
		h.DelDest(p.dests, d, at)
	}
	p.publishLocked()
	return d, nil
}

func validate(w int32, u, l uint32) error {
	if w < 0 {
		return ErrWeight
	}
	if u != 0 && l > u {
		return ErrThresholds
	}
	return nil
}

// updateLocked is the kernel's common add/edit step (__ip_vs_update_dest).
// Precondition: p.mu is held.
func (p *Pool) updateLocked(d *Dest, w int32, u, l uint32, add bool) {
	if add || w != 0 {
		d.lastWeight.Store(w)
	}
	d.weight.Store(w)
	d.setFlag(FlagAvailable)
	if old := d.uThreshold.Load(); u == 0 || u > old {
		d.clearFlag(FlagOverload)
	}
	if u == 0 {
		l = 0 // ipvsadm: no lower threshold without an upper one
	}
	d.uThreshold.Store(u)
	d.lThreshold.Store(l)
}
