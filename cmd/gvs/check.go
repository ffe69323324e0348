package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/daemon"
)

const checkHelp = `Usage: gvs check -c FILE

Validates a config file without running anything: every problem is printed with its
file:line and field, and the exit code is 1 if there was any.

Example:
  gvs check -c /etc/gvs/gvs.toml`

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", checkHelp, stderr)
	path := fs.String("c", "", "config file (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return fmt.Errorf("%w: check: -c FILE is required", errUsage)
	}
	c, err := config.Load(*path)
	if err != nil {
		return err
	}
	d, err := daemon.NewDirector(c, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	// What the data-path backend cannot receive is refused too; replay, which has
	// no backend, does not check it.
	if err := daemon.CheckLinks(c); err != nil {
		return err
	}
	if err := daemon.CheckMetricsWeb(c); err != nil {
		return err
	}
	if err := daemon.CheckStatusWeb(c); err != nil {
		return err
	}
	for _, line := range daemon.Plan(c) {
		fmt.Fprintf(stdout, "%s: %s\n", *path, line)
	}
	for _, line := range daemon.CheckScripts(c) {
		fmt.Fprintf(stdout, "%s: %s\n", *path, line)
	}
	n := 0
	for _, s := range d.Services() {
		n += len(s.Dests)
	}
	fmt.Fprintf(stdout, "%s: ok (%d services, %d real servers)\n", *path, len(d.Services()), n)
	return nil
}

// loadDirector loads and validates a config and builds the Director it describes, so
// check and replay refuse exactly the same files.
func loadDirector(path string) (*dataplane.Director, error) {
	c, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return daemon.NewDirector(c, slog.New(slog.DiscardHandler))
}
