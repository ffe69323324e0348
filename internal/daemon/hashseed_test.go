package daemon

import (
	"errors"
	"testing"

	"github.com/gvs-lb/gvs/dataplane"
)

// TestLiveDepsHashSeed: every start gets a flow hash seed of its own (a flood cannot
// aim at one shard of a director it cannot read the seed of), the Director is built
// with it, and a run-time change of options cannot change it.
func TestLiveDepsHashSeed(t *testing.T) {
	a, b := LiveDeps(1, nil).HashSeed, LiveDeps(1, nil).HashSeed
	if a == 0 || a == b {
		t.Fatalf("two starts got seeds %#x and %#x, want two different non-zero ones", a, b)
	}
	o := dataplane.DefaultOptions()
	o.HashSeed = a
	d, err := dataplane.New(o)
	if err != nil {
		t.Fatal(err)
	}
	o.HashSeed = b
	if err := d.SetOptions(o); !errors.Is(err, dataplane.ErrConfig) {
		t.Fatalf("SetOptions changing the seed: %v, want ErrConfig", err)
	}
}
