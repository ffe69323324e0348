package track

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// ParamMatch is how a track_process compares the arguments of a process
// (keepalived's param_match).
type ParamMatch uint8

const (
	// MatchNone ignores the arguments.
	MatchNone ParamMatch = iota
	// MatchExact: the arguments are exactly the configured ones.
	MatchExact
	// MatchPartial: the configured arguments are the first ones of the process.
	MatchPartial
	// MatchInitial: as MatchPartial, but the last configured argument need only
	// be the start of the process's argument in that place.
	MatchInitial
)

// ProcessConfig is one vrrp_track_process.
type ProcessConfig struct {
	Name string
	// Process is the name to find: the command name (/proc/PID/comm, at most 15
	// bytes) or, with FullCommand, the program as the process's first argument
	// (/proc/PID/cmdline).
	Process     string
	Params      []string
	Match       ParamMatch
	FullCommand bool
	// The object is up while the number of matching processes is within
	// Quorum..QuorumMax.
	Quorum, QuorumMax int
	// ForkDelay delays going up, TerminateDelay going down; a change that
	// reverts within the delay is never seen.
	ForkDelay, TerminateDelay time.Duration
	// Interval is how often /proc is scanned.
	Interval time.Duration
}

// Proc is one process as the /proc scan sees it.
type Proc struct {
	PID     int
	Comm    string
	Cmdline []string
}

// Matches reports whether p is one of the processes c counts (keepalived's rules:
// docs/scripts.md §1.5).
func (c *ProcessConfig) Matches(p *Proc) bool {
	var args []string
	if c.FullCommand {
		if len(p.Cmdline) == 0 || p.Cmdline[0] != c.Process {
			return false
		}
		args = p.Cmdline[1:]
	} else if p.Comm != c.Process {
		return false
	} else if len(p.Cmdline) > 0 {
		args = p.Cmdline[1:]
	}
	switch c.Match {
	case MatchNone:
		return true
	case MatchExact:
		if len(args) != len(c.Params) {
			return false
		}
		for i := range args {
			if args[i] != c.Params[i] {
				return false
			}
		}
		return true
	}
	if len(args) < len(c.Params) {
		return false
	}
	for i, want := range c.Params {
		last := i == len(c.Params)-1
		if args[i] != want && !(c.Match == MatchInitial && last && len(args[i]) >= len(want) && args[i][:len(want)] == want) {
			return false
		}
	}
	return true
}

// ScanProc lists the live processes under root (normally "/proc"), zombies left
// out: they have exited. Their command lines are read only with cmdline (matching
// by command name needs only /proc/PID/stat, a third of the cost).
func ScanProc(root string, cmdline bool) ([]Proc, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		dir := filepath.Join(root, e.Name())
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// "PID (COMM) S …": comm may contain spaces and parentheses.
		open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || end < open || end+2 >= len(stat) || stat[end+2] == 'Z' {
			continue
		}
		p := Proc{PID: pid, Comm: string(stat[open+1 : end])}
		if !cmdline {
			out = append(out, p)
			continue
		}
		if cl, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil && len(cl) > 0 {
			for _, a := range bytes.Split(bytes.TrimSuffix(cl, []byte{0}), []byte{0}) {
				p.Cmdline = append(p.Cmdline, string(a))
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// Process tracks a vrrp_track_process by scanning /proc every interval (keepalived
// follows the kernel's process events instead; a scan bounds the delay by the
// interval). State is safe for concurrent use.
type Process struct {
	cfg      ProcessConfig
	scan     func() ([]Proc, error)
	clock    Clock
	log      *slog.Logger
	onChange func()

	mu      sync.Mutex
	state   State
	count   int
	pending State     // the state waiting for its delay; 0 when none
	due     time.Time // when pending takes effect
}

// NewProcess returns the tracker of cfg; scan lists the processes (nil: ScanProc
// of /proc). The first scan happens here and sets the state without delay, as
// keepalived's start-up scan does.
func NewProcess(cfg ProcessConfig, scan func() ([]Proc, error), clock Clock, log *slog.Logger, onChange func()) *Process {
	if scan == nil {
		full := cfg.FullCommand || cfg.Match != MatchNone
		scan = func() ([]Proc, error) { return ScanProc("/proc", full) }
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Quorum == 0 && cfg.QuorumMax == 0 {
		cfg.Quorum, cfg.QuorumMax = 1, int(^uint(0)>>1)
	}
	p := &Process{cfg: cfg, scan: scan, clock: clock, log: log, onChange: onChange}
	if n, ok := p.countNow(); ok {
		p.count, p.state = n, p.stateOf(n)
	} else {
		p.state = Down
	}
	return p
}

// Name returns the tracked process's configured name.
func (p *Process) Name() string { return p.cfg.Name }

// State returns Up while the quorum is met.
func (p *Process) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// Count returns the number of matching processes at the last scan.
func (p *Process) Count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count
}

func (p *Process) stateOf(n int) State {
	if n >= p.cfg.Quorum && n <= p.cfg.QuorumMax {
		return Up
	}
	return Down
}

func (p *Process) countNow() (int, bool) {
	procs, err := p.scan()
	if err != nil {
		p.log.Warn("track_process: cannot scan processes", "track_process", p.cfg.Name, "err", err)
		return 0, false
	}
	n := 0
	for i := range procs {
		if p.cfg.Matches(&procs[i]) {
			n++
		}
	}
	return n, true
}

// Run scans every interval until ctx ends.
func (p *Process) Run(ctx context.Context) error {
	for {
		c, stop := p.clock.NewTimer(p.cfg.Interval)
		select {
		case <-ctx.Done():
			stop()
			return nil
		case <-c:
		}
		n, ok := p.countNow()
		if ok && p.observe(n, p.clock.Now()) && p.onChange != nil {
			p.onChange()
		}
	}
}

// observe records a count seen at now and reports whether the state changed. A
// change of quorum waits for its delay (fork_delay up, terminate_delay down) and
// is dropped if the count comes back meanwhile.
func (p *Process) observe(n int, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count = n
	want := p.stateOf(n)
	switch {
	case want == p.state:
		p.pending = 0
		return false
	case p.pending != want:
		d := p.cfg.TerminateDelay
		if want == Up {
			d = p.cfg.ForkDelay
		}
		p.pending, p.due = want, now.Add(d)
	}
	if now.Before(p.due) {
		return false
	}
	p.log.Info("track_process quorum changed", "track_process", p.cfg.Name, "processes", n, "state", want)
	p.state, p.pending = want, 0
	return true
}
