package ipvsadm

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
)

// Resolver names addresses and ports in listings made without -n, where
// ipvsadm calls gethostbyaddr and getservbyport. A nil Resolver, or a lookup
// that reports false, prints the number, as ipvsadm does when a lookup fails.
type Resolver interface {
	// HostName returns the canonical name of addr.
	HostName(addr netip.Addr) (name string, ok bool)
	// ServiceName returns the service name of port for proto (TCP, UDP or
	// SCTP; ipvsadm looks up nothing for other protocols).
	ServiceName(port uint16, proto Protocol) (name string, ok bool)
}

// Lookup resolves names given on the command line (-t www:http, -r host), where
// ipvsadm calls gethostbyname and getservbyname. A nil Lookup accepts numbers
// only.
type Lookup interface {
	// HostAddr returns the IPv4 address of name (gethostbyname returns IPv4
	// only, so IPv6 services must be given as numbers).
	HostAddr(name string) (netip.Addr, bool)
	// ServicePort returns the port of the service name for proto.
	ServicePort(name string, proto Protocol) (uint16, bool)
}

// Names is a static table of host and service names, in the shape of
// /etc/hosts and /etc/services. It implements both Resolver and Lookup, so that
// tests, and a CLI that reads those files, name things deterministically. The
// first matching entry wins, as in the files. The zero value knows no names.
// A Names is not safe for concurrent modification.
type Names struct {
	Hosts    []HostEntry
	Services []ServiceEntry
}

// HostEntry is one line of /etc/hosts: the first name is the canonical one.
type HostEntry struct {
	Addr  netip.Addr
	Names []string
}

// ServiceEntry is one line of /etc/services.
type ServiceEntry struct {
	Name     string
	Port     uint16
	Protocol Protocol
	Aliases  []string
}

var (
	_ Resolver = (*Names)(nil)
	_ Lookup   = (*Names)(nil)
)

// HostName implements Resolver.
func (n *Names) HostName(addr netip.Addr) (string, bool) {
	for _, h := range n.Hosts {
		if h.Addr == addr && len(h.Names) > 0 {
			return h.Names[0], true
		}
	}
	return "", false
}

// ServiceName implements Resolver.
func (n *Names) ServiceName(port uint16, proto Protocol) (string, bool) {
	for _, s := range n.Services {
		if s.Port == port && s.Protocol == proto {
			return s.Name, true
		}
	}
	return "", false
}

// HostAddr implements Lookup. Only IPv4 entries match, as gethostbyname.
func (n *Names) HostAddr(name string) (netip.Addr, bool) {
	for _, h := range n.Hosts {
		if !h.Addr.Is4() {
			continue
		}
		for _, hn := range h.Names {
			if strings.EqualFold(hn, name) {
				return h.Addr, true
			}
		}
	}
	return netip.Addr{}, false
}

// ServicePort implements Lookup; aliases match too.
func (n *Names) ServicePort(name string, proto Protocol) (uint16, bool) {
	for _, s := range n.Services {
		if s.Protocol != proto {
			continue
		}
		if s.Name == name {
			return s.Port, true
		}
		for _, a := range s.Aliases {
			if a == name {
				return s.Port, true
			}
		}
	}
	return 0, false
}

// ReadServices appends the entries of an /etc/services file to n.Services.
// Lines it cannot read are skipped, as getservent skips them.
func (n *Names) ReadServices(r io.Reader) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		portStr, protoStr, ok := strings.Cut(f[1], "/")
		if !ok {
			continue
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			continue
		}
		var proto Protocol
		switch protoStr {
		case "tcp":
			proto = TCP
		case "udp":
			proto = UDP
		case "sctp":
			proto = SCTP
		default:
			continue
		}
		n.Services = append(n.Services, ServiceEntry{Name: f[0], Port: uint16(port), Protocol: proto, Aliases: f[2:]})
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("ipvsadm: read services: %w", err)
	}
	return nil
}

// ReadHosts appends the entries of an /etc/hosts file to n.Hosts.
// Lines it cannot read are skipped.
func (n *Names) ReadHosts(r io.Reader) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		addr, err := netip.ParseAddr(f[0])
		if err != nil || addr.Zone() != "" {
			continue
		}
		n.Hosts = append(n.Hosts, HostEntry{Addr: addr, Names: f[1:]})
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("ipvsadm: read hosts: %w", err)
	}
	return nil
}
