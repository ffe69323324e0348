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
// it had) and remembers no match rules (a new fwmark service has its command's
// --match rules, maybe none; -E replaces them with its own or keeps them). --set
// and the other commands are the caller's to carry out.
func Edit(services []ipvs.Service, c *Command) ([]ipvs.Service, error) {
	if c.Op == OpClear {
		return []ipvs.Service{}, nil
	}
	if err := editable(c); err != nil {
		return services, err
	}
	key := keyOf(&c.Service)
	at := slices.IndexFunc(services, func(s ipvs.Service) bool { return s.Key == key })
	var cur *ipvs.Service
	if at >= 0 {
		cur = &services[at]
	}
	s, del, err := change(cur, key, c)
	switch {
	case err != nil:
		return services, err
	case del:
		return slices.Delete(slices.Clone(services), at, at+1), nil
	case at < 0:
		return append(slices.Clip(services), s), nil
	}
	out := slices.Clone(services)
	out[at] = s
	return out, nil
}

// An Editor applies table commands, as Edit does, to a table of its own, in
// place: a command costs what it changes and a map lookup, not a copy of the
// table, so a restore stream of n lines costs O(n), not O(n²). The services
// it starts from are not modified (real servers and match rules are copied
// before they change). An Editor is not safe for concurrent use.
type Editor struct {
	svcs []ipvs.Service
	at   map[ipvs.Key]int // index in svcs, by key
}

// NewEditor returns an Editor whose table is a copy of services.
func NewEditor(services []ipvs.Service) *Editor {
	e := &Editor{}
	e.Reset(services)
	return e
}

// Reset makes the Editor's table a copy of services, as NewEditor does, in
// the memory the Editor has already: a caller that edits one small table
// after another (a command's few services) allocates for them only while the
// Editor grows. Nothing of the table before stays reachable from the Editor,
// and what Services returned before is the caller's no more.
func (e *Editor) Reset(services []ipvs.Service) {
	clear(e.svcs)
	e.svcs = append(e.svcs[:0], services...)
	if e.at == nil {
		e.at = make(map[ipvs.Key]int, len(services))
	} else {
		clear(e.at)
	}
	for i := range e.svcs {
		e.at[e.svcs[i].Key] = i
	}
}

// Services returns the table. It is the Editor's until the Editor is dropped.
func (e *Editor) Services() []ipvs.Service { return e.svcs }

// Service returns the service of key k in the table, or nil.
func (e *Editor) Service(k ipvs.Key) *ipvs.Service {
	if i, ok := e.at[k]; ok {
		return &e.svcs[i]
	}
	return nil
}

// Edit applies c as Edit would. On error the table is unchanged.
func (e *Editor) Edit(c *Command) error {
	if c.Op == OpClear {
		e.svcs = e.svcs[:0:0]
		clear(e.at)
		return nil
	}
	if err := editable(c); err != nil {
		return err
	}
	key := keyOf(&c.Service)
	at, ok := e.at[key]
	var cur *ipvs.Service
	if ok {
		cur = &e.svcs[at]
	}
	s, del, err := change(cur, key, c)
	switch {
	case err != nil:
		return err
	case del:
		e.svcs = slices.Delete(e.svcs, at, at+1)
		delete(e.at, key)
		for i := at; i < len(e.svcs); i++ {
			e.at[e.svcs[i].Key] = i
		}
	case !ok:
		e.at[key] = len(e.svcs)
		e.svcs = append(e.svcs, s)
	default:
		e.svcs[at] = s
	}
	return nil
}

// editable refuses the commands Edit does not carry out.
func editable(c *Command) error {
	switch c.Op {
	case OpAddService, OpEditService, OpDeleteService, OpAddServer, OpEditServer, OpDeleteServer:
		return nil
	}
	return &UnsupportedError{Msg: c.Op.String() + " cannot be restored: -R takes -A -E -D -C -a -e -d and --set"}
}

// change works out what c does to the service of key, cur (nil when the table
// has none): the service to add or to put in cur's place, or del to delete cur.
// It never modifies cur or anything it shares.
func change(cur *ipvs.Service, key ipvs.Key, c *Command) (_ ipvs.Service, del bool, _ error) {
	switch c.Op {
	case OpAddService:
		if cur != nil {
			return ipvs.Service{}, false, ErrServiceExists
		}
		s, err := serviceOf(key, &c.Service, c.Match, nil)
		return s, false, err
	case OpEditService:
		if cur == nil {
			return ipvs.Service{}, false, ErrNoSuchService
		}
		s, err := serviceOf(key, &c.Service, c.Match, cur)
		return s, false, err
	case OpDeleteService:
		if cur == nil {
			return ipvs.Service{}, false, ErrNoSuchService
		}
		return ipvs.Service{}, true, nil
	}

	// Real-server commands.
	if cur == nil {
		return ipvs.Service{}, false, ErrServiceNotDefined
	}
	s := *cur
	d := &c.Dest
	ap := netip.AddrPortFrom(d.Addr.Unmap(), d.Port)
	ri := s.Find(ap)
	switch c.Op {
	case OpAddServer:
		if ri >= 0 {
			return ipvs.Service{}, false, ErrDestExists
		}
		rs, err := realServerOf(ap, d)
		if err != nil {
			return ipvs.Service{}, false, err
		}
		s.RealServers = append(slices.Clip(s.RealServers), rs)
	case OpEditServer:
		if ri < 0 {
			return ipvs.Service{}, false, ErrNoSuchDest
		}
		rs, err := realServerOf(ap, d)
		if err != nil {
			return ipvs.Service{}, false, err
		}
		rs.MAC = s.RealServers[ri].MAC
		s.RealServers = slices.Clone(s.RealServers)
		s.RealServers[ri] = rs
	case OpDeleteServer:
		if ri < 0 {
			return ipvs.Service{}, false, ErrNoSuchDest
		}
		s.RealServers = slices.Delete(slices.Clone(s.RealServers), ri, ri+1)
	}
	if err := checkSchedulerFits(&s); err != nil {
		return ipvs.Service{}, false, err
	}
	return s, false, nil
}

// keyOf returns the key of the service a command names.
func keyOf(s *Service) ipvs.Key {
	if s.FWMark != 0 {
		return ipvs.MarkKey(s.FWMark, s.IPv6)
	}
	return ipvs.AddrKey(ipvs.Protocol(s.Protocol), netip.AddrPortFrom(s.Addr, s.Port))
}

// serviceOf builds the service of -A (old nil) or -E (old the current one, whose
// real servers are kept, and its match rules unless match is not nil). match is
// the command's --match rules.
func serviceOf(key ipvs.Key, s *Service, match []ipvs.Match, old *ipvs.Service) (ipvs.Service, error) {
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
	switch bits {
	case 0:
		bits = -1 // ipvsadm's 0: the whole address
	case NetmaskAll:
		bits = 0
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
	if key.IsMark() {
		out.Match = slices.Clone(match)
	}
	if old != nil {
		out.RealServers = old.RealServers
		if match == nil {
			out.Match = old.Match
		}
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
