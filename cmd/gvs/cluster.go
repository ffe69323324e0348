package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/gvs-lb/gvs/internal/cluster"
	"github.com/gvs-lb/gvs/internal/config"
)

const clusterHelp = `Usage: gvs cluster bird-config [-c FILE] [--ospf] [flags]

Prints a complete, commented BIRD 2 configuration for this director (docs/cluster.md §8):
BIRD learns the VIP routes gvs puts into kernel table announce_table and exports exactly
the configured VIPs to the router — by eBGP with BFD (the default) or OSPF (--ospf).
Addresses, VIPs, table and device come from the gvs config; flags override them.

Examples:
  gvs cluster bird-config -c /etc/gvs/gvs.toml --router 198.18.0.1 --router-as 65000 --as 65001 > /etc/bird/bird.conf
  gvs cluster bird-config -c /etc/gvs/gvs.toml --ospf --interface eth0`

// addrList is a repeatable address flag.
type addrList []netip.Addr

func (l *addrList) String() string { return fmt.Sprint(*l) }

func (l *addrList) Set(s string) error {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return err
	}
	*l = append(*l, a.Unmap())
	return nil
}

// addrFlag is an optional address flag.
type addrFlag struct{ a netip.Addr }

func (f *addrFlag) String() string { return f.a.String() }

func (f *addrFlag) Set(s string) error {
	a, err := netip.ParseAddr(s)
	f.a = a.Unmap()
	return err
}

func cmdCluster(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stderr, clusterHelp)
		if len(args) == 0 {
			return fmt.Errorf("%w: cluster: a subcommand is required (bird-config)", errUsage)
		}
		return errHelp
	}
	if args[0] != "bird-config" {
		return fmt.Errorf("%w: cluster: unknown subcommand %q (want bird-config)", errUsage, args[0])
	}
	fs := newFlags("cluster bird-config", clusterHelp, stderr)
	path := fs.String("c", "", "gvs config file: VIPs from [[service]], addresses from [director], table and device from [cluster]")
	ospf := fs.Bool("ospf", false, "announce by OSPF instead of BGP")
	noBFD := fs.Bool("no-bfd", false, "leave BFD out (a silent director is then found by the hold timer)")
	var router, router6, local, local6, routerID addrFlag
	fs.Var(&router, "router", "the router's address (BGP neighbour)")
	fs.Var(&router6, "router6", "the router's IPv6 address, for IPv6 VIPs")
	fs.Var(&local, "local", "this director's address toward the router (default: [director] address)")
	fs.Var(&local6, "local6", "this director's IPv6 address toward the router (default: [director] address6)")
	fs.Var(&routerID, "router-id", "BIRD's router id (default: the local IPv4 address)")
	routerAS := fs.Uint("router-as", 0, "the router's AS number")
	localAS := fs.Uint("as", 0, "this director's AS number (the same on every director)")
	var vips addrList
	fs.Var(&vips, "vip", "a VIP to announce (repeatable; default: every [[service]] VIP)")
	iface := fs.String("interface", "", "interface toward the router (default: [cluster] sync_interface, else [director] interface)")
	nodeID := fs.String("node-id", "", "name in the header comment (default: [cluster] node_id, else the host name)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	bc := cluster.BirdConfig{Table: 200, Proto: 240, Device: "gvs-vip", OSPF: *ospf, NoBFD: *noBFD,
		RouterAS: uint32(*routerAS), LocalAS: uint32(*localAS)}
	if *path != "" {
		c, err := config.Load(*path)
		if err != nil {
			return err
		}
		fromConfig(&bc, c)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["vip"] {
		bc.VIPs = vips
	}
	for _, f := range []struct {
		name string
		src  netip.Addr
		dst  *netip.Addr
	}{{"router", router.a, &bc.Router}, {"router6", router6.a, &bc.Router6}, {"local", local.a, &bc.Local}, {"local6", local6.a, &bc.Local6}} {
		if set[f.name] {
			*f.dst = f.src
		}
	}
	if *iface != "" {
		bc.Interface = *iface
	}
	if *nodeID != "" {
		bc.NodeID = *nodeID
	}
	bc.RouterID = bc.Local
	if set["router-id"] {
		bc.RouterID = routerID.a
	}
	if bc.NodeID == "" {
		bc.NodeID, _ = os.Hostname()
	}
	if !bc.OSPF && bc.Router.IsValid() && !set["as"] {
		return fmt.Errorf("%w: cluster bird-config: --as is required for BGP (the director's AS; --router-as the router's)", errUsage)
	}
	return bc.Write(stdout)
}

// fromConfig fills bc from a gvs config: every service VIP, the director's addresses
// and interface, and the [cluster] announcement settings.
func fromConfig(bc *cluster.BirdConfig, c *config.Config) {
	for _, s := range c.Services {
		if a := s.Addr.Addr(); a.IsValid() && !slices.Contains(bc.VIPs, a) {
			bc.VIPs = append(bc.VIPs, a)
		}
	}
	bc.Local, bc.Local6 = c.Director.Address, c.Director.Address6
	bc.Interface = c.Director.Interface
	if cl := c.Cluster; cl.Enabled {
		bc.Table, bc.Proto, bc.Device, bc.NodeID = cl.AnnounceTable, cl.AnnounceProto, cl.AnnounceDevice, cl.NodeID
		if cl.SyncInterface != "" {
			bc.Interface = cl.SyncInterface
		}
	}
	bc.Interface = strings.TrimSpace(bc.Interface)
}
