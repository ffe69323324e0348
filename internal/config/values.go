package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gvs-lb/gvs/ipvs"
)

// mac reads an Ethernet unicast address.
func (t *table) mac(k string, dst *ipvs.MAC) bool {
	var s string
	if !t.str(k, &s) {
		return false
	}
	m, err := ipvs.ParseMAC(s)
	if err != nil {
		t.fail(k, err)
		return false
	}
	*dst = m
	return true
}

// addr reads an IP address and applies check to it.
func (t *table) addr(k string, check func(netip.Addr) error, dst *netip.Addr) bool {
	var s string
	if !t.str(k, &s) {
		return false
	}
	a, err := parseAddr(s)
	if err == nil {
		err = check(a)
	}
	if err != nil {
		t.fail(k, err)
		return false
	}
	*dst = a
	return true
}

// parseAddr parses an IP address without zone or brackets; IPv4-mapped IPv6
// addresses become IPv4.
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		if strings.Contains(s, "/") {
			return netip.Addr{}, fmt.Errorf("invalid address %q: write the address alone, without a prefix length", s)
		}
		return netip.Addr{}, fmt.Errorf("invalid address %q", s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("invalid address %q: zones are not supported", s)
	}
	return a.Unmap(), nil
}

// parseHostPort parses "198.18.0.5:80", "[2001:db8::5]:80", "198.18.0.5",
// "2001:db8::5" or "[2001:db8::5]".
func parseHostPort(s string) (a netip.Addr, port uint16, hasPort bool, err error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Addr().Zone() != "" {
			return a, 0, false, fmt.Errorf("invalid address %q: zones are not supported", s)
		}
		return ap.Addr().Unmap(), ap.Port(), true, nil
	}
	a, err = parseAddr(s)
	if err != nil {
		return a, 0, false, fmt.Errorf("invalid address %q (want \"198.18.0.100:80\" or \"[2001:db8::100]:80\")", s)
	}
	return a, 0, false, nil
}

// unicast rejects addresses that cannot be a VIP, a real server or a peer.
func unicast(a netip.Addr) error {
	switch {
	case a.IsUnspecified():
		return fmt.Errorf("%s is the unspecified address", a)
	case a.IsMulticast():
		return fmt.Errorf("%s is a multicast address", a)
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("%s is the broadcast address", a)
	case a.IsLoopback():
		return fmt.Errorf("%s is a loopback address (gvs does not deliver locally)", a)
	}
	return nil
}

// familyOf returns a's family (a is never 4-in-6: parseAddr unmaps).
func familyOf(a netip.Addr) Family {
	if a.Is4() {
		return FamilyInet
	}
	return FamilyInet6
}

func parseFamily(s string) (Family, error) {
	f, err := oneOf("family", s, "inet", "inet6")
	if err != nil {
		return 0, err
	}
	if f == "inet6" {
		return FamilyInet6, nil
	}
	return FamilyInet, nil
}

func joinInts(s []int) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, " ")
}
