package vrrp

import (
	"errors"
	"net"
)

// Transport sends and receives VRRP adverts on one interface, for one address
// family and one mode (multicast, or unicast from unicast_src_ip). Several instances
// may share one Transport: a Runner demultiplexes what it receives by VRID.
//
// Send and Receive may be called concurrently with each other; Close wakes a blocked
// Receive, which then returns ErrClosed.
type Transport interface {
	// Send puts p.Advert on the wire from p.Src to p.Dst (the multicast group or a
	// unicast peer) with TTL/hop limit 255 and TOS 0xc0. The other header fields of p
	// are ignored.
	Send(p *Packet) error
	// Receive blocks for the next VRRP packet and decodes it into p, filling Src,
	// Dst and HopLimit from the IP header or its ancillary data. A packet that does
	// not decode returns its Reason (see Reason), unwrapped; the caller counts it
	// and calls Receive again.
	Receive(p *Packet) error
	// Close releases the sockets and wakes a blocked Receive.
	Close() error
}

// ErrUnsupported is returned by OpenTransport where raw VRRP sockets are not
// implemented (anywhere but Linux).
var ErrUnsupported = errors.New("vrrp: raw sockets are only implemented on Linux")

// ErrClosed is returned by Transport.Receive and Transport.Send after Close.
var ErrClosed = net.ErrClosed

// TransportConfig says where a Transport sends and listens.
type TransportConfig struct {
	// Interface is the device to bind to (SO_BINDTODEVICE) and to join the group on.
	Interface string
	// IPv6 selects IPv4 (224.0.0.18) or IPv6 (ff02::12).
	IPv6 bool
	// Unicast, when true, skips joining the multicast group: the instances using
	// the transport send to their unicast peers only. The socket still receives
	// multicast adverts the kernel delivers anyway; Config.Check rejects them.
	Unicast bool
}

// errAddrs is returned by Send for a packet without a valid source or destination.
var errAddrs = errors.New("vrrp: send: source and destination must be valid addresses of the transport's family")

func validSend(p *Packet, ipv6 bool) error {
	if !p.Src.IsValid() || !p.Dst.IsValid() || p.Src.Is6() != ipv6 || p.Dst.Is6() != ipv6 {
		return errAddrs
	}
	return nil
}
