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
// each once however many instances track it; the instances read their cached state
// through vrrp.Tracks (see tracks), which look the object up by name at each poll,
// so update can replace the set on a reload without touching the instances. A
// change asks the VRRP runner to reassess at once. Its methods are safe for
// concurrent use.
type trackers struct {
	runner   track.Runner
	scripts  *script.Runner // for the start-up safety check; nil: none
	clock    track.Clock
	log      *slog.Logger
	reassess func()

	mu   sync.Mutex
	ctx  context.Context // run's; nil before run starts and after it ends
	objs map[string]*tracked
	wg   sync.WaitGroup // the trackers' goroutines
}

// tracked is one running tracker: its config (to tell a changed one on reload),
// its state reader and its goroutine's cancel.
type tracked struct {
	conf   any                             // the config.VRRPScript, TrackFile or TrackProcess it was built from
	state  func() track.State              // scripts and processes
	value  func() int64                    // files
	run    func(ctx context.Context) error // its loop
	cancel context.CancelFunc              // nil until started
}

// newTrackers builds the trackers of cfg; reassess is called after any change
// (from the trackers' goroutines). Scripts that cannot run safely are reported now
// (and fail each run, with the reason).
func newTrackers(cfg *config.Config, runner track.Runner, scripts *script.Runner, clock track.Clock, log *slog.Logger, reassess func()) (*trackers, error) {
	t := &trackers{runner: runner, scripts: scripts, clock: clock, log: log, reassess: reassess}
	objs, err := t.build(cfg, nil)
	if err != nil {
		return nil, err
	}
	t.objs = objs
	return t, nil
}

// build returns the trackers cfg's instances use, keyed "script NAME", "file NAME",
// "process NAME"; one whose config is the same in old is taken from it (keeping its
// state), the others are new.
func (t *trackers) build(cfg *config.Config, old map[string]*tracked) (map[string]*tracked, error) {
	used := map[string]bool{}
	for _, v := range cfg.VRRP {
		for _, r := range v.TrackScript {
			used["script "+r.Name] = true
		}
		for _, r := range v.TrackFile {
			used["file "+r.Name] = true
		}
		for _, r := range v.TrackProcess {
			used["process "+r.Name] = true
		}
	}
	out := map[string]*tracked{}
	keep := func(key string, conf any) bool {
		if o := old[key]; o != nil && reflect.DeepEqual(o.conf, conf) {
			out[key] = o
			return true
		}
		return false
	}
	for _, s := range cfg.VRRPScripts {
		key := "script " + s.Name
		s.Line = 0
		if !used[key] || keep(key, s) {
			continue // keepalived runs no script nothing tracks
		}
		c := script.Cmd{Argv: s.Script, Timeout: s.Timeout}
		if s.User != "" {
			u, err := script.ParseUser(s.User)
			if err != nil {
				return nil, fmt.Errorf("%s: vrrp_script %q: user: %w", cfg.File, s.Name, err)
			}
			c.User = u
		}
		if t.scripts != nil {
			if err := t.scripts.Check(c); err != nil {
				t.log.Error("vrrp_script cannot run: it fails until this is fixed", "vrrp_script", s.Name, "err", err)
			}
		}
		tr := track.NewScript(track.ScriptConfig{Name: s.Name, Cmd: c, Interval: s.Interval,
			Rise: s.Rise, Fall: s.Fall, InitFail: s.InitFail}, t.runner, t.clock, t.log, t.reassess)
		out[key] = &tracked{conf: s, state: tr.State, run: tr.Run}
	}
	for _, f := range cfg.TrackFiles {
		key := "file " + f.Name
		f.Line = 0
		if !used[key] || keep(key, f) {
			continue
		}
		tr := track.NewFile(f.Name, f.File, trackPoll, t.clock, t.log, t.reassess)
		out[key] = &tracked{conf: f, value: tr.Value, run: tr.Run}
	}
	for _, p := range cfg.TrackProcesses {
		key := "process " + p.Name
		p.Line = 0
		if !used[key] || keep(key, p) {
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
		tr := track.NewProcess(pc, nil, t.clock, t.log, t.reassess)
		out[key] = &tracked{conf: p, state: tr.State, run: tr.Run}
	}
	return out, nil
}

// startLocked starts o's goroutine under ctx.
//
// Precondition: t.mu is held.
func (t *trackers) startLocked(ctx context.Context, o *tracked) {
	c, cancel := context.WithCancel(ctx)
	o.cancel = cancel
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		_ = o.run(c) // the trackers return only when c ends
	}()
}

// run runs every tracker until ctx ends, and those update adds meanwhile.
func (t *trackers) run(ctx context.Context) error {
	t.mu.Lock()
	t.ctx = ctx
	for _, o := range t.objs {
		t.startLocked(ctx, o)
	}
	t.mu.Unlock()
	<-ctx.Done()
	t.mu.Lock()
	t.ctx = nil
	t.mu.Unlock()
	t.wg.Wait()
	return nil
}

// update replaces the trackers with cfg's (a reload): unchanged ones keep running
// with their state, changed and new ones start from the beginning (a script from
// INIT), removed ones stop. It returns what changed, for the log. On error nothing
// changes.
func (t *trackers) update(cfg *config.Config) ([]string, error) {
	t.mu.Lock()
	old := t.objs
	t.mu.Unlock()
	objs, err := t.build(cfg, old)
	if err != nil {
		return nil, err
	}
	var changed []string
	t.mu.Lock()
	for key, o := range old {
		if objs[key] != o {
			if o.cancel != nil {
				o.cancel()
			}
			if objs[key] == nil {
				changed = append(changed, key+" (removed)")
			}
		}
	}
	for key, o := range objs {
		if old[key] == o {
			continue
		}
		if old[key] == nil {
			changed = append(changed, key+" (added)")
		} else {
			changed = append(changed, key)
		}
		if t.ctx != nil {
			t.startLocked(t.ctx, o)
		}
	}
	t.objs = objs
	t.mu.Unlock()
	slices.Sort(changed)
	if len(changed) > 0 && t.reassess != nil {
		t.reassess()
	}
	return changed, nil
}

// lookup returns the running tracker of key, or nil.
func (t *trackers) lookup(key string) *tracked {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.objs[key]
}

// tracks returns instance v's tracks of scripts, files and processes
// (docs/scripts.md §1.3, §1.4). Each looks its object up at every poll; one that
// is not running (not yet, after a reload that dropped it) counts as not known
// yet: no delta, and FAULT without a weight.
func (t *trackers) tracks(v config.VRRP) []vrrp.Track {
	if t == nil {
		return nil
	}
	var out []vrrp.Track
	state := func(key string) func() track.State {
		return func() track.State {
			if o := t.lookup(key); o != nil && o.state != nil {
				return o.state()
			}
			return track.Init
		}
	}
	for _, r := range v.TrackScript {
		out = append(out, stateTrack("script "+r.Name, int(r.Weight), r.Reverse, state("script "+r.Name)))
	}
	for _, r := range v.TrackProcess {
		out = append(out, stateTrack("process "+r.Name, int(r.Weight), r.Reverse, state("process "+r.Name)))
	}
	for _, r := range v.TrackFile {
		key, w, rev := "file "+r.Name, int(r.Weight), r.Reverse
		out = append(out, vrrp.Track{Name: key, State: func() vrrp.TrackState {
			o := t.lookup(key)
			if o == nil || o.value == nil {
				return vrrp.TrackState{Fault: w == 0}
			}
			fault, delta := track.FileContribution(o.value(), w, rev)
			return vrrp.TrackState{Fault: fault, Delta: delta}
		}})
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

// reloadScripts applies a reload to the script settings: the vrrp_script,
// track_file and track_process trackers follow the new file at once (unchanged
// ones keep their state); [scripts] — who commands run as, and the security rule —
// applies from the next start, which the log says.
func (d *Daemon) reloadScripts(old, cfg *config.Config) {
	if old.Scripts != cfg.Scripts {
		d.log.Warn("reload: [scripts] (script_user, enable_script_security) applies when gvs starts, not on reload: restart gvs to apply the change")
	}
	if d.trk == nil {
		if sc := scriptChanges(old, cfg); len(sc) > 0 && len(cfg.VRRP) > 0 {
			d.log.Warn("reload: tracked objects of a config that had no [[vrrp]] at start apply when gvs starts", "changed", sc)
		}
		return
	}
	changed, err := d.trk.update(cfg)
	switch {
	case err != nil:
		d.log.Error("reload: tracked objects unchanged", "err", err)
	case len(changed) > 0:
		d.log.Info("reload: tracked objects", "changed", changed)
	}
}
