package vrrp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// ErrInvalidConfig is wrapped by the errors Config.Validate, NewInstance and NewGroup
// return.
var ErrInvalidConfig = errors.New("invalid configuration")

// MaxPreemptDelay is keepalived's upper bound for preempt_delay.
const MaxPreemptDelay = 1000 * time.Second

// Config is one virtual router's configuration, keepalived's vrrp_instance under
// keepalived's names. The zero value is not valid: VRID, Version, Priority, Interval
// and Src must be set. A Config is read-only once an Instance has been built from it
// (NewInstance copies it).
type Config struct {
	// VRID is virtual_router_id, 1–255.
	VRID uint8
	// Version is 2 or 3. keepalived's default is 2 (vrrp_version); IPv6 needs 3.
	Version Version
	// Priority is 1–254, or PriorityOwner (255) for the address owner, which goes to
	// Master at once on start (RFC 5798 §6.4.1). keepalived's default is 100.
	Priority uint8
	// Interval is advert_int, Advertisement_Interval: whole seconds from 1 s to 255 s
	// in v2, centiseconds from 10 ms to 40.95 s in v3.
	Interval time.Duration
	// Src is the address adverts are sent from: the interface's primary IPv4 address
	// or IPv6 link-local address, or unicast_src_ip. It breaks ties between equal
	// priorities and sets the instance's address family.
	Src netip.Addr
	// Addrs are the VIPs (virtual_ipaddress), in advert order, of Src's family and
	// without duplicates. keepalived allows an instance without VIPs.
	Addrs []netip.Addr
	// AuthType and AuthData are v2 authentication: AuthNone, or AuthPassword with the
	// password zero-padded to 8 bytes (keepalived uses the first 8 characters of
	// auth_pass). Version 3 has no authentication.
	AuthType AuthType
	AuthData [authLen]byte
	// NoPreempt (nopreempt) keeps a higher-priority backup from taking over from a
	// lower-priority master. Not allowed with priority 255.
	NoPreempt bool
	// PreemptDelay (preempt_delay, 0–1000 s) is how long a backup keeps accepting a
	// lower-priority master after first hearing it, before it preempts.
	PreemptDelay time.Duration
	// Peers (unicast_peer) switch the instance to unicast: adverts go to each peer
	// and the TTL check is skipped, as in keepalived. Empty means multicast.
	Peers []netip.Addr
	// CheckUnicastSrc (check_unicast_src) drops unicast adverts whose source is not a
	// peer.
	CheckUnicastSrc bool
	// LowerPrioNoAdvert (lower_prio_no_advert) makes a master ignore a lower-priority
	// advert as the RFC says. keepalived's default, kept here, is to re-advertise at
	// once (docs/vrrp.md §2.7).
	LowerPrioNoAdvert bool
	// HigherPrioSendAdvert (higher_prio_send_advert) makes a master send one advert
	// before it yields to a higher priority.
	HigherPrioSendAdvert bool
}

// Validate checks c. Errors wrap ErrInvalidConfig.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("vrrp: config: %w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	if c.VRID == 0 {
		return bad("virtual_router_id must be 1–255")
	}
	if c.Priority == 0 {
		return bad("priority must be 1–255")
	}
	if !c.Src.IsValid() || (!c.Src.Is4() && !c.Src.Is6()) {
		return bad("source address %v is not valid", c.Src)
	}
	is6 := c.Src.Is6()
	switch c.Version {
	case Version2:
		if is6 {
			return bad("VRRPv2 is IPv4 only")
		}
		if c.Interval < time.Second || c.Interval > maxIntervalV2 || c.Interval%time.Second != 0 {
			return bad("v2 advert_int %v must be 1–255 whole seconds", c.Interval)
		}
		if c.AuthType != AuthNone && c.AuthType != AuthPassword {
			return bad("auth type %d not supported (none or PASS)", c.AuthType)
		}
		if c.AuthType == AuthNone && c.AuthData != [authLen]byte{} {
			return bad("auth data without auth type")
		}
	case Version3:
		if c.Interval < centisecond || c.Interval > maxIntervalV3 || c.Interval%centisecond != 0 {
			return bad("v3 advert_int %v must be 10ms–40.95s in whole centiseconds", c.Interval)
		}
		if c.AuthType != AuthNone || c.AuthData != [authLen]byte{} {
			return bad("VRRPv3 has no authentication")
		}
	default:
		return bad("version %d, want 2 or 3", c.Version)
	}
	if len(c.Addrs) > MaxAddrs {
		return bad("%d virtual addresses, at most %d", len(c.Addrs), MaxAddrs)
	}
	for i, ip := range c.Addrs {
		if !ip.IsValid() || ip.Is6() != is6 || ip.Zone() != "" {
			return bad("virtual address %v is not of the source's family", ip)
		}
		if slices.Contains(c.Addrs[:i], ip) {
			return bad("virtual address %v listed twice", ip)
		}
	}
	if c.NoPreempt && c.Priority == PriorityOwner {
		return bad("nopreempt is incompatible with priority 255")
	}
	if c.PreemptDelay < 0 || c.PreemptDelay > MaxPreemptDelay {
		return bad("preempt_delay %v must be 0–1000s", c.PreemptDelay)
	}
	for _, ip := range c.Peers {
		if !ip.IsValid() || ip.Is6() != is6 || ip.IsMulticast() {
			return bad("unicast peer %v must be a unicast address of the source's family", ip)
		}
	}
	return nil
}

// Advert returns the advert c sends with the given priority (PriorityStop on
// shutdown). Its Addrs alias c.Addrs and must not be modified.
func (c *Config) Advert(priority uint8) Advert {
	a := Advert{
		Version:  c.Version,
		VRID:     c.VRID,
		Priority: priority,
		Interval: c.Interval,
		Addrs:    c.Addrs,
	}
	if c.Version == Version2 {
		a.AuthType, a.AuthData = c.AuthType, c.AuthData
	}
	return a
}

// Check applies the receive checks that need the configuration to a decoded packet,
// in keepalived's order (vrrp_check_packet, docs/vrrp.md §2.5): family, TTL (multicast
// only), version, VRID, v2 auth type, password and interval (a v3 interval of 0 is
// refused), VIP count, multicast versus unicast destination, every configured VIP
// present (in any order), and with CheckUnicastSrc the source among the peers.
//
// As keepalived, and unlike RFC 5798 §7.1, a VIP mismatch drops the packet even from
// an address owner. The error is a Reason, unwrapped; Check allocates nothing.
func (c *Config) Check(p *Packet) error {
	a := &p.Advert
	is6 := c.Src.Is6()
	if p.Src.Is6() != is6 || p.Dst.Is6() != is6 {
		return ErrFamily
	}
	unicast := len(c.Peers) > 0
	// keepalived skips the TTL check for unicast (docs/vrrp.md §2.3).
	if !unicast && p.HopLimit != HopLimit {
		return ErrTTL
	}
	if a.Version != c.Version {
		return ErrVersionMismatch
	}
	if a.VRID != c.VRID {
		return ErrVRID
	}
	if c.Version == Version2 {
		if a.AuthType != c.AuthType {
			return ErrAuthType
		}
		if c.AuthType == AuthPassword && a.AuthData != c.AuthData {
			return ErrAuthData
		}
		// RFC 3768 §7.1: all routers must share the interval; keepalived drops a
		// mismatch (which ends in split brain, docs/vrrp.md §3.6).
		if a.Interval != c.Interval {
			return ErrInterval
		}
	} else if a.Interval == 0 {
		return ErrInterval
	}
	if len(a.Addrs) != len(c.Addrs) {
		return ErrAddrCount
	}
	if p.Dst.IsMulticast() == unicast {
		return ErrDestination
	}
	for _, ip := range c.Addrs {
		if !slices.Contains(a.Addrs, ip) {
			return ErrAddrMissing
		}
	}
	if unicast && c.CheckUnicastSrc && !containsUnzoned(c.Peers, p.Src) {
		return ErrUnicastSource
	}
	return nil
}

// containsUnzoned reports whether list holds ip, ignoring IPv6 zones.
func containsUnzoned(list []netip.Addr, ip netip.Addr) bool {
	ip = ip.WithZone("")
	for _, x := range list {
		if x.WithZone("") == ip {
			return true
		}
	}
	return false
}
