package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afpacket"
	"github.com/gvs-lb/gvs/health"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/kaddr"
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
	// Dump receives DumpData, DumpStats or DumpJSON for every VRRP dump request
	// (SIGUSR1, SIGUSR2 and keepalived's JSON signal in gvs run); each is written
	// to a file beside the control socket and the path logged (vrrpdump.go).
	Dump <-chan string
	// Version is gvs's version, for gvs_build_info; "": the module's.
	Version string
	// Notify tells the service manager about the director's state with
	// sd_notify(3) lines ("READY=1"); nil: systemd's notification socket
	// ($NOTIFY_SOCKET), nothing when that is not set.
	Notify func(state string) error
}

// sdNotify sends state to systemd's notification socket, if there is one.
func sdNotify(state string) error {
	_, err := sd.SdNotify(false, state)
	return err
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
	notifyFn := o.Notify
	if notifyFn == nil {
		notifyFn = sdNotify
	}
	notify := func(state string) {
		if err := notifyFn(state); err != nil {
			log.Warn("telling the service manager", "state", state, "err", err)
		}
	}
	// STOPPING=1 once, when the stop begins (ctx ends) or Run returns.
	var stopping sync.Once
	stopped := func() { stopping.Do(func() { notify("STOPPING=1") }) }
	defer stopped()
	defer context.AfterFunc(ctx, stopped)()
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
	d.metrics.SetVersion(o.Version)
	// Ready once the workers pump the links: frames arriving from then on are served.
	d.ready = func() { notify("READY=1") }
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reloaded := make(chan struct{})
	go func() {
		defer close(reloaded)
		for {
			select {
			case <-ctx.Done():
				return
			case kind := <-o.Dump:
				if path, err := d.DumpVRRP(kind); err != nil {
					log.Warn("VRRP dump", "kind", kind, "err", err)
				} else {
					log.Info("VRRP dump written", "kind", kind, "file", path)
				}
			case <-o.Reload:
				notify(reloading())
				// Loading reads and parses the file: not the controller's work.
				cfg, err := config.Load(o.ConfigPath)
				if err == nil {
					err = CheckMetricsWeb(cfg)
				}
				if err == nil {
					err = d.Reload(ctx, cfg)
				}
				if err != nil && ctx.Err() == nil {
					log.Error("reload failed; keeping the running configuration", "err", err)
				}
				d.metrics.ConfigLoaded(err == nil, d.clock.Now())
				if err != nil {
					notify("READY=1\nSTATUS=reload failed, running the previous configuration: " + oneLine(err.Error()))
				} else {
					notify("READY=1\nSTATUS=reloaded " + o.ConfigPath)
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
		Logger:   log,
		HashSeed: rand.Uint64(), // per start, as the kernel's per-boot seed
		Host:     hostChecker{procSys: "/proc/sys", procRoute: "/proc/net/route"},
		OpenLinks: func(ifi Interface, f *afpacket.Filter, o PacketOptions) ([]dataplane.Link, error) {
			fanout := uint16(os.Getpid())
			var links []dataplane.Link
			for i := 0; i < workers; i++ {
				ring, err := afpacket.Open(ifi.Name, afpacket.Config{FanoutID: fanout, FanoutAlone: workers == 1, Filter: f, Spin: o.Spin})
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
		NewGuard:     func(ifname string) Guard { return newIngressGuard(ifname, log) },
		NewAnnouncer: openGARP,
		NewHealth: func(notify func(health.Transition)) HealthRunner {
			return health.NewMonitor(health.Options{Logger: log, Notify: notify})
		},
		OpenVRRP:    vrrp.OpenTransport,
		KernelAddrs: kaddr.Open,
		Names:       LoadNames("/etc/hosts", "/etc/services"),
		Cluster:     liveClusterDeps(),
	}
}

// oneLine joins a multi-line message (a config's errors) for a STATUS= line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
