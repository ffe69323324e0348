package daemon

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afpacket"
	"github.com/gvs-lb/gvs/dataplane/afxdp"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/ipvs"
)

// ErrTooManyVIPs is returned (wrapped, with the counts and the backend) when a
// configuration has more VIPs than the data-path backend can receive: gvs check,
// gvs adm and reload refuse it rather than run a director that silently drops the
// traffic of some of its VIPs.
var ErrTooManyVIPs = errors.New("more VIPs than the data-path backend can receive")

// capacity is what a data-path backend can receive: how many distinct addresses of
// each family it tells apart, VIPs and NAT real servers together (the links' filter:
// filterFor). 0 means any number.
type capacity struct {
	backend    string
	max4, max6 int
	why        string // what the limit is, for the message
}

// Capacities of the backends. Each backend package states its own limit:
// afpacket.MaxVIPs (none: its filter turns coarse instead), afxdp the size of its XDP
// program's address maps (DefaultMaxAddrs per family, the daemon opens it with the
// default).
func afpacketCapacity() capacity {
	return capacity{backend: "afpacket", max4: afpacket.MaxVIPs(), max6: afpacket.MaxVIPs()}
}

func afxdpCapacity() capacity {
	return capacity{backend: "afxdp", max4: afxdp.DefaultMaxAddrs, max6: afxdp.DefaultMaxAddrs,
		why: `the size of its XDP program's address map of each family; io = "afpacket" takes any number`}
}

// linkCapacity is the capacity gvs check and New hold cfg to before any link is
// open: io = "afxdp" asks for AF_XDP and its maps' size; "auto" and "afpacket" can
// always run on AF_PACKET, which has no limit. Once the links are open,
// capacityOf says what the running backend takes.
func linkCapacity(cfg *config.Config) capacity {
	if cfg.Director.IO == config.IOAFXDP {
		return afxdpCapacity()
	}
	return afpacketCapacity()
}

// xdpLink is an AF_XDP socket (afxdp.Socket), told apart by its Device.
type xdpLink interface{ Device() *afxdp.Device }

// capacityOf is the capacity of the backend links run on.
func capacityOf(links []dataplane.Link) capacity {
	if len(links) > 0 {
		if _, ok := links[0].(xdpLink); ok {
			return afxdpCapacity()
		}
	}
	return afpacketCapacity()
}

// check refuses services with more distinct addresses of a family than c allows.
func (c capacity) check(services []ipvs.Service) error {
	if c.max4 <= 0 && c.max6 <= 0 {
		return nil
	}
	return c.checkCounts(countAddrs(services))
}

// checkCounts is check for a table of n4 IPv4 and n6 IPv6 addresses (countAddrs).
func (c capacity) checkCounts(n4, n6 int) error {
	if c.max4 <= 0 && c.max6 <= 0 {
		return nil
	}
	for _, f := range []struct {
		family string
		n, max int
	}{{"IPv4", n4, c.max4}, {"IPv6", n6, c.max6}} {
		if f.max > 0 && f.n > f.max {
			why := ""
			if c.why != "" {
				why = " (" + c.why + ")"
			}
			return fmt.Errorf("%w: %d %s VIPs and NAT real servers, and the %s backend receives at most %d%s",
				ErrTooManyVIPs, f.n, f.family, c.backend, f.max, why)
		}
	}
	return nil
}

// countAddrs counts the distinct addresses of each family the links must receive:
// the services' VIPs, those their fwmark matches name, and the NAT real servers
// (filterFor's lists; an address in both counts once).
func countAddrs(services []ipvs.Service) (n4, n6 int) {
	f := filterFor(services)
	seen := make(map[netip.Addr]struct{}, len(f.VIPs)+len(f.NATRealServers))
	for _, list := range [][]netip.Addr{f.VIPs, f.NATRealServers} {
		for _, a := range list {
			a = a.Unmap()
			if _, dup := seen[a]; dup {
				continue
			}
			seen[a] = struct{}{}
			if a.Is4() {
				n4++
			} else {
				n6++
			}
		}
	}
	return n4, n6
}

// CheckLinks refuses a configuration whose VIPs its data-path backend cannot
// receive, saying why (gvs check; a running director refuses the same on reload and
// gvs adm).
func CheckLinks(cfg *config.Config) error {
	if err := linkCapacity(cfg).check(Services(cfg)); err != nil {
		return fmt.Errorf("%s: %w", cfg.File, err)
	}
	return nil
}

// filterMode says which socket filter f compiles to (afpacket.Filter): the exact
// one, or the coarse one that passes the director's MACs and leaves the rest to the
// Director (not_ours).
func filterMode(f *afpacket.Filter) string {
	switch {
	case f == nil:
		return "exact"
	case len(f.VIPs)+len(f.NATRealServers) > 2*afpacket.ExactMaxInstructions:
		// Exact counts the distinct addresses (an IPv4 address and its
		// IPv4-mapped form are one) up to one past what an exact filter holds,
		// in a map: at 10,000 VIPs that was the most a gvs adm command's filter
		// cost. Half of these lists are distinct at least, too many either way.
		return "director_mac"
	case f.Exact():
		return "exact"
	}
	return "director_mac"
}
