package dataplane

import "slices"

// A paged table is an open-addressing hash table (linear probing) whose slots are
// kept in fixed-size pages under fixed-size directories, so that a new generation
// copies only the pages a change wrote, their directories and the directory list, and
// shares every other page and directory with the generation before. A page is 16
// slots and a directory 64 pages, so a change of one service copies one page (256
// bytes of the service index, whose slot is a hash and a pointer; 512 while the
// slot held the key), one directory of 64 pointers and a directory list of one
// pointer per 1,024 slots (32 at 10,000 services): 0.75 KiB at 10 services, 1
// at 10,000 (a flat page list grew with the table: 256 pointers at 10,000
// services, copied by each change; pages of 32 slots made it 1.7 KiB, and what a
// gvs adm command allocates sets how often the collector runs). A reader pays two
// more loads than a flat slot array (the directory and the page pointers), both in
// cache for a table that is read at all.
//
// ptable is the published form, immutable once in a snapshot; a pagedBuilder owns
// the control side's next table and copies a page, its directory and the directory
// list before their first write after a freeze.
const (
	pageBits = 4
	pageSize = 1 << pageBits
	pageMask = pageSize - 1
	dirBits  = 6
	dirSize  = 1 << dirBits
	dirMask  = dirSize - 1
)

type ptable[S any] struct {
	shift uint8  // 64 - log2(slots)
	mask  uint64 // slots - 1; meaningless without dirs
	dirs  []*[dirSize]*[pageSize]S
}

// pslot is what a slot type gives the builder: whether the slot holds an entry,
// the entry's hash, and whether two slots hold the same key.
type pslot[S any] interface {
	used() bool
	hash() uint64
	sameKey(S) bool
}

// empty reports whether the table has no slots (the zero table).
func (t *ptable[S]) empty() bool { return len(t.dirs) == 0 }

// slots returns the table's number of slots (0 for the zero table).
func (t *ptable[S]) slots() uint64 {
	if t.empty() {
		return 0
	}
	return t.mask + 1
}

// at returns slot i (< slots()).
func (t *ptable[S]) at(i uint64) *S {
	return &t.dirs[i>>(pageBits+dirBits)][(i>>pageBits)&dirMask][i&pageMask]
}

// each calls f for every slot, in slot order.
func (t *ptable[S]) each(f func(*S)) {
	for i := uint64(0); i < t.slots(); i += pageSize {
		pg := t.dirs[i>>(pageBits+dirBits)][(i>>pageBits)&dirMask]
		for j := range pg {
			f(&pg[j])
		}
	}
}

// pagedBuilder keeps the next generation's table. freeze hands out the current
// table for publication; from then on every page, directory and the directory list
// are shared until the builder writes them, which copies them first.
type pagedBuilder[S pslot[S]] struct {
	t         ptable[S]
	n         int      // entries
	owned     []bool   // by page: written since the last freeze (a private copy)
	dirOwned  []bool   // by directory: a private copy
	dirsOwned bool     // t.dirs is a private copy
	written   []uint32 // the pages owned, so that freeze clears only those
}

// freeze returns the table for a snapshot; the builder never writes what it returns.
func (b *pagedBuilder[S]) freeze() ptable[S] {
	for _, p := range b.written {
		b.owned[p] = false
		b.dirOwned[p>>dirBits] = false
	}
	b.written = b.written[:0]
	b.dirsOwned = false
	return b.t
}

// writable returns slot i for writing, copying its page, its directory and the
// directory list first if a published table shares them.
func (b *pagedBuilder[S]) writable(i uint64) *S {
	p := i >> pageBits
	if !b.owned[p] {
		d := p >> dirBits
		if !b.dirsOwned {
			b.t.dirs = slices.Clone(b.t.dirs)
			b.dirsOwned = true
		}
		if !b.dirOwned[d] {
			cd := *b.t.dirs[d]
			b.t.dirs[d] = &cd
			b.dirOwned[d] = true
		}
		cp := *b.t.dirs[d][p&dirMask]
		b.t.dirs[d][p&dirMask] = &cp
		b.owned[p] = true
		b.written = append(b.written, uint32(p))
	}
	return b.t.at(i)
}

// find returns the index of the slot holding s's key, or of the empty slot ending
// its probe sequence (ok false). The table must have slots.
func (b *pagedBuilder[S]) find(s *S) (i uint64, ok bool) {
	mask := b.t.mask
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
	mask := b.t.mask
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
	pages := n / pageSize
	b.t = ptable[S]{shift: shift, mask: n - 1, dirs: make([]*[dirSize]*[pageSize]S, (pages+dirSize-1)/dirSize)}
	// The directories in one array and the pages in one more: the collector
	// marks two objects for a table built whole (a restore of 10,000 services:
	// 2,048 pages and 32 directories of each table), not one per page. A page
	// copied later is an object of its own; the array stays while a table
	// still holds one of its pages, so it costs at most the table's size again.
	dirs := make([][dirSize]*[pageSize]S, len(b.t.dirs))
	all := make([][pageSize]S, pages)
	for d := range b.t.dirs {
		b.t.dirs[d] = &dirs[d]
	}
	for p := range pages {
		b.t.dirs[p>>dirBits][p&dirMask] = &all[p]
	}
	b.owned = make([]bool, pages)
	b.dirOwned = make([]bool, len(b.t.dirs))
	b.written = slices.Grow(b.written[:0], int(pages))
	for p := range b.owned {
		b.owned[p] = true
		b.written = append(b.written, uint32(p))
	}
	for d := range b.dirOwned {
		b.dirOwned[d] = true
	}
	b.dirsOwned = true
	old.each(func(x *S) {
		if !(*x).used() {
			return
		}
		i := (*x).hash() >> shift
		for (*b.t.at(i)).used() {
			i = (i + 1) & b.t.mask
		}
		*b.t.at(i) = *x
	})
}
