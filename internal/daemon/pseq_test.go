package daemon

import (
	"math/rand/v2"
	"slices"
	"testing"
)

type pseqItem struct{ k, v int }

// TestPindexMatchesSlice makes random puts and deletes on a pindex, some edits
// dropped unapplied, against a plain slice of the same entries (the slow
// reference): after each applied edit the list, its length and every key's
// entry agree, holes never outnumber the entries by more than a page, and every
// list an earlier edit made still holds what it held (nothing writes a list once
// made).
func TestPindexMatchesSlice(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	key := func(it *pseqItem) int { return it.k }
	x := newPindex([]pseqItem{{1, 1}, {2, 2}}, key)
	ref := []pseqItem{{1, 1}, {2, 2}}
	type kept struct {
		s    pseq[pseqItem]
		list []pseqItem
	}
	var old []kept
	compacted := false
	for step := range 4000 {
		e := x.edit()
		next := slices.Clone(ref)
		for range 1 + rng.IntN(3) {
			k := rng.IntN(300)
			if step > 2500 {
				k = rng.IntN(40) // shrink: many holes, compactions
			}
			i := slices.IndexFunc(next, func(it pseqItem) bool { return it.k == k })
			switch {
			case rng.IntN(2) == 0 || step > 2500 && rng.IntN(4) != 0:
				e.del(k)
				if i >= 0 {
					next = slices.Delete(next, i, i+1)
				}
			default:
				it := pseqItem{k, rng.Int()}
				e.put(it)
				if i >= 0 {
					next[i] = it
				} else {
					next = append(next, it)
				}
			}
			if got := e.get(k); (got == nil) != !slices.ContainsFunc(next, func(it pseqItem) bool { return it.k == k }) {
				t.Fatalf("step %d: the edit's get(%d) = %v", step, k, got)
			}
		}
		if e.len() != len(next) {
			t.Fatalf("step %d: edit len %d, want %d", step, e.len(), len(next))
		}
		if rng.IntN(10) == 0 {
			continue // dropped: the index keeps ref
		}
		holes := x.seq.end - x.seq.n
		x.apply(e)
		if holes >= pseqPage && x.seq.end == x.seq.n {
			compacted = true
		}
		ref = next
		if got := x.seq.list(); !slices.Equal(got, ref) {
			t.Fatalf("step %d: list\n%v\nwant\n%v", step, got, ref)
		}
		if x.seq.Len() != len(ref) || len(x.at) != len(ref) {
			t.Fatalf("step %d: Len %d, index %d, want %d", step, x.seq.Len(), len(x.at), len(ref))
		}
		for _, it := range ref {
			if got := x.get(it.k); got == nil || *got != it {
				t.Fatalf("step %d: get(%d) = %v, want %v", step, it.k, got, it)
			}
		}
		if h := x.seq.end - x.seq.n; h > x.seq.n && h >= pseqPage {
			t.Fatalf("step %d: %d holes for %d entries", step, h, x.seq.n)
		}
		if step%50 == 0 {
			old = append(old, kept{x.seq, slices.Clone(ref)})
		}
	}
	for i, o := range old {
		if got := o.s.list(); !slices.Equal(got, o.list) {
			t.Fatalf("list %d changed after it was made:\n%v\nwas\n%v", i, got, o.list)
		}
	}
	if !compacted {
		t.Fatal("no compaction happened: the test does not cover it")
	}
}
