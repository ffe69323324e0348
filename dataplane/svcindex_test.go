package dataplane

import (
	"math/rand/v2"
	"testing"
)

// TestSvcIndex checks the index against a Go map: every stored key is found, and
// keys that differ from a stored one in a single field are not.
func TestSvcIndex(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 3, 4, 5, 17, 200} { // the generator below has 266 distinct keys
		m := map[svcKey]*service{}
		for len(m) < n {
			k := svcKey{proto: []uint8{6, 17}[rng.IntN(2)], v6: rng.IntN(2) == 1, port: uint16(rng.IntN(4))}
			if rng.IntN(8) == 0 {
				k = svcKey{mark: uint32(rng.IntN(5)), v6: k.v6}
			} else {
				k.addr[15] = byte(rng.IntN(8)) // few distinct values: many near-collisions
				k.addr[0] = byte(rng.IntN(2))
			}
			m[k] = &service{id: uint32(len(m))}
		}
		x := newSvcIndex(m)
		if len(x.slots) < 2*n {
			t.Fatalf("n=%d: %d slots", n, len(x.slots))
		}
		for k, svc := range m {
			if got := x.get(&k); got != svc {
				t.Fatalf("n=%d: get(%+v) = %v, want %v", n, k, got, svc)
			}
			for _, mut := range []func(*svcKey){
				func(k *svcKey) { k.port++ },
				func(k *svcKey) { k.proto ^= 1 },
				func(k *svcKey) { k.v6 = !k.v6 },
				func(k *svcKey) { k.addr[15] += 100 },
				func(k *svcKey) { k.mark += 1000 },
			} {
				k2 := k
				mut(&k2)
				if got := x.get(&k2); got != m[k2] {
					t.Fatalf("n=%d: get(%+v) = %v, want %v", n, k2, got, m[k2])
				}
			}
		}
	}
	var empty svcIndex
	if empty.get(&svcKey{port: 80}) != nil {
		t.Fatal("zero index found a service")
	}
}
