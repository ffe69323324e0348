package dataplane

import "slices"

// A paged table is an open-addressing hash table (linear probing) whose slots are
// kept in fixed-size pages, so that a new generation copies only the pages a change
// wrote and the page list (one pointer per pageSize slots), and shares every other
// page with the generation before: a gvs adm change of one service at 10,000
// services copies a few KiB, not the whole table. A reader pays one more load than a
// flat slot array (the page pointer).
//
// ptable is the published form, immutable once in a snapshot; a pagedBuilder owns
// the control side's next table and copies a page before its first write after a
// freeze.
const (
	pageBits = 7
	pageSize = 1 << pageBits
	pageMask = pageSize - 1
)

type ptable[S any] struct {
	shift uint8 // 64 - log2(slots)
	pages []*[pageSize]S
}

// pslot is what a slot type gives the builder: whether the slot holds an entry,
// the entry's hash, and whether two slots hold the same key.
type pslot[S any] interface {
	used() bool
	hash() uint64
	sameKey(S) bool
}

// slots returns the table's number of slots (0 for the zero table).
func (t *ptable[S]) slots() uint64 { return uint64(len(t.pages)) * pageSize }

func (t *ptable[S]) at(i uint64) *S { return &t.pages[i>>pageBits][i&pageMask] }

// pagedBuilder keeps the next generation's table. freeze hands out the current
// table for publication; from then on every page (and the page list) is shared
// until the builder writes it, which copies it first.
type pagedBuilder[S pslot[S]] struct {
	t          ptable[S]
	n          int    // entries
	owned      []bool // by page: written since the last freeze (a private copy)
	pagesOwned bool   // t.pages is a private copy
}

// freeze returns the table for a snapshot; the builder never writes what it returns.
func (b *pagedBuilder[S]) freeze() ptable[S] {
	clear(b.owned)
	b.pagesOwned = false
	return b.t
}

// writable returns slot i for writing, copying its page (and the page list) first
// if a published table shares them.
func (b *pagedBuilder[S]) writable(i uint64) *S {
	p := i >> pageBits
	if !b.owned[p] {
		if !b.pagesOwned {
			b.t.pages = slices.Clone(b.t.pages)
			b.pagesOwned = true
		}
		cp := *b.t.pages[p]
		b.t.pages[p] = &cp
		b.owned[p] = true
	}
	return &b.t.pages[p][i&pageMask]
}

// find returns the index of the slot holding s's key, or of the empty slot ending
// its probe sequence (ok false). The table must have slots.
func (b *pagedBuilder[S]) find(s *S) (i uint64, ok bool) {
	mask := b.t.slots() - 1
	for i = (*s).hash() >> b.t.shift; ; i = (i + 1) & mask {
		x := b.t.at(i)
		if !(*x).used() {
			return i, false
		}
		if (*x).sameKey(*s) {
			return i, true
		}
	}
}

// put stores s, replacing the entry with its key if there is one. The table keeps
// at least twice as many slots as entries (it doubles into fresh pages).
func (b *pagedBuilder[S]) put(s S) {
	if 2*(b.n+1) > int(b.t.slots()) {
		b.resize(2 * (b.n + 1))
	}
	i, ok := b.find(&s)
	*b.writable(i) = s
	if !ok {
		b.n++
	}
}

// del removes the entry with s's key, if any, moving later entries of its probe
// run back so that no lookup meets a hole before its key (no tombstones).
func (b *pagedBuilder[S]) del(s S) {
	if b.n == 0 {
		return
	}
	i, ok := b.find(&s)
	if !ok {
		return
	}
	mask := b.t.slots() - 1
	var zero S
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		x := *b.t.at(j)
		if !x.used() {
			break
		}
		// x may move to the hole at i if its home slot is not in (i, j].
		if h := x.hash() >> b.t.shift; (j-h)&mask >= (j-i)&mask {
			*b.writable(i) = x
			i = j
		}
	}
	*b.writable(i) = zero
	b.n--
}

// resize rebuilds the table with room for want entries, in fresh pages.
func (b *pagedBuilder[S]) resize(want int) {
	n := uint64(pageSize)
	shift := uint8(64 - pageBits)
	for n < uint64(want) {
		n *= 2
		shift--
	}
	old := b.t
	b.t = ptable[S]{shift: shift, pages: make([]*[pageSize]S, n/pageSize)}
	for p := range b.t.pages {
		b.t.pages[p] = new([pageSize]S)
	}
	b.owned = make([]bool, len(b.t.pages))
	for p := range b.owned {
		b.owned[p] = true
	}
	b.pagesOwned = true
	mask := n - 1
	for _, pg := range old.pages {
		for _, x := range pg {
			if !x.used() {
				continue
			}
			i := x.hash() >> shift
			for (*b.t.at(i)).used() {
				i = (i + 1) & mask
			}
			*b.t.at(i) = x
		}
	}
}
