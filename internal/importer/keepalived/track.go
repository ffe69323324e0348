package keepalived

import (
	"strconv"
	"strings"
	"time"

	"github.com/gvs-lb/gvs/internal/importer"
)

// trackFileDef reads a vrrp_track_file (or track_file) block into a
// [[vrrp_track_file]] (docs/scripts.md §1.4).
func (k *kaImporter) trackFileDef(n *kaNode) {
	kw := strings.ToLower(n.key.text)
	if !k.needArgs(kw, n, 1) {
		return
	}
	ctx := kw + " " + n.arg(0)
	k.extra(ctx, n, 1)
	f := &importer.TrackFile{Pos: n.pos(), Name: n.arg(0)}
	for _, c := range n.block {
		k.dispatch(ctx, c, map[string]string{"init_file": "gvs does not create or write the tracked file: create it before gvs starts (a missing file reads as 0)"}, func(kw string) bool {
			switch kw {
			case "file":
				if k.needArgs(ctx, c, 1) {
					k.extra(ctx, c, 1)
					f.File = c.arg(0)
				}
			case "weight":
				w, rev, ok := k.defWeight(ctx, c, 254)
				if ok {
					f.Weight, f.Reverse = importer.Some(w), rev
				}
			default:
				return false
			}
			return true
		})
	}
	switch {
	case f.File == "":
		k.note(n.pos(), "%s has no file: left out (keepalived drops it too)", ctx)
		return
	case !strings.HasPrefix(f.File, "/"):
		f.Off = "the file must be an absolute path"
		k.note(n.pos(), "%s: file %q is not an absolute path: written commented out (keepalived would read it from its working directory, /)", ctx, f.File)
	}
	if _, dup := k.tracked["vrrp_track_file "+f.Name]; dup {
		k.note(n.pos(), "%s is defined twice: the first is written", ctx)
		return
	}
	k.doc.TrackFiles = append(k.doc.TrackFiles, f)
	if f.Off != "" {
		return // entries naming it are left out, with a note
	}
	k.define("vrrp_track_file", f.Name, kaTracked{f.Pos, f.Weight.Or(importer.Some(1)).V, f.Reverse})
}

// trackProcessDef reads a vrrp_track_process (or track_process) block into a
// [[vrrp_track_process]] (docs/scripts.md §1.5).
func (k *kaImporter) trackProcessDef(n *kaNode) {
	kw := strings.ToLower(n.key.text)
	if !k.needArgs(kw, n, 1) {
		return
	}
	ctx := kw + " " + n.arg(0)
	k.extra(ctx, n, 1)
	p := &importer.TrackProcess{Pos: n.pos(), Name: n.arg(0)}
	for _, c := range n.block {
		k.dispatch(ctx, c, nil, func(kw string) bool {
			switch kw {
			case "process":
				if k.needArgs(ctx, c, 1) {
					p.Process = c.arg(0)
					for _, a := range c.args[1:] {
						p.Params = append(p.Params, a.text)
					}
				}
			case "param_match":
				switch m := c.arg(0); {
				case len(c.args) == 0:
					p.ParamMatch = "exact"
				case m == "initial" || m == "partial":
					k.extra(ctx, c, 1)
					p.ParamMatch = m
				default:
					k.note(c.pos(), "%s: %q: want initial or partial (or nothing, for exact): ignored (as keepalived does)", ctx, c.words())
				}
			case "full_command":
				k.extra(ctx, c, 0)
				p.FullCommand = true
			case "weight":
				if w, rev, ok := k.defWeight(ctx, c, 254); ok {
					p.Weight, p.Reverse = w, rev
				}
			case "quorum":
				k.integer(ctx, c, 1, 65535, &p.Quorum)
			case "quorum_max":
				k.integer(ctx, c, 0, 65535, &p.QuorumMax)
			case "delay", "fork_delay", "terminate_delay":
				var d importer.Opt[time.Duration]
				if k.seconds(ctx, c, &d) {
					if kw != "terminate_delay" {
						p.ForkDelay = d
					}
					if kw != "fork_delay" {
						p.TerminateDelay = d
					}
				}
			default:
				return false
			}
			return true
		})
	}
	if p.Process == "" {
		k.note(n.pos(), "%s has no process: left out (keepalived drops it too)", ctx)
		return
	}
	if len(p.Params) > 0 && p.ParamMatch == "" {
		p.ParamMatch = "exact" // keepalived: arguments given are matched exactly
	}
	if p.ParamMatch == "exact" && len(p.Params) > 0 {
		p.ParamMatch = "" // gvs's default when params are given: written without it
	}
	if p.Quorum.OK && p.QuorumMax.OK && p.QuorumMax.V < p.Quorum.V {
		k.note(n.pos(), "%s: quorum_max %d is below quorum %d: quorum_max ignored (as keepalived does)", ctx, p.QuorumMax.V, p.Quorum.V)
		p.QuorumMax = importer.Opt[int]{}
	}
	if _, dup := k.tracked["vrrp_track_process "+p.Name]; dup {
		k.note(n.pos(), "%s is defined twice: the first is written", ctx)
		return
	}
	k.define("vrrp_track_process", p.Name, kaTracked{p.Pos, p.Weight, p.Reverse})
	k.doc.TrackProcesses = append(k.doc.TrackProcesses, p)
}

// defWeight reads a block's "weight W [reverse]", W within ±limit.
func (k *kaImporter) defWeight(ctx string, c *kaNode, limit int) (int, bool, bool) {
	if !k.needArgs(ctx, c, 1) {
		return 0, false, false
	}
	w, err := strconv.Atoi(c.arg(0))
	if err != nil || w < -limit || w > limit {
		k.note(c.pos(), "%s: %q: weight must be -%d..%d: ignored (as keepalived does)", ctx, c.words(), limit, limit)
		return 0, false, false
	}
	rev := false
	if len(c.args) > 1 {
		if c.arg(1) == "reverse" {
			rev = true
			k.extra(ctx, c, 2)
		} else {
			k.note(c.pos(), "%s: %q: unknown weight option %q: ignored (as keepalived does)", ctx, c.words(), c.arg(1))
		}
	}
	return w, rev, true
}
