package track

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gvs-lb/gvs/internal/script"
)

// Runner runs one command; *script.Runner is the real one.
type Runner interface {
	Run(ctx context.Context, c script.Cmd) (script.Result, error)
}

var _ Runner = (*script.Runner)(nil)

// ScriptConfig is one vrrp_script.
type ScriptConfig struct {
	Name     string
	Cmd      script.Cmd // its Timeout bounds each run (keepalived: default the interval)
	Interval time.Duration
	Rise     int // successes in a row to go up; 0 means 1
	Fall     int // failures in a row to go down; 0 means 1
	InitFail bool
}

// Script runs a vrrp_script every Interval (start to start; a run that overruns
// delays the next one, runs never overlap) and keeps its state with keepalived's
// rise and fall counting. Build it with NewScript and Run it once. State and
// LastReason are safe for concurrent use.
type Script struct {
	cfg      ScriptConfig
	run      Runner
	clock    Clock
	log      *slog.Logger
	onChange func()

	mu     sync.Mutex
	result int // keepalived's counter: up when ≥ rise, 0..rise+fall-1
	state  State
	reason string
}

// NewScript returns the tracker of cfg. onChange (may be nil) is called, from Run's
// goroutine, after each change of state; log nil discards.
func NewScript(cfg ScriptConfig, run Runner, clock Clock, log *slog.Logger, onChange func()) *Script {
	cfg.Rise, cfg.Fall = max(cfg.Rise, 1), max(cfg.Fall, 1)
	if cfg.Cmd.Timeout <= 0 {
		cfg.Cmd.Timeout = cfg.Interval
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Script{cfg: cfg, run: run, clock: clock, log: log, onChange: onChange}
	if cfg.InitFail {
		s.state, s.result, s.reason = Down, 0, "init_fail"
	} else {
		s.state, s.result = Init, cfg.Rise-1 // one success is enough
	}
	return s
}

// Name returns the script's name.
func (s *Script) Name() string { return s.cfg.Name }

// State returns the script's current state.
func (s *Script) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// LastReason returns why the last run failed ("exit 1", "killed at timeout 2s",
// "refused: …"), or "" after a success.
func (s *Script) LastReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

// Run runs the script until ctx ends; the first run starts at once.
func (s *Script) Run(ctx context.Context) error {
	for {
		start := s.clock.Now()
		s.once(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := s.cfg.Interval - s.clock.Now().Sub(start)
		if wait <= 0 {
			continue
		}
		c, stop := s.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			stop()
			return nil
		case <-c:
		}
	}
}

// once runs the script one time and records the outcome.
func (s *Script) once(ctx context.Context) {
	res, err := s.run.Run(ctx, s.cfg.Cmd)
	if ctx.Err() != nil {
		return // stopping (the run's own timeout is inside Run): not the script's fault
	}
	ok, reason := res.OK(), ""
	switch {
	case err != nil:
		ok, reason = false, "refused: "+err.Error()
	case !ok:
		reason = res.Reason(s.cfg.Cmd.Timeout)
	}
	if s.record(ok, reason) && s.onChange != nil {
		s.onChange()
	}
}

// record applies one result and reports whether the state changed. The counting is
// keepalived's (docs/scripts.md §1.2).
func (s *Script) record(ok bool, reason string) bool {
	s.mu.Lock()
	prev, prevReason := s.state, s.reason
	rise, fall := s.cfg.Rise, s.cfg.Fall
	top := rise + fall - 1
	s.reason = reason
	switch {
	case ok && s.result < rise-1:
		s.result++
	case ok:
		s.result, s.state = top, Up
	case s.result > rise:
		s.result--
	default:
		s.result, s.state = 0, Down
	}
	now := s.state
	s.mu.Unlock()
	switch {
	case now != prev:
		s.log.Info("VRRP script state changed", "script", s.cfg.Name, "from", prev, "to", now, "reason", reason)
		return true
	case !ok && reason != prevReason:
		s.log.Debug("VRRP script failed", "script", s.cfg.Name, "state", now, "reason", reason)
	}
	return false
}
