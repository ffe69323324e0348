package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Scripts is the [scripts] table: how every external command runs — vrrp_script
// checks, notify commands, exec checks and quorum commands (keepalived's
// global_defs script_user and enable_script_security; docs/scripts.md §3).
type Scripts struct {
	// User is script_user, "USER" or "USER GROUP"; "" means keepalived's default:
	// the user keepalived_script if it exists, else gvs's own user, with a warning.
	User string
	// Security is enable_script_security: a command that would run as root from a
	// path writable by someone other than root is refused.
	Security bool
}

// A VRRPScript is one [[vrrp_script]] table, keepalived's vrrp_script.
type VRRPScript struct {
	Line     int
	Name     string
	Script   []string      // argv, run without a shell (as keepalived)
	Interval time.Duration // between runs; default 1s
	Timeout  time.Duration // a run still going is killed and fails; default Interval
	Weight   TrackWeight   // default weight of track_script entries (0: FAULT on failure)
	Reverse  bool
	Rise     int // default 1
	Fall     int // default 1
	User     string
	InitFail bool
}

// A TrackFile is one [[vrrp_track_file]] table, keepalived's vrrp_track_file.
type TrackFile struct {
	Line    int
	Name    string
	File    string
	Weight  TrackWeight // default 1
	Reverse bool
}

// A TrackProcess is one [[vrrp_track_process]] table, keepalived's
// vrrp_track_process.
type TrackProcess struct {
	Line        int
	Name        string
	Process     string
	Params      []string
	ParamMatch  string // "" (none), "exact", "partial", "initial"
	FullCommand bool
	Weight      TrackWeight
	Reverse     bool
	Quorum      int // default 1
	QuorumMax   int // default unbounded (math.MaxInt32)
	// ForkDelay delays going up, TerminateDelay going down (delay sets both).
	ForkDelay, TerminateDelay time.Duration
}

// A TrackRef is one entry of a [[vrrp]] track_script, track_file or track_process
// list: "NAME", "NAME weight W" or "NAME weight W reverse" (keepalived's syntax),
// resolved: without its own weight it has the tracked object's.
type TrackRef struct {
	Name    string
	Weight  TrackWeight
	Reverse bool
}

// scripts reads [scripts], [[vrrp_script]], [[vrrp_track_file]] and
// [[vrrp_track_process]], then resolves the [[vrrp]] track lists against them.
func (r *reader) scripts(root *table, cfg *Config) {
	if t := root.sub("scripts"); t != nil {
		t.str("script_user", &cfg.Scripts.User)
		if cfg.Scripts.User != "" && len(strings.Fields(cfg.Scripts.User)) > 2 {
			t.errorf("script_user", "want \"USER\" or \"USER GROUP\", got %q", cfg.Scripts.User)
		}
		t.boolean("enable_script_security", &cfg.Scripts.Security)
		t.done()
	}
	names := map[string]map[string]int{"vrrp_script": {}, "vrrp_track_file": {}, "vrrp_track_process": {}}
	named := func(t *table, kind string, dst *string) {
		if !t.present("name") {
			r.add(t.path, fmt.Errorf("%w name", ErrMissing))
			return
		}
		if !t.str("name", dst) {
			return
		}
		if *dst == "" || strings.ContainsAny(*dst, " \t") {
			t.errorf("name", "must be one word, got %q", *dst)
			return
		}
		if line, dup := names[kind][*dst]; dup {
			t.fail("name", fmt.Errorf("%w %s %q (first at line %d)", ErrDuplicate, kind, *dst, line))
			return
		}
		names[kind][*dst] = r.lines.line(t.path)
	}
	for _, t := range root.array("vrrp_script") {
		s := VRRPScript{Line: r.lines.line(t.path), Interval: time.Second, Rise: 1, Fall: 1}
		named(t, "vrrp_script", &s.Name)
		if v, ok := t.get("script"); !ok {
			r.add(t.path, fmt.Errorf("%w script: the command to run, e.g. \"/usr/bin/killall -0 nginx\"", ErrMissing))
		} else if str, isStr := v.(string); isStr {
			s.Script = strings.Fields(str)
		} else {
			t.strings("script", &s.Script)
		}
		if t.present("script") && (len(s.Script) == 0 || s.Script[0] == "") {
			t.errorf("script", "must name a program to run")
		}
		t.positiveDuration("interval", &s.Interval)
		if t.positiveDuration("timeout", &s.Timeout) && s.Timeout < time.Second/10 {
			t.errorf("timeout", "must be at least 100ms (got %v)", s.Timeout)
		}
		if s.Timeout == 0 {
			s.Timeout = s.Interval // keepalived: a run may take the whole interval
		}
		r.weight(t, 253, &s.Weight)
		t.boolean("reverse", &s.Reverse)
		t.intField("rise", 1, math.MaxInt32, &s.Rise)
		t.intField("fall", 1, math.MaxInt32, &s.Fall)
		if t.str("user", &s.User) && len(strings.Fields(s.User)) != 1 && len(strings.Fields(s.User)) != 2 {
			t.errorf("user", "want \"USER\" or \"USER GROUP\", got %q", s.User)
		}
		t.boolean("init_fail", &s.InitFail)
		t.done()
		cfg.VRRPScripts = append(cfg.VRRPScripts, s)
	}
	for _, t := range root.array("vrrp_track_file") {
		f := TrackFile{Line: r.lines.line(t.path), Weight: 1}
		named(t, "vrrp_track_file", &f.Name)
		if !t.present("file") {
			r.add(t.path, fmt.Errorf("%w file: the path whose number is tracked", ErrMissing))
		} else if t.str("file", &f.File) && !strings.HasPrefix(f.File, "/") {
			t.errorf("file", "must be an absolute path (got %q)", f.File)
		}
		r.weight(t, 254, &f.Weight)
		t.boolean("reverse", &f.Reverse)
		t.done()
		cfg.TrackFiles = append(cfg.TrackFiles, f)
	}
	for _, t := range root.array("vrrp_track_process") {
		p := TrackProcess{Line: r.lines.line(t.path), Quorum: 1, QuorumMax: math.MaxInt32}
		named(t, "vrrp_track_process", &p.Name)
		if !t.present("process") {
			r.add(t.path, fmt.Errorf("%w process: the process name (or full path with full_command)", ErrMissing))
		} else if t.str("process", &p.Process) && p.Process == "" {
			t.errorf("process", "must not be empty")
		}
		t.strings("params", &p.Params)
		if t.str("param_match", &p.ParamMatch) {
			if m, err := oneOf("param_match", p.ParamMatch, "exact", "partial", "initial"); err != nil {
				t.fail("param_match", err)
				p.ParamMatch = ""
			} else {
				p.ParamMatch = m
			}
		} else if len(p.Params) > 0 {
			p.ParamMatch = "exact" // keepalived: arguments given are matched exactly
		}
		t.boolean("full_command", &p.FullCommand)
		if p.ParamMatch != "" {
			p.FullCommand = true // keepalived: matching arguments reads the command line
		}
		if !p.FullCommand && len(p.Process) > 15 {
			t.errorf("process", "%q is longer than the kernel's 15-byte command name: set full_command = true to match the program path", p.Process)
		}
		r.weight(t, 254, &p.Weight)
		t.boolean("reverse", &p.Reverse)
		t.intField("quorum", 1, 65535, &p.Quorum)
		if t.intField("quorum_max", 0, 65535, &p.QuorumMax) && p.QuorumMax < p.Quorum {
			t.errorf("quorum_max", "must be at least quorum (%d < %d)", p.QuorumMax, p.Quorum)
		}
		var d time.Duration
		if t.duration("delay", &d) {
			p.ForkDelay, p.TerminateDelay = d, d
		}
		t.duration("fork_delay", &p.ForkDelay)
		t.duration("terminate_delay", &p.TerminateDelay)
		t.done()
		cfg.TrackProcesses = append(cfg.TrackProcesses, p)
	}
	r.resolveTracks(cfg)
}

// weight reads a weight key within ±limit (253 for scripts, 254 for files and
// processes, as keepalived).
func (r *reader) weight(t *table, limit int64, dst *TrackWeight) {
	var n int64
	if t.integer("weight", -limit, limit, &n) {
		*dst = TrackWeight(n)
	}
}

// vrrpTracks reads the track_script, track_file and track_process lists of a
// [[vrrp]] table (resolved by resolveTracks once every table is read).
func (r *reader) vrrpTracks(t *table, v *VRRP) {
	for _, k := range []struct {
		key string
		dst *[]TrackRef
	}{{"track_script", &v.TrackScript}, {"track_file", &v.TrackFile}, {"track_process", &v.TrackProcess}} {
		var strs []string
		if !t.strings(k.key, &strs) {
			continue
		}
		for i, e := range strs {
			path := joinIndex(t.key(k.key), i)
			ref, hasWeight, err := parseTrackRef(e)
			switch {
			case err != nil:
				r.add(path, err)
				continue
			case hasWeight && v.Priority == 255:
				r.errorf(path, "%q: a weight cannot change the priority of the address owner (priority 255): drop the weight, or lower the priority", e)
				continue
			}
			if !hasWeight {
				ref.Weight = math.MinInt32 // resolved from the tracked object
			}
			*k.dst = append(*k.dst, ref)
		}
	}
}

// parseTrackRef reads "NAME", "NAME weight W" or "NAME weight W reverse" (also
// "noreverse"); W is -254..254.
func parseTrackRef(s string) (ref TrackRef, hasWeight bool, err error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ref, false, fmt.Errorf("empty entry: want \"NAME\" or \"NAME weight W [reverse]\"")
	}
	ref.Name = f[0]
	if len(f) == 1 {
		return ref, false, nil
	}
	if f[1] != "weight" || len(f) < 3 || len(f) > 4 {
		return ref, false, fmt.Errorf("want \"NAME\" or \"NAME weight W [reverse]\", got %q", s)
	}
	w, err := strconv.Atoi(f[2])
	if err != nil || w < -254 || w > 254 {
		return ref, false, fmt.Errorf("weight %q: want a whole number from -254 to 254", f[2])
	}
	ref.Weight = TrackWeight(w)
	if len(f) == 4 {
		switch f[3] {
		case "reverse":
			ref.Reverse = true
		case "noreverse":
		default:
			return ref, false, fmt.Errorf("%q: unknown weight option %q (want reverse)", s, f[3])
		}
	}
	return ref, true, nil
}

// resolveTracks checks that each [[vrrp]] track entry names a defined object, once,
// and gives entries without a weight the object's weight and reverse.
func (r *reader) resolveTracks(cfg *Config) {
	type def struct {
		weight  TrackWeight
		reverse bool
	}
	scripts, files, procs := map[string]def{}, map[string]def{}, map[string]def{}
	for _, s := range cfg.VRRPScripts {
		scripts[s.Name] = def{s.Weight, s.Reverse}
	}
	for _, f := range cfg.TrackFiles {
		files[f.Name] = def{f.Weight, f.Reverse}
	}
	for _, p := range cfg.TrackProcesses {
		procs[p.Name] = def{p.Weight, p.Reverse}
	}
	for i := range cfg.VRRP {
		v := &cfg.VRRP[i]
		for _, k := range []struct {
			key, table string
			refs       []TrackRef
			defs       map[string]def
		}{{"track_script", "vrrp_script", v.TrackScript, scripts}, {"track_file", "vrrp_track_file", v.TrackFile, files},
			{"track_process", "vrrp_track_process", v.TrackProcess, procs}} {
			seen := map[string]bool{}
			for j := range k.refs {
				ref := &k.refs[j]
				path := joinIndex(joinKey(joinIndex("vrrp", i), k.key), j)
				d, ok := k.defs[ref.Name]
				switch {
				case !ok:
					r.errorf(path, "no [[%s]] is named %q", k.table, ref.Name)
				case seen[ref.Name]:
					r.add(path, fmt.Errorf("%w %s %q", ErrDuplicate, k.key, ref.Name))
				case ref.Weight == math.MinInt32:
					ref.Weight, ref.Reverse = d.weight, d.reverse
					if ref.Weight != 0 && v.Priority == 255 {
						r.errorf(path, "[[%s]] %q has weight %d, which cannot change the priority of the address owner (priority 255): set \"%s weight 0\", or lower the priority", k.table, ref.Name, d.weight, ref.Name)
					}
				}
				seen[ref.Name] = true
			}
		}
	}
}

// trackInterfaceEntry reads a track_interface entry: trackEntry's "NAME" or "NAME
// weight W", and keepalived's "NAME weight W reverse" (also "NAME weight 0
// reverse": FAULT while the interface is up).
func trackInterfaceEntry(s string, priority uint8) (string, TrackWeight, bool, error) {
	f := strings.Fields(s)
	if len(f) == 4 && f[1] == "weight" && (f[3] == "reverse" || f[3] == "noreverse") {
		rev := f[3] == "reverse"
		if f[2] == "0" {
			return f[0], 0, rev, nil
		}
		name, w, err := trackEntry(strings.Join(f[:3], " "), priority)
		return name, w, rev, err
	}
	name, w, err := trackEntry(s, priority)
	return name, w, false, err
}
