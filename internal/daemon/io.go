package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afpacket"
	"github.com/gvs-lb/gvs/dataplane/afxdp"
	"github.com/gvs-lb/gvs/internal/config"
)

// The choice of the live data path's backend ([director] io, issue 11 point 2).
//
//   - io = "afpacket": AF_PACKET rings (Deps.OpenLinks).
//   - io = "afxdp": AF_XDP (Deps.OpenXDP), zero-copy where the driver can, copy mode
//     otherwise. If the kernel or driver refuses AF_XDP, gvs warns and runs on
//     AF_PACKET; an interface with someone else's XDP program is refused (the
//     operator asked for XDP and another program owns the hook).
//   - io = "auto": AF_XDP only where the driver runs XDP natively with zero-copy
//     sockets; anywhere else AF_PACKET, which is faster than AF_XDP in copy mode (on
//     veth AF_XDP measured 0.74× AF_PACKET's maximum rate at 1.5× its CPU per
//     packet, issue 11).
//
// The choice is made once, when gvs starts: a reload does not change the backend.

// An AF_XDP socket takes the daemon's filter updates (its XDP maps) and reports
// its counters like an AF_PACKET ring (per-link metrics).
var (
	_ FilterSetter = (*afxdp.Socket)(nil)
	_ linkStatser  = (*afxdp.Socket)(nil)
)

// XDPOptions are what the daemon asks of Deps.OpenXDP.
type XDPOptions struct {
	// NativeZeroCopy accepts only driver-mode XDP with zero-copy sockets (io =
	// "auto"); an interface without them is refused with ErrNoZeroCopy or the
	// kernel's error.
	NativeZeroCopy bool
	// ReplaceForeign replaces someone else's XDP program (xdp_replace_foreign).
	ReplaceForeign bool
}

// PacketOptions are the [director] settings of AF_PACKET rings (Deps.OpenLinks).
type PacketOptions struct {
	// Spin is rx_spin: how long a reader polls its ring after a batch before it
	// sleeps (afpacket.Config.Spin).
	Spin time.Duration
}

// ErrNoZeroCopy is returned by the live OpenXDP for io = "auto" on an interface
// known to have no zero-copy AF_XDP (veth), before trying.
var ErrNoZeroCopy = errors.New("no zero-copy AF_XDP")

// liveOpenXDP is the live Deps.OpenXDP: AF_XDP sockets on every receive queue of
// ifi (afxdp.Open), logging attach and detach to log.
func liveOpenXDP(log *slog.Logger) func(ifi Interface, f *afpacket.Filter, o XDPOptions) ([]dataplane.Link, error) {
	return func(ifi Interface, f *afpacket.Filter, o XDPOptions) ([]dataplane.Link, error) {
		c := afxdp.Config{Filter: f, ReplaceForeign: o.ReplaceForeign, Logger: log}
		if o.NativeZeroCopy {
			if drv, err := afxdp.Driver(ifi.Name); err == nil && drv == "veth" {
				return nil, fmt.Errorf("%w: driver veth runs AF_XDP in copy mode only", ErrNoZeroCopy)
			}
			c.Attach, c.Bind = afxdp.AttachDriver, afxdp.BindZeroCopy
		}
		dev, err := afxdp.Open(ifi.Name, c)
		if err != nil {
			return nil, err
		}
		return dev.Links(), nil
	}
}

// openLinks opens the data path's links with the backend cfg's io asks for and
// logs which one and why.
func (d *Daemon) openLinks(deps Deps, cfg *config.Config, f *afpacket.Filter) ([]dataplane.Link, error) {
	io := cfg.Director.IO
	if io == "" {
		io = config.IOAuto
	}
	packet := func(why string, args ...any) ([]dataplane.Link, error) {
		links, err := deps.OpenLinks(d.ifi, f, PacketOptions{Spin: cfg.Director.RxSpin})
		if err == nil {
			args = append([]any{"interface", d.ifi.Name, "io", io, "why", why, "links", len(links)}, args...)
			if cfg.Director.RxSpin > 0 {
				args = append(args, "rx_spin", cfg.Director.RxSpin)
			}
			d.log.Info("data path: AF_PACKET", args...)
		}
		return links, err
	}
	if io == config.IOAFPacket {
		return packet(`io = "afpacket"`)
	}
	if deps.OpenXDP == nil {
		return packet("no AF_XDP opener in this daemon's dependencies")
	}
	links, err := deps.OpenXDP(d.ifi, f, XDPOptions{NativeZeroCopy: io == config.IOAuto, ReplaceForeign: cfg.Director.XDPReplaceForeign})
	switch {
	case err == nil:
		why := `io = "afxdp"`
		if io == config.IOAuto {
			why = "the driver runs XDP natively with zero-copy sockets"
		}
		args := []any{"interface", d.ifi.Name, "io", io, "why", why, "queues", len(links)}
		if len(links) > 0 {
			if s, ok := links[0].(*afxdp.Socket); ok {
				dev := s.Device()
				args = append(args, "driver", dev.Driver(), "xdp_mode", dev.Mode(), "zerocopy", dev.ZeroCopy())
			}
		}
		if cfg.Director.RxSpin > 0 {
			args = append(args, "rx_spin", "not used: it applies to AF_PACKET rings")
		}
		d.log.Info("data path: AF_XDP", args...)
		return links, nil
	case io == config.IOAFXDP && errors.Is(err, afxdp.ErrForeignProgram):
		return nil, err
	case io == config.IOAFXDP:
		d.log.Warn("AF_XDP refused by the kernel or driver; falling back to AF_PACKET", "interface", d.ifi.Name, "err", err)
		return packet("AF_XDP was refused", "xdp_err", err.Error())
	default:
		return packet("no native zero-copy AF_XDP on this interface", "detail", err.Error())
	}
}
