package kaddr

import (
	"errors"
	"net/netip"
	"testing"
)

func TestParseScope(t *testing.T) {
	for in, want := range map[string]Scope{"global": ScopeGlobal, "site": ScopeSite, "link": ScopeLink, "host": ScopeHost,
		"nowhere": ScopeNowhere, "0": 0, "17": 17, "255": 255} {
		got, err := ParseScope(in)
		if err != nil || got != want {
			t.Errorf("ParseScope(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, _ := ParseScope(got.String()); back != got {
			t.Errorf("%v does not round-trip through String", got)
		}
	}
	for _, in := range []string{"", "universe", "256", "-1"} {
		if _, err := ParseScope(in); err == nil {
			t.Errorf("ParseScope(%q) accepted", in)
		}
	}
}

// TestFake: the fake follows the kernel's rules (TestNetlinkAddDeleteList checks
// the same sequence against the kernel).
func TestFake(t *testing.T) {
	var f Fake
	a := Addr{Prefix: netip.MustParsePrefix("198.18.0.100/24"), Index: 2, Label: "eth0:1"}
	if err := f.Add(a); err != nil {
		t.Fatal(err)
	}
	if err := f.Add(a); !errors.Is(err, ErrExists) {
		t.Fatalf("second add: %v", err)
	}
	if l, _ := f.List(); len(l) != 1 || l[0] != a {
		t.Fatalf("list %v", l)
	}
	if err := f.Delete(a); err != nil {
		t.Fatal(err)
	}
	if err := f.Delete(a); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	f.Fail = errors.New("boom")
	if err := f.Add(a); err == nil {
		t.Fatal("Fail ignored")
	}
}
