package sched

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
)

// mhPrimes are the table sizes M that CONFIG_IP_VS_MH_TAB_INDEX 8..17 selects (§4.12).
var mhPrimes = [...]uint32{251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071}

// mhDefaultSize is the Kconfig default, index 12.
const mhDefaultSize = 4093

// mh is Maglev hashing (docs/ipvs-semantics.md §4.12): a table of M (prime) slots filled from a
// per-dest permutation (offset, skip from SipHash of the dest's address and port) in
// rounds where each dest claims a number of slots proportional to its last non-zero
// weight, indexed by SipHash of the client address (plus port with mh-port). With
// mh-fallback an unusable slot is followed by rehashing with growing offsets.
//
// The zero value is not usable (use newMH); it is used under its Pool's lock.
type mh struct {
	flags Flags
	size  uint32  // M
	magic uint64  // ⌈2^64 / M⌉, for mod
	bits  int     // MH_TAB_BITS = CONFIG_IP_VS_MH_TAB_INDEX / 2, for the weight shift
	table []*Dest // M slots; nil = no dest

	// canonical builds from the dests sorted by (address, port), not in list order.
	canonical bool

	// Rebuild scratch, kept between rebuilds.
	setup  []mhSetup
	taken  []uint64 // bitmap of claimed slots
	sorted []*Dest  // canonical order
}

// mhSetup is one dest's state while the table is populated.
type mhSetup struct {
	perm  uint32 // next slot to try
	skip  uint32 // step through the table, in [1, M-1]
	turns int32  // slots claimed per round
}

// newMHWith is the registry's constructor: newMH with Options.MHCanonical.
func newMHWith(o Options) (Scheduler, error) {
	s, err := newMH(o.Flags, o.MHTableSize)
	if err != nil {
		return nil, err
	}
	s.canonical = o.MHCanonical
	return s, nil
}

func newMH(f Flags, size int) (*mh, error) {
	if size == 0 {
		size = mhDefaultSize
	}
	idx := -1
	for i, p := range mhPrimes {
		if int(p) == size {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("%w: mh table size %d is not one of %v", ErrOption, size, mhPrimes)
	}
	return &mh{
		flags: f,
		size:  uint32(size),
		magic: ^uint64(0)/uint64(size) + 1,
		bits:  (idx + 8) / 2,
		table: make([]*Dest, size),
		taken: make([]uint64, (size+63)/64),
	}, nil
}

func (*mh) Name() string { return "mh" }

// MaxDests is the table size: the kernel refuses more dests than slots.
func (s *mh) MaxDests() int { return int(s.size) }

// The table is rebuilt from the current list on every change.
func (s *mh) Init(dests []*Dest)                    { s.build(dests) }
func (s *mh) AddDest(dests []*Dest, _ *Dest)        { s.build(dests) }
func (s *mh) DelDest(dests []*Dest, _ *Dest, _ int) { s.build(dests) }
func (s *mh) UpdDest(dests []*Dest, _ *Dest)        { s.build(dests) }

// build populates the table from last_weight, not weight: quiescing a dest (weight 0)
// leaves the table as it is and the dest is only skipped at lookup (§4.12).
func (s *mh) build(dests []*Dest) {
	if len(dests) > len(s.table) {
		clear(s.table) // unreachable through a Pool (see MaxDests)
		return
	}
	if s.canonical {
		s.sorted = append(s.sorted[:0], dests...)
		defer clear(s.sorted) // hold no dest past the build
		slices.SortFunc(s.sorted, func(a, b *Dest) int {
			if c := a.Addr().Compare(b.Addr()); c != 0 {
				return c
			}
			return cmp.Compare(a.port, b.port)
		})
		dests = s.sorted
	}
	// g is the gcd of the positive last weights; turns are last_weight/g, shifted
	// right so the largest fits in MH_TAB_BITS bits.
	var g, top int32
	for _, d := range dests {
		if lw := d.lastWeight.Load(); lw > 0 {
			g = gcd(lw, g)
			top = max(top, lw)
		}
	}
	if g < 1 {
		clear(s.table) // no dest has ever had a weight
		return
	}
	rshift := max(0, bits.Len32(uint32(top/g))-s.bits)

	if cap(s.setup) < len(dests) {
		s.setup = make([]mhSetup, len(dests))
	}
	setup := s.setup[:len(dests)]
	for i, d := range dests {
		v := d.fold + uint32(d.port)
		turns := (d.lastWeight.Load() / g) >> rshift
		if turns == 0 && d.lastWeight.Load() != 0 {
			turns = 1
		}
		setup[i] = mhSetup{
			perm:  s.mod(mhHash(mhKey1, v)),
			skip:  mhHash(mhKey2, v)%(s.size-1) + 1,
			turns: turns,
		}
	}

	// Rounds over the list: each dest claims its turns slots one after the other,
	// each the next free one along its permutation; stop when every slot is taken,
	// possibly in the middle of a dest's turns. Every slot is overwritten, since at
	// least one dest has turns >= 1.
	clear(s.taken)
	filled := uint32(0)
	for {
		for i := range setup {
			ds := &setup[i]
			for range ds.turns {
				c := ds.perm
				for s.taken[c/64]&(1<<(c%64)) != 0 {
					if c += ds.skip; c >= s.size {
						c -= s.size
					}
				}
				ds.perm = c
				s.taken[c/64] |= 1 << (c % 64)
				s.table[c] = dests[i]
				if filled++; filled == s.size {
					return
				}
			}
		}
	}
}

func (s *mh) Schedule(_ []*Dest, p *Packet) *Dest {
	v := hashInput(p, s.flags&FlagSched2 != 0)
	ih := s.mod(mhHash(mhKey1, v))
	d := s.table[ih]
	if d == nil || usable(d) {
		return d
	}
	if s.flags&FlagSched1 == 0 {
		return nil
	}
	// mh-fallback: rehash with the offset folded into the hashed value (unlike sh,
	// which only shifts the bucket).
	for o := range s.size {
		roff := o + ih
		if roff >= s.size {
			roff -= s.size
		}
		d = s.table[s.mod(mhHash(mhKey1, v+roff))]
		if d == nil {
			return nil
		}
		if usable(d) {
			return d
		}
	}
	return nil
}

// mod returns v mod M without a division (Lemire, Kaser and Kurz, "Faster Remainder
// by Direct Computation", 2019): exact for every 32-bit v and M.
func (s *mh) mod(v uint32) uint32 {
	hi, _ := bits.Mul64(s.magic*uint64(v), uint64(s.size))
	return uint32(hi)
}

// mh's two fixed SipHash keys, each with both 64-bit halves equal: {2654435761,
// 2654435761} and {2654446892, 2654446892} (§4.12).
const (
	mhKey1 = 2654435761
	mhKey2 = 2654446892
)

// mhHash is the kernel's hsiphash of the 4-byte little-endian v under the key {k, k}
// on a 64-bit host: SipHash-1-3 (one compression round, three finalisation rounds)
// truncated to its low 32 bits. A 4-byte message is a single final block holding v
// and the length 4 in its top byte.
func mhHash(k uint64, v uint32) uint32 {
	v0 := 0x736f6d6570736575 ^ k
	v1 := 0x646f72616e646f6d ^ k
	v2 := 0x6c7967656e657261 ^ k
	v3 := 0x7465646279746573 ^ k
	b := 4<<56 | uint64(v)
	v3 ^= b
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= b
	v2 ^= 0xff
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	return uint32(v0 ^ v1 ^ v2 ^ v3)
}

// sipRound is SipHash's ARX round.
func sipRound(v0, v1, v2, v3 uint64) (uint64, uint64, uint64, uint64) {
	v0 += v1
	v1 = bits.RotateLeft64(v1, 13) ^ v0
	v0 = bits.RotateLeft64(v0, 32)
	v2 += v3
	v3 = bits.RotateLeft64(v3, 16) ^ v2
	v0 += v3
	v3 = bits.RotateLeft64(v3, 21) ^ v0
	v2 += v1
	v1 = bits.RotateLeft64(v1, 17) ^ v2
	v2 = bits.RotateLeft64(v2, 32)
	return v0, v1, v2, v3
}
