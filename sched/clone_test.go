package sched

import (
	"reflect"
	"testing"
)

func clonePacket(i int) *Packet {
	pk := &Packet{SrcPort: uint16(1000 + i), DstPort: 80, Protocol: 6, Now: int64(i) * 1e6}
	pk.Src = [16]byte{198, 18, byte(i >> 8), byte(i)}
	pk.Dst = [16]byte{198, 18, 0, 100}
	return pk
}

// TestCloneContinues checks, for every scheduler, that a cloned pool picks exactly what
// the original would have picked, and that edits to the clone leave the original's
// list and future picks untouched: what a Director's next generation relies on.
func TestCloneContinues(t *testing.T) {
	for _, n := range Names() {
		t.Run(n, func(t *testing.T) {
			mk := func() (*Pool, []*Dest) {
				s, err := New(n, Options{})
				if err != nil {
					t.Fatal(err)
				}
				ds := mkDests(3, 1, 2, 5)
				return addPool(t, s, ds...), ds
			}
			orig, _ := mk()
			ref, _ := mk() // the same history, never cloned
			for i := 0; i < 37; i++ {
				a, b := orig.Schedule(clonePacket(i)), ref.Schedule(clonePacket(i))
				if name(a) != name(b) {
					t.Fatalf("pick %d before cloning: %s vs %s (the test's pools differ)", i, name(a), name(b))
				}
			}
			c := orig.Clone()
			for i := 37; i < 80; i++ {
				a, b, r := orig.Schedule(clonePacket(i)), c.Schedule(clonePacket(i)), ref.Schedule(clonePacket(i))
				if name(a) != name(b) || name(a) != name(r) {
					t.Fatalf("pick %d: original %s, clone %s, reference %s", i, name(a), name(b), name(r))
				}
			}
			e := mkDest(9, 4)
			if err := c.Add(e); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Delete(c.Dests()[len(c.Dests())-1].Addr(), 80); err != nil {
				t.Fatal(err)
			}
			if len(orig.Dests()) != 4 || len(c.Dests()) != 4 {
				t.Fatalf("lists: original %d, clone %d", len(orig.Dests()), len(c.Dests()))
			}
			for i := 80; i < 200; i++ {
				a, r := orig.Schedule(clonePacket(i)), ref.Schedule(clonePacket(i))
				if a == e {
					t.Fatalf("pick %d: the original picked a dest added to the clone only", i)
				}
				// The deleted dest (A) lost AVAILABLE, which the original's list does
				// not know; picks may differ only where a scheduler reads the flags, so
				// compare by name only where neither is the deleted dest.
				if name(a) != name(r) && name(r) != "A" && name(a) != "A" {
					t.Fatalf("pick %d after editing the clone: original %s, reference %s", i, name(a), name(r))
				}
			}
		})
	}
}

// TestStatefulSchedulersClone fails when a scheduler with fields of its own does not
// implement Cloner: sharing its state between two generations' pools would be a race.
func TestStatefulSchedulersClone(t *testing.T) {
	for _, n := range Names() {
		s, err := New(n, Options{})
		if err != nil {
			t.Fatal(err)
		}
		typ := reflect.TypeOf(s)
		if typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		_, isCloner := s.(Cloner)
		if typ.Size() > 0 && !isCloner {
			t.Errorf("%s has state (%s, %d bytes) but no Clone", n, typ, typ.Size())
		}
	}
}
