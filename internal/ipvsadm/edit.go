package ipvsadm

import (
	"errors"
	"net/netip"
	"slices"

	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/sched"
)

// UnsupportedError is a table command that ipvsadm's kernel would carry out but gvs
// does not (a GUE or GRE tunnel, a listing inside a restore stream). It exits with
// StatusUsage, as a failed kernel operation does. Msg names the command and why;
// gvs adm prints it as "gvs adm: " + Msg, an importer as a note.
type UnsupportedError struct{ Msg string }

func (e *UnsupportedError) Error() string { return e.Msg }

// ErrThresholds is the kernel's answer (ERANGE, printed with strerror) to -x/-y
// with a lower threshold above a non-zero upper one.
const ErrThresholds KernelError = "Numerical result out of range"

// Edit applies one table command (-A -E -D -C -a -e -d) to services and returns
// the result, as the kernel applies it to its table: a service is found by its key
// (protocol, address and port, or fwmark and family), a real server by address and
// port, -E and -e replace every setting of what they name (Parse filled in
// ipvsadm's defaults), and a new real server goes to the end of its service's list
// (the order it was added in; see ipvs.Service).
//
// Everything the kernel would refuse is refused, with the KernelError ipvsadm
// prints (ErrServiceExists, ErrNoSuchDest, ErrSchedulerNotFound, ErrThresholds …),
// and what gvs does not do with an *UnsupportedError, so that a caller can apply
// the result whole. On error services is returned unchanged. Edit never modifies
// services or anything it shares: the result shares the services it did not touch.
//
// Edit is pure: it resolves no MAC (a new real server has none; -e keeps the one
// it had) and keeps no match rules of its own (a new fwmark service has none; -E
// keeps them). --set and the other commands are the caller's to carry out.
func Edit(services []ipvs.Service, c *Command) ([]ipvs.Service, error) {
	switch c.Op {
	case OpClear:
		return []ipvs.Service{}, nil
	case OpAddService, OpEditService, OpDeleteService, OpAddServer, OpEditServer, OpDeleteServer:
	default:
		return services, &UnsupportedError{Msg: c.Op.String() + " cannot be restored: -R takes -A -E -D -C -a -e -d and --set"}
	}
	key := keyOf(&c.Service)
	at := slices.IndexFunc(services, func(s ipvs.Service) bool { return s.Key == key })
	switch c.Op {
	case OpAddService:
		if at >= 0 {
			return services, ErrServiceExists
		}
		s, err := serviceOf(key, &c.Service, nil)
		if err != nil {
			return services, err
		}
		return append(slices.Clip(services), s), nil
	case OpEditService:
		if at < 0 {
			return services, ErrNoSuchService
		}
		s, err := serviceOf(key, &c.Service, &services[at])
		if err != nil {
			return services, err
		}
		out := slices.Clone(services)
		out[at] = s
		return out, nil
	case OpDeleteService:
		if at < 0 {
			return services, ErrNoSuchService
		}
		return slices.Delete(slices.Clone(services), at, at+1), nil
	}

	// Real-server commands.
	if at < 0 {
		return services, ErrServiceNotDefined
	}
	s := services[at]
	d := &c.Dest
	ap := netip.AddrPortFrom(d.Addr.Unmap(), d.Port)
	ri := s.Find(ap)
	switch c.Op {
	case OpAddServer:
		if ri >= 0 {
			return services, ErrDestExists
		}
		rs, err := realServerOf(ap, d)
		if err != nil {
			return services, err
		}
		s.RealServers = append(slices.Clip(s.RealServers), rs)
	case OpEditServer:
		if ri < 0 {
			return services, ErrNoSuchDest
		}
		rs, err := realServerOf(ap, d)
		if err != nil {
			return services, err
		}
		rs.MAC = s.RealServers[ri].MAC
		s.RealServers = slices.Clone(s.RealServers)
		s.RealServers[ri] = rs
	case OpDeleteServer:
		if ri < 0 {
			return services, ErrNoSuchDest
		}
		s.RealServers = slices.Delete(slices.Clone(s.RealServers), ri, ri+1)
	}
	if err := checkSchedulerFits(&s); err != nil {
		return services, err
	}
	out := slices.Clone(services)
	out[at] = s
	return out, nil
}

// keyOf returns the key of the service a command names.
func keyOf(s *Service) ipvs.Key {
	if s.FWMark != 0 {
		return ipvs.MarkKey(s.FWMark, s.IPv6)
	}
	return ipvs.AddrKey(ipvs.Protocol(s.Protocol), netip.AddrPortFrom(s.Addr, s.Port))
}

// serviceOf builds the service of -A (old nil) or -E (old the current one, whose
// real servers and match rules are kept).
func serviceOf(key ipvs.Key, s *Service, old *ipvs.Service) (ipvs.Service, error) {
	switch s.Protocol {
	case TCP, UDP:
	default:
		// The kernel would take SCTP; gvs forwards TCP and UDP only.
		return ipvs.Service{}, ErrNoProtocol
	}
	if s.PE != "" {
		// gvs has no persistence engines (the kernel's is sip).
		return ipvs.Service{}, ErrSchedulerNotFound
	}
	flags, err := sched.ParseFlags(s.Scheduler, s.Flags)
	if err != nil {
		if errors.Is(err, sched.ErrUnknownScheduler) {
			return ipvs.Service{}, ErrSchedulerNotFound
		}
		return ipvs.Service{}, ErrInvalid
	}
	bits := s.Netmask
	if bits == 0 {
		bits = -1 // ipvsadm's 0: the whole address
	}
	out := ipvs.Service{
		Key:       key,
		Scheduler: s.Scheduler,
		Flags:     flags,
		OPS:       s.OPS,
		Netmask:   ipvs.Netmask(key.IPv6, bits),
	}
	if s.Persistent {
		out.Persistence = s.Timeout
	}
	if old != nil {
		out.RealServers = old.RealServers
		out.Match = old.Match
		if out.Scheduler == "mh" && old.Scheduler == "mh" {
			out.MHTableSize = old.MHTableSize
		}
	}
	if err := checkSchedulerFits(&out); err != nil {
		return ipvs.Service{}, err
	}
	return out, nil
}

// checkSchedulerFits refuses a service whose scheduler cannot take its real
// servers (mh's table), as the kernel refuses to add one more.
func checkSchedulerFits(s *ipvs.Service) error {
	sc, err := sched.New(s.Scheduler, sched.Options{Flags: s.Flags, MHTableSize: s.MHTableSize})
	if err != nil {
		return ErrSchedulerNotFound
	}
	if sz, ok := sc.(sched.Sizer); ok && len(s.RealServers) > sz.MaxDests() {
		return ErrNoMemory
	}
	return nil
}

// realServerOf builds the real server of -a or -e.
func realServerOf(ap netip.AddrPort, d *Dest) (ipvs.RealServer, error) {
	rs := ipvs.RealServer{
		Addr:           ap,
		Weight:         int32(d.Weight),
		UpperThreshold: d.UThreshold,
		LowerThreshold: d.LThreshold,
	}
	switch d.Method {
	case MethodRoute, MethodLocal:
		rs.Method = ipvs.DR
	case MethodMasq:
		rs.Method = ipvs.NAT
	case MethodTunnel:
		if d.TunnelType != TunnelIPIP {
			return rs, &UnsupportedError{Msg: "--tun-type " + d.TunnelType.String() + " is not supported: gvs tunnels with IP-in-IP only"}
		}
		rs.Method = ipvs.TUN
	default:
		return rs, ErrInvalid
	}
	if rs.UpperThreshold != 0 && rs.LowerThreshold > rs.UpperThreshold {
		return rs, ErrThresholds
	}
	return rs, nil
}
