package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/gvs-lb/gvs/internal/daemon"
)

const runHelp = `Usage: gvs run -c FILE [--workers N] [--log-format text|json]

Runs a director in the foreground on the config's [director] interface: checks the
host first (interface up, IP forwarding off on it), owns the VIPs from userspace
(answers ARP/NDP, announces them with gratuitous ARP; the VIP is never added to a
kernel interface) and forwards their traffic with the configured methods.
SIGHUP reloads the config keeping every connection; SIGTERM or SIGINT stops cleanly.
SIGUSR1, SIGUSR2 and keepalived's JSON signal (36) write the VRRP data, statistics
and a JSON dump beside the control socket (gvs.vrrp.data, .stats, .json), and log
the path.

Examples:
  gvs run -c /etc/gvs/gvs.toml
  ip netns exec lab-dir1 gvs run -c lab.toml --workers 1`

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", runHelp, stderr)
	path := fs.String("c", "", "config file (required)")
	workers := fs.Int("workers", 0, "AF_PACKET rings in the fanout group (0 = one per CPU)")
	format := fs.String("log-format", "text", "log format: text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("%w: run: -c FILE is required", errUsage)
	}
	var h slog.Handler
	switch *format {
	case "text":
		h = slog.NewTextHandler(stderr, nil)
	case "json":
		h = slog.NewJSONHandler(stderr, nil)
	default:
		return fmt.Errorf("%w: run: --log-format must be text or json", errUsage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	// keepalived's dump signals: SIGUSR1 its data, SIGUSR2 its statistics, and its
	// JSON signal (keepalived --signum=JSON: SIGRTMIN+2, 36 on Linux).
	usr := make(chan os.Signal, 4)
	signal.Notify(usr, syscall.SIGUSR1, syscall.SIGUSR2, syscall.Signal(36))
	defer signal.Stop(usr)
	dump := make(chan string, 4)
	go func() {
		for sig := range usr {
			kind := daemon.DumpJSON
			switch sig {
			case syscall.SIGUSR1:
				kind = daemon.DumpData
			case syscall.SIGUSR2:
				kind = daemon.DumpStats
			}
			select {
			case dump <- kind:
			default:
			}
		}
	}()
	log := slog.New(h)
	deps := daemon.LiveDeps(*workers, log)
	err := daemon.Run(ctx, daemon.Options{ConfigPath: *path, Logger: log, Deps: &deps, Reload: reload, Dump: dump, Version: version})
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return nil
}
