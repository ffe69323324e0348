package daemon

import (
	"iter"
	"slices"
)

// A pseq is an ordered list kept in fixed-size pages of pointers to its entries,
// the pages in directories of pseqPage pages, so that a changed list copies only
// what a change wrote — an entry, its page, the page's directory and the list of
// directories (one pointer per pseqPage² entries) — and shares every other page
// with the list it was made from: the controller's tables that a gvs adm command
// changes (the configured services, the links' filter's addresses) cost what the
// command changes, not what they hold. A deleted entry leaves a hole, which
// iteration skips; holes at the end are trimmed, and a list with more holes than
// entries is compacted (pindex.apply), so the holes cost at most as much again.
//
// A pseq is a value: once it is published (stored where another goroutine reads
// it) nothing writes its entries, pages or directories. The zero value is the
// empty list.
type pseq[T any] struct {
	dirs []*pseqDir[T]
	end  int // slots in use, holes included
	n    int // entries
}

const (
	pseqBits = 5
	pseqPage = 1 << pseqBits
	pseqMask = pseqPage - 1
)

type (
	pseqDir[T any]  [pseqPage]*pseqLeaf[T]
	pseqLeaf[T any] [pseqPage]*T // nil: a hole
)

// Len returns the number of entries.
func (s *pseq[T]) Len() int { return s.n }

func (s *pseq[T]) slot(i int) **T {
	return &s.dirs[i>>(2*pseqBits)][i>>pseqBits&pseqMask][i&pseqMask]
}

// all yields the entries in order. The caller must not write through them.
func (s *pseq[T]) all() iter.Seq[*T] {
	return func(yield func(*T) bool) {
		for i := 0; i < s.end; i++ {
			if v := *s.slot(i); v != nil && !yield(v) {
				return
			}
		}
	}
}

// list returns the entries in order, in a slice of their own.
func (s *pseq[T]) list() []T {
	out := make([]T, 0, s.n)
	for v := range s.all() {
		out = append(out, *v)
	}
	return out
}

// pindex is a pseq with the position of each entry by key: the controller's
// builder of a list it publishes. The index is the controller's own (never
// published); the list in seq is immutable once given out.
type pindex[K comparable, T any] struct {
	seq pseq[T]
	at  map[K]pslot
	key func(*T) K
	// dropped are the tags of the keys that the edits applied since the owner
	// last took them (takeDropped) deleted.
	dropped []ptag[K]
	// The maps of the last edit applied, emptied, for the next one: an edit of
	// a few entries (a gvs adm command's) then allocates none.
	spareMoved map[K]int
	spareOwned map[int]bool
}

// pslot is an entry's place in a pindex's list, and the tag its owner keeps
// with it: one lookup of a key finds both (the configured table keeps the gvs
// adm command line that changed a service last, admTouch: no map of every
// service beside the table's to probe, cold at 10,000 services, on each
// command). A new entry's tag is 0; a compaction keeps the tags.
type pslot struct {
	i   int32
	tag uint32
}

// ptag is the tag of a deleted entry's key.
type ptag[K comparable] struct {
	k   K
	tag uint32
}

// newPindex returns the index of list's entries (a copy). They are kept in one
// array of their own, not one object each: the collector marks one object for
// the whole table (10,000 services), not one per entry, on each of its cycles.
// An entry deleted later stays in the array until the list is compacted (apply),
// so the array holds at most about twice the entries.
func newPindex[K comparable, T any](list []T, key func(*T) K) pindex[K, T] {
	return newPindexOf(slices.Clone(list), key)
}

// newPindexOf is newPindex of own, which the index keeps (nothing else may
// write it).
func newPindexOf[K comparable, T any](own []T, key func(*T) K) pindex[K, T] {
	x := pindex[K, T]{at: make(map[K]pslot, len(own)), key: key}
	e := x.edit()
	for i := range own {
		e.putRef(&own[i])
	}
	x.apply(e)
	return x
}

// get returns the entry of key k, or nil. The caller must not write through it.
func (x *pindex[K, T]) get(k K) *T {
	if s, ok := x.at[k]; ok {
		return *x.seq.slot(int(s.i))
	}
	return nil
}

// tag returns the tag of key k's entry, and whether there is one.
func (x *pindex[K, T]) tag(k K) (uint32, bool) {
	s, ok := x.at[k]
	return s.tag, ok
}

// setTag sets the tag of key k's entry; false: there is none.
func (x *pindex[K, T]) setTag(k K, tag uint32) bool {
	s, ok := x.at[k]
	if ok {
		s.tag = tag
		x.at[k] = s
	}
	return ok
}

// tags calls f for each entry with a tag.
func (x *pindex[K, T]) tags(f func(K, uint32)) {
	for k, s := range x.at {
		if s.tag != 0 {
			f(k, s.tag)
		}
	}
}

// takeDropped returns the tags of the keys deleted since the last call.
func (x *pindex[K, T]) takeDropped() []ptag[K] {
	d := x.dropped
	x.dropped = x.dropped[:0]
	return d
}

// pedit is a change of a pindex being made: a new list sharing with the
// index's every page it did not write, and the positions it gave or took. It
// changes nothing of the index until pindex.apply, so a change that fails is
// dropped as it is.
type pedit[K comparable, T any] struct {
	x         *pindex[K, T]
	s         pseq[T]
	moved     map[K]int // positions given (-1: removed) since the edit began
	owned     map[int]bool
	dirsOwned bool
}

func (x *pindex[K, T]) edit() *pedit[K, T] {
	e := &pedit[K, T]{x: x, s: x.seq, moved: x.spareMoved, owned: x.spareOwned}
	x.spareMoved, x.spareOwned = nil, nil
	return e
}

// maxSpare is the most entries an edit's map may have held to be kept for the
// next edit: emptying a map costs what it grew to.
const maxSpare = 16

func (e *pedit[K, T]) pos(k K) (int, bool) {
	if i, ok := e.moved[k]; ok {
		return i, i >= 0
	}
	s, ok := e.x.at[k]
	return int(s.i), ok
}

// get returns the edited list's entry of key k, or nil.
func (e *pedit[K, T]) get(k K) *T {
	if i, ok := e.pos(k); ok {
		return *e.s.slot(i)
	}
	return nil
}

// writable returns slot i for writing, copying its page, the page's directory
// and the directory list first unless this edit already did (or made them, past
// the end).
func (e *pedit[K, T]) writable(i int) **T {
	if !e.dirsOwned {
		e.s.dirs = slices.Clone(e.s.dirs)
		e.dirsOwned = true
	}
	if e.owned == nil {
		e.owned = map[int]bool{}
	}
	d, p := i>>(2*pseqBits), i>>pseqBits // p: the page's number in the list
	// Owned directories are keyed -1-d, pages p.
	if d == len(e.s.dirs) {
		e.s.dirs = append(e.s.dirs, new(pseqDir[T]))
		e.owned[-1-d] = true
	} else if !e.owned[-1-d] {
		cp := *e.s.dirs[d]
		e.s.dirs[d] = &cp
		e.owned[-1-d] = true
	}
	dir := e.s.dirs[d]
	switch pg := &dir[p&pseqMask]; {
	case *pg == nil:
		*pg = new(pseqLeaf[T])
		e.owned[p] = true
	case !e.owned[p]:
		cp := **pg
		*pg = &cp
		e.owned[p] = true
	}
	return &dir[p&pseqMask][i&pseqMask]
}

func (e *pedit[K, T]) move(k K, i int) {
	if e.moved == nil {
		e.moved = map[K]int{}
	}
	e.moved[k] = i
}

// put stores v in place of the entry of its key, or adds it at the end.
func (e *pedit[K, T]) put(v T) { e.putRef(&v) }

// putRef is put of the entry *p, which nothing writes from then on.
func (e *pedit[K, T]) putRef(p *T) {
	k := e.x.key(p)
	i, ok := e.pos(k)
	if !ok {
		i = e.s.end
		e.s.end++
		e.s.n++
		e.move(k, i)
	}
	*e.writable(i) = p
}

// del removes the entry of key k, if there is one.
func (e *pedit[K, T]) del(k K) {
	i, ok := e.pos(k)
	if !ok {
		return
	}
	*e.writable(i) = nil
	e.s.n--
	e.move(k, -1)
	for e.s.end > 0 && *e.s.slot(e.s.end - 1) == nil {
		e.s.end--
	}
}

// len returns the number of entries of the edited list.
func (e *pedit[K, T]) len() int { return e.s.n }

// apply makes e's list the index's. A list with more holes than entries (and at
// least a page of them) is compacted: that costs the list once per as many
// deletions as it holds entries.
func (x *pindex[K, T]) apply(e *pedit[K, T]) {
	if e.x != x {
		panic("daemon: pindex.apply of another index's edit")
	}
	x.seq = e.s
	for k, i := range e.moved {
		if i < 0 {
			if s := x.at[k]; s.tag != 0 {
				x.dropped = append(x.dropped, ptag[K]{k, s.tag})
			}
			delete(x.at, k)
		} else {
			s := x.at[k] // its tag, if it was there
			s.i = int32(i)
			x.at[k] = s
		}
	}
	if e.moved != nil && len(e.moved) <= maxSpare {
		clear(e.moved)
		x.spareMoved = e.moved
	}
	if e.owned != nil && len(e.owned) <= maxSpare {
		clear(e.owned)
		x.spareOwned = e.owned
	}
	e.moved, e.owned = nil, nil // the edit is spent
	if holes := x.seq.end - x.seq.n; holes > x.seq.n && holes >= pseqPage {
		old := *x
		*x = newPindex(x.seq.list(), x.key)
		x.dropped = old.dropped
		old.tags(func(k K, tag uint32) { x.setTag(k, tag) })
	}
}
