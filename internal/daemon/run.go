package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afpacket"
	"github.com/gvs-lb/gvs/health"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/vrrp"
)

// Options configure Run.
type Options struct {
	ConfigPath string
	Logger     *slog.Logger // nil: discard
	// Deps are the director's dependencies; nil: LiveDeps(Workers, Logger).
	Deps *Deps
	// Workers is the number of AF_PACKET rings (and goroutines) in the fanout group
	// of the live links; 0 = one per CPU.
	Workers int
	// Reload receives a value for every reload request (SIGHUP in gvs run).
	Reload <-chan struct{}
}

// Run runs a director until ctx is cancelled: it loads the config, builds the
// Daemon (New) and runs it, reloading the config file on every value from
// o.Reload. A file that does not load is refused with its file:line errors and
// the director keeps running as it was.
func Run(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return err
	}
	deps := o.Deps
	if deps == nil {
		live := LiveDeps(o.Workers, log)
		deps = &live
	}
	d, err := New(cfg, *deps)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reloaded := make(chan struct{})
	go func() {
		defer close(reloaded)
		for {
			select {
			case <-ctx.Done():
				return
			case <-o.Reload:
				// Loading reads and parses the file: not the controller's work.
				cfg, err := config.Load(o.ConfigPath)
				if err == nil {
					err = d.Reload(ctx, cfg)
				}
				if err != nil && ctx.Err() == nil {
					log.Error("reload failed; keeping the running configuration", "err", err)
				}
			}
		}
	}()
	err = d.Run(ctx)
	cancel()
	<-reloaded
	return err
}

// LiveDeps are the dependencies of a director on a real host: AF_PACKET rings
// (workers of them in one fanout group, 0 = one per CPU) with the VIP filter, the
// kernel's neighbour table and ARP/NDP, the nft ingress guard, gratuitous ARP,
// sysctls under /proc/sys, raw VRRP sockets and /etc/hosts and /etc/services for
// gvs adm's names.
func LiveDeps(workers int, log *slog.Logger) Deps {
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	return Deps{
		Logger: log,
		Host:   hostChecker{procSys: "/proc/sys", procRoute: "/proc/net/route"},
		OpenLinks: func(ifi Interface, f *afpacket.Filter) ([]dataplane.Link, error) {
			fanout := uint16(os.Getpid())
			var links []dataplane.Link
			for i := 0; i < workers; i++ {
				ring, err := afpacket.Open(ifi.Name, afpacket.Config{FanoutID: fanout, Filter: f})
				if err != nil {
					for _, l := range links {
						l.Close()
					}
					return nil, fmt.Errorf("ring %d: %w", i, err)
				}
				links = append(links, ring)
			}
			return links, nil
		},
		OpenXDP: liveOpenXDP(log),
		NewResolver: func(ifi Interface) (Resolver, error) {
			k, err := net.InterfaceByName(ifi.Name)
			if err != nil {
				return nil, err
			}
			return &neighbors{ifi: k, procARP: "/proc/net/arp", timeout: 500 * time.Millisecond}, nil
		},
		NewGuard:     func(ifname string) Guard { return newIngressGuard(ifname) },
		NewAnnouncer: openGARP,
		NewHealth: func(notify func(health.Transition)) HealthRunner {
			return health.NewMonitor(health.Options{Logger: log, Notify: notify})
		},
		OpenVRRP: vrrp.OpenTransport,
		Names:    LoadNames("/etc/hosts", "/etc/services"),
	}
}
