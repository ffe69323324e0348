package daemon

import (
	"fmt"
	"log/slog"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/ipvs"
)

// DirectorOptions maps the [director] table onto the Director's options.
func DirectorOptions(c *config.Config, log *slog.Logger) dataplane.Options {
	d := &c.Director
	o := dataplane.DefaultOptions()
	o.MAC = d.MAC.HardwareAddr() // nil when unset
	o.GatewayMAC = d.GatewayMAC.HardwareAddr()
	o.Addr4, o.Addr6 = d.Address, d.Address6
	o.MTU = d.MTU
	o.ConnMax, o.ConnShards = d.ConnMax, d.ConnShards
	o.ConnUnconfirmedMax, o.ConnUnconfirmedPerService = d.ConnUnconfirmedMax, d.ConnUnconfirmedPerService
	o.DropEntry, o.SecureTCP, o.AMemThresh = d.Sysctl.DropEntry, d.Sysctl.SecureTCP, d.Sysctl.AMemThresh
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
	o.Defense = defenseOptions(&d.Defense)
	o.Logger = log
	return o
}

// Services returns the [[service]] tables as the Director runs them: each
// service's model with its real servers in file order.
func Services(c *config.Config) []ipvs.Service {
	out := make([]ipvs.Service, len(c.Services))
	for i := range c.Services {
		out[i] = c.Services[i].IPVS()
	}
	return out
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
