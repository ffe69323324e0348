package sched

import (
	"fmt"
	"time"
)

// The lblc/lblcr cache geometry and collector timing (docs/ipvs-semantics.md §4.13, §4.14).
const (
	locBits      = 10 // CONFIG_IP_VS_LBLC_TAB_BITS, CONFIG_IP_VS_LBLCR_TAB_BITS
	locBuckets   = 1 << locBits
	locMaxSize   = 16 * locBuckets // the collector's target, max_size
	locCapacity  = 4 * locMaxSize  // Options.LBLCCapacity's default
	locFullEvery = 30              // COUNT_FOR_FULL_EXPIRATION
	locTick      = int64(60 * time.Second)
	locIdle      = int64(6 * time.Minute) // ENTRY_TIMEOUT of the oversize collection
	locExpire    = 24 * time.Hour         // lblc_expiration, lblcr_expiration
)

// lblc is locality-based least connection (docs/ipvs-semantics.md §4.13): a cache maps each
// destination address to the dest wlc chose for it; the cached dest is kept while it
// is available, has a weight and is not "overloaded" in lblc's own sense.
//
// The zero value is not usable (use newLBLC); it is used under its Pool's lock.
type lblc struct {
	c locCache
}

func newLBLC(o Options) (*lblc, error) {
	s := &lblc{}
	if err := s.c.configure(o.LBLCExpiration, o.LBLCCapacity); err != nil {
		return nil, err
	}
	s.c.reset()
	return s, nil
}

func (*lblc) Name() string { return "lblc" }

// Init starts an empty cache, as init_service allocates a fresh table. The kernel has
// no other hooks: entries naming a deleted dest fail the AVAILABLE test and are
// replaced when next used. gvs keeps that test per Pool (see locCache.gone), which
// is what AddDest and DelDest maintain.
func (s *lblc) Init([]*Dest)                      { s.c.reset() }
func (s *lblc) AddDest(_ []*Dest, d *Dest)        { s.c.setGone(d, false) }
func (s *lblc) DelDest(_ []*Dest, d *Dest, _ int) { s.c.setGone(d, true) }
func (*lblc) UpdDest([]*Dest, *Dest)              {}

func (s *lblc) Schedule(dests []*Dest, p *Packet) *Dest {
	c := &s.c
	now := p.Now
	c.advance(now)
	k := locKeyOf(p)
	i, prev := c.lookup(&k)
	if i >= 0 {
		e := &c.ents[i]
		e.lastuse = now
		// The cached dest's OVERLOAD flag is not tested, only lblc's heuristic
		// (TV-LBLC-4).
		if d := c.refs[e.ref]; !c.gone[e.ref] && d.weight.Load() > 0 && !locOverloaded(d, dests) {
			return d
		}
	}
	d := leastWeighted(dests, false)
	if d == nil {
		return nil
	}
	if i >= 0 {
		if c.refs[c.ents[i].ref] == d {
			return d
		}
		// Replaced by a new entry. The kernel unhashes the old entry without
		// decrementing its entry counter and counts the new one, so the counter
		// drifts up by one per replacement (ip_vs_lblc_new). It only steers the
		// collector: once it passes max_size, ticks collect entries idle for 6
		// minutes instead of counting towards the full check. Kept for exactness.
		c.unlink(i, prev, k.hash)
		c.release(i)
	}
	if j := c.insert(&k, now); j >= 0 {
		c.ents[j].ref = c.hold(d)
	}
	return d
}

// locOverloaded is lblc's and lblcr's own overload test: d has more active
// connections than its weight while some dest of the list (d, weight-0 and OVERLOADed
// ones included) is below half of its weight (32-bit int arithmetic).
func locOverloaded(d *Dest, dests []*Dest) bool {
	if d.ActiveConns() <= d.weight.Load() {
		return false
	}
	for _, m := range dests {
		if m.ActiveConns()*2 < m.weight.Load() {
			return true
		}
	}
	return false
}

// locKey is a cache key: a packet's destination address.
type locKey struct {
	addr [16]byte // an IPv4 address in the first 4 bytes, the rest zero
	v6   bool
	hash uint32 // bucket: hash_32 of the folded address, 10 bits
}

func locKeyOf(p *Packet) locKey {
	k := locKey{v6: p.IPv6, hash: hash32(p.DstFold(), locBits)}
	if p.IPv6 {
		k.addr = p.Dst
	} else {
		copy(k.addr[:4], p.Dst[:4])
	}
	return k
}

// locCache is the table lblc and lblcr share: 1024 hash chains of entries kept in a
// slab and linked by index, so the garbage collector has no pointers to scan; the
// dests they name sit in a small reference-counted table. Its collector is the
// kernel's 60-second timer, run lazily from the packets' clock: when a decision comes
// at or after the next tick, the ticks due are run first, each at its own time.
//
// The zero value is not usable: configure and reset it. It is used under its Pool's
// lock.
type locCache struct {
	buckets [locBuckets]int32 // first entry of each chain, -1 = empty
	ents    []locEntry
	elems   []locElem // lblcr's dest sets
	refs    []*Dest   // dests named by entries and elements; nil = free slot
	refCnt  []int32
	// gone[r] is the AVAILABLE test of refs[r] for this cache's Pool: set when the dest
	// leaves the Pool's list, cleared when it comes back. The dest's own flag is
	// shared by every configuration generation's Pool, so a generation still
	// scheduling would see a dest revived for the next one as available.
	gone []bool

	freeEnt  int32 // free lists through next, -1 = empty
	freeElem int32
	live     int // entries in the chains
	liveElem int

	// The kernel's collector state. entries is its entry counter (see lblc's
	// Schedule on why it can exceed live).
	entries int
	rover   int
	counter int
	started bool  // the first decision starts the timer, as init_service would
	next    int64 // time of the next tick

	// Configuration.
	expire   int64 // ns an entry lives after its last use
	maxSize  int   // collector target
	capacity int   // hard bound on live entries
	elemCap  int   // hard bound on set elements
}

// locEntry is one cached destination address. lblc uses ref, lblcr the set.
type locEntry struct {
	addr    [16]byte
	lastuse int64
	lastmod int64 // lblcr: last change of the set
	next    int32 // chain or free list
	ref     int32 // lblc: the dest, index in refs
	set     int32 // lblcr: first element, -1 = empty
	size    int32 // lblcr: elements in the set
	v6      bool
}

// locElem is one dest of an lblcr set; sets are chains with the newest first.
type locElem struct {
	ref  int32
	next int32
}

func (c *locCache) configure(expire time.Duration, capacity int) error {
	switch {
	case expire < 0:
		return fmt.Errorf("%w: negative expiration %v", ErrOption, expire)
	case expire == 0:
		expire = locExpire
	}
	switch {
	case capacity < 0:
		return fmt.Errorf("%w: negative capacity %d", ErrOption, capacity)
	case capacity == 0:
		capacity = locCapacity
	case capacity < locMaxSize:
		capacity = locMaxSize
	}
	c.expire, c.maxSize, c.capacity, c.elemCap = int64(expire), locMaxSize, capacity, 4*capacity
	return nil
}

// reset empties the cache and stops the timer until the next decision.
func (c *locCache) reset() {
	for i := range c.buckets {
		c.buckets[i] = -1
	}
	c.ents, c.elems = c.ents[:0], c.elems[:0]
	clear(c.refs)
	c.refs, c.refCnt, c.gone = c.refs[:0], c.refCnt[:0], c.gone[:0]
	c.freeEnt, c.freeElem = -1, -1
	c.live, c.liveElem, c.entries = 0, 0, 0
	c.rover, c.counter, c.started, c.next = 0, 1, false, 0
}

// lookup returns the entry for k and its predecessor in the chain (-1 if none).
func (c *locCache) lookup(k *locKey) (i, prev int32) {
	prev = -1
	for i = c.buckets[k.hash]; i >= 0; prev, i = i, c.ents[i].next {
		if e := &c.ents[i]; e.addr == k.addr && e.v6 == k.v6 {
			return i, prev
		}
	}
	return -1, -1
}

// insert adds an entry for k at the head of its chain and counts it, or returns -1 at
// capacity (the kernel's failed allocation: the decision is just not cached).
func (c *locCache) insert(k *locKey, now int64) int32 {
	var i int32
	switch {
	case c.freeEnt >= 0:
		i = c.freeEnt
		c.freeEnt = c.ents[i].next
	case c.live < c.capacity:
		i = int32(len(c.ents))
		c.ents = append(c.ents, locEntry{}) // grows to the high-water mark only
	default:
		return -1
	}
	c.ents[i] = locEntry{addr: k.addr, v6: k.v6, lastuse: now, next: c.buckets[k.hash], ref: -1, set: -1}
	c.buckets[k.hash] = i
	c.live++
	c.entries++
	return i
}

// unlink takes entry i out of chain h; prev is its predecessor (-1: i is first).
func (c *locCache) unlink(i, prev int32, h uint32) {
	if prev < 0 {
		c.buckets[h] = c.ents[i].next
	} else {
		c.ents[prev].next = c.ents[i].next
	}
}

// release frees an unlinked entry and drops its references. It does not touch the
// kernel's entry counter: callers do, where the kernel does.
func (c *locCache) release(i int32) {
	e := &c.ents[i]
	if e.ref >= 0 {
		c.drop(e.ref)
	}
	for j := e.set; j >= 0; {
		next := c.elems[j].next
		c.freeElemAt(j)
		j = next
	}
	*e = locEntry{next: c.freeEnt}
	c.freeEnt = i
	c.live--
}

func (c *locCache) freeElemAt(j int32) {
	c.drop(c.elems[j].ref)
	c.elems[j] = locElem{ref: -1, next: c.freeElem}
	c.freeElem = j
	c.liveElem--
}

// hold returns d's index in refs, counting one more reference to it.
func (c *locCache) hold(d *Dest) int32 {
	free := -1
	for i, r := range c.refs {
		if r == d {
			c.refCnt[i]++
			c.gone[i] = false // d comes from the Pool's list
			return int32(i)
		}
		if r == nil && free < 0 {
			free = i
		}
	}
	if free < 0 {
		free = len(c.refs)
		c.refs, c.refCnt, c.gone = append(c.refs, nil), append(c.refCnt, 0), append(c.gone, false)
	}
	c.refs[free], c.refCnt[free], c.gone[free] = d, 1, false
	return int32(free)
}

// setGone records whether d (if the cache names it) left the Pool's list.
func (c *locCache) setGone(d *Dest, gone bool) {
	for i, r := range c.refs {
		if r == d {
			c.gone[i] = gone
		}
	}
}

func (c *locCache) drop(r int32) {
	if c.refCnt[r]--; c.refCnt[r] == 0 {
		c.refs[r] = nil
	}
}

// advance runs the collector ticks due at now. Runs of ticks that only count (the
// table within its target) are skipped arithmetically, and of several full checks
// with no decision between them only the last is run: each removes a superset of what
// the earlier ones would, and nothing else depends on them while the table stays
// within its target. So a long quiet period costs at most a few sweeps.
func (c *locCache) advance(now int64) {
	if !c.started {
		c.started, c.next = true, now+locTick
		return
	}
	for now >= c.next {
		due := (now-c.next)/locTick + 1
		full := c.counter%locFullEvery == 0
		switch {
		case !full && c.entries <= c.maxSize:
			n := min(due, int64(locFullEvery-c.counter%locFullEvery))
			c.counter += int(n)
			c.next += n * locTick
		case full && c.entries <= c.maxSize && due > locFullEvery:
			c.next += (due - 1) / locFullEvery * locFullEvery * locTick
		case !full && c.live == 0:
			c.next += due * locTick // oversize by the counter alone: nothing to remove
		default:
			c.tick(c.next)
			c.next += locTick
		}
	}
}

// tick is one run of the kernel's periodic timer at time now (§4.13): every 30th
// tick a full check drops entries unused for the expiration time; otherwise, while
// the table holds more than its target, entries idle for 6 minutes are dropped bucket
// by bucket from the rover on until the goal is met.
func (c *locCache) tick(now int64) {
	if c.counter%locFullEvery == 0 {
		c.sweep(now, c.expire, false, 0)
		c.counter = 1
		return
	}
	if c.entries <= c.maxSize {
		c.counter++
		return
	}
	goal := min((c.entries-c.maxSize)*4/3, c.maxSize/2)
	c.sweep(now, locIdle, true, goal)
}

// sweep visits the buckets after the rover, removing entries with now >= lastuse +
// age. If limited, it stops after the bucket where the goal of removals was met. The
// rover ends on the last bucket visited (so it is unchanged after a whole round).
func (c *locCache) sweep(now, age int64, limited bool, goal int) {
	j := c.rover
	for range locBuckets {
		j = (j + 1) & (locBuckets - 1)
		prev := int32(-1)
		for i := c.buckets[j]; i >= 0; {
			next := c.ents[i].next
			if now < c.ents[i].lastuse+age {
				prev, i = i, next
				continue
			}
			c.unlink(i, prev, uint32(j))
			c.release(i)
			c.entries--
			goal--
			i = next
		}
		if limited && goal <= 0 {
			break
		}
	}
	c.rover = j
}
