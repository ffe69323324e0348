package lab

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"
)

// routeReader dumps the routes of one namespace through a netlink socket made
// there.
type routeReader struct{ c *rtnetlink.Conn }

func openRouteReader(ns string) (*routeReader, error) {
	var c *rtnetlink.Conn
	err := InNetns(ns, func() (err error) {
		c, err = rtnetlink.Dial(nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("lab: rtnetlink in %s: %w", ns, err)
	}
	return &routeReader{c: c}, nil
}

// nextHops returns the gateways of the main table's route to dst/32, sorted;
// none if there is no such route.
func (r *routeReader) nextHops(dst netip.Addr) ([]netip.Addr, error) {
	rs, err := r.c.Route.List()
	if err != nil {
		return nil, fmt.Errorf("lab: list routes: %w", err)
	}
	var hops []netip.Addr
	for _, m := range rs {
		if m.Family != unix.AF_INET || m.DstLength != 32 || m.Attributes.Table != unix.RT_TABLE_MAIN {
			continue
		}
		if d, ok := netip.AddrFromSlice(m.Attributes.Dst); !ok || d.Unmap() != dst {
			continue
		}
		if g, ok := netip.AddrFromSlice(m.Attributes.Gateway); ok {
			hops = append(hops, g.Unmap())
		}
		for _, nh := range m.Attributes.Multipath {
			if g, ok := netip.AddrFromSlice(nh.Gateway); ok {
				hops = append(hops, g.Unmap())
			}
		}
	}
	slices.SortFunc(hops, netip.Addr.Compare)
	return hops, nil
}

func (r *routeReader) Close() error { return r.c.Close() }
