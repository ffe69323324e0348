package dataplane

import "slices"

// A generation's paged table (ptable.go) comes with a small delta: the entries
// added since the table was last folded, at most deltaMax, whose keys the table
// does not hold. An add then writes only the delta, not a page of the table, its
// directory and the directory list (about 16 lines, cold at 10,000 services:
// docs/benchmarks.md §3). A generation holds the builder's array of the delta up
// to its length; the next add appends beyond it, and a change or removal of an
// entry of the delta copies the array first: a generation of adds allocates
// nothing for the delta. A change or removal of an entry of
// the table writes the table as before; of an entry of the delta, the delta:
// an entry added and removed again before a fold leaves nothing (gvs adm -A then
// -D writes no page at all). When the delta is full, the builder folds it into
// the table in one pass: each page, directory and the directory list copied once
// per fold.
//
// A reader looks in the table first and in the delta only when the table does
// not hold the key: a hit costs nothing more; a miss costs a length test of an
// empty delta, else a test of the delta's bloom filter (256 bits, one per
// entry's hash) and, when it hits (about one miss in eight with a full delta of
// 31 entries), a scan of the delta.
const deltaMax = 32

// deltaBulk is the number of adds in one generation from which it folds its
// delta (deltaBuilder.freeze).
const deltaBulk = 8

type pdelta[S any] struct {
	ents  []S   // immutable once published (the builder's array, up to its length)
	bloom bloom // every entry's hash
}

// bloom is a filter of hashes: the bit of each hash's top 8 bits.
type bloom [4]uint64

func (f *bloom) add(h uint64) { f[h>>62] |= 1 << (h >> 56 & 63) }

// has reports whether h may have been added.
func (f *bloom) has(h uint64) bool { return f[h>>62]&(1<<(h>>56&63)) != 0 }

// mayHold reports whether an entry of hash h may be in the delta.
func (d *pdelta[S]) mayHold(h uint64) bool { return len(d.ents) != 0 && d.bloom.has(h) }

// deltaBuilder keeps the control side's next table as a paged table (base) and
// a delta of entries whose keys base does not hold.
type deltaBuilder[S pslot[S]] struct {
	base   pagedBuilder[S]
	ents   []S      // the builder's; freeze publishes ents[:len:len] itself
	shared bool     // ents[:len] is published: appending is safe, writing it is not
	hashes []uint64 // of ents, by position
	bloom  bloom    // of ents
	pushed int      // entries added to the delta since the last freeze
	pub    pdelta[S]
	dirty  bool // ents changed since pub was made
}

// len returns the number of entries.
func (b *deltaBuilder[S]) len() int { return b.base.n + len(b.ents) }

// index returns the position in the delta of the entry with s's key, or -1.
func (b *deltaBuilder[S]) index(s *S) int {
	if len(b.ents) == 0 {
		return -1
	}
	h := (*s).hash()
	if !b.bloom.has(h) {
		return -1
	}
	for i, x := range b.hashes {
		if x == h && b.ents[i].sameKey(*s) {
			return i
		}
	}
	return -1
}

// put stores s; an entry with its key is replaced if replace, else kept. It
// reports whether the key was there before.
func (b *deltaBuilder[S]) put(s S, replace bool) (had bool) {
	if i := b.index(&s); i >= 0 {
		if replace {
			b.own()
			b.ents[i] = s
			b.dirty = true
		}
		return true
	}
	if b.base.n > 0 {
		if _, ok := b.base.find(&s); ok {
			if replace {
				b.base.put(s)
			}
			return true
		}
	}
	h := s.hash()
	if cap(b.ents) == 0 {
		b.ents = make([]S, 0, deltaMax)
	}
	b.ents = append(b.ents, s)
	b.hashes = append(b.hashes, h)
	b.bloom.add(h)
	b.pushed++
	b.dirty = true
	if len(b.ents) >= deltaMax {
		b.fold()
	}
	return false
}

// del removes the entry with s's key, if any.
func (b *deltaBuilder[S]) del(s S) {
	i := b.index(&s)
	if i < 0 {
		b.base.del(s)
		return
	}
	b.own()
	last := len(b.ents) - 1
	b.ents[i], b.hashes[i] = b.ents[last], b.hashes[last]
	b.ents[last] = *new(S)
	b.ents, b.hashes = b.ents[:last], b.hashes[:last]
	b.bloom = bloom{}
	for _, h := range b.hashes {
		b.bloom.add(h)
	}
	b.dirty = true
}

// fold writes the delta into base and empties it.
func (b *deltaBuilder[S]) fold() {
	if len(b.ents) == 0 {
		return
	}
	for _, e := range b.ents {
		b.base.put(e)
	}
	if b.shared {
		b.ents, b.shared = nil, false // a new array at the next add
	} else {
		clear(b.ents)
		b.ents = b.ents[:0]
	}
	b.hashes = b.hashes[:0]
	b.bloom = bloom{}
	b.dirty = true
}

// freeze returns the table and its delta for a snapshot; the builder never
// writes what it returns. A table without slots has an empty delta (its
// readers test the table first). A generation that added deltaBulk entries
// or more (a restore, a reload) folds its delta: it writes pages for its adds
// as it would have without a delta, and the commands after it start from an
// empty delta, which neither they nor the readers pay for.
func (b *deltaBuilder[S]) freeze() (ptable[S], pdelta[S]) {
	if b.base.t.empty() || b.pushed >= deltaBulk {
		b.fold()
	}
	b.pushed = 0
	if b.dirty {
		b.pub = pdelta[S]{bloom: b.bloom}
		if n := len(b.ents); n > 0 {
			// The builder's array itself, capped: the adds after it are
			// appended beyond what the generation can reach, and a change
			// of its entries copies the array first (own).
			b.pub.ents = b.ents[:n:n]
			b.shared = true
		}
		b.dirty = false
	}
	return b.base.freeze(), b.pub
}

// own copies ents before a write of its entries if a generation holds them:
// the one copy per published delta that a removal or replacement makes, where
// an add appends to the shared array and a generation copies nothing.
func (b *deltaBuilder[S]) own() {
	if b.shared {
		b.ents = slices.Clone(b.ents)
		b.shared = false
	}
}

// each calls f for every entry, in no particular order.
func (b *deltaBuilder[S]) each(f func(*S)) {
	b.base.t.each(func(s *S) {
		if (*s).used() {
			f(s)
		}
	})
	for i := range b.ents {
		f(&b.ents[i])
	}
}
