package dataplane

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/gvs-lb/gvs/ipvs"
)

// TestServiceRoomPointers: a service made with its pool (serviceRoom) holds no
// more pointer words for the collector than counted here; each is followed at
// every cycle for each of 10,000 services. The real servers a service keeps
// (appliedServer) and its pool's dests (sched.Dest) hold none: both had a
// netip.Addr's, which is a pointer (15 words before, 13 after). Two more since: the
// pool's view of a scheduler without state (sched.Pool.view, and the list of its
// first view, kept in the pool), which new connections schedule from without the
// pool's lock.
func TestServiceRoomPointers(t *testing.T) {
	if n := pointerWords(reflect.TypeFor[appliedServer]()); n != 0 {
		t.Errorf("appliedServer: %d pointer words", n)
	}
	const budget = 15
	if n := pointerWords(reflect.TypeFor[serviceRoom]()); n > budget {
		t.Errorf("serviceRoom: %d pointer words, more than %d", n, budget)
	}
}

// pointerWords returns the number of words of a value of t that hold pointers.
func pointerWords(t reflect.Type) int {
	switch t.Kind() {
	case reflect.Pointer, reflect.UnsafePointer, reflect.Map, reflect.Chan, reflect.Func,
		reflect.String, reflect.Slice:
		return 1
	case reflect.Interface:
		return 2
	case reflect.Array:
		return t.Len() * pointerWords(t.Elem())
	case reflect.Struct:
		n := 0
		for i := range t.NumField() {
			n += pointerWords(t.Field(i).Type)
		}
		return n
	}
	return 0
}

// TestAppliedServersRoundTrip: services of IPv4 and IPv6 real servers, one or
// several, with weights, thresholds and methods, are given back as applied
// (appliedServer keeps each without a netip.Addr), and applied again they stay
// the same services (sameService compares them so).
func TestAppliedServersRoundTrip(t *testing.T) {
	d, err := New(testOptions())
	if err != nil {
		t.Fatal(err)
	}
	rs := func(a string, port uint16, w int32, up, lo uint32, m ipvs.Method) ipvs.RealServer {
		return ipvs.RealServer{Addr: netip.AddrPortFrom(netip.MustParseAddr(a), port), Weight: w, UpperThreshold: up, LowerThreshold: lo, Method: m}
	}
	svc := func(vip string, rss ...ipvs.RealServer) ipvs.Service {
		a := netip.MustParseAddr(vip)
		return ipvs.Service{Key: ipvs.Key{Protocol: ipvs.TCP, IPv6: a.Is6(), Addr: netip.AddrPortFrom(a, 80)}, Scheduler: "wlc", RealServers: rss}
	}
	specs := []ipvs.Service{
		svc("198.19.0.1", rs("198.18.0.10", 8080, 3, 100, 50, ipvs.NAT)),
		svc("198.19.0.2", rs("198.18.0.11", 80, 1, 0, 0, ipvs.DR), rs("198.18.0.12", 0, 0, 7, 0, ipvs.TUN)),
		svc("2001:db8::1", rs("2001:db8::10", 80, 2, 0, 0, ipvs.DR)),
		svc("2001:db8::2", rs("2001:db8::11", 443, 5, 9, 4, ipvs.NAT), rs("2001:db8::c612:a", 80, 1, 0, 0, ipvs.DR)),
		svc("198.19.0.3"),
	}
	if err := d.Apply(specs); err != nil {
		t.Fatal(err)
	}
	byKey := func() map[ipvs.Key]ipvs.Service {
		m := map[ipvs.Key]ipvs.Service{}
		for _, s := range d.specList() {
			m[s.Key] = s
		}
		return m
	}
	got := byKey()
	for _, want := range specs {
		g, ok := got[want.Key]
		if !ok || !slices.Equal(g.RealServers, want.RealServers) || (g.RealServers == nil) != (want.RealServers == nil) {
			t.Errorf("%s: real servers %v, want %v", want.Key.Addr, g.RealServers, want.RealServers)
		}
	}
	was := map[ipvs.Key]*service{}
	for _, s := range d.snap.Load().serviceList() {
		was[s.spec.Key] = s
	}
	if err := d.Apply(slices.Clone(specs)); err != nil {
		t.Fatal(err)
	}
	for _, s := range d.snap.Load().serviceList() {
		if was[s.spec.Key] != s {
			t.Errorf("%s: applied again, a new service", s.spec.Key.Addr)
		}
	}
}
