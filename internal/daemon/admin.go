package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/internal/control"
	"github.com/gvs-lb/gvs/internal/ipvsadm"
	"github.com/gvs-lb/gvs/sched"
)

// AdminOptions configure an Admin.
type AdminOptions struct {
	// Now is the Director's clock, the time its workers pass to Process (ns). It
	// dates connection expiry for -c. Required.
	Now func() int64
	// Resolve returns the MAC address of a real server that gvs adm adds, or nil
	// when it is not known (its packets are then counted as no_mac). Real servers
	// already in the table keep their MAC, and a new one reuses the MAC another
	// service already has for the same address. nil: MACs are never resolved.
	Resolve func(addr netip.Addr) net.HardwareAddr
	// OnChange is called after every change the Director accepted (an adm command
	// or Replace), with the new service specs, while the Admin's lock is held, so
	// calls come in the order of the changes. The live daemon uses it to update the
	// rings' VIP filter and announce new VIPs. It must not call the Admin. nil: none.
	OnChange func(specs []dataplane.ServiceSpec)
	// Names names hosts and ports in listings without -n and resolves names on
	// command lines, as ipvsadm does with /etc/hosts and /etc/services (see
	// LoadNames). nil: numbers only.
	Names *ipvsadm.Names
	// ConnTableSize is the "size=" of the version line of -L, which ipvsadm takes
	// from the kernel's connection hash table. 0: the connection table's capacity
	// (conn_max).
	ConnTableSize int
	// Logger logs every change made through the control socket; nil discards.
	Logger *slog.Logger
	// Transform turns the configured specs into the ones the Director runs (the
	// health layer: failed servers out or quiescent, sorry servers); it is applied
	// on every change and by Reapply. It must not call the Admin. nil: none.
	Transform func(specs []dataplane.ServiceSpec) []dataplane.ServiceSpec
}

// An Admin carries out ipvsadm commands against a running Director: it is the
// control socket's Handler behind `gvs adm`. It owns the service specs the Director
// runs (the one source of truth for adm commands and reloads): every change edits a
// copy and hands it to Director.Apply, which swaps the configuration atomically and
// keeps connections and scheduler state. A command that fails changes nothing.
//
// A configuration reload (Replace) replaces the whole table, adm changes included,
// as keepalived's reload does with ipvsadm's changes to the kernel table.
//
// Counters listed by --stats are those of the Director minus a baseline taken at
// the last -Z, as IPVS zeroes its counters; --rate comes from an estimator that Run
// drives every 2 seconds. Metrics see the raw counters, never zeroed.
//
// An Admin is safe for concurrent use. Create it with NewAdmin.
type Admin struct {
	d      *dataplane.Director
	o      AdminOptions
	log    *slog.Logger
	parser ipvsadm.Parser
	res    ipvsadm.Resolver // nil: numeric

	mu    sync.Mutex // serialises changes; guards specs and marks
	specs []dataplane.ServiceSpec
	// marks remembers the match rules of fwmark services: they stand for the
	// iptables rules that set marks, which live outside the IPVS table, so an
	// fwmark service deleted and added again (-C then -R) gets its rules back.
	marks map[markKey][]dataplane.Match

	smu  sync.Mutex // guards zero and est
	zero baseline
	est  estimator
}

var _ control.Handler = (*Admin)(nil)

type markKey struct {
	mark uint32
	v6   bool
}

// NewAdmin returns an Admin for d, whose current configuration is specs (what the
// caller last passed to d.Apply; NewAdmin does not apply it).
func NewAdmin(d *dataplane.Director, specs []dataplane.ServiceSpec, o AdminOptions) *Admin {
	if o.Now == nil {
		panic("daemon: NewAdmin needs the Director's clock (AdminOptions.Now)")
	}
	a := &Admin{d: d, o: o, log: o.Logger, specs: cloneSpecs(specs), marks: map[markKey][]dataplane.Match{}}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.parser.Program = "gvs adm"
	if o.Names != nil {
		a.parser.Names = o.Names
		a.res = o.Names
	}
	a.rememberMarks(a.specs)
	return a
}

// LoadNames reads host and service names from files in the format of /etc/hosts
// and /etc/services (pass those for the system's names). A file that cannot be
// read is skipped: listings then print numbers, as ipvsadm does when a lookup
// fails.
func LoadNames(hostsPath, servicesPath string) *ipvsadm.Names {
	n := &ipvsadm.Names{}
	if f, err := os.Open(hostsPath); err == nil {
		_ = n.ReadHosts(f) // what was read before an error is kept
		f.Close()
	}
	if f, err := os.Open(servicesPath); err == nil {
		_ = n.ReadServices(f)
		f.Close()
	}
	return n
}

// Specs returns a copy of the service specs the Director runs.
func (a *Admin) Specs() []dataplane.ServiceSpec {
	a.mu.Lock()
	defer a.mu.Unlock()
	return cloneSpecs(a.specs)
}

// Replace applies specs as the whole configuration, discarding changes made with
// gvs adm since the last one: call it on a configuration reload instead of
// Director.Apply, so reloads and adm commands share one source of truth. On error
// nothing changes.
func (a *Admin) Replace(specs []dataplane.ServiceSpec) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	specs = cloneSpecs(specs)
	if err := a.apply(specs); err != nil {
		return err
	}
	a.specs = specs
	clear(a.marks)
	a.rememberMarks(specs)
	a.changed()
	return nil
}

// Update changes the configuration programmatically, for the daemon's own
// changes that must not be lost to the next adm command (a health checker taking
// a failed real server out, or putting it back): fn gets a copy of the current
// specs and returns the new ones, which are applied as one Director.Apply. If fn
// or Apply fails nothing changes. fn runs with the Admin's lock held and must not
// call the Admin. Like an adm change, an Update lasts until the next Replace.
//
// fn must return specs the Director can take whole (known schedulers, thresholds
// in order): Director.Apply checks some things only while applying.
func (a *Admin) Update(fn func(specs []dataplane.ServiceSpec) ([]dataplane.ServiceSpec, error)) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	specs, err := fn(cloneSpecs(a.specs))
	if err != nil {
		return err
	}
	specs = cloneSpecs(specs)
	if err := a.apply(specs); err != nil {
		return err
	}
	a.specs = specs
	a.rememberMarks(specs)
	a.changed()
	return nil
}

// Reapply hands the Director the current specs again, through Transform: the daemon
// calls it when what Transform does changed (a health transition).
func (a *Admin) Reapply() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.apply(a.specs)
}

// apply gives the Director the configured specs as Transform shapes them.
// Precondition: a.mu is held.
func (a *Admin) apply(specs []dataplane.ServiceSpec) error {
	if a.o.Transform != nil {
		specs = a.o.Transform(cloneSpecs(specs))
	}
	return a.d.Apply(specs)
}

// Precondition: a.mu is held.
func (a *Admin) rememberMarks(specs []dataplane.ServiceSpec) {
	for i := range specs {
		s := &specs[i]
		if s.FWMark != 0 && len(s.Match) > 0 {
			a.marks[markKey{s.FWMark, s.IPv6}] = slices.Clone(s.Match)
		}
	}
}

// changed reports the current specs to OnChange. Precondition: a.mu is held.
func (a *Admin) changed() {
	if a.o.OnChange != nil {
		a.o.OnChange(cloneSpecs(a.specs))
	}
}

// Handle carries out one ipvsadm command line (control.Handler): what ipvsadm
// would print goes to Stdout and Stderr, and Status is the status it would exit
// with.
func (a *Admin) Handle(_ context.Context, req control.Request) control.Response {
	var out bytes.Buffer
	err := a.exec(req.Args, req.Stdin, &out)
	resp := control.Response{Stdout: out.String(), Status: exitStatus(err)}
	if err != nil {
		resp.Stderr = err.Error() + "\n"
		a.log.Debug("adm command refused", "args", req.Args, "err", err)
	}
	return resp
}

// listError marks a failed listing: ipvsadm exits 1 then, not 255.
type listError struct{ err error }

func (e *listError) Error() string { return e.err.Error() }
func (e *listError) Unwrap() error { return e.err }

func exitStatus(err error) int {
	var le *listError
	if errors.As(err, &le) {
		return 1
	}
	return ipvsadm.ExitStatus(err)
}

// Errors of commands gvs does not carry out the way ipvsadm's kernel would. They
// exit with 255, as a failed kernel operation does.
func unsupported(msg string) error {
	return &ipvsadm.Error{Msg: "gvs adm: " + msg, Status: ipvsadm.StatusUsage}
}

// errThresholds is the kernel's answer (ERANGE, printed with strerror) to a lower
// threshold above the upper one.
const errThresholds ipvsadm.KernelError = "Numerical result out of range"

func (a *Admin) exec(args []string, stdin string, out *bytes.Buffer) error {
	c, err := a.parser.Parse(args)
	if err != nil {
		return err
	}
	switch c.Op {
	case ipvsadm.OpAddService, ipvsadm.OpEditService, ipvsadm.OpDeleteService, ipvsadm.OpClear,
		ipvsadm.OpAddServer, ipvsadm.OpEditServer, ipvsadm.OpDeleteServer:
		return a.change(args, []*ipvsadm.Command{c}, nil)
	case ipvsadm.OpRestore:
		cmds, err := a.parser.ParseRestore(strings.NewReader(stdin))
		if err != nil {
			return err
		}
		return a.change(args, cmds, commandLines(stdin))
	case ipvsadm.OpSetTimeouts:
		a.setTimeouts(c.SetTimeouts)
		a.log.Info("adm", "args", args)
		return nil
	case ipvsadm.OpList:
		return a.list(c, out)
	case ipvsadm.OpSave:
		return ipvsadm.FormatSave(out, a.services(false), c.Format, a.res)
	case ipvsadm.OpZero:
		return a.zeroCounters(c)
	case ipvsadm.OpHelp:
		return ipvsadm.FormatUsage(out, a.parser.Program)
	case ipvsadm.OpVersion:
		return ipvsadm.FormatVersion(out)
	case ipvsadm.OpStartDaemon, ipvsadm.OpStopDaemon:
		return unsupported("gvs has no connection synchronisation daemon; pair directors with VRRP ([[vrrp]]) instead")
	}
	return unsupported("command " + c.Op.String() + " is not supported")
}

// change runs table commands (one, or a restore stream) on a copy of the specs
// and applies the result in one Director.Apply: all of them or, at the first
// failure, none (ipvsadm -R stops at the first bad line with the lines before it
// applied; gvs refuses the whole stream). Timeouts set by --set inside a restore
// stream take effect with the rest. lines are the line numbers of a restore
// stream's commands (nil for a single command), for the errors.
func (a *Admin) change(args []string, cmds []*ipvsadm.Command, lines []int) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	specs := cloneSpecs(a.specs)
	var timeouts []ipvsadm.Timeouts
	for i, c := range cmds {
		var err error
		switch c.Op {
		case ipvsadm.OpSetTimeouts:
			timeouts = append(timeouts, c.SetTimeouts)
		default:
			specs, err = a.edit(specs, c)
		}
		if err != nil {
			if i < len(lines) {
				return &ipvsadm.LineError{Line: lines[i], Err: err}
			}
			return err
		}
	}
	if err := a.apply(specs); err != nil {
		// edit checks everything ipvsadm's kernel checks, so this is a limit of
		// gvs's own (tunnels without a director address, …).
		return unsupported(strings.TrimPrefix(err.Error(), dataplane.ErrConfig.Error()+": "))
	}
	a.specs = specs
	for _, t := range timeouts {
		a.setTimeouts(t)
	}
	a.changed()
	a.log.Info("adm", "args", args, "commands", len(cmds), "services", len(specs))
	return nil
}

// commandLines returns the 1-based numbers of the lines of a restore stream that
// hold a command, splitting as ipvsadm.ParseRestore does: a '#' starts a comment,
// words are separated by blanks, tabs and carriage returns, and the word "ipvsadm"
// is dropped.
func commandLines(stream string) []int {
	var lines []int
	for i, line := range strings.Split(stream, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, w := range strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' }) {
			if w != "ipvsadm" {
				lines = append(lines, i+1)
				break
			}
		}
	}
	return lines
}

// edit applies one table command to specs (a private copy) and returns the
// result. It refuses, with ipvsadm's message, everything the kernel would refuse,
// so that Director.Apply of the result does not fail half-way.
func (a *Admin) edit(specs []dataplane.ServiceSpec, c *ipvsadm.Command) ([]dataplane.ServiceSpec, error) {
	if c.Op == ipvsadm.OpClear {
		return specs[:0], nil
	}
	if c.Op != ipvsadm.OpAddService && c.Op != ipvsadm.OpEditService && c.Op != ipvsadm.OpDeleteService &&
		c.Op != ipvsadm.OpAddServer && c.Op != ipvsadm.OpEditServer && c.Op != ipvsadm.OpDeleteServer {
		return nil, unsupported(c.Op.String() + " cannot be restored: -R takes -A -E -D -C -a -e -d and --set")
	}
	key := keyOfCommand(&c.Service)
	at := slices.IndexFunc(specs, func(s dataplane.ServiceSpec) bool { return keyOfSpec(&s) == key })
	switch c.Op {
	case ipvsadm.OpAddService:
		if at >= 0 {
			return nil, ipvsadm.ErrServiceExists
		}
		sp, err := a.specOf(&c.Service, nil)
		if err != nil {
			return nil, err
		}
		return append(specs, sp), nil
	case ipvsadm.OpEditService:
		if at < 0 {
			return nil, ipvsadm.ErrNoSuchService
		}
		sp, err := a.specOf(&c.Service, &specs[at])
		if err != nil {
			return nil, err
		}
		specs[at] = sp
		return specs, nil
	case ipvsadm.OpDeleteService:
		if at < 0 {
			return nil, ipvsadm.ErrNoSuchService
		}
		return slices.Delete(specs, at, at+1), nil
	}

	// Real-server commands.
	if at < 0 {
		return nil, ipvsadm.ErrServiceNotDefined
	}
	sp := &specs[at]
	d := &c.Dest
	daddr := d.Addr.Unmap()
	ri := slices.IndexFunc(sp.RealServers, func(r dataplane.RealServerSpec) bool {
		return r.Addr.Unmap() == daddr && r.Port == d.Port
	})
	switch c.Op {
	case ipvsadm.OpAddServer:
		if ri >= 0 {
			return nil, ipvsadm.ErrDestExists
		}
		rs, err := realServerOf(d)
		if err != nil {
			return nil, err
		}
		rs.MAC = a.macFor(specs, daddr)
		sp.RealServers = append(sp.RealServers, rs)
	case ipvsadm.OpEditServer:
		if ri < 0 {
			return nil, ipvsadm.ErrNoSuchDest
		}
		rs, err := realServerOf(d)
		if err != nil {
			return nil, err
		}
		rs.MAC = sp.RealServers[ri].MAC
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
	return specs, nil
}

// macFor is the MAC of a real server being added: the one another service already
// has for the address, or what Resolve finds.
func (a *Admin) macFor(specs []dataplane.ServiceSpec, addr netip.Addr) net.HardwareAddr {
	for i := range specs {
		for _, r := range specs[i].RealServers {
			if r.Addr.Unmap() == addr && len(r.MAC) == 6 {
				return slices.Clone(r.MAC)
			}
		}
	}
	if a.o.Resolve == nil {
		return nil
	}
	mac := a.o.Resolve(addr)
	if len(mac) != 6 {
		a.log.Warn("no MAC address for a real server added with gvs adm: its packets are dropped (no_mac) until it is resolved", "addr", addr)
		return nil
	}
	return mac
}

// svcKey identifies a service as the kernel does: by fwmark and family, or by
// protocol, address and port.
type svcKey struct {
	mark  uint32
	v6    bool
	proto uint8
	addr  netip.Addr
	port  uint16
}

func keyOfCommand(s *ipvsadm.Service) svcKey {
	if s.FWMark != 0 {
		return svcKey{mark: s.FWMark, v6: s.IPv6}
	}
	a := s.Addr.Unmap()
	return svcKey{v6: a.Is6(), proto: uint8(s.Protocol), addr: a, port: s.Port}
}

func keyOfSpec(s *dataplane.ServiceSpec) svcKey {
	if s.FWMark != 0 {
		return svcKey{mark: s.FWMark, v6: s.IPv6}
	}
	a := s.Addr.Unmap()
	return svcKey{v6: a.Is6(), proto: s.Protocol, addr: a, port: s.Port}
}

// specOf builds the spec of -A (old nil) or -E (old the current spec, whose real
// servers and match rules are kept).
func (a *Admin) specOf(s *ipvsadm.Service, old *dataplane.ServiceSpec) (dataplane.ServiceSpec, error) {
	var sp dataplane.ServiceSpec
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
	sp = dataplane.ServiceSpec{
		Protocol:  uint8(s.Protocol),
		FWMark:    s.FWMark,
		Scheduler: s.Scheduler,
		Flags:     flags,
		OPS:       s.OPS,
	}
	if s.FWMark != 0 {
		sp.IPv6 = s.IPv6
	} else {
		sp.Addr, sp.Port = s.Addr.Unmap(), s.Port
		sp.IPv6 = sp.Addr.Is6()
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
	} else if s.FWMark != 0 {
		sp.Match = slices.Clone(a.marks[markKey{s.FWMark, s.IPv6}])
		if len(sp.Match) == 0 {
			a.log.Warn("fwmark service added with gvs adm has no match rules ([[service.match]] in the config): no packet carries its mark", "fwmark", s.FWMark)
		}
	}
	if err := checkSchedulerFits(&sp); err != nil {
		return sp, err
	}
	return sp, nil
}

// checkSchedulerFits refuses a service whose scheduler cannot take its real
// servers (mh's table), as the kernel refuses to add one more.
func checkSchedulerFits(sp *dataplane.ServiceSpec) error {
	s, err := sched.New(sp.Scheduler, sched.Options{Flags: sp.Flags, MHTableSize: sp.MHTableSize})
	if err != nil {
		return ipvsadm.ErrSchedulerNotFound
	}
	if sz, ok := s.(sched.Sizer); ok && len(sp.RealServers) > sz.MaxDests() {
		return ipvsadm.ErrNoMemory
	}
	return nil
}

func realServerOf(d *ipvsadm.Dest) (dataplane.RealServerSpec, error) {
	rs := dataplane.RealServerSpec{
		Addr:           d.Addr.Unmap(),
		Port:           d.Port,
		Weight:         int32(d.Weight),
		UpperThreshold: d.UThreshold,
		LowerThreshold: d.LThreshold,
	}
	switch d.Method {
	case ipvsadm.MethodRoute, ipvsadm.MethodLocal:
		rs.Method = dataplane.MethodDR
	case ipvsadm.MethodMasq:
		rs.Method = dataplane.MethodNAT
	case ipvsadm.MethodTunnel:
		if d.TunnelType != ipvsadm.TunnelIPIP {
			return rs, unsupported("--tun-type " + d.TunnelType.String() + " is not supported: gvs tunnels with IP-in-IP only")
		}
		rs.Method = dataplane.MethodTUN
	default:
		return rs, ipvsadm.ErrInvalid
	}
	if rs.UpperThreshold != 0 && rs.LowerThreshold > rs.UpperThreshold {
		return rs, errThresholds
	}
	return rs, nil
}

// setTimeouts is --set: a zero value keeps the current one.
func (a *Admin) setTimeouts(t ipvsadm.Timeouts) {
	tab := a.d.Table()
	to := tab.Timeouts()
	if t.TCP > 0 {
		to.TCP[conntrack.StateEstablished] = t.TCP
	}
	if t.TCPFin > 0 {
		to.TCP[conntrack.StateFinWait] = t.TCPFin
	}
	if t.UDP > 0 {
		to.UDP = t.UDP
	}
	tab.SetTimeouts(to)
}

func cloneSpecs(specs []dataplane.ServiceSpec) []dataplane.ServiceSpec {
	out := make([]dataplane.ServiceSpec, len(specs))
	for i := range specs {
		out[i] = specs[i]
		out[i].Match = slices.Clone(specs[i].Match)
		out[i].RealServers = slices.Clone(specs[i].RealServers)
		for j := range out[i].RealServers {
			out[i].RealServers[j].MAC = slices.Clone(out[i].RealServers[j].MAC)
		}
	}
	return out
}

// views returns the Director's services. It holds a.mu so that it never runs
// during an Apply of ours: Director.Services reads service settings that Apply
// rewrites.
func (a *Admin) views() []dataplane.ServiceView {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.d.Services()
}
