package daemon

import (
	"bytes"
	"net/netip"
	"time"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/internal/ipvsadm"
	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/sched"
)

// ipvsVersion is the IPVS version the version line reports: the one every
// mainline kernel since 2.6 reports, which is the behaviour gvs reproduces.
const ipvsVersion = "1.2.1"

func (a *Admin) list(c *ipvsadm.Command, out *bytes.Buffer) error {
	switch c.Listing() {
	case ipvsadm.ListConns:
		return ipvsadm.FormatConns(out, a.conns(), c.Format, a.res)
	case ipvsadm.ListTimeouts:
		return ipvsadm.FormatTimeouts(out, a.timeouts())
	case ipvsadm.ListDaemons:
		return ipvsadm.FormatDaemons(out, nil) // never any
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
		full := 32
		if s.IPv6 || s.Addr.Is6() {
			full = 128
		}
		if sp.Netmask.IsValid() && sp.Netmask.Bits() > 0 && sp.Netmask.Bits() < full {
			s.Netmask = sp.Netmask.Bits()
		}
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

// conns lists the connection table as -c does, leaving out entries that have
// expired but are not reaped yet (the kernel's timers remove them on time).
func (a *Admin) conns() []ipvsadm.Conn {
	now := a.dm.now()
	// A real server may be of the other family (tunnels): take its address from
	// the dest when it is still listed.
	addrs := map[uint32]netip.Addr{}
	for _, v := range a.views() {
		for _, dv := range v.Dests {
			addrs[dv.ID] = dv.Addr
		}
	}
	var out []ipvsadm.Conn
	a.d.Table().Walk(func(c *conntrack.Conn) bool {
		if c.Expires <= now {
			return true
		}
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
		out = append(out, m)
		return true
	})
	return out
}

// rawToAddr turns the table's raw address form (IPv4 in the first 4 bytes) into an
// address.
func rawToAddr(b [16]byte, v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte(b[:4]))
}
