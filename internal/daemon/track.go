package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/script"
	"github.com/gvs-lb/gvs/internal/track"
	"github.com/gvs-lb/gvs/vrrp"
)

// trackPoll is how often track_file and track_process look again (docs/scripts.md
// §1.4, §1.5).
const trackPoll = time.Second

// newScriptRunner returns the runner of every external command of cfg: vrrp
// scripts, notify and quorum commands, exec checks (docs/scripts.md §3). Without a
// script_user it runs them as keepalived_script when that user exists, else as gvs
// itself, with a warning when the config has commands at all.
func newScriptRunner(cfg *config.Config, log *slog.Logger) (*script.Runner, error) {
	r := &script.Runner{Secure: cfg.Scripts.Security, Log: log}
	if cfg.Scripts.User != "" {
		u, err := script.ParseUser(cfg.Scripts.User)
		if err != nil {
			return nil, fmt.Errorf("%s: [scripts] script_user: %w", cfg.File, err)
		}
		r.User = u
		checkCommands(cfg, r, log)
		return r, nil
	}
	if hasCommands(cfg) {
		u, warn := script.DefaultUser()
		r.User = u
		if warn != "" {
			log.Warn("scripts: " + warn)
		}
	}
	checkCommands(cfg, r, log)
	return r, nil
}

// hasCommands reports whether cfg runs any external command.
func hasCommands(cfg *config.Config) bool {
	if len(cfg.VRRPScripts) > 0 {
		return true
	}
	for _, v := range cfg.VRRP {
		if v.Notify != "" || v.NotifyMaster != "" || v.NotifyBackup != "" || v.NotifyFault != "" {
			return true
		}
	}
	for _, s := range cfg.Services {
		if s.QuorumUp != "" || s.QuorumDown != "" || s.Check != nil && s.Check.Type == config.CheckExec {
			return true
		}
		for _, rs := range s.RealServers {
			for _, c := range rs.Checks {
				if c.Type == config.CheckExec {
					return true
				}
			}
		}
	}
	return false
}

// trackers runs the vrrp_script, track_file and track_process objects of a config,
// each once however many instances track it; the instances read their cached
// state through vrrp.Tracks (see vrrpTracks). A change asks the VRRP runner to
// reassess at once.
type trackers struct {
	scripts map[string]*track.Script
	files   map[string]*track.File
	procs   map[string]*track.Process
}

// newTrackers builds the trackers of cfg; reassess is called after any change
// (from the trackers' goroutines). Scripts that cannot run safely are reported now
// (and fail each run, with the reason).
func newTrackers(cfg *config.Config, runner track.Runner, scripts *script.Runner, clock track.Clock, log *slog.Logger, reassess func()) (*trackers, error) {
	t := &trackers{scripts: map[string]*track.Script{}, files: map[string]*track.File{}, procs: map[string]*track.Process{}}
	used := map[string]bool{}
	for _, v := range cfg.VRRP {
		for _, r := range v.TrackScript {
			used["s"+r.Name] = true
		}
		for _, r := range v.TrackFile {
			used["f"+r.Name] = true
		}
		for _, r := range v.TrackProcess {
			used["p"+r.Name] = true
		}
	}
	for _, s := range cfg.VRRPScripts {
		if !used["s"+s.Name] {
			continue // keepalived runs no script nothing tracks
		}
		c := script.Cmd{Argv: s.Script, Timeout: s.Timeout}
		if s.User != "" {
			u, err := script.ParseUser(s.User)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: vrrp_script %q: user: %w", cfg.File, s.Line, s.Name, err)
			}
			c.User = u
		}
		if scripts != nil {
			if err := scripts.Check(c); err != nil {
				log.Error("vrrp_script cannot run: it fails until this is fixed", "vrrp_script", s.Name, "err", err)
			}
		}
		t.scripts[s.Name] = track.NewScript(track.ScriptConfig{Name: s.Name, Cmd: c, Interval: s.Interval,
			Rise: s.Rise, Fall: s.Fall, InitFail: s.InitFail}, runner, clock, log, reassess)
	}
	for _, f := range cfg.TrackFiles {
		if used["f"+f.Name] {
			t.files[f.Name] = track.NewFile(f.Name, f.File, trackPoll, clock, log, reassess)
		}
	}
	for _, p := range cfg.TrackProcesses {
		if !used["p"+p.Name] {
			continue
		}
		pc := track.ProcessConfig{Name: p.Name, Process: p.Process, Params: p.Params, FullCommand: p.FullCommand,
			Quorum: p.Quorum, QuorumMax: p.QuorumMax, ForkDelay: p.ForkDelay, TerminateDelay: p.TerminateDelay, Interval: trackPoll}
		switch p.ParamMatch {
		case "exact":
			pc.Match = track.MatchExact
		case "partial":
			pc.Match = track.MatchPartial
		case "initial":
			pc.Match = track.MatchInitial
		}
		t.procs[p.Name] = track.NewProcess(pc, nil, clock, log, reassess)
	}
	return t, nil
}

// run runs every tracker until ctx ends.
func (t *trackers) run(ctx context.Context) error {
	var wg sync.WaitGroup
	start := func(run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = run(ctx) // the trackers return only at the end
		}()
	}
	for _, s := range t.scripts {
		start(s.Run)
	}
	for _, f := range t.files {
		start(f.Run)
	}
	for _, p := range t.procs {
		start(p.Run)
	}
	wg.Wait()
	return nil
}

// tracks returns instance v's tracks of scripts, files and processes
// (docs/scripts.md §1.3, §1.4).
func (t *trackers) tracks(v config.VRRP) []vrrp.Track {
	if t == nil {
		return nil
	}
	var out []vrrp.Track
	for _, r := range v.TrackScript {
		if s := t.scripts[r.Name]; s != nil {
			out = append(out, stateTrack("script "+r.Name, int(r.Weight), r.Reverse, s.State))
		}
	}
	for _, r := range v.TrackProcess {
		if p := t.procs[r.Name]; p != nil {
			out = append(out, stateTrack("process "+r.Name, int(r.Weight), r.Reverse, p.State))
		}
	}
	for _, r := range v.TrackFile {
		if f := t.files[r.Name]; f != nil {
			w, rev := int(r.Weight), r.Reverse
			out = append(out, vrrp.Track{Name: "file " + r.Name, State: func() vrrp.TrackState {
				fault, delta := track.FileContribution(f.Value(), w, rev)
				return vrrp.TrackState{Fault: fault, Delta: delta}
			}})
		}
	}
	return out
}

// stateTrack is the vrrp.Track of an object that is up, down or not known yet,
// with keepalived's weight and reverse (track.Contribution).
func stateTrack(name string, weight int, reverse bool, state func() track.State) vrrp.Track {
	return vrrp.Track{Name: name, State: func() vrrp.TrackState {
		fault, delta := track.Contribution(state(), weight, reverse)
		return vrrp.TrackState{Fault: fault, Delta: delta}
	}}
}

// runShellAs runs a notify or quorum command with /bin/sh -c through r (nil: the
// zero runner): as the script user, refused when unsafe (docs/scripts.md §3). A
// command that ran and failed returns its output and an error naming how it ended.
func runShellAs(ctx context.Context, r *script.Runner, c string) ([]byte, error) {
	if r == nil {
		r = &script.Runner{}
	}
	res, err := r.Run(ctx, script.Cmd{Shell: c})
	switch {
	case err != nil:
		return nil, err
	case res.TimedOut:
		return res.Output, fmt.Errorf("stopped: %w", context.Cause(ctx))
	case !res.OK():
		return res.Output, fmt.Errorf("%s", res.Status)
	}
	return res.Output, nil
}

// scriptChanges names what differs in the script settings of two configs —
// [scripts], [[vrrp_script]], [[vrrp_track_file]], [[vrrp_track_process]] — which
// apply when gvs starts, so that a reload says so instead of ignoring them.
func scriptChanges(old, cur *config.Config) []string {
	var out []string
	if old.Scripts != cur.Scripts {
		out = append(out, "[scripts]")
	}
	out = append(out, namedChanges("vrrp_script", old.VRRPScripts, cur.VRRPScripts,
		func(s config.VRRPScript) string { return s.Name }, func(a, b config.VRRPScript) bool {
			a.Line, b.Line = 0, 0
			return reflect.DeepEqual(a, b)
		})...)
	out = append(out, namedChanges("vrrp_track_file", old.TrackFiles, cur.TrackFiles,
		func(f config.TrackFile) string { return f.Name }, func(a, b config.TrackFile) bool {
			a.Line, b.Line = 0, 0
			return a == b
		})...)
	out = append(out, namedChanges("vrrp_track_process", old.TrackProcesses, cur.TrackProcesses,
		func(p config.TrackProcess) string { return p.Name }, func(a, b config.TrackProcess) bool {
			a.Line, b.Line = 0, 0
			return reflect.DeepEqual(a, b)
		})...)
	return out
}

// namedChanges lists the tables of kind that were changed, added or removed,
// matched by name: "vrrp_script chk (added)".
func namedChanges[T any](kind string, old, cur []T, name func(T) string, same func(a, b T) bool) []string {
	var out []string
	for _, c := range cur {
		i := slices.IndexFunc(old, func(o T) bool { return name(o) == name(c) })
		switch {
		case i < 0:
			out = append(out, kind+" "+name(c)+" (added)")
		case !same(old[i], c):
			out = append(out, kind+" "+name(c))
		}
	}
	for _, o := range old {
		if !slices.ContainsFunc(cur, func(c T) bool { return name(c) == name(o) }) {
			out = append(out, kind+" "+name(o)+" (removed)")
		}
	}
	return out
}

// checkCommands reports, once at start, every command of cfg that cannot run
// under r (missing, or refused by enable_script_security with the path at fault),
// so the problem is seen before the command is first needed. Those commands fail
// each time they run, with the same reason.
func checkCommands(cfg *config.Config, r *script.Runner, log *slog.Logger) {
	bad := func(what string, c script.Cmd) {
		if err := r.Check(c); err != nil {
			log.Error("command cannot run: it fails each time until this is fixed", "what", what, "err", err)
		}
	}
	for _, v := range cfg.VRRP {
		for _, n := range []struct{ key, cmd string }{{"notify_master", v.NotifyMaster}, {"notify_backup", v.NotifyBackup},
			{"notify_fault", v.NotifyFault}, {"notify", v.Notify}} {
			if n.cmd != "" {
				bad("vrrp "+v.Name+" "+n.key, script.Cmd{Shell: n.cmd})
			}
		}
	}
	for _, s := range cfg.Services {
		for _, q := range []struct{ key, cmd string }{{"quorum_up", s.QuorumUp}, {"quorum_down", s.QuorumDown}} {
			if q.cmd != "" {
				bad("service "+s.String()+" "+q.key, script.Cmd{Shell: q.cmd})
			}
		}
		checks := []*config.Check{s.Check}
		for i := range s.RealServers {
			for j := range s.RealServers[i].Checks {
				checks = append(checks, &s.RealServers[i].Checks[j])
			}
		}
		for _, c := range checks {
			if c != nil && c.Type == config.CheckExec && len(c.Command) > 0 {
				bad(fmt.Sprintf("service %s exec check (line %d)", s.String(), c.Line), script.Cmd{Argv: c.Command})
			}
		}
	}
}

// CheckScripts says what gvs check can know of cfg's commands on this host, as
// warning lines (the file may be meant for another host): a script_user or
// vrrp_script user that does not exist here (gvs run refuses it), and a command
// that cannot run as configured — its program missing, or refused by
// enable_script_security — naming it and the path at fault.
func CheckScripts(cfg *config.Config) []string {
	var out []string
	r := &script.Runner{Secure: cfg.Scripts.Security}
	if cfg.Scripts.User != "" {
		u, err := script.ParseUser(cfg.Scripts.User)
		if err != nil {
			out = append(out, fmt.Sprintf("warning: [scripts] script_user: %v: gvs run refuses this file on this host", err))
		}
		r.User = u
	} else if hasCommands(cfg) {
		r.User, _ = script.DefaultUser()
	}
	for _, s := range cfg.VRRPScripts {
		if s.User != "" {
			if _, err := script.ParseUser(s.User); err != nil {
				out = append(out, fmt.Sprintf("warning: line %d: vrrp_script %q: user: %v: gvs run refuses this file on this host", s.Line, s.Name, err))
			}
		}
	}
	var b strings.Builder
	log := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey || a.Key == slog.LevelKey {
			return slog.Attr{}
		}
		return a
	}}))
	checkCommands(cfg, r, log)
	for _, s := range cfg.VRRPScripts {
		c := script.Cmd{Argv: s.Script}
		if s.User != "" {
			if c.User, _ = script.ParseUser(s.User); c.User == nil {
				continue // reported above
			}
		}
		if err := r.Check(c); err != nil {
			log.Error("vrrp_script cannot run", "vrrp_script", s.Name, "err", err)
		}
	}
	for l := range strings.Lines(b.String()) {
		out = append(out, "warning: "+strings.TrimSpace(l))
	}
	return out
}
