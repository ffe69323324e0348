package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/gvs-lb/gvs/internal/config"
)

// hostMode is how a config uses the host (docs/vrrp.md "VRRP-only and gateway
// hosts").
type hostMode uint8

const (
	// modeDirector: services on a data-path interface whose IP forwarding is off,
	// so that the kernel never forwards a second copy of what gvs forwards.
	modeDirector hostMode = iota
	// modeVRRPOnly: [[vrrp]] without [[service]], as keepalived for a service on
	// the host (seed 004): no data path, no links, no forwarding check; the kernel
	// handles the VIPs, which VRRP adds and removes.
	modeVRRPOnly
	// modeGuarded: services on a host that routes (forwarding on), allowed because
	// the ingress guard (ingress_drop: an nftables netdev ingress rule that drops
	// frames to the VIPs after gvs's packet tap saw them) keeps VIP frames from
	// the kernel's IP stack, so it cannot forward them. NAT is refused there: the
	// real servers' replies are addressed to clients, not to a VIP, and the guard
	// does not cover them.
	modeGuarded
)

func (m hostMode) String() string {
	switch m {
	case modeVRRPOnly:
		return "VRRP only (no data path)"
	case modeGuarded:
		return "director on a routing host (VIP frames guarded from the kernel)"
	}
	return "director"
}

// GuardedHost is a Host that can check an interface for a director whose VIP
// frames the ingress guard keeps from the kernel: everything Check checks but IP
// forwarding, and that the guard can be installed (nft is there).
type GuardedHost interface {
	CheckGuarded(ifname string) (Interface, error)
}

// CheckGuarded implements GuardedHost.
func (h hostChecker) CheckGuarded(ifname string) (Interface, error) {
	ifi, err := h.checkBasics(ifname)
	if err != nil {
		return Interface{}, err
	}
	if err := nftAvailable(); err != nil {
		return Interface{}, fmt.Errorf("%w: ingress_drop needs nft to guard the VIPs of a routing host: %v", ErrHost, err)
	}
	return interfaceOf(ifi), nil
}

// guardable reports whether cfg's VIP traffic can be kept from the kernel by the
// ingress guard, and if not, why.
func guardable(cfg *config.Config) (bool, string) {
	switch {
	case !cfg.Director.IngressDrop:
		return false, "set ingress_drop = true in [director] so that the kernel never sees frames to the VIPs"
	case hasNAT(cfg):
		return false, "NAT real servers' replies are routed by the kernel too (the ingress guard covers frames to the VIPs only): use DR or TUN on a host that routes"
	}
	return true, ""
}

// modeOf returns how cfg uses the host.
func modeOf(cfg *config.Config) hostMode {
	if len(cfg.Services) == 0 && len(cfg.VRRP) > 0 {
		return modeVRRPOnly
	}
	return modeDirector
}

// checkHost checks the host for cfg and returns the data-path interface (the zero
// Interface, or the one named, for VRRP only). A director on a host that routes is
// accepted when its VIPs can be guarded: the guard is then installed before
// anything else runs.
func (d *Daemon) checkHost(cfg *config.Config) (Interface, error) {
	d.mode = modeOf(cfg)
	host := d.deps.Host
	if d.mode == modeVRRPOnly {
		d.log.Info("no [[service]]: VRRP only — no data path, no forwarding check; virtual addresses go on the kernel while their instance is MASTER",
			"instances", len(cfg.VRRP))
		if cfg.Director.Interface == "" {
			return Interface{}, nil
		}
		ifi, err := host.Interface(cfg.Director.Interface)
		if err != nil {
			return Interface{}, fmt.Errorf("%w: [director] interface %q: %v", ErrHost, cfg.Director.Interface, err)
		}
		return ifi, nil
	}
	ifi, err := host.Check(cfg.Director.Interface)
	if err == nil || !strings.Contains(err.Error(), "forwarding is on") {
		return ifi, err
	}
	ok, why := guardable(cfg)
	gh, isGuarded := host.(GuardedHost)
	if !ok || !isGuarded || d.deps.NewGuard == nil {
		if why == "" {
			why = "this director has no ingress guard"
		}
		return Interface{}, fmt.Errorf("%w; or, to run on a host that routes: %s", err, why)
	}
	if ifi, err = gh.CheckGuarded(cfg.Director.Interface); err != nil {
		return Interface{}, err
	}
	d.mode = modeGuarded
	// Guard now, before the links open and before the kernel could forward one
	// frame: the controller keeps the guard up to date from here on.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vips := guardVIPs(cfg)
	if err := d.deps.NewGuard(ifi.Name).Install(ctx, vips); err != nil {
		return Interface{}, fmt.Errorf("%w: IP forwarding is on for %s and the ingress guard that would keep the VIPs from the kernel failed: %v", ErrHost, ifi.Name, err)
	}
	d.log.Info("IP forwarding is on: the ingress guard keeps the VIP frames from the kernel, so it cannot forward them", "interface", ifi.Name, "vips", vips)
	return ifi, nil
}

// guardVIPs returns the VIPs of cfg's services, sorted.
func guardVIPs(cfg *config.Config) []netip.Addr {
	set := serviceVIPs(cfg)
	out := make([]netip.Addr, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// nftAvailable reports whether the ingress guard's tool is installed.
func nftAvailable() error {
	if _, err := exec.LookPath("nft"); err != nil {
		return errors.New("nft not found in PATH (install nftables)")
	}
	return nil
}

// Plan says, one line each, what gvs run will do with cfg beyond its services:
// how it uses the host and, for every VRRP instance, which virtual addresses gvs
// serves itself and which go on the kernel while the instance is MASTER (gvs check
// prints it).
func Plan(cfg *config.Config) []string {
	var out []string
	if len(cfg.VRRP) == 0 {
		return nil // the services say it all
	}
	switch modeOf(cfg) {
	case modeVRRPOnly:
		out = append(out, fmt.Sprintf("VRRP only: %d instance(s), no [[service]], so no data path and no IP forwarding check", len(cfg.VRRP)))
	default:
		line := fmt.Sprintf("director on %s: IP forwarding must be off there", cfg.Director.Interface)
		if ok, _ := guardable(cfg); ok {
			line += ", or on with the ingress guard (ingress_drop) keeping VIP frames from the kernel"
		}
		out = append(out, line)
	}
	own := serviceVIPs(cfg)
	for _, v := range cfg.VRRP {
		var parts []string
		for _, a := range slices.Concat(v.VIPs, v.ExcludedVIPs) {
			if own[a.Addr()] {
				parts = append(parts, a.Addr().String()+" served by gvs (a [[service]] address)")
				continue
			}
			if a.Dev == "" {
				a.Dev = v.Interface
			}
			parts = append(parts, a.String()+" on the kernel while MASTER")
		}
		for _, rt := range v.VirtualRoutes {
			parts = append(parts, "route "+rt.String()+" on the kernel while MASTER")
		}
		for _, ru := range v.VirtualRules {
			parts = append(parts, "rule "+ru.String()+" on the kernel while MASTER")
		}
		out = append(out, fmt.Sprintf("vrrp %s (VRID %d on %s, priority %d): %s", v.Name, v.VirtualRouterID, v.Interface, v.Priority, strings.Join(parts, "; ")))
	}
	return out
}
