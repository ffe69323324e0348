package daemon

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"time"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/internal/control"
	"github.com/gvs-lb/gvs/internal/ipvsadm"
	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/sched"
)

// ipvsVersion is the IPVS version the version line reports: the one every
// mainline kernel since 2.6 reports, which is the behaviour gvs reproduces.
const ipvsVersion = "1.2.1"

func (a *Admin) list(ctx context.Context, c *ipvsadm.Command, out *bytes.Buffer) error {
	switch c.Listing() {
	case ipvsadm.ListConns:
		return a.listConns(ctx, c, out)
	case ipvsadm.ListTimeouts:
		return ipvsadm.FormatTimeouts(out, a.timeouts())
	case ipvsadm.ListDaemons:
		return ipvsadm.FormatDaemons(out, a.syncDaemons()) // admin_cluster.go
	case ipvsadm.ListService:
		key := keyOfCommand(&c.Service)
		svcs := a.services(true)
		for i := range svcs {
			if keyOfCommand(&svcs[i]) == key {
				return ipvsadm.FormatService(out, &svcs[i], c.Format, a.res)
			}
		}
		return &listError{ipvsadm.ErrNoSuchService}
	}
	return ipvsadm.FormatList(out, a.info(), a.services(true), c.Format, a.res)
}

func (a *Admin) info() ipvsadm.Info {
	return ipvsadm.Info{Version: ipvsVersion, ConnTableSize: a.d.Table().Max()}
}

func (a *Admin) timeouts() ipvsadm.Timeouts {
	to := a.d.Table().Timeouts()
	return ipvsadm.Timeouts{TCP: to.TCP[conntrack.StateEstablished], TCPFin: to.TCP[conntrack.StateFinWait], UDP: to.UDP}
}

// services returns the Director's services in ipvsadm's model, in creation
// order (the formatters sort). With counters, Stats are the Director's counters
// since the last -Z and Rates the estimator's.
func (a *Admin) services(counters bool) []ipvsadm.Service {
	views := a.views()
	var t dataplane.Totals
	if counters {
		t = a.d.Totals()
		a.smu.Lock()
		defer a.smu.Unlock()
	}
	out := make([]ipvsadm.Service, 0, len(views))
	for i := range views {
		v := &views[i]
		s := serviceModel(v)
		if counters {
			s.Stats = statsModel(sub(at(t.Services, v.ID), at(a.zero.svcs, v.ID)))
			s.Rates = a.est.svcs[v.ID].rates()
		}
		for j := range v.Dests {
			dv := &v.Dests[j]
			d := destModel(dv)
			if counters {
				d.Stats = statsModel(sub(at(t.Dests, dv.ID), at(a.zero.dests, dv.ID)))
				d.Rates = a.est.dests[dv.ID].rates()
			}
			s.Dests = append(s.Dests, d)
		}
		out = append(out, s)
	}
	return out
}

func serviceModel(v *dataplane.ServiceView) ipvsadm.Service {
	sp := &v.Spec
	name := v.Sched
	if name == "" {
		name = sp.Scheduler
	}
	s := ipvsadm.Service{
		Protocol:  ipvsadm.Protocol(sp.Protocol),
		FWMark:    sp.FWMark,
		Scheduler: name,
		Flags:     sched.FlagNames(name, sp.Flags),
		OPS:       sp.OPS,
	}
	if sp.FWMark != 0 {
		s.IPv6 = sp.IPv6
	} else {
		s.Addr, s.Port = sp.Addr.Addr(), sp.Addr.Port()
	}
	if sp.Persistence > 0 {
		s.Persistent = true
		s.Timeout = sp.Persistence.Truncate(time.Second)
		s.Netmask = ipvsadm.NetmaskOf(sp.Netmask, s.IPv6 || s.Addr.Is6())
	}
	return s
}

func destModel(dv *dataplane.DestView) ipvsadm.Dest {
	d := ipvsadm.Dest{
		Addr:         dv.Addr,
		Port:         dv.Port,
		Weight:       int(dv.Weight),
		UThreshold:   dv.UpperThreshold,
		LThreshold:   dv.LowerThreshold,
		ActiveConns:  nonNegative(dv.ActiveConns),
		InactConns:   nonNegative(dv.InactConns),
		PersistConns: nonNegative(dv.PersistConns),
	}
	switch dv.Method {
	case ipvs.DR:
		d.Method = ipvsadm.MethodRoute
	case ipvs.NAT:
		d.Method = ipvsadm.MethodMasq
	case ipvs.TUN:
		d.Method = ipvsadm.MethodTunnel
		d.TunnelType = ipvsadm.TunnelIPIP
	case ipvs.Local:
		d.Method = ipvsadm.MethodLocal
	}
	return d
}

func nonNegative(n int32) uint32 {
	if n < 0 {
		return 0
	}
	return uint32(n)
}

func statsModel(s dataplane.Stats) ipvsadm.Stats {
	return ipvsadm.Stats{Conns: s.Conns, InPkts: s.InPkts, OutPkts: s.OutPkts, InBytes: s.InBytes, OutBytes: s.OutBytes}
}

// at returns s[id], or zero counters when id is beyond s (nothing counted yet).
func at(s []dataplane.Stats, id uint32) dataplane.Stats {
	if int(id) < len(s) {
		return s[id]
	}
	return dataplane.Stats{}
}

// sub is raw minus base, each counter floored at 0.
func sub(raw, base dataplane.Stats) dataplane.Stats {
	d := func(x, y uint64) uint64 {
		if x < y {
			return 0
		}
		return x - y
	}
	return dataplane.Stats{
		Conns: d(raw.Conns, base.Conns), InPkts: d(raw.InPkts, base.InPkts), OutPkts: d(raw.OutPkts, base.OutPkts),
		InBytes: d(raw.InBytes, base.InBytes), OutBytes: d(raw.OutBytes, base.OutBytes),
	}
}

// baseline is what -Z subtracts: the raw counters at the time of the last -Z, by
// service and dest id. Guarded by Admin.smu.
type baseline struct {
	svcs, dests []dataplane.Stats
}

func setAt(s *[]dataplane.Stats, id uint32, v dataplane.Stats) {
	for int(id) >= len(*s) {
		*s = append(*s, dataplane.Stats{})
	}
	(*s)[id] = v
}

// zeroCounters is -Z: a service and its real servers, or everything. Rate
// estimates restart from zero, as IPVS zeroes its estimators.
func (a *Admin) zeroCounters(c *ipvsadm.Command) error {
	views := a.views()
	t := a.d.Totals()
	a.smu.Lock()
	defer a.smu.Unlock()
	if !c.HasService {
		for id, s := range t.Services {
			setAt(&a.zero.svcs, uint32(id), s)
			a.est.svcs[uint32(id)].reset(s)
		}
		for id, s := range t.Dests {
			setAt(&a.zero.dests, uint32(id), s)
			a.est.dests[uint32(id)].reset(s)
		}
		return nil
	}
	key := keyOfCommand(&c.Service)
	for i := range views {
		v := &views[i]
		if v.Spec.Key != key {
			continue
		}
		raw := at(t.Services, v.ID)
		setAt(&a.zero.svcs, v.ID, raw)
		a.est.svcs[v.ID].reset(raw)
		for _, dv := range v.Dests {
			raw := at(t.Dests, dv.ID)
			setAt(&a.zero.dests, dv.ID, raw)
			a.est.dests[dv.ID].reset(raw)
		}
		return nil
	}
	return ipvsadm.ErrNoSuchService
}

var (
	_ control.StreamHandler = (*Admin)(nil)
	_ control.StreamHandler = (*Daemon)(nil)
)

// Streams and HandleStream make the Daemon, which serves the control socket, a
// control.StreamHandler: connection listings are streamed (Admin.Streams).
func (d *Daemon) Streams(req control.Request) bool { return d.admin.Streams(req) }

// HandleStream runs a streamed listing (Admin.HandleStream).
func (d *Daemon) HandleStream(ctx context.Context, req control.Request, stdout io.Writer) control.Response {
	return d.admin.HandleStream(ctx, req, stdout)
}

// Streams reports whether req is a connection listing (-L -c), the one listing
// whose size follows the connection table's: the control socket then has it
// written as the table is walked (HandleStream).
func (a *Admin) Streams(req control.Request) bool {
	c, err := a.parser.Parse(req.Args)
	return err == nil && c.Op == ipvsadm.OpList && c.Listing() == ipvsadm.ListConns
}

// HandleStream runs a connection listing, writing it to stdout as it goes.
func (a *Admin) HandleStream(ctx context.Context, req control.Request, stdout io.Writer) control.Response {
	c, err := a.parser.Parse(req.Args)
	if err == nil {
		err = a.listConns(ctx, c, stdout)
	}
	resp := control.Response{Status: exitStatus(err)}
	if err != nil {
		resp.Stderr = err.Error() + "\n"
	}
	return resp
}

// listConns writes the connection table as -c does, entry by entry while the table
// is walked: the memory it needs is one shard's copy (conntrack.Table.Walk) and
// the lister's buffer, whatever the table's size. Entries that have expired but
// are not reaped yet are left out (the kernel's timers remove them on time).
func (a *Admin) listConns(ctx context.Context, c *ipvsadm.Command, w io.Writer) error {
	now := a.dm.now()
	addrs := a.destAddrs()
	l := ipvsadm.NewConnLister(w, c.Format, a.res)
	var err error
	n := 0
	a.d.Table().Each(func(e *conntrack.Conn) bool {
		if e.Expires <= now {
			return true
		}
		m := connModel(e, now, addrs)
		if err = l.Add(&m); err != nil {
			return false
		}
		if n++; n%ctxCheckEvery == 0 {
			err = ctx.Err()
		}
		return err == nil
	})
	if err != nil {
		return &listError{err}
	}
	if err := l.Close(); err != nil {
		return &listError{err}
	}
	return nil
}

// ctxCheckEvery is how many entries a listing writes between looks at its context.
const ctxCheckEvery = 4096

// destAddrs returns the address of every listed real server by dest id: a real
// server may be of the other family than its service (tunnels), so a connection's
// destination is taken from its dest while that is listed.
func (a *Admin) destAddrs() map[uint32]netip.Addr {
	addrs := map[uint32]netip.Addr{}
	for _, v := range a.views() {
		for _, dv := range v.Dests {
			addrs[dv.ID] = dv.Addr
		}
	}
	return addrs
}

// connModel is one connection entry in ipvsadm's model, at now.
func connModel(c *conntrack.Conn, now int64, addrs map[uint32]netip.Addr) ipvsadm.Conn {
	k := &c.Key
	m := ipvsadm.Conn{
		Protocol: ipvsadm.Protocol(k.Proto),
		Client:   netip.AddrPortFrom(rawToAddr(k.CAddr, k.IPv6), k.CPort),
		Virtual:  netip.AddrPortFrom(rawToAddr(k.VAddr, k.IPv6), k.VPort),
		State:    c.State.String(),
		Expires:  time.Duration(c.Expires - now),
		Template: c.Flags&conntrack.FlagTemplate != 0,
	}
	if k.Proto == 17 {
		// Templates are created in state NONE, which IPVS names by the
		// protocol's table: UDP's only state is "UDP".
		m.State = "UDP"
	}
	daddr, ok := addrs[c.Dest]
	if !c.HasDest || !ok {
		daddr = rawToAddr(c.DAddr, k.IPv6)
	}
	m.Dest = netip.AddrPortFrom(daddr, c.DPort)
	return m
}

// rawToAddr turns the table's raw address form (IPv4 in the first 4 bytes) into an
// address.
func rawToAddr(b [16]byte, v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte(b[:4]))
}
