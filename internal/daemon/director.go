package daemon

import (
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/internal/config"
)

// DirectorOptions maps the [director] table onto the Director's options.
func DirectorOptions(c *config.Config, log *slog.Logger) dataplane.Options {
	d := &c.Director
	o := dataplane.DefaultOptions()
	if !d.MAC.IsZero() {
		o.MAC = d.MAC.HardwareAddr()
	}
	if !d.GatewayMAC.IsZero() {
		o.GatewayMAC = d.GatewayMAC.HardwareAddr()
	}
	o.Addr4, o.Addr6 = d.Address, d.Address6
	o.MTU = d.MTU
	o.ConnMax, o.ConnShards = d.ConnMax, d.ConnShards
	o.ConnReuseMode = d.Sysctl.ConnReuseMode
	o.ExpireNodestConn = d.Sysctl.ExpireNodestConn
	o.ExpireQuiescentTemplate = d.Sysctl.ExpireQuiescentTemplate
	o.PMTUDisc = d.Sysctl.PMTUDisc
	o.SloppyTCP = d.Sysctl.SloppyTCP
	o.ScheduleICMP = d.Sysctl.ScheduleICMP
	o.Timeouts = conntrack.DefaultTimeouts()
	o.Timeouts.TCP[conntrack.StateEstablished] = d.Timeouts.TCP
	o.Timeouts.TCP[conntrack.StateFinWait] = d.Timeouts.TCPFin
	o.Timeouts.UDP = d.Timeouts.UDP
	o.Logger = log
	return o
}

// Services maps the [[service]] tables onto the Director's service specs, keeping the
// real servers in file order.
func Services(c *config.Config) []dataplane.ServiceSpec {
	specs := make([]dataplane.ServiceSpec, 0, len(c.Services))
	for i := range c.Services {
		s := &c.Services[i]
		sp := dataplane.ServiceSpec{
			Protocol:    uint8(s.Protocol),
			FWMark:      s.FWMark,
			Scheduler:   s.Scheduler,
			Flags:       s.SchedFlags,
			MHTableSize: s.MHTableSize,
			Persistence: s.Persistence,
			OPS:         s.OPS,
		}
		if s.FWMark == 0 {
			sp.Addr, sp.Port = s.Address.Addr().Unmap(), s.Address.Port()
		}
		sp.IPv6 = sp.Addr.Is6() || s.Family == config.FamilyInet6
		sp.Netmask = netip.PrefixFrom(maskBase(sp.IPv6), s.Netmask)
		for _, m := range s.Match {
			sp.Match = append(sp.Match, dataplane.Match{Protocol: uint8(m.Protocol), Addr: m.Addr, PortLo: m.PortLo, PortHi: m.PortHi})
		}
		for j := range s.RealServers {
			r := &s.RealServers[j]
			rs := dataplane.RealServerSpec{
				Addr:           r.Address.Addr().Unmap(),
				Port:           r.Address.Port(),
				Weight:         r.Weight,
				UpperThreshold: r.UpperThreshold,
				LowerThreshold: r.LowerThreshold,
				Method:         method(r.Method),
			}
			if !r.MAC.IsZero() {
				rs.MAC = r.MAC.HardwareAddr()
			}
			sp.RealServers = append(sp.RealServers, rs)
		}
		specs = append(specs, sp)
	}
	return specs
}

func maskBase(v6 bool) netip.Addr {
	if v6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

func method(m config.Method) dataplane.Method {
	switch m {
	case config.MethodNAT:
		return dataplane.MethodNAT
	case config.MethodTUN:
		return dataplane.MethodTUN
	}
	return dataplane.MethodDR
}

// NewDirector builds a Director from a validated config and applies its services.
func NewDirector(c *config.Config, log *slog.Logger) (*dataplane.Director, error) {
	d, err := dataplane.New(DirectorOptions(c, log))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.File, err)
	}
	if err := d.Apply(Services(c)); err != nil {
		return nil, fmt.Errorf("%s: %w", c.File, err)
	}
	return d, nil
}
