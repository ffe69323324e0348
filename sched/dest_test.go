package sched

import (
	"net/netip"
	"reflect"
	"testing"
)

// TestDestHoldsNoPointer: a Dest has no pointer for the collector to follow (it
// was a netip.Addr's, one per service of the Director), and gives back the address
// it was made with, found under it by its pool.
func TestDestHoldsNoPointer(t *testing.T) {
	if hasPointer(reflect.TypeFor[Dest]()) {
		t.Fatal("Dest holds a pointer")
	}
	for _, tc := range []struct{ in, want string }{
		{"198.18.0.1", "198.18.0.1"},
		{"::ffff:198.18.0.2", "198.18.0.2"},
		{"2001:db8::1", "2001:db8::1"},
		{"::c612:3", "::c612:3"}, // IPv6, its last 4 bytes an IPv4 address's
		{"::", "::"},
		{"0.0.0.0", "0.0.0.0"},
	} {
		in := netip.MustParseAddr(tc.in)
		d := NewDest(1, in, 80, 1, 0, 0)
		if got := d.Addr(); got != netip.MustParseAddr(tc.want) {
			t.Errorf("NewDest(%s).Addr() = %s, want %s", tc.in, got, tc.want)
		}
		p := NewPool(nil)
		if err := p.Add(d); err != nil {
			t.Fatal(err)
		}
		if p.Find(in, 80) != d || p.Find(netip.MustParseAddr(tc.want), 80) != d {
			t.Errorf("%s: not found under its address", tc.in)
		}
		if p.Find(in, 81) != nil {
			t.Errorf("%s: found under another port", tc.in)
		}
	}
	// The same 4 bytes as IPv4 and at the head of an IPv6 address are two dests.
	p := NewPool(nil)
	d4 := NewDest(1, netip.MustParseAddr("198.18.0.3"), 80, 1, 0, 0)
	if err := p.Add(d4); err != nil {
		t.Fatal(err)
	}
	if got := p.Find(netip.MustParseAddr("c612:3::"), 80); got != nil {
		t.Errorf("c612:3:: found as %s", got.Addr())
	}
}

func hasPointer(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.UnsafePointer, reflect.Map, reflect.Chan, reflect.Func,
		reflect.Interface, reflect.Slice, reflect.String:
		return true
	case reflect.Array:
		return t.Len() > 0 && hasPointer(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if hasPointer(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}
