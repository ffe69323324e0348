package ipvs

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestKeyRoundTrip(t *testing.T) {
	for _, k := range []Key{
		AddrKey(TCP, netip.MustParseAddrPort("198.18.0.100:80")),
		AddrKey(UDP, netip.MustParseAddrPort("[2001:db8::1]:53")),
		AddrKey(TCP, netip.MustParseAddrPort("[::ffff:198.18.0.1]:0")),
		MarkKey(1, false),
		MarkKey(4294967295, true),
	} {
		got, err := ParseKey(k.String())
		if err != nil || got != k {
			t.Errorf("ParseKey(%q) = %+v, %v; want %+v", k.String(), got, err, k)
		}
	}
	if k := AddrKey(TCP, netip.MustParseAddrPort("[::ffff:198.18.0.1]:80")); k.IPv6 || !k.Addr.Addr().Is4() {
		t.Errorf("a mapped address is not unmapped: %+v", k)
	}
	for _, bad := range []string{"", "TCP", "FWM 0", "FWM x", "FWM 1 IPv4", "SCTP 1.2.3.4:5", "TCP 1.2.3.4", "TCP 1.2.3.4:80 x"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}

func TestMethod(t *testing.T) {
	for _, m := range []Method{DR, NAT, TUN} {
		got, err := ParseMethod(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMethod(%q) = %v, %v", m, got, err)
		}
		back, ok := MethodFromKernel(m.KernelFlags())
		if !ok || back != m {
			t.Errorf("kernel flags of %v do not round-trip", m)
		}
	}
	if NAT.KernelFlags() != 0 || DR.KernelFlags() != 3 || TUN.KernelFlags() != 2 {
		t.Error("kernel numbering: MASQ 0, TUNNEL 2, DROUTE 3")
	}
	if _, err := ParseMethod("masq"); err == nil {
		t.Error("masq accepted")
	}
	if DR.Listing() != "Route" || NAT.Listing() != "Masq" || TUN.Listing() != "Tunnel" {
		t.Error("listing names")
	}
}

func TestTimeoutsAndMAC(t *testing.T) {
	if s := DefaultTimeouts.String(); s != "900 120 300" {
		t.Errorf("default timeouts %q", s)
	}
	if got, err := ParseTimeouts("1 2 3"); err != nil || got != (Timeouts{time.Second, 2 * time.Second, 3 * time.Second}) {
		t.Errorf("ParseTimeouts = %v, %v", got, err)
	}
	m, err := ParseMAC("02:00:00:00:00:05")
	if err != nil || m.String() != "02:00:00:00:00:05" || MACFrom(m.HardwareAddr()) != m {
		t.Errorf("MAC round trip: %v %v", m, err)
	}
	if _, err := ParseMAC("00:00:00:00:00:00"); err == nil {
		t.Error("zero MAC accepted")
	}
}

// TestParseErrors checks that Parse errors are ErrSyntax (or ErrNotImplemented)
// and read as the user's mistake, without this package's name: config and the
// command line print them as they are.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		err      error
		sentinel error
		msg      string
	}{
		{second(ParseMAC("02:00:00:00:05")), ErrSyntax, `invalid MAC "02:00:00:00:05" (want six bytes like "02:00:00:00:00:05")`},
		{second(ParseMAC("00:00:00:00:00:00")), ErrSyntax, "MAC 00:00:00:00:00:00 is all zeros"},
		{second(ParseMAC("ff:ff:ff:ff:ff:ff")), ErrSyntax, "MAC ff:ff:ff:ff:ff:ff is a multicast or broadcast address; want a unicast one"},
		{second(ParseMethod("masq")), ErrSyntax, `unknown method "masq" (did you mean "nat"?); one of: dr, nat, tun`},
		{second(ParseMethod("fullnat")), ErrNotImplemented, "not implemented: method fullnat (use dr, nat or tun)"},
		{second(ParseProtocol("sctp")), ErrSyntax, `protocol "sctp": one of tcp, udp`},
	} {
		if !errors.Is(tc.err, tc.sentinel) || tc.err.Error() != tc.msg {
			t.Errorf("got %v, want %q wrapping %v", tc.err, tc.msg, tc.sentinel)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func TestNetmask(t *testing.T) {
	for _, tc := range []struct {
		v6   bool
		bits int
		want string
	}{{false, 24, "0.0.0.0/24"}, {false, 0, "0.0.0.0/0"}, {false, -1, "0.0.0.0/32"}, {false, 33, "0.0.0.0/32"}, {true, 64, "::/64"}, {true, -1, "::/128"}} {
		if got := Netmask(tc.v6, tc.bits); got != netip.MustParsePrefix(tc.want) {
			t.Errorf("Netmask(%v, %d) = %s, want %s", tc.v6, tc.bits, got, tc.want)
		}
	}
}

// FuzzParse checks that every parser either refuses its input or returns a value
// whose String form parses back to the same value.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"TCP 198.18.0.1:80", "UDP [2001:db8::1]:53", "FWM 7 IPv6", "900 120 300", "dr", "02:00:00:00:00:05", "FWM", "TCP [::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if k, err := ParseKey(s); err == nil {
			if k2, err := ParseKey(k.String()); err != nil || k2 != k {
				t.Fatalf("key %q → %q → %+v, %v", s, k.String(), k2, err)
			}
		}
		if to, err := ParseTimeouts(s); err == nil {
			if to2, err := ParseTimeouts(to.String()); err != nil || to2 != to {
				t.Fatalf("timeouts %q", s)
			}
		}
		if m, err := ParseMethod(s); err == nil {
			if m2, err := ParseMethod(m.String()); err != nil || m2 != m {
				t.Fatalf("method %q", s)
			}
		}
		if m, err := ParseMAC(s); err == nil {
			if m2, err := ParseMAC(m.String()); err != nil || m2 != m {
				t.Fatalf("mac %q", s)
			}
		}
	})
}
