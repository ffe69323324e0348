package conntrack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/sched"
)

// entry is one connection or template. It holds no pointers, so slabs of entries cost
// the garbage collector nothing to scan; links are slab indices within the shard
// (0 = none). Keep it at 88 bytes: the memory budget is 100 bytes per connection.
// The real server address is not stored: it is derived from the dest.
type entry struct {
	// Read for every entry of a chain walked: the first 12 bytes share a cache line.
	cport uint16
	vport uint16
	flags Flags // public flags, internal bits, method
	proto uint8
	state State
	next  uint32 // hash chain, or free list
	dport uint16
	wslot uint16 // timer list the entry is on
	caddr [16]byte
	vaddr [16]byte
	// expires is ns on the caller's clock; the entry is dead once now >= expires.
	expires int64
	wprev   uint32 // timer list links (see wheel.go)
	wnext   uint32
	control Ref    // controlling template
	nctl    uint32 // number of entries this one controls (n_control)
	dest    uint32 // dest ID, valid with fHasDest
	timeout uint32 // ms; the timer is re-armed to now + timeout by every packet
	uprev   uint32 // unconfirmed list links (unconfirmed.go), with fUnconf
	unext   uint32
}

// Errors returned by New.
var (
	ErrConfig = errors.New("conntrack: invalid config")
)

// A Table is IPVS's connection table (docs/ipvs-semantics.md §6): connections and persistence
// templates keyed by client and virtual address, with per-state timers and the
// per-dest active/inactive/persistent accounting.
//
// The zero Table is not usable: build one with New. A Table is safe for concurrent
// use. It is split into lock shards by the flow hash;
// each shard has its own mutex, buckets, slab and timer wheel.
//
// Lock order: the expiry mutex (held by Expire and once by the first call that sets the
// clock) comes before any shard mutex, and a goroutine holds at most one shard mutex
// at a time. An operation that must also change another entry (a template's
// n_control or ASSURED bit) does so after releasing the first shard's mutex.
type Table struct {
	shards     []shard
	shardShift uint   // hash >> shardShift = shard index (top bits of the hash)
	idxBits    uint   // a Ref is shard<<idxBits | slab index
	idxMask    uint32 //
	idxLimit   int64  // Max must stay below this (slab indices have idxBits bits)
	// The shards' chain heads (headOf). A shard's first smallBuckets are in
	// small, in rows of a line a shard (lineRows), so the buckets of a table
	// holding few connections are the first kilobytes of small; a shard that
	// outgrows them moves to its whole share of Max in buckets, one contiguous
	// array a shard (nil if smallBuckets hold a share).
	small     []uint32
	buckets   []uint32
	shareBits uint8  // log2 of a shard's share of Max in buckets
	h0        uint64 // hash state after the seed lane (IPv6 record, hashLen bytes)
	h0v4      uint64 // the same for the IPv4 record (hashLen4 bytes)
	tick      int64  // ns

	// bigBuckets is set once a shard has moved to buckets (BucketsSmall).
	bigBuckets atomic.Bool

	// The run-time settings (Set): conn_max and the sysctls, read with one atomic
	// load each so a reload changes them under traffic.
	max             atomic.Int64
	reuseMode       atomic.Int32
	expireNodest    atomic.Bool
	expireQuiescent atomic.Bool
	unconfMax       atomic.Int64 // unconfirmed budget (unconfirmed.go)
	unconfSvcMax    atomic.Int64

	// dests holds every dest an entry was bound to, by its id (Insert remembers it),
	// so the table resolves an entry's dest by itself and never through its caller's
	// configuration, whichever generation of it the caller is on. Grow-only; the
	// slice is replaced, never changed where a reader can see it.
	dests   atomic.Pointer[[]*sched.Dest]
	destsMu sync.Mutex

	timeouts atomic.Pointer[timeoutsMs]
	// live is two counters in one word (liveCount, liveUnconf): the live entries,
	// including ones being inserted, in the low 32 bits (Max is below 2³², New),
	// the live unconfirmed connections in the high 32. A new connection's reserve
	// counts it in both with one atomic operation, not two.
	live      atomic.Uint64
	noCPort   atomic.Int64 // live NO_CPORT entries (§6.2 retry)
	nowQueued atomic.Int64 // entries on expire-now lists
	clockSet  atomic.Bool

	evicted       atomic.Uint64
	evictedTpl    atomic.Uint64
	unconfRefused atomic.Uint64
	slabRefused   atomic.Uint64
	evictCursor   atomic.Uint32

	// Defense modes (defense.go). defMu orders mode changes with the timeouts they
	// publish; the modes are read without it.
	defMu            sync.Mutex
	defInit          bool
	baseTimeouts     Timeouts // configured; timeouts holds the effective ones
	dropEntryCfg     int32
	secureTCPCfg     int32
	dropEntry        atomic.Int32
	secureTCP        atomic.Int32
	amemthresh       atomic.Int64
	dropEntryChanges atomic.Uint64
	secureTCPChanges atomic.Uint64
	dropEntryDrops   atomic.Uint64
	svcUnconf        [svcSlots]atomic.Int32

	exp expiry

	// Cluster sync (sync.go): shards get their sync side (shard.sx) once syncOn.
	syncOn    atomic.Bool
	syncMu    sync.Mutex
	syncRules atomic.Pointer[syncPlan] // the sender's rules (SetSyncRules), nil: none
	syncEpoch atomic.Int64             // ns of last-send tick 1 (sync.go), 0 until the first send
	tickDiv   divider                  // d / tick without a division (syncTick)
	id        uint64                   // this table's number (tickMemo), from 1
	sc        syncCounters
}

// shard is one lock shard. Everything in it is guarded by mu. The struct is small
// (its arrays are separate allocations) and padded to two cache lines, so the shard
// headers a lookup touches stay in cache and neighbouring mutexes do not share a line.
type shard struct {
	mu sync.Mutex
	// bmask is the shard's buckets in use less one (nb-1): hash h's chain head is
	// bucket h&bmask of the shard (Table.head). A shard starts with a line of
	// buckets and doubles them as it fills (linkLocked), up to its share of Max.
	// Written under mu, read with an atomic load: Prefetch reads it without mu.
	bmask atomic.Uint32
	_     [4]byte // keeps the header at two lines (see above)
	// first is chunks[0], the chunk most of a shard's entries live in (it holds
	// an eighth of the shard's fair share at Max): at reaches it from the shard
	// header, without loading the chunk's slice header from chunks' array, a line
	// of its own (≈ 0.6 D1 misses a packet on the synthetic trace).
	first     []entry
	chunks    [][]entry // slab: fixed-size chunks, index 0 of chunk 0 unused
	chunkMask uint32
	free      uint32 // free list through entry.next
	nalloc    uint32 // next never-used slab index
	uhead     uint32 // oldest unconfirmed entry (unconfirmed.go), 0 = none
	cur       int64  // next tick this shard's wheel fires (wheel.go)
	// lists holds the timer list heads (wheel.go) in the rows of the table's
	// block of them (list): it starts at the shard's line in row 0.
	lists      []uint32
	utail      uint32 // newest unconfirmed entry
	jumping    bool   // a catch-up pass is running: new timers go to listPending
	chunkShift uint8
	rowShift   uint8      // lineRows' shift for this table's shards
	sx         *shardSync // cluster sync side (sync.go), nil until the table syncs
}

// lineRows returns where element x of a shard's array lies in a block holding the
// arrays of every shard in rows of one cache line a shard: row x/wordsPerLine, at
// the shard's line, which the caller adds (rowShift is log2 of the number of
// shards plus wordsPerLineBits, a row's length). Buckets and timer lists are laid
// out so: a shard's first lines, the ones a table holding few connections uses, are
// then the first kilobytes of the block rather than a line on each of as many pages
// as shards (each shard's array after another's). No line holds two shards' words,
// so shards locked by different workers never write the same line.
func lineRows(x uint64, rowShift uint8) uint64 {
	return (x>>wordsPerLineBits)<<(rowShift&63) | x&(wordsPerLine-1) // &63: rowShift < 64, and the compiler then tests it no more
}

// wordsPerLine is the number of 4-byte words (chain or list heads) in a cache line.
const (
	wordsPerLine     = 1 << wordsPerLineBits
	wordsPerLineBits = 4
)

// list returns the head of the shard's timer list l.
func (s *shard) list(l uint16) *uint32 {
	return &s.lists[lineRows(uint64(l), s.rowShift)]
}

// at returns the entry at slab index i.
func (s *shard) at(i uint32) *entry {
	if i <= s.chunkMask {
		return &s.first[i]
	}
	return &s.chunks[i>>s.chunkShift][i&s.chunkMask]
}

// maxShards bounds Config.Shards: each shard costs about 4 KiB of timer lists.
const maxShards = 4096

// New returns an empty table.
func New(cfg Config) (*Table, error) {
	if cfg.Max <= 0 {
		return nil, fmt.Errorf("%w: Max %d must be positive", ErrConfig, cfg.Max)
	}
	ns := cfg.Shards
	if ns == 0 {
		ns = 256
	}
	if ns < 0 || ns&(ns-1) != 0 || ns > maxShards {
		return nil, fmt.Errorf("%w: Shards %d is not a power of two in [1, %d]", ErrConfig, cfg.Shards, maxShards)
	}
	shardBits := uint(bits.TrailingZeros(uint(ns)))
	idxBits := 32 - shardBits
	if uint64(cfg.Max) >= 1<<idxBits-1 {
		return nil, fmt.Errorf("%w: Max %d too large for %d shards", ErrConfig, cfg.Max, ns)
	}
	if cfg.Timeouts == (Timeouts{}) {
		cfg.Timeouts = DefaultTimeouts()
	}
	if cfg.Tick < 0 {
		return nil, fmt.Errorf("%w: negative Tick", ErrConfig)
	}
	if cfg.Tick == 0 {
		cfg.Tick = 100 * time.Millisecond
	}
	if cfg.ConnReuseMode < 0 {
		return nil, fmt.Errorf("%w: negative ConnReuseMode", ErrConfig)
	}
	t := &Table{
		shards:     make([]shard, ns),
		shardShift: 64 - shardBits,
		idxBits:    idxBits,
		idxMask:    uint32(uint64(1)<<idxBits - 1),
		idxLimit:   1<<idxBits - 1,
		h0:         xxLane(xxPrime5+hashLen, cfg.HashSeed),
		h0v4:       xxLane(xxPrime5+hashLen4, cfg.HashSeed),
		tick:       int64(cfg.Tick),
		tickDiv:    newDivider(uint64(cfg.Tick)),
		id:         tableIDs.Add(1),
	}
	t.dests.Store(new([]*sched.Dest))
	st := Settings{Max: cfg.Max, Timeouts: cfg.Timeouts, ConnReuseMode: cfg.ConnReuseMode, ExpireNodestConn: cfg.ExpireNodestConn, ExpireQuiescentTemplate: cfg.ExpireQuiescentTemplate, UnconfirmedMax: cfg.UnconfirmedMax, UnconfirmedPerService: cfg.UnconfirmedPerService}
	st.DropEntry, st.SecureTCP, st.AMemThresh = cfg.DropEntry, cfg.SecureTCP, cfg.AMemThresh
	if _, _, err := unconfLimits(&st); err != nil {
		return nil, err
	}
	if err := checkDefense(&st); err != nil {
		return nil, err
	}
	t.apply(st)
	// Buckets: the next power of two of Max, spread over the shards (load factor <= 1
	// at Max), of which a shard uses what its peak needs (linkLocked). Slab chunks:
	// about an eighth of a shard's fair share, so a shard wastes at most one partly
	// used chunk.
	perShard := max(1, nextPow2(cfg.Max)/ns)
	chunk := min(max(perShard/8, 16), 4096)
	if b := chunk * int(unsafe.Sizeof(entry{})); b > 32<<10 && b%8192 != 0 {
		// The heap hands out large blocks in 8 KiB pages: 512 88-byte entries
		// would waste half a page each (8%); 1024 fill whole pages.
		chunk *= 2
	}
	// Every shard's first chunk comes from one block made here, so a new table does
	// not allocate and zero slabs shard by shard under its first connections (a
	// short replay paid most of its time for that). It is an eighth (or a quarter,
	// see above) of the table's entries at Max: 22 MiB at the default 1M.
	first := make([]entry, ns*chunk)
	t.small = make([]uint32, max(min(perShard, smallBuckets), wordsPerLine)*ns)
	if perShard > smallBuckets {
		t.buckets = make([]uint32, perShard*ns)
	}
	t.shareBits = uint8(bits.TrailingZeros(uint(perShard)))
	lists := make([]uint32, (numLists+wordsPerLine-1)/wordsPerLine*wordsPerLine*ns)
	for i := range t.shards {
		s := &t.shards[i]
		s.bmask.Store(uint32(min(perShard, wordsPerLine) - 1))
		s.lists = lists[i*wordsPerLine:]
		s.rowShift = uint8(shardBits + wordsPerLineBits)
		s.chunkShift = uint8(bits.TrailingZeros(uint(chunk)))
		s.chunkMask = uint32(chunk - 1)
		s.first = first[i*chunk : (i+1)*chunk : (i+1)*chunk]
		s.chunks = [][]entry{s.first}
		s.nalloc = 1 // index 0 means "none"
	}
	t.prefault(first)
	t.exp.ops = make([]ctlOp, 0, 2*sweepChunk)
	return t, nil
}

// prefault touches every page of the bucket arrays and of the first chunks, so the
// kernel maps them now rather than under the first packets: a fresh table's first
// thousands of connections otherwise pay a page fault for nearly every bucket they
// hash to (≈ 0.5 µs a packet in a short replay).
func (t *Table) prefault(first []entry) {
	const page = 4096
	for _, b := range [][]uint32{t.small, t.buckets} {
		for j := 0; j < len(b); j += page / 4 {
			b[j] = 0
		}
	}
	per := max(1, page/int(unsafe.Sizeof(entry{})))
	for j := 0; j < len(first); j += per {
		first[j].next = 0
	}
}

func nextPow2(n int) int {
	if n <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(n-1))
}

// SetTimeouts replaces the state timeouts (ipvsadm --set). Entries keep their current
// timeout until their next packet, as in the kernel. A zero Timeouts is ignored.
func (t *Table) SetTimeouts(to Timeouts) {
	if to == (Timeouts{}) {
		return
	}
	t.setBaseTimeouts(to)
}

// Timeouts returns the configured state timeouts (secure_tcp may apply shorter
// ones while engaged: defense.go).
func (t *Table) Timeouts() Timeouts {
	t.defMu.Lock()
	defer t.defMu.Unlock()
	return t.baseTimeouts
}

// Len returns the number of live entries (connections plus templates), including
// entries that are past their expiry time but not yet removed by Expire.
func (t *Table) Len() int { return int(t.liveCount()) }

// Deltas of Table.live: one entry, one unconfirmed connection, and their
// negations (two's complement: Add of minusLive takes one off).
const (
	oneLive     = uint64(1)
	oneUnconf   = uint64(1) << 32
	minusLive   = ^(oneLive - 1)
	minusUnconf = ^(oneUnconf - 1)
)

// liveCount returns the live entries, including ones being inserted.
func (t *Table) liveCount() int64 { return int64(uint32(t.live.Load())) }

// liveUnconf returns the live unconfirmed connections.
func (t *Table) liveUnconf() int64 { return int64(t.live.Load() >> 32) }

// Max returns the configured cap on entries.
func (t *Table) Max() int { return int(t.max.Load()) }

// Settings are the table's run-time settings: what a reload may change without
// losing a connection.
type Settings struct {
	Max                     int // conn_max; the bucket arrays keep the size New gave them
	Timeouts                Timeouts
	ConnReuseMode           int
	ExpireNodestConn        bool
	ExpireQuiescentTemplate bool
	// UnconfirmedMax and UnconfirmedPerService are the unconfirmed budget
	// (unconfirmed.go): 0 means DefaultUnconfirmed(Max); UnconfirmedMax
	// UnconfirmedOff (with UnconfirmedPerService 0) turns it off.
	UnconfirmedMax        int
	UnconfirmedPerService int
	// DropEntry and SecureTCP are the defense modes (0..3) and AMemThresh the free
	// entries below which automatic ones engage, 0 = Max/2 (defense.go).
	DropEntry, SecureTCP int
	AMemThresh           int
}

// Set changes the run-time settings under traffic. Lowering Max below the live count
// removes nothing: new entries are refused (Full) until the count drains below it.
// Timeouts apply to each entry from its next packet, as SetTimeouts. Max must stay
// below the slab index limit the shard count gave New.
func (t *Table) Set(s Settings) error {
	if s.Max <= 0 {
		return fmt.Errorf("%w: Max %d must be positive", ErrConfig, s.Max)
	}
	if int64(s.Max) >= t.idxLimit {
		return fmt.Errorf("%w: Max %d too large for %d shards (at most %d; more shards need a restart)", ErrConfig, s.Max, len(t.shards), t.idxLimit-1)
	}
	if s.ConnReuseMode < 0 {
		return fmt.Errorf("%w: negative ConnReuseMode", ErrConfig)
	}
	if _, _, err := unconfLimits(&s); err != nil {
		return err
	}
	if err := checkDefense(&s); err != nil {
		return err
	}
	t.apply(s)
	return nil
}

func (t *Table) apply(s Settings) {
	t.max.Store(int64(s.Max))
	t.reuseMode.Store(int32(s.ConnReuseMode))
	t.expireNodest.Store(s.ExpireNodestConn)
	t.expireQuiescent.Store(s.ExpireQuiescentTemplate)
	if um, us, err := unconfLimits(&s); err == nil {
		t.unconfMax.Store(um)
		t.unconfSvcMax.Store(us)
	}
	if s.Timeouts == (Timeouts{}) {
		s.Timeouts = DefaultTimeouts()
	}
	t.setBaseTimeouts(s.Timeouts)
	t.applyDefense(&s)
}

// dest returns the dest remembered under id, or nil.
func (t *Table) dest(id uint32) *sched.Dest {
	if ds := *t.dests.Load(); int(id) < len(ds) {
		return ds[id]
	}
	return nil
}

// remember records d under its id, so entries bound to it can be resolved for as
// long as they live. It allocates only the first time a dest is seen.
func (t *Table) remember(d *sched.Dest) {
	if !t.remembered(d) {
		t.rememberSlow(d)
	}
}

// remembered reports whether d is remembered under its id: remember's test, small
// enough to be inlined where remember is called for every new connection (a call
// costs more than the test).
func (t *Table) remembered(d *sched.Dest) bool {
	ds, id := t.dests.Load(), d.ID()
	return uint64(id) < uint64(len(*ds)) && (*ds)[id] == d
}

// rememberSlow is remember of a dest not remembered yet (or not under its id).
func (t *Table) rememberSlow(d *sched.Dest) {
	id := int(d.ID())
	t.destsMu.Lock()
	defer t.destsMu.Unlock()
	ds := *t.dests.Load()
	if id < len(ds) && ds[id] == d {
		return
	}
	var n []*sched.Dest
	switch {
	case id < len(ds):
		// A slot readers can see (empty, or another dest under this id): a copy.
		n = make([]*sched.Dest, len(ds), cap(ds))
		copy(n, ds)
	case id >= cap(ds):
		n = make([]*sched.Dest, id+1, max(2*cap(ds), id+1, 16))
		copy(n, ds)
	default:
		// Readers of ds never index at or past len(ds), so the spare capacity is
		// ours to fill before the longer slice is published.
		n = ds[:id+1]
	}
	n[id] = d
	t.dests.Store(&n)
}

// hash is the flow hash: xxhash (XXH64) over (seed, proto, family, cport, caddr) only,
// like the kernel's (§6.1), so that the in-lookup and the NAT out-lookup — whose
// packet carries the client as its destination — land on the same chain. It computes
// xxhash.Sum64 of that record (tested against it) without building it: 28 bytes for
// IPv6, and for IPv4 the first 16 (the address's 4 bytes end it), which saves two
// dependent multiplications on the per-packet path.
func (t *Table) hash(proto uint8, ipv6 bool, caddr *[16]byte, cport uint16) uint64 {
	w1 := uint64(proto) | uint64(cport>>8)<<16 | uint64(cport&0xff)<<24 |
		uint64(binary.LittleEndian.Uint32(caddr[0:4]))<<32
	var h uint64
	if ipv6 {
		w1 |= 1 << 8
		h = xxLane(t.h0, w1)
		h = xxLane(h, binary.LittleEndian.Uint64(caddr[4:12]))
		h ^= uint64(binary.LittleEndian.Uint32(caddr[12:16])) * xxPrime1
		h = bits.RotateLeft64(h, 23)*xxPrime2 + xxPrime3
	} else {
		h = xxLane(t.h0v4, w1)
	}
	h ^= h >> 33
	h *= xxPrime2
	h ^= h >> 29
	h *= xxPrime3
	h ^= h >> 32
	return h
}

// XXH64 constants and steps for inputs shorter than 32 bytes.
const (
	xxPrime1 uint64 = 11400714785074694791
	xxPrime2 uint64 = 14029467366897019727
	xxPrime3 uint64 = 1609587929392839161
	xxPrime4 uint64 = 9650029242287828579
	xxPrime5 uint64 = 2870177450012600261
	hashLen         = 28 // bytes hashed: seed 8, proto 1, family 1, cport 2, caddr 16
	hashLen4        = 16 // the same with an IPv4 caddr of 4 bytes
)

// xxLane mixes one 8-byte lane into h.
func xxLane(h, lane uint64) uint64 {
	k := bits.RotateLeft64(lane*xxPrime2, 31) * xxPrime1
	return bits.RotateLeft64(h^k, 27)*xxPrime1 + xxPrime4
}

func (t *Table) shardOf(h uint64) int { return int(h >> t.shardShift) }

func (t *Table) ref(si int, i uint32) Ref { return Ref(uint32(si)<<t.idxBits | i) }

// split returns the shard and slab index of r, or ok=false if r cannot be valid.
func (t *Table) split(r Ref) (si int, i uint32, ok bool) {
	si = int(uint64(r) >> t.idxBits)
	i = uint32(r) & t.idxMask
	if r == 0 || i == 0 || si >= len(t.shards) {
		return 0, 0, false
	}
	return si, i, true
}

// entryHash recomputes the hash an entry was inserted under.
func (t *Table) entryHash(e *entry) uint64 {
	return t.hash(e.proto, e.flags&fIPv6 != 0, &e.caddr, e.cport)
}

// destOf returns e's dest, or nil.
func (t *Table) destOf(e *entry) *sched.Dest {
	if e.flags&fHasDest == 0 {
		return nil
	}
	return t.dest(e.dest)
}

// aliveLocked reports whether e is still a live connection at now. An entry past its
// expiry time that still controls others is what the kernel's timer would have
// re-armed for 60 s (§6.4); that re-arm is applied here, so the result does not depend
// on how often Expire runs.
//
// Precondition: the shard lock of e is held.
func aliveLocked(e *entry, now int64) bool {
	if e.expires > now {
		return true
	}
	if e.nctl > 0 {
		postpone(e, now)
		return true
	}
	return false
}

// postpone re-arms a controlling entry whose timer fired: timeout 60 s (the kernel
// keeps that timeout from then on), next expiry the first multiple of 60 s after its
// expiry time that lies after ref.
func postpone(e *entry, ref int64) {
	e.timeout = postponeMs
	if e.expires <= ref {
		k := (ref-e.expires)/postponeNs + 1
		e.expires += k * postponeNs
	}
}

// fillLocked copies e into c, except DAddr (see fillDAddr).
//
// Precondition: s.mu is held.
func (t *Table) fillLocked(si int, i uint32, e *entry, c *Conn) {
	c.Ref = t.ref(si, i)
	c.Key.Proto = e.proto
	c.Key.IPv6 = e.flags&fIPv6 != 0
	c.Key.CAddr = e.caddr
	c.Key.CPort = e.cport
	c.Key.VAddr = e.vaddr
	c.Key.VPort = e.vport
	c.DPort = e.dport
	c.Dest = e.dest
	c.HasDest = e.flags&fHasDest != 0
	c.Method = ipvs.Method((e.flags & methodMask) >> methodShift)
	c.Flags = e.flags & publicFlags
	c.State = e.state
	c.Timeout = time.Duration(e.timeout) * time.Millisecond
	c.Expires = e.expires
	c.Control = e.control
	c.NControl = e.nctl
	c.Sync = SyncInfo{Origin: originOf(e)}
}

// fillDAddr sets c.DAddr from the dest's address (zero without a dest).
func fillDAddr(c *Conn, d *sched.Dest) {
	if d == nil {
		c.DAddr = [16]byte{}
		return
	}
	c.DAddr = d.RawAddr()
}

// destAddrEqual reports whether d's address is the raw address a.
func destAddrEqual(d *sched.Dest, a *[16]byte, ipv6 bool) bool { return d.HasRawAddr(a, ipv6) }

// In looks up the connection of an input packet (client -> VIP) and, on a hit, applies
// docs/ipvs-semantics.md §5.2 in order: the reuse check (a TCP segment with SYN set, RST or
// not, as the kernel's is_new_conn tests SYN alone: with expire_nodest_conn and a dest
// of weight 0, or conn_reuse_mode and is_new_conn_expected, the connection is expired
// and the caller reschedules; the §5.3 gate then refuses a SYN+RST), the dest AVAILABLE check (step 6), then the
// INPUT state transition (§7) and the timer refresh. tcpFlags is the raw TCP flag byte
// (0 for UDP). A connection replaced by rescheduling is invisible to lookups at once
// but stays bound to its dest (counted) until the next Expire call, because IPVS
// expires it asynchronously: the scheduler run for the replacing SYN still counts it.
//
// gvs has no netfilter conntrack, so the kernel's "old_ct" case (drop the SYN instead
// of rescheduling it) never arises.
//
// On Hit and DropNoDest c is filled; on Miss it is left unchanged. In allocates nothing.
func (t *Table) In(k *Key, tcpFlags uint8, now int64, c *Conn) Result {
	r := t.in(k, k.CPort, tcpFlags, now, c)
	if r == notFound {
		r = Miss
		// §6.2: nothing matched; connections without a client port may exist.
		if k.CPort != 0 && t.noCPort.Load() > 0 {
			if r = t.in(k, 0, tcpFlags, now, c); r == notFound {
				r = Miss
			}
		}
	}
	return r
}

// notFound is in's "no entry" (as opposed to an entry that yields Miss).
const notFound Result = 0

func (t *Table) in(k *Key, cport uint16, tcpFlags uint8, now int64, c *Conn) Result {
	h := t.hash(k.Proto, k.IPv6, &k.CAddr, cport)
	si := t.shardOf(h)
	s := &t.shards[si]
	s.mu.Lock()
	r, ctl, d := t.inLocked(s, si, h, k, cport, tcpFlags, now, c)
	s.mu.Unlock()
	t.inDone(r, ctl, d, c)
	return r
}

// inLocked is in's work under the shard lock: the lookup, §5.2 steps 5 and 6, and on
// a hit the transition and timer. It returns the result, the controller to mark
// ASSURED and the connection's dest, for inDone once the lock is released.
//
// Precondition: s.mu is held (s is shard si of hash h).
func (t *Table) inLocked(s *shard, si int, h uint64, k *Key, cport uint16, tcpFlags uint8, now int64, c *Conn) (Result, Ref, *sched.Dest) {
	i := t.findInLocked(s, k, cport, h, now)
	if i == 0 {
		return notFound, 0, nil
	}
	return t.foundLocked(s, si, i, k, tcpFlags, now, c)
}

// foundLocked is inLocked's work once the lookup found entry i of shard si, the
// live connection of k: §5.2 steps 5 and 6, and on a hit the transition and timer,
// then c filled and the sync step.
//
// Precondition: s.mu is held.
func (t *Table) foundLocked(s *shard, si int, i uint32, k *Key, tcpFlags uint8, now int64, c *Conn) (Result, Ref, *sched.Dest) {
	e := s.at(i)
	r, ctl, d := t.stepLocked(s, i, e, k, tcpFlags, now)
	if r == Miss {
		return Miss, 0, nil
	}
	fold := c.Sync.Fold
	t.fillLocked(si, i, e, c)
	if r == DropNoDest {
		return DropNoDest, 0, d
	}
	if s.sx != nil { // syncStepLocked, its quiet step in line
		if t.syncQuietLocked(e, &fold) {
			countQuiet(e, c)
		} else if r := t.syncPlanLocked(e, &fold, now, c); r != planDone {
			t.syncRestLocked(e, &fold, r, now, c)
		}
	}
	return Hit, ctl, d
}

// stepLocked is foundLocked's step of entry i (e) of shard s, without the Conn: §5.2
// steps 5 and 6, and on a hit the transition, timer, confirmation and the ASSURED
// step. It returns Hit, DropNoDest (nothing changed) or Miss (the connection is
// replaced: expired, or left to the scheduler), the controller to mark ASSURED and
// the connection's dest.
//
// Precondition: s.mu is held.
func (t *Table) stepLocked(s *shard, i uint32, e *entry, k *Key, tcpFlags uint8, now int64) (Result, Ref, *sched.Dest) {
	d := t.destOf(e)
	if e.flags&fUnbound != 0 {
		// Received without its real server, which this director does not know:
		// the packet schedules a new connection in its place (sync.go).
		if e.nctl == 0 {
			t.expireNowLocked(s, i, e, now)
		}
		t.sc.resched.Add(1)
		return Miss, 0, nil
	}
	// §5.2 step 5: a SYN for a connection that can be replaced.
	if k.Proto == protoTCP && tcpFlags&tcpSYN != 0 {
		resched := false
		switch {
		case t.expireNodest.Load() && d != nil && d.Weight() == 0:
			resched = true
		case t.reuseMode.Load() != 0 && newConnExpected(e, int(t.reuseMode.Load())):
			resched = true
		}
		if resched {
			if e.nctl == 0 {
				t.expireNowLocked(s, i, e, now)
			}
			return Miss, 0, nil
		}
	}
	// §5.2 step 6: the dest was deleted.
	if d != nil && !d.Available() {
		if t.expireNodest.Load() {
			t.expireNowLocked(s, i, e, now)
			return Miss, 0, nil
		}
		return DropNoDest, 0, d
	}
	assure := transitionLocked(e, d, DirIn, tcpFlags, t.timeouts.Load())
	t.rearmLocked(s, i, e, now+int64(e.timeout)*msNs)
	t.confirmLocked(s, e, DirIn)
	return Hit, t.assureStepLocked(e, assure), d
}

// inDone finishes an inLocked result once the shard lock is released: the ASSURED
// step on the controller (another shard) and the real server's address.
func (t *Table) inDone(r Result, ctl Ref, d *sched.Dest, c *Conn) {
	if ctl != 0 {
		t.assure(ctl)
	}
	if r == Hit || r == DropNoDest {
		fillDAddr(c, d)
	}
}

// InRef is In for the connection r refers to, which the caller holds from an
// earlier answer for k (a worker's flow cache keeps the Ref of every flow it holds):
// when r's entry is still k's live connection, the packet is stepped there as In
// would step it — the same checks, transition, timer, counters and sync step —
// without hashing k or walking its bucket. It answers Miss, changing nothing, when
// r no longer names k's live connection (it expired, its slot was reused by another
// connection, or r is 0) or names one received without its real server; the caller
// then looks k up (In, InOrInsert), which decides. A Miss of In's own (a SYN that
// reschedules) is In's, with its effects, and the lookup that follows misses too.
//
// The answer is In's: a live connection of k is the one In finds, as a key has at
// most one live connection in the input direction (a new one is made only when the
// lookup finds none, and a connection a SYN replaces is dead to lookups at once).
// InRef allocates nothing.
func (t *Table) InRef(r Ref, k *Key, tcpFlags uint8, now int64, c *Conn) Result {
	si, i, ok := t.split(r)
	if !ok {
		return Miss
	}
	s := &t.shards[si]
	s.mu.Lock()
	if i >= s.nalloc || !s.at(i).isLocked(k, now) {
		s.mu.Unlock()
		return Miss
	}
	res, ctl, d := t.foundLocked(s, si, i, k, tcpFlags, now, c)
	s.mu.Unlock()
	t.inDone(res, ctl, d, c)
	return res
}

// A Step is what a packet's step changed of a connection whose caller keeps the
// rest (StepRef): its flags (the public ones, as Conn.Flags), state and expiry time.
// The key, dest, method and ports of a connection never change.
type Step struct {
	Flags   Flags
	State   State
	Expires int64
}

// StepRef is InRef for a caller that keeps what a step does not change of the
// connection r refers to, and knows its dest (a worker's flow cache holds the
// forwarding of the flows it serves): when r's entry is still k's live connection,
// bound to dest, the packet is stepped there as InRef steps it — the same checks,
// transition, timer and counters — and StepRef answers with what changed instead of
// filling a whole Conn: a step's answer the caller copies into what it keeps, rather
// than a Conn it copies from. It answers Hit, or DropNoDest (the dest was deleted;
// nothing changed, as InRef's). It answers Miss, changing nothing, where InRef would
// find no live connection of k at r, when r's connection is not bound to dest, and
// in a table that syncs (whose step fills a Conn, syncStepLocked): the caller then
// asks InRef, which decides. A Miss of InRef's own (a deleted dest with expire_nodest_conn, a SYN
// that reschedules) is answered with its effects, as InRef answers it, and the
// caller's InRef then misses too. Like InRef it allocates nothing.
func (t *Table) StepRef(r Ref, k *Key, dest uint32, tcpFlags uint8, now int64) (Step, Result) {
	si, i, ok := t.split(r)
	if !ok {
		return Step{}, Miss
	}
	s := &t.shards[si]
	s.mu.Lock()
	if i >= s.nalloc || s.sx != nil {
		s.mu.Unlock()
		return Step{}, Miss
	}
	e := s.at(i)
	if !e.isLocked(k, now) || e.flags&fHasDest == 0 || e.dest != dest {
		s.mu.Unlock()
		return Step{}, Miss
	}
	res, ctl, _ := t.stepLocked(s, i, e, k, tcpFlags, now)
	st := Step{Flags: e.flags & publicFlags, State: e.state, Expires: e.expires}
	s.mu.Unlock()
	if ctl != 0 {
		t.assure(ctl)
	}
	return st, res
}

// isLocked reports whether e is k's live connection at now, matched as findInLocked
// matches it for k's own client port, and one received with its real server.
//
// Precondition: the shard lock of e is held.
func (e *entry) isLocked(k *Key, now int64) bool {
	return e.flags&(fLive|FlagTemplate|fUnbound) == fLive &&
		(k.CPort == 0) == (e.flags&FlagNoCPort != 0) &&
		e.cport == k.CPort && e.vport == k.VPort && e.proto == k.Proto &&
		e.caddr == k.CAddr && e.vaddr == k.VAddr && (e.flags&fIPv6 != 0) == k.IPv6 &&
		aliveLocked(e, now)
}

// A Picker chooses the real server of a new connection for InOrInsert.
type Picker interface {
	// Pick returns the dest of a new connection for k, which has none, with its
	// real-server port, method and flags as Insert takes them; a nil dest makes
	// none. It runs with k's shard locked, so it must not call the Table; it may
	// take locks the Table never holds while taking a shard lock (a scheduler's).
	Pick(k *Key) (dest *sched.Dest, dport uint16, method ipvs.Method, flags Flags)
}

// InOrInsert is In, and when In would miss, Insert of the connection p picks (no
// controlling template), in one hold of the flow's shard lock: one hash, one lock and
// one bucket walk for a new connection instead of two. The results are In's — Hit,
// DropNoDest, Miss — plus Created (c holds the new connection) and Full (p picked a
// dest, but the table holds Max entries; nothing changed). Miss means no connection
// was made: p picked none, or InOrInsert did In alone without asking p — when the
// table holds NO_CPORT entries (§6.2's second lookup) or has never had an entry — the
// caller tells the two apart by whether p was asked, and schedules by itself in the
// second case.
func (t *Table) InOrInsert(k *Key, tcpFlags uint8, now int64, p Picker, c *Conn) Result {
	return t.InOrInsertAt(t.hash(k.Proto, k.IPv6, &k.CAddr, k.CPort), k, tcpFlags, now, p, c)
}

// InOrInsertAt is InOrInsert with k's flow hash h given (Hash of k's client tuple),
// for a caller that computed it already to prefetch the bucket (Prefetch): the table
// does not hash the key again. h must be that hash: with another, the lookup walks
// the wrong bucket and the insert files the connection where no lookup finds it.
func (t *Table) InOrInsertAt(h uint64, k *Key, tcpFlags uint8, now int64, p Picker, c *Conn) Result {
	if (k.CPort != 0 && t.noCPort.Load() > 0) || !t.clockSet.Load() {
		// The NO_CPORT retry, or the table's first connection (initClock takes
		// every shard lock, so it cannot run under one): In alone.
		return t.In(k, tcpFlags, now, c)
	}
	si := t.shardOf(h)
	s := &t.shards[si]
	s.mu.Lock()
	r, ctl, d := t.inLocked(s, si, h, k, k.CPort, tcpFlags, now, c)
	if r != notFound && r != Miss {
		s.mu.Unlock()
		t.inDone(r, ctl, d, c)
		return r
	}
	dest, dport, method, flags := p.Pick(k)
	if dest == nil {
		s.mu.Unlock()
		return Miss
	}
	flags = newConnFlags(k, dest, method, flags)
	if flags&FlagOnePacket != 0 {
		s.mu.Unlock()
		t.insertOnePacket(k, dest, dport, method, flags, 0, tcpFlags, now, c)
		return Created
	}
	if !t.remembered(dest) { // remember, its test in line
		t.rememberSlow(dest)
	}
	slot := svcSlot(k.Proto, &k.VAddr, k.VPort)
	ok, evCtl, remote := t.admitLocked(s, slot)
	if remote {
		// Room must come from another shard: one shard lock at a time, so this
		// one is let go and the flow looked up again once room is made.
		s.mu.Unlock()
		if !t.evictRemote(si, slot) {
			return Full
		}
		s.mu.Lock()
		r, ctl, d = t.inLocked(s, si, h, k, k.CPort, tcpFlags, now, c)
		if r != notFound && r != Miss {
			s.mu.Unlock()
			t.inDone(r, ctl, d, c)
			return r
		}
		if ok = t.slabRoomLocked(s); !ok {
			t.slabRefused.Add(1)
		}
	}
	if !ok || !t.reserve(true) {
		s.mu.Unlock()
		t.finishEvict(evCtl)
		return Full
	}
	// No controlling template: insertLocked has no controller to mark ASSURED.
	t.insertLocked(s, si, h, slot, k, dest, dport, method, flags, 0, tcpFlags, now, c)
	s.mu.Unlock()
	if evCtl != 0 { // most inserts evict nothing: no call
		t.finishEvict(evCtl)
	}
	fillDAddr(c, dest)
	return Created
}

// findInLocked returns the first live connection in hash h's bucket matching an input-direction
// lookup (§6.2): protocol, family, client and virtual address and port, and the
// NO_CPORT rule (a cport-0 lookup matches only NO_CPORT entries and vice versa).
// Templates never match.
//
// Precondition: s.mu is held.
func (t *Table) findInLocked(s *shard, k *Key, cport uint16, h uint64, now int64) uint32 {
	for i := *t.head(h); i != 0; {
		e := s.at(i)
		if e.cport == cport && e.vport == k.VPort && e.proto == k.Proto &&
			e.caddr == k.CAddr && e.vaddr == k.VAddr &&
			e.flags&FlagTemplate == 0 && (e.flags&fIPv6 != 0) == k.IPv6 &&
			(cport == 0) == (e.flags&FlagNoCPort != 0) &&
			aliveLocked(e, now) {
			return i
		}
		i = e.next
	}
	return 0
}

// newConnExpected is the kernel's is_new_conn_expected (§5.2): an uncontrolled TCP
// connection in TIME_WAIT or CLOSE, or with conn_reuse_mode bit 2, a DR/TUN one in
// FIN_WAIT that never saw a reply.
func newConnExpected(e *entry, mode int) bool {
	if e.control != 0 || e.proto != protoTCP {
		return false
	}
	switch e.state {
	case StateTimeWait, StateClose:
		return true
	case StateFinWait:
		return mode&2 != 0 && e.flags&FlagNoOutput != 0
	}
	return false
}

// assureStepLocked returns e's controller when it must be marked ASSURED, and records
// that it was, so later packets skip the cross-shard step.
//
// Precondition: the shard lock of e is held.
func (t *Table) assureStepLocked(e *entry, assure bool) Ref {
	if !assure || e.control == 0 || e.flags&fCtlAssured != 0 {
		return 0
	}
	e.flags |= fCtlAssured
	return e.control
}

// assure marks the template r ASSURED (ip_vs_control_assure_ct).
func (t *Table) assure(r Ref) {
	si, i, ok := t.split(r)
	if !ok {
		return
	}
	s := &t.shards[si]
	s.mu.Lock()
	if i < s.nalloc {
		if e := s.at(i); e.flags&(fLive|FlagTemplate) == fLive|FlagTemplate {
			e.flags |= FlagAssured
		}
	}
	s.mu.Unlock()
}

// Out looks up the connection of a reply from a real server: a packet from
// (saddr, sport) to (daddr, dport), the client. Per §6.2 it matches a connection whose
// client is (daddr, dport) and whose real server (MASQ) or virtual address (other
// methods) is (saddr, sport). On a hit it applies the OUTPUT transition (clearing
// NOOUTPUT, §7.1), refreshes the timer, and for UDP marks the controlling template
// ASSURED. Addresses are raw as in Key. Out allocates nothing.
func (t *Table) Out(proto uint8, ipv6 bool, saddr [16]byte, sport uint16, daddr [16]byte, dport uint16, tcpFlags uint8, now int64, c *Conn) Result {
	h := t.hash(proto, ipv6, &daddr, dport)
	si := t.shardOf(h)
	s := &t.shards[si]
	s.mu.Lock()
	i, e, d := t.findOutLocked(s, h, proto, ipv6, &saddr, sport, &daddr, dport, now)
	if i == 0 {
		s.mu.Unlock()
		return Miss
	}
	assure := transitionLocked(e, d, DirOut, tcpFlags, t.timeouts.Load())
	t.rearmLocked(s, i, e, now+int64(e.timeout)*msNs)
	t.confirmLocked(s, e, DirOut)
	ctl := t.assureStepLocked(e, assure)
	t.fillLocked(si, i, e, c)
	s.mu.Unlock()
	if ctl != 0 {
		t.assure(ctl)
	}
	fillDAddr(c, d)
	return Hit
}

// findOutLocked returns the first live connection in h's bucket matching a packet
// from a real server (saddr, sport) to a client (daddr, dport) (§6.2 out-lookup: the
// real server's address and port for MASQ, the virtual ones otherwise), with its
// dest; i is 0 when none matches.
//
// Precondition: s.mu is held.
func (t *Table) findOutLocked(s *shard, h uint64, proto uint8, ipv6 bool, saddr *[16]byte, sport uint16, daddr *[16]byte, dport uint16, now int64) (uint32, *entry, *sched.Dest) {
	for i := *t.head(h); i != 0; {
		e := s.at(i)
		if e.cport == dport && e.caddr == *daddr && e.proto == proto &&
			e.flags&FlagTemplate == 0 && (e.flags&fIPv6 != 0) == ipv6 {
			d := t.destOf(e)
			match := e.vport == sport && e.vaddr == *saddr
			if ipvs.Method((e.flags&methodMask)>>methodShift) == ipvs.NAT {
				match = e.dport == sport && d != nil && destAddrEqual(d, saddr, ipv6)
			}
			if match && aliveLocked(e, now) {
				return i, e, d
			}
		}
		i = e.next
	}
	return 0, nil, nil
}

// Template looks up a persistence template for k (§5.5, §6.2 ip_vs_ct_in_get: protocol,
// family, caddr, cport, vport, and vaddr — only its first 4 bytes, the fwmark, when
// Proto is 0). A template is valid if its dest exists, is AVAILABLE and, with
// expire_quiescent_template, has a non-zero weight (ip_vs_check_template). A valid
// template's timer is restarted with its timeout (the kernel does so when it releases
// the template after creating the connection) and c is filled. An invalid one is
// neutralised in place (vport = dport = 0xffff, so it never matches again), left to
// expire with its timer untouched, and Template returns false.
//
// Unlike the kernel, neutralisation keeps the entry's cport: templates are created with
// cport 0 and the entry stays on the hash chain of its original key.
func (t *Table) Template(k *Key, now int64, c *Conn) bool {
	h := t.hash(k.Proto, k.IPv6, &k.CAddr, k.CPort)
	si := t.shardOf(h)
	s := &t.shards[si]
	s.mu.Lock()
	i := t.findTplLocked(s, k, h, now)
	if i == 0 {
		s.mu.Unlock()
		return false
	}
	e := s.at(i)
	d := t.destOf(e)
	if d == nil || !d.Available() || (t.expireQuiescent.Load() && d.Weight() == 0) {
		if e.vport != 0xffff {
			e.vport = 0xffff
			e.dport = 0xffff
		}
		s.mu.Unlock()
		return false
	}
	t.rearmLocked(s, i, e, now+int64(e.timeout)*msNs)
	t.fillLocked(si, i, e, c)
	if originOf(e) != 0 {
		t.adoptLocked(e, c) // a received template now serves local connections
	}
	s.mu.Unlock()
	fillDAddr(c, d)
	return true
}

// vaddrMatch compares a template's virtual address; fwmark templates (protocol 0)
// compare only the 32-bit mark.
func vaddrMatch(k *Key, v *[16]byte) bool {
	if k.Proto == 0 {
		return k.VAddr[0] == v[0] && k.VAddr[1] == v[1] && k.VAddr[2] == v[2] && k.VAddr[3] == v[3]
	}
	return k.VAddr == *v
}

// Get fills c with the live entry r refers to and reports whether there is one.
func (t *Table) Get(r Ref, c *Conn) bool {
	si, i, ok := t.split(r)
	if !ok {
		return false
	}
	s := &t.shards[si]
	s.mu.Lock()
	if i >= s.nalloc || s.at(i).flags&fLive == 0 {
		s.mu.Unlock()
		return false
	}
	e := s.at(i)
	d := t.destOf(e)
	t.fillLocked(si, i, e, c)
	s.mu.Unlock()
	fillDAddr(c, d)
	return true
}

// reserve takes one of the Max slots, or reports that the table is full; with
// unconf it counts an unconfirmed connection too (live), which insertLocked then
// puts on its shard's list.
func (t *Table) reserve(unconf bool) bool {
	d := oneLive
	if unconf {
		d |= oneUnconf
	}
	for {
		n := t.live.Load()
		if int64(uint32(n)) >= t.max.Load() {
			return false
		}
		if t.live.CompareAndSwap(n, n+d) {
			return true
		}
	}
}

// Insert creates a connection for k bound to dest (nil for a bypass connection) with
// the given real-server port, method and flags, as ip_vs_conn_new does (§6.3): the
// dest's INACTIVE flag and, for methods other than NAT, NOOUTPUT are added (a bypass
// connection has no dest and gets neither), FlagOnePacket is kept for UDP only, and
// only FlagOnePacket and FlagNoCPort are taken from flags. The connection is attached
// to control (a template Ref, or 0): the template's n_control is incremented and its
// timer restarted with its full timeout (§5.5). Then the first packet's INPUT
// transition is applied and c is filled.
//
// A FlagOnePacket connection (§5.9) is bound, transitioned and unbound at once and
// never stored: Insert returns Hit with c filled and c.Ref 0.
//
// Insert returns Full, changing nothing, when the table holds Max entries or the
// unconfirmed budget is full, and no unconfirmed entry of the flow's shard can be
// evicted to make room (unconfirmed.go). It allocates only when a shard's slab grows
// by a chunk.
func (t *Table) Insert(k *Key, dest *sched.Dest, dport uint16, method ipvs.Method, flags Flags, control Ref, tcpFlags uint8, now int64, c *Conn) Result {
	flags = newConnFlags(k, dest, method, flags)
	if dest != nil {
		t.remember(dest)
	}
	if flags&FlagOnePacket != 0 {
		return t.insertOnePacket(k, dest, dport, method, flags, control, tcpFlags, now, c)
	}
	t.initClock(now)
	h := t.hash(k.Proto, k.IPv6, &k.CAddr, k.CPort)
	si := t.shardOf(h)
	s := &t.shards[si]
	slot := svcSlot(k.Proto, &k.VAddr, k.VPort)
	s.mu.Lock()
	ok, evCtl, remote := t.admitLocked(s, slot)
	s.mu.Unlock()
	t.finishEvict(evCtl)
	if remote {
		ok = t.evictRemote(si, slot)
	}
	if !ok || !t.reserve(true) {
		return Full
	}
	if control != 0 && !t.attach(control, now, 1) {
		control = 0
	}
	s.mu.Lock()
	ctl := t.insertLocked(s, si, h, slot, k, dest, dport, method, flags, control, tcpFlags, now, c)
	s.mu.Unlock()
	if ctl != 0 {
		t.assure(ctl)
	}
	fillDAddr(c, dest)
	return Hit
}

// newConnFlags returns the flags of a new connection (Insert's rules): only
// FlagOnePacket (UDP only) and FlagNoCPort from flags, and with a dest INACTIVE and,
// except for NAT, NOOUTPUT.
func newConnFlags(k *Key, dest *sched.Dest, method ipvs.Method, flags Flags) Flags {
	flags &= FlagOnePacket | FlagNoCPort
	if k.Proto != protoUDP {
		flags &^= FlagOnePacket
	}
	if dest != nil {
		flags |= FlagInactive
		if method != ipvs.NAT {
			flags |= FlagNoOutput
		}
	}
	return flags
}

// insertLocked makes the connection of Insert in shard si (hash h, svcSlot slot), a
// place having been reserved against Max, applies its first transition and fills c
// (but DAddr). It returns the controller to mark ASSURED once the lock is released.
//
// Precondition: s.mu is held.
func (t *Table) insertLocked(s *shard, si int, h uint64, slot uint32, k *Key, dest *sched.Dest, dport uint16, method ipvs.Method, flags Flags, control Ref, tcpFlags uint8, now int64, c *Conn) Ref {
	i := s.allocLocked()
	e := s.at(i)
	t.initEntry(e, k, dest, dport, method, flags, control)
	assure := bindFirst(e, dest, tcpFlags, t.timeouts.Load())
	e.expires = now + int64(e.timeout)*msNs
	t.linkLocked(s, h, i, e)
	t.fileLocked(s, i, e)
	t.pushUnconfLocked(s, i, e, slot)
	if flags&FlagNoCPort != 0 {
		t.noCPort.Add(1)
	}
	ctl := t.assureStepLocked(e, assure)
	t.fillLocked(si, i, e, c)
	if s.sx != nil {
		// syncStepLocked of an entry on the unconfirmed list, as every new one is:
		// its first packet is not counted (sync.go).
		c.Sync.Pkts = 1
	}
	return ctl
}

// initEntry sets up a fresh connection entry (state NONE or UDP, timeout 3 s).
func (t *Table) initEntry(e *entry, k *Key, dest *sched.Dest, dport uint16, method ipvs.Method, flags Flags, control Ref) {
	// Field by field, every field (TestInitEntrySetsEveryField): a composite literal
	// is built on the stack and then copied, 88 bytes more to move (k never points
	// into the slab).
	e.cport, e.vport, e.proto, e.state = k.CPort, k.VPort, k.Proto, 0
	e.flags = flags | fLive | Flags(method&7)<<methodShift
	e.next, e.dport, e.wslot = 0, dport, listNone
	e.caddr, e.vaddr = k.CAddr, k.VAddr
	e.expires, e.wprev, e.wnext = 0, 0, 0
	e.control, e.nctl, e.dest, e.timeout = control, 0, 0, initialTimeoutMs
	e.uprev, e.unext = 0, 0
	if k.IPv6 {
		e.flags |= fIPv6
	}
	if dest != nil {
		e.flags |= fHasDest
		e.dest = dest.ID()
	}
	if k.Proto != protoTCP {
		e.state = StateUDP
	}
}

// bindFirst applies a new connection's first INPUT transition to e and binds it to
// dest (if any) in the counter of the state it reached: what ip_vs_conn_new's bind
// (INACTIVE) and the transition's move to activeconns do, in one atomic operation on
// the dest instead of three. It returns transitionLocked's assure.
//
// It is transitionLocked(e, nil, DirIn, tcpFlags, to) written out for the state
// initEntry leaves, NONE for TCP and UDP otherwise (TestBindFirstIsTransition): a
// UDP entry takes the UDP timeout and never asks for ASSURED on input; a TCP one
// steps from NONE in the INPUT table (INPUT-ONLY with NOOUTPUT, which input leaves
// set), and only ESTABLISHED, a change from NONE, asks for it.
//
// Precondition: e is fresh from initEntry and, if stored, its shard lock is held.
func bindFirst(e *entry, dest *sched.Dest, tcpFlags uint8, to *timeoutsMs) bool {
	if e.proto != protoTCP {
		e.state, e.timeout = StateUDP, to.udp
		if dest != nil {
			dest.BindConn(false)
		}
		return false
	}
	tbl := tblInput
	if e.flags&FlagNoOutput != 0 {
		tbl = tblInputOnly
	}
	next := tcpStep[tbl][StateNone][flagIndex(tcpFlags)]
	e.state, e.timeout = next, to.tcp[next]
	if dest != nil {
		active := next.active()
		if active {
			e.flags &^= FlagInactive
		}
		dest.BindConn(active)
	}
	return next == StateEstablished
}

// insertOnePacket handles a ONE_PACKET connection: never hashed, expired right after
// its packet (§5.9), so the dest counters go +1 and -1 and a template's timer restarts.
func (t *Table) insertOnePacket(k *Key, dest *sched.Dest, dport uint16, method ipvs.Method, flags Flags, control Ref, tcpFlags uint8, now int64, c *Conn) Result {
	if control != 0 && !t.attach(control, now, 0) {
		control = 0
	}
	var e entry
	t.initEntry(&e, k, dest, dport, method, flags, control)
	bindFirst(&e, dest, tcpFlags, t.timeouts.Load())
	e.expires = now + int64(e.timeout)*msNs
	t.fillLocked(0, 0, &e, c)
	c.Ref = 0
	if dest != nil {
		dest.Unbind(false, e.flags&FlagInactive == 0)
	}
	fillDAddr(c, dest)
	return Hit
}

// attach adds n controlled connections to the template r and restarts its timer with
// its full timeout (ip_vs_control_add, then ip_vs_conn_put of the template). It reports
// false if r is not a live template.
func (t *Table) attach(r Ref, now int64, n uint32) bool {
	si, i, ok := t.split(r)
	if !ok {
		return false
	}
	s := &t.shards[si]
	s.mu.Lock()
	defer s.mu.Unlock()
	if i >= s.nalloc {
		return false
	}
	e := s.at(i)
	if e.flags&(fLive|FlagTemplate) != fLive|FlagTemplate {
		return false
	}
	e.nctl += n
	t.rearmLocked(s, i, e, now+int64(e.timeout)*msNs)
	return true
}

// InsertTemplate creates a persistence template for k (§5.5) bound to dest (counted in
// persistconns), with the given dport and timeout (the service's persistence timeout),
// and fills c. It returns Full at Max.
func (t *Table) InsertTemplate(k *Key, dest *sched.Dest, dport uint16, timeout time.Duration, now int64, c *Conn) Result {
	t.initClock(now)
	if dest != nil {
		t.remember(dest)
	}
	h := t.hash(k.Proto, k.IPv6, &k.CAddr, k.CPort)
	si := t.shardOf(h)
	s := &t.shards[si]
	s.mu.Lock()
	if !t.slabRoomLocked(s) {
		s.mu.Unlock()
		t.slabRefused.Add(1)
		return Full
	}
	if !t.reserve(false) {
		s.mu.Unlock()
		return Full
	}
	i := s.allocLocked()
	e := s.at(i)
	t.initEntry(e, k, dest, dport, 0, FlagTemplate, 0)
	e.state = StateNone
	e.timeout = durMs(timeout)
	e.expires = now + int64(e.timeout)*msNs
	if dest != nil {
		dest.Bind(true)
	}
	t.linkLocked(s, h, i, e)
	t.fileLocked(s, i, e)
	t.fillLocked(si, i, e, c)
	s.mu.Unlock()
	fillDAddr(c, dest)
	return Hit
}

// headOf returns the head of bucket b of shard si, whose buckets in use are
// mask+1: in t.small while they are at most smallBuckets, else in t.buckets.
func (t *Table) headOf(si int, mask uint32, b uint64) *uint32 {
	return t.headIn(uint64(si), &t.shards[si], mask, b)
}

// headIn is headOf for a caller that has shard si at hand (s) and its mask m, with
// b any hash of the shard or a bucket of it (only its bits under m are read). It is
// inlined: head and linkLocked call it for every lookup and insertion.
func (t *Table) headIn(si uint64, s *shard, m uint32, b uint64) *uint32 {
	if m < smallBuckets {
		return &t.small[si<<wordsPerLineBits|lineRows(b&uint64(m), s.rowShift)]
	}
	return &t.buckets[si<<(t.shareBits&63)|b&uint64(m)]
}

// head returns hash h's chain head.
func (t *Table) head(h uint64) *uint32 {
	si := h >> t.shardShift
	s := &t.shards[si]
	return t.headIn(si, s, s.bmask.Load(), h)
}

// linkLocked puts entry i (e, of hash h) at the head of its chain. First, if the
// shard has held more entries at once than half its buckets in use (its slab's
// high-water mark, nalloc-1, is above nb/2) and may have more, it grows them
// (growLocked): a shard's buckets grow with its peak and never shrink.
//
// They double while they stay within smallBuckets, where they are few lines,
// likely in cache, and a chain of one or two entries costs little to walk; past
// it, they go to the shard's whole share of Max at once, in its own contiguous
// array, as the table had them before its buckets grew (a load of at most 1 at
// Max, and a quarter at a quarter of Max). For there a lookup that misses walks its
// whole chain, and in a big table each entry walked is a cache miss: doubling on to
// a load of 1/2 made BenchmarkNewConnection/live=400k (a quarter of Max) take 12%
// longer, and the rows of small laid out over the whole share 6%.
//
// Precondition: s.mu is held (s is hash h's shard).
func (t *Table) linkLocked(s *shard, h uint64, i uint32, e *entry) {
	m := s.bmask.Load()
	if nb := m + 1; s.nalloc-1 > nb/2 && nb < 1<<t.shareBits {
		m = t.growToLocked(s, h, nb)
	}
	// head(h), with s and its mask at hand: no second load of either.
	p := t.headIn(h>>t.shardShift, s, m, h)
	e.next = *p
	*p = i
}

// growToLocked is linkLocked's growth of s (hash h's shard) from nb buckets in use:
// it returns the new mask.
//
// Precondition: s.mu is held.
func (t *Table) growToLocked(s *shard, h uint64, nb uint32) uint32 {
	si := t.shardOf(h)
	for {
		t.growLocked(si, s, nb)
		nb *= 2
		if nb <= smallBuckets || nb == 1<<t.shareBits {
			return nb - 1
		}
	}
}

// smallBuckets is the most buckets a shard doubles to one step at a time
// (linkLocked), in Table.small: 16 lines a shard, 256 KiB for 256 shards.
const smallBuckets = 256

// growLocked doubles shard si's buckets in use from nb: each chain splits in two by
// the hash bit the new mask adds, keeping its order (a lookup returns the first live
// match), into its own bucket and the one nb above. It rehashes each entry once; a
// shard grows to its share of Max in log2(share/wordsPerLine) steps.
//
// Precondition: s.mu is held (s is shard si).
func (t *Table) growLocked(si int, s *shard, nb uint32) {
	for b := range uint64(nb) {
		var lo, hi, loTail, hiTail uint32
		p := t.headOf(si, nb-1, b)
		for i := *p; i != 0; {
			e := s.at(i)
			next := e.next
			e.next = 0
			if uint32(t.entryHash(e))&nb == 0 {
				if loTail == 0 {
					lo = i
				} else {
					s.at(loTail).next = i
				}
				loTail = i
			} else {
				if hiTail == 0 {
					hi = i
				} else {
					s.at(hiTail).next = i
				}
				hiTail = i
			}
			i = next
		}
		*p = 0 // the doubling from smallBuckets leaves small for buckets
		*t.headOf(si, 2*nb-1, b), *t.headOf(si, 2*nb-1, b+uint64(nb)) = lo, hi
	}
	s.bmask.Store(2*nb - 1)
	if 2*nb > smallBuckets && !t.bigBuckets.Load() {
		t.bigBuckets.Store(true)
	}
}

// BucketsSmall reports whether every shard's buckets are still in the small
// block (at most smallBuckets a shard, 256 KiB for 256 shards), which lookups keep
// in cache: there is then no bucket miss for Prefetch to hide. It turns false for
// good once a shard outgrows them.
func (t *Table) BucketsSmall() bool { return !t.bigBuckets.Load() }

// allocLocked takes a free slab slot, growing the slab by one chunk if needed, and
// prefetches the slot the shard's next insert will take (the free list's next, or
// the next never-used one in the first chunk): a new connection writes its whole
// entry, which is otherwise a cold line or two, and on a new connection's path the
// stores that miss are paid at its next atomic operation (the dest's bind), which
// waits for them. The shard's next insert comes after others' (a shard holds a
// 256th of the table's flows by default), by which time the line has arrived
// (docs/benchmarks.md §1, stop 32).
//
// Precondition: s.mu is held, and a slot was reserved against Max.
func (s *shard) allocLocked() uint32 {
	if i := s.free; i != 0 {
		s.free = s.at(i).next
		if s.free != 0 {
			prefetchEntry(s.at(s.free))
		}
		return i
	}
	i := s.nalloc
	if int(i>>s.chunkShift) == len(s.chunks) {
		s.chunks = append(s.chunks, make([]entry, s.chunkMask+1))
	}
	s.nalloc++
	if n := s.nalloc; n < uint32(len(s.first)) {
		prefetchEntry(&s.first[n])
	}
	return i
}

// rearmLocked sets e's expiry time (ip_vs_conn_put's mod_timer). Timers are lazy: an
// entry stays in the wheel slot it was filed in while its expiry only moves later;
// it is moved only when the new time falls before that slot.
//
// Precondition: s.mu is held.
func (t *Table) rearmLocked(s *shard, i uint32, e *entry, expires int64) {
	old := e.expires
	e.expires = expires
	if expires < old {
		t.refileEarlierLocked(s, i, e)
	}
}

// expireNowLocked is ip_vs_conn_expire_now: the entry is dead to lookups from now on
// (unless it controls others) and is put on the shard's expire-now list, which the
// next Expire call processes whatever its time.
//
// Precondition: s.mu is held.
func (t *Table) expireNowLocked(s *shard, i uint32, e *entry, now int64) {
	if e.expires > now {
		e.expires = now
	}
	if e.wslot != listNow {
		t.unfileLocked(s, i, e)
		t.pushLocked(s, i, e, listNow)
	}
}

// releaseLocked unlinks e from its chain and timer list, unbinds its dest (§6.4, §2.6)
// and frees its slot. It returns e's controller and whether e's timeout was 0 (a
// forced delete: the controller may have to go too).
//
// Precondition: s.mu is held.
func (t *Table) releaseLocked(s *shard, i uint32, e *entry) (ctl Ref, forced bool) {
	if h := t.head(t.entryHash(e)); *h == i {
		*h = e.next
	} else {
		for p := *h; p != 0; {
			pe := s.at(p)
			if pe.next == i {
				pe.next = e.next
				break
			}
			p = pe.next
		}
	}
	t.unfileLocked(s, i, e)
	t.unlinkUnconfLocked(s, e)
	if d := t.destOf(e); d != nil {
		d.Unbind(e.flags&FlagTemplate != 0, e.flags&FlagInactive == 0)
	}
	if e.flags&FlagNoCPort != 0 {
		t.noCPort.Add(-1)
	}
	if s.sx != nil {
		t.releaseSyncLocked(s, i, e)
	}
	ctl, forced = e.control, e.timeout == 0
	*e = entry{next: s.free, wslot: listNone}
	s.free = i
	t.live.Add(minusLive)
	return ctl, forced
}

// ctlOp is a deferred update of a controlling entry, applied after the shard lock of
// the controlled one is released (the lock order allows one shard lock at a time).
type ctlOp struct {
	ref Ref
	// forced: the controlled entry was deleted with timeout 0; drop the controller
	// when it controls nobody and is not an ASSURED template (§6.4).
	forced bool
	// flush: flush / nodest flush; drop the controller when it controls nobody (§2.3).
	flush bool
}

// applyOps applies controller updates: n_control--, and the drops of §6.4 and §2.3.
// Drops may queue further updates, appended to ops; it returns ops for reuse and the
// number of entries dropped.
func (t *Table) applyOps(ops []ctlOp) ([]ctlOp, int) {
	dropped := 0
	for j := 0; j < len(ops); j++ {
		op := ops[j]
		si, i, ok := t.split(op.ref)
		if !ok {
			continue
		}
		s := &t.shards[si]
		s.mu.Lock()
		if i < s.nalloc {
			e := s.at(i)
			if e.flags&fLive != 0 && e.nctl > 0 {
				e.nctl--
				unassuredTpl := e.flags&FlagTemplate == 0 || e.flags&FlagAssured == 0
				if e.nctl == 0 && (op.flush || (op.forced && unassuredTpl)) {
					e.timeout = 0 // ip_vs_conn_del: a forced delete
					ctl, _ := t.releaseLocked(s, i, e)
					dropped++
					if ctl != 0 {
						ops = append(ops, ctlOp{ref: ctl, forced: true, flush: op.flush})
					}
				}
			}
		}
		s.mu.Unlock()
	}
	return ops[:0], dropped
}

// Each calls fn with a copy of every entry until fn returns false. Each shard is
// copied under its lock, so the view is consistent per shard; fn runs without locks
// and may call the Table. Entries past their expiry time that Expire has not removed
// yet are included (check Expires). Each allocates; Walk (walk.go) is the bounded,
// resumable walk of cluster sync.
func (t *Table) Each(fn func(c *Conn) bool) {
	var buf []Conn
	var dests []*sched.Dest
	for si := range t.shards {
		s := &t.shards[si]
		buf, dests = buf[:0], dests[:0]
		s.mu.Lock()
		for b := range uint64(s.bmask.Load()) + 1 {
			for i := *t.headOf(si, s.bmask.Load(), b); i != 0; {
				e := s.at(i)
				buf = append(buf, Conn{})
				t.fillLocked(si, i, e, &buf[len(buf)-1])
				dests = append(dests, t.destOf(e))
				i = e.next
			}
		}
		s.mu.Unlock()
		for j := range buf {
			fillDAddr(&buf[j], dests[j])
			if !fn(&buf[j]) {
				return
			}
		}
	}
}

// Flush removes every entry, unbinding dests, as the kernel's ip_vs_conn_flush does:
// entries that control others go once their controlled entries are gone. Entries
// inserted concurrently may survive.
func (t *Table) Flush() {
	t.dropWhere(func(*entry) bool { return true })
}

// ExpireDest removes the connections and templates bound to the deleted dest id
// (expire_nodest_conn's flush, §2.3): entries that control others are skipped, and a
// controller is removed once it controls nobody. It does nothing if the dest is
// AVAILABLE again. now is the caller's time (unused: removal is immediate).
func (t *Table) ExpireDest(id uint32, now int64) {
	d := t.dest(id)
	if d == nil || d.Available() {
		return
	}
	t.dropWhere(func(e *entry) bool { return e.flags&fHasDest != 0 && e.dest == id })
}

// dropWhere force-deletes matching entries that control nobody, shard by shard,
// then their controllers as they become free.
func (t *Table) dropWhere(match func(*entry) bool) {
	var ops []ctlOp
	for pass := 0; pass < 4; pass++ {
		n := 0
		for si := range t.shards {
			s := &t.shards[si]
			s.mu.Lock()
			for b := range uint64(s.bmask.Load()) + 1 {
				for i := *t.headOf(si, s.bmask.Load(), b); i != 0; {
					e := s.at(i)
					next := e.next
					if e.nctl == 0 && match(e) {
						e.timeout = 0
						if ctl, _ := t.releaseLocked(s, i, e); ctl != 0 {
							ops = append(ops, ctlOp{ref: ctl, forced: true, flush: true})
						}
						n++
					}
					i = next
				}
			}
			s.mu.Unlock()
			ops, _ = t.applyOps(ops)
		}
		if n == 0 {
			return
		}
	}
}
