package ipvsadm

import (
	"net/netip"
	"slices"

	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/sched"
)

// ServiceOf returns the model's service as ipvsadm shows it, for -L and -S: its
// settings and its real servers in the kernel's order (the newest first, the
// reverse of s.RealServers), without counters; the caller adds those. It is the
// inverse of Edit: the lines FormatSave writes for it, restored with Edit on an
// empty table, give s back, in ipvsadm-save's sorted order and without what
// ipvsadm -S does not carry (thresholds, MACs).
func ServiceOf(s *ipvs.Service) Service {
	out := Service{
		Protocol:  Protocol(s.Protocol),
		Addr:      s.Addr.Addr(),
		Port:      s.Addr.Port(),
		FWMark:    s.FWMark,
		IPv6:      s.IPv6,
		Scheduler: s.Scheduler,
		Flags:     sched.FlagNames(s.Scheduler, s.Flags),
		OPS:       s.OPS,
	}
	if s.IsMark() {
		out.Protocol = TCP // what ipvsadm sends for every fwmark service
		out.Addr, out.Port = netip.Addr{}, 0
		out.Match = slices.Clone(s.Match)
	}
	if s.Persistence > 0 {
		out.Persistent, out.Timeout = true, s.Persistence
	}
	out.Netmask = NetmaskOf(s.Netmask, s.Addr.Addr().Is6() || s.IPv6)
	for i := len(s.RealServers) - 1; i >= 0; i-- {
		r := &s.RealServers[i]
		out.Dests = append(out.Dests, Dest{
			Addr:       r.Addr.Addr(),
			Port:       r.Addr.Port(),
			Method:     methodOf(r.Method),
			Weight:     int(r.Weight),
			UThreshold: r.UpperThreshold,
			LThreshold: r.LowerThreshold,
		})
	}
	return out
}

// NetmaskOf returns Service.Netmask for a model's persistence granularity
// (ipvs.Service.Netmask) in a family: 0 for the whole address (or an invalid
// prefix), NetmaskAll for /0 in IPv4, the prefix length otherwise.
func NetmaskOf(p netip.Prefix, ipv6 bool) int {
	full := 32
	if ipv6 {
		full = 128
	}
	switch {
	case !p.IsValid() || p.Bits() >= full:
		return 0
	case p.Bits() == 0 && !ipv6:
		return NetmaskAll
	case p.Bits() == 0:
		return 0
	}
	return p.Bits()
}

// methodOf returns ipvsadm's name of a forwarding method; a method ipvsadm has no
// name for (Bypass, unset) lists as "(null)", as ipvsadm prints it.
func methodOf(m ipvs.Method) Method {
	switch m {
	case ipvs.DR:
		return MethodRoute
	case ipvs.NAT:
		return MethodMasq
	case ipvs.TUN:
		return MethodTunnel
	case ipvs.Local:
		return MethodLocal
	}
	return 0
}
