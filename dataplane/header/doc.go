// Package header is gvs's byte layer, the only code that reads or writes frame bytes:
// views of the Ethernet/802.1Q, ARP, IPv4, IPv6 (extension headers included), TCP,
// UDP and ICMP/ICMPv6 headers in the style of gVisor's header package (named byte
// slices, offset constants under the RFC's diagram, setters that update checksums
// incrementally, RFC 1624), the Internet checksum, Parsed.Decode and its drop reasons,
// the in-place rewrites of IPVS's forwarding methods (DR, NAT), IPIP encapsulation,
// and the builders of the frames the director originates (ICMP errors, ARP replies,
// neighbour advertisements).
//
// The package knows nothing of services, connections or links: the Director in
// package dataplane decides what to do with a frame, this package does it to the
// bytes.
//
// Performance contract: Decode, the rewrites, Encapsulate and the builders allocate
// nothing, make no system calls and take no locks; they work in place on the caller's
// buffers. Malformed input is a Drop reason, never an error or a panic.
package header
