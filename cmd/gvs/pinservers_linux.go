//go:build linux

package main

import (
	"fmt"

	"github.com/gvs-lb/gvs/bench"
	"github.com/gvs-lb/gvs/internal/lab"
)

// pinLabServers binds every thread of the processes the lab runs on its real
// servers (their HTTP and UDP servers) to cpu, or to every CPU when cpu < 0: gvs
// bench live --rs-cpu. A thread that ended meanwhile is skipped.
func pinLabServers(l *lab.Lab, cpu int) error {
	rs := map[string]bool{}
	for _, h := range l.Hosts() {
		if h.Role == lab.RealServer {
			rs[h.Name] = true
		}
	}
	n := 0
	for _, p := range l.Procs() {
		if !rs[p.Host] {
			continue
		}
		if _, err := bench.SetProcessAffinity(p.PID, cpu); err != nil {
			return fmt.Errorf("%s's %s (pid %d): sched_setaffinity: %w", p.Host, p.Name, p.PID, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("lab %s runs no process on its real servers", l.Spec().Prefix)
	}
	return nil
}
