//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/gvs-lb/gvs/internal/lab"
)

// pinLabServers binds every thread of the processes the lab runs on its real
// servers (their HTTP and UDP servers) to cpu, or to every CPU when cpu < 0: gvs
// bench live --rs-cpu. A thread that ended meanwhile is skipped.
func pinLabServers(l *lab.Lab, cpu int) error {
	var set unix.CPUSet
	if cpu < 0 {
		for i := range runtime.NumCPU() {
			set.Set(i)
		}
	} else {
		set.Set(cpu)
	}
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
		tasks, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(p.PID), "task"))
		if err != nil {
			return fmt.Errorf("%s's %s (pid %d): %w", p.Host, p.Name, p.PID, err)
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("%s's %s (pid %d, thread %d): sched_setaffinity: %w", p.Host, p.Name, p.PID, tid, err)
			}
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("lab %s runs no process on its real servers", l.Spec().Prefix)
	}
	return nil
}
