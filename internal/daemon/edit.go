package daemon

import (
	"errors"
	"net/netip"
	"slices"

	"github.com/gvs-lb/gvs/internal/ipvsadm"
	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/sched"
)

// This file is ipvsadm's edit semantics on the model: what -A -E -D -C -a -e -d do
// to a table, refusing with ipvsadm's message everything the kernel would refuse.
// It moves to internal/ipvsadm (ipvsadm.Edit) as a pure function shared with the
// importer; the daemon then calls that one.

// Errors of commands gvs does not carry out the way ipvsadm's kernel would. They
// exit with 255, as a failed kernel operation does.
func unsupported(msg string) error {
	return &ipvsadm.Error{Msg: "gvs adm: " + msg, Status: ipvsadm.StatusUsage}
}

// errThresholds is the kernel's answer (ERANGE, printed with strerror) to a lower
// threshold above the upper one.
const errThresholds ipvsadm.KernelError = "Numerical result out of range"

// editServices applies one table command to services (a private copy it may
// change) and returns the result.
func editServices(services []ipvs.Service, c *ipvsadm.Command) ([]ipvs.Service, error) {
	if c.Op == ipvsadm.OpClear {
		return services[:0], nil
	}
	if c.Op != ipvsadm.OpAddService && c.Op != ipvsadm.OpEditService && c.Op != ipvsadm.OpDeleteService &&
		c.Op != ipvsadm.OpAddServer && c.Op != ipvsadm.OpEditServer && c.Op != ipvsadm.OpDeleteServer {
		return nil, unsupported(c.Op.String() + " cannot be restored: -R takes -A -E -D -C -a -e -d and --set")
	}
	key := keyOfCommand(&c.Service)
	at := slices.IndexFunc(services, func(s ipvs.Service) bool { return keyOf(&s) == key })
	switch c.Op {
	case ipvsadm.OpAddService:
		if at >= 0 {
			return nil, ipvsadm.ErrServiceExists
		}
		sp, err := serviceOf(&c.Service, nil)
		if err != nil {
			return nil, err
		}
		return append(services, sp), nil
	case ipvsadm.OpEditService:
		if at < 0 {
			return nil, ipvsadm.ErrNoSuchService
		}
		sp, err := serviceOf(&c.Service, &services[at])
		if err != nil {
			return nil, err
		}
		services[at] = sp
		return services, nil
	case ipvsadm.OpDeleteService:
		if at < 0 {
			return nil, ipvsadm.ErrNoSuchService
		}
		return slices.Delete(services, at, at+1), nil
	}

	// Real-server commands.
	if at < 0 {
		return nil, ipvsadm.ErrServiceNotDefined
	}
	sp := &services[at]
	d := &c.Dest
	ri := sp.Find(netip.AddrPortFrom(d.Addr, d.Port))
	switch c.Op {
	case ipvsadm.OpAddServer:
		if ri >= 0 {
			return nil, ipvsadm.ErrDestExists
		}
		rs, err := realServerOf(d)
		if err != nil {
			return nil, err
		}
		sp.RealServers = append(sp.RealServers, rs)
	case ipvsadm.OpEditServer:
		if ri < 0 {
			return nil, ipvsadm.ErrNoSuchDest
		}
		rs, err := realServerOf(d)
		if err != nil {
			return nil, err
		}
		rs.MAC = sp.RealServers[ri].MAC // a pinned MAC stays
		sp.RealServers[ri] = rs
	case ipvsadm.OpDeleteServer:
		if ri < 0 {
			return nil, ipvsadm.ErrNoSuchDest
		}
		sp.RealServers = slices.Delete(sp.RealServers, ri, ri+1)
	}
	if err := checkSchedulerFits(sp); err != nil {
		return nil, err
	}
	return services, nil
}

// keyOf is a service's key in its canonical form (an fwmark service's key has no
// protocol or address), so that services compare by it whatever else they carry.
func keyOf(s *ipvs.Service) ipvs.Key {
	if s.FWMark != 0 {
		return ipvs.MarkKey(s.FWMark, s.IPv6)
	}
	return ipvs.AddrKey(s.Protocol, s.Addr)
}

// keyOfCommand is the key of the service an ipvsadm command names.
func keyOfCommand(s *ipvsadm.Service) ipvs.Key {
	if s.FWMark != 0 {
		return ipvs.MarkKey(s.FWMark, s.IPv6)
	}
	return ipvs.AddrKey(ipvs.Protocol(s.Protocol), netip.AddrPortFrom(s.Addr, s.Port))
}

// serviceOf builds the service of -A (old nil) or -E (old the current one, whose
// real servers and match rules are kept).
func serviceOf(s *ipvsadm.Service, old *ipvs.Service) (ipvs.Service, error) {
	var sp ipvs.Service
	switch s.Protocol {
	case ipvsadm.TCP, ipvsadm.UDP:
	default:
		// The kernel would take SCTP; gvs forwards TCP and UDP only.
		return sp, ipvsadm.ErrNoProtocol
	}
	if s.PE != "" {
		// gvs has no persistence engines (the kernel's is sip).
		return sp, ipvsadm.ErrSchedulerNotFound
	}
	flags, err := sched.ParseFlags(s.Scheduler, s.Flags)
	if err != nil {
		if errors.Is(err, sched.ErrUnknownScheduler) {
			return sp, ipvsadm.ErrSchedulerNotFound
		}
		return sp, ipvsadm.ErrInvalid
	}
	sp = ipvs.Service{Key: keyOfCommand(s), Scheduler: s.Scheduler, Flags: flags, OPS: s.OPS}
	if s.FWMark != 0 {
		sp.Protocol = ipvs.Protocol(s.Protocol) // decides whether -o is allowed
	}
	if s.Persistent {
		sp.Persistence = s.Timeout
	}
	full := 32
	if sp.IPv6 {
		full = 128
	}
	bits := s.Netmask
	if bits <= 0 || bits > full {
		bits = full
	}
	sp.Netmask = netip.PrefixFrom(maskBase(sp.IPv6), bits)
	if old != nil {
		sp.RealServers = old.RealServers
		sp.Match = old.Match
		if s.FWMark != 0 {
			sp.Protocol = old.Protocol // ipvsadm sends TCP for every fwmark service
		}
		if sp.Scheduler == "mh" && old.Scheduler == "mh" {
			sp.MHTableSize = old.MHTableSize
		}
	}
	if err := checkSchedulerFits(&sp); err != nil {
		return sp, err
	}
	return sp, nil
}

func maskBase(v6 bool) netip.Addr {
	if v6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// checkSchedulerFits refuses a service whose scheduler cannot take its real
// servers (mh's table), as the kernel refuses to add one more.
func checkSchedulerFits(sp *ipvs.Service) error {
	s, err := sched.New(sp.Scheduler, sched.Options{Flags: sp.Flags, MHTableSize: sp.MHTableSize})
	if err != nil {
		return ipvsadm.ErrSchedulerNotFound
	}
	if sz, ok := s.(sched.Sizer); ok && len(sp.RealServers) > sz.MaxDests() {
		return ipvsadm.ErrNoMemory
	}
	return nil
}

func realServerOf(d *ipvsadm.Dest) (ipvs.RealServer, error) {
	rs := ipvs.RealServer{
		Addr:           netip.AddrPortFrom(d.Addr.Unmap(), d.Port),
		Weight:         int32(d.Weight),
		UpperThreshold: d.UThreshold,
		LowerThreshold: d.LThreshold,
	}
	switch d.Method {
	case ipvsadm.MethodRoute, ipvsadm.MethodLocal:
		rs.Method = ipvs.DR
	case ipvsadm.MethodMasq:
		rs.Method = ipvs.NAT
	case ipvsadm.MethodTunnel:
		if d.TunnelType != ipvsadm.TunnelIPIP {
			return rs, unsupported("--tun-type " + d.TunnelType.String() + " is not supported: gvs tunnels with IP-in-IP only")
		}
		rs.Method = ipvs.TUN
	default:
		return rs, ipvsadm.ErrInvalid
	}
	if rs.UpperThreshold != 0 && rs.LowerThreshold > rs.UpperThreshold {
		return rs, errThresholds
	}
	return rs, nil
}

// cloneServices returns a deep copy of services: nothing in it shares memory with
// the original.
func cloneServices(services []ipvs.Service) []ipvs.Service {
	out := make([]ipvs.Service, len(services))
	for i := range services {
		out[i] = services[i]
		out[i].Match = slices.Clone(services[i].Match)
		out[i].RealServers = slices.Clone(services[i].RealServers)
	}
	return out
}
