package cluster

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func TestGateHysteresis(t *testing.T) {
	ok := Conditions{DataPath: true, Quorum: true, SyncWarm: true, ConfigMatch: true}
	bad := func(mod func(*Conditions)) Conditions { c := ok; mod(&c); return c }
	noQuorum := bad(func(c *Conditions) { c.Quorum = false })
	draining := bad(func(c *Conditions) { c.Draining = true })
	mismatch := bad(func(c *Conditions) { c.ConfigMatch = false })
	cold := bad(func(c *Conditions) { c.SyncWarm = false })
	tests := []struct {
		name  string
		cfg   GateConfig
		steps []Conditions
		want  []bool // open after each step
	}{
		{"rise 2 fall 1", GateConfig{Rise: 2, Fall: 1}, []Conditions{ok, ok, ok, noQuorum, ok, ok}, []bool{false, true, true, false, false, true}},
		{"a failure resets the rise", GateConfig{Rise: 2, Fall: 1}, []Conditions{ok, noQuorum, ok, ok}, []bool{false, false, false, true}},
		{"fall 3 rides out two failures", GateConfig{Rise: 1, Fall: 3}, []Conditions{ok, noQuorum, noQuorum, ok, noQuorum, noQuorum, noQuorum},
			[]bool{true, true, true, true, true, true, false}},
		{"draining closes at once", GateConfig{Rise: 1, Fall: 3}, []Conditions{ok, draining}, []bool{true, false}},
		{"never open while syncing", GateConfig{Rise: 1, Fall: 1}, []Conditions{cold, cold, ok}, []bool{false, false, true}},
		{"config mismatch ignored by default", GateConfig{Rise: 1, Fall: 1}, []Conditions{mismatch}, []bool{true}},
		{"config mismatch closes with require_same_config", GateConfig{Rise: 1, Fall: 1, RequireSameConfig: true},
			[]Conditions{ok, mismatch}, []bool{true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g Gate
			var got []bool
			for _, c := range tt.steps {
				open, _ := g.Step(&tt.cfg, c)
				got = append(got, open)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("open after each step %v, want %v", got, tt.want)
			}
		})
	}
}

// fakeRoutes records the routes in place; failing makes Add and Delete fail.
type fakeRoutes struct {
	in      map[netip.Addr]bool
	failing bool
	calls   int
}

func (f *fakeRoutes) Add(v netip.Addr) error {
	f.calls++
	if f.failing {
		return errors.New("netlink: network is down")
	}
	f.in[v] = true
	return nil
}

func (f *fakeRoutes) Delete(v netip.Addr) error {
	f.calls++
	if f.failing {
		return errors.New("netlink: no such process")
	}
	delete(f.in, v)
	return nil
}

func TestAnnouncer(t *testing.T) {
	r := &fakeRoutes{in: map[netip.Addr]bool{}}
	a, err := NewAnnouncer(GateConfig{Rise: 2, Fall: 1}, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	v1, v2 := netip.MustParseAddr("198.18.100.1"), netip.MustParseAddr("2001:db8:100::1")
	ok := Conditions{DataPath: true, Quorum: true, SyncWarm: true}
	quorum := map[netip.Addr]bool{v1: true, v2: false}
	cond := func(v netip.Addr) Conditions { c := ok; c.Quorum = quorum[v]; return c }
	vips := []netip.Addr{v1, v2}
	a.Step(vips, cond)
	if len(r.in) != 0 || a.Announced() {
		t.Fatal("announced before rise")
	}
	a.Step(vips, cond)
	if !r.in[v1] || r.in[v2] || !a.Announced() {
		t.Fatalf("routes %v, want v1 only", r.in)
	}
	want := []VIPStatus{{VIP: v1, Open: true, Announced: true}, {VIP: v2, Reason: "quorum"}}
	if got := a.Status(); !reflect.DeepEqual(got, want) {
		t.Fatalf("status %+v, want %+v", got, want)
	}
	// A route that cannot be deleted stays counted and is retried.
	r.failing = true
	quorum[v1] = false
	a.Step(vips, cond)
	if !r.in[v1] || a.errors.Load() != 1 {
		t.Fatalf("failed delete: routes %v errors %d", r.in, a.errors.Load())
	}
	r.failing = false
	a.Step(vips, cond)
	if r.in[v1] {
		t.Fatal("delete not retried")
	}
	// A VIP removed from the configuration is withdrawn.
	quorum[v1] = true
	a.Step(vips, cond)
	a.Step(vips, cond)
	if !r.in[v1] {
		t.Fatal("not re-announced")
	}
	a.Step([]netip.Addr{v2}, cond)
	if r.in[v1] || len(a.Status()) != 1 {
		t.Fatalf("removed VIP: routes %v status %+v", r.in, a.Status())
	}
	quorum[v2] = true
	a.Step([]netip.Addr{v2}, cond)
	a.Step([]netip.Addr{v2}, cond)
	if err := a.WithdrawAll(); err != nil || len(r.in) != 0 {
		t.Fatalf("withdraw all: %v, routes %v", err, r.in)
	}
}
