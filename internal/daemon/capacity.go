package daemon

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/gvs-lb/gvs/dataplane/afpacket"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/ipvs"
)

// ErrTooManyVIPs is returned (wrapped, with the counts and the backend) when a
// configuration has more VIPs than the data-path backend can receive: gvs check,
// gvs adm and reload refuse it rather than run a director that silently drops the
// traffic of some of its VIPs.
var ErrTooManyVIPs = errors.New("more VIPs than the data-path backend can receive")

// capacity is what a data-path backend can receive.
type capacity struct {
	backend string
	maxVIPs int // distinct VIP addresses, IPv4 and IPv6 together; 0: any number
	why     string
}

// linkCapacity is the capacity of the backend cfg's director runs on. Each backend
// package states its own limit (afpacket.MaxVIPs: none, its filter turns coarse
// instead); a backend with a map of VIPs says how large the map is.
func linkCapacity(cfg *config.Config) capacity {
	return capacity{backend: "afpacket", maxVIPs: afpacket.MaxVIPs()}
}

// check refuses services with more distinct VIPs than c allows.
func (c capacity) check(services []ipvs.Service) error {
	if c.maxVIPs <= 0 {
		return nil
	}
	if n := countVIPs(services); n > c.maxVIPs {
		why := ""
		if c.why != "" {
			why = " (" + c.why + ")"
		}
		return fmt.Errorf("%w: %d VIPs, and the %s backend receives at most %d%s", ErrTooManyVIPs, n, c.backend, c.maxVIPs, why)
	}
	return nil
}

// countVIPs counts the distinct addresses the links must receive as VIPs: the
// services' addresses and those their fwmark matches name (filterFor's VIPs).
func countVIPs(services []ipvs.Service) int {
	seen := map[netip.Addr]struct{}{}
	for _, s := range services {
		if a := s.Addr.Addr(); a.IsValid() {
			seen[a.Unmap()] = struct{}{}
		}
		for _, m := range s.Match {
			if m.Addr.IsValid() {
				seen[m.Addr.Unmap()] = struct{}{}
			}
		}
	}
	return len(seen)
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
	if f == nil || f.Exact() {
		return "exact"
	}
	return "director_mac"
}
