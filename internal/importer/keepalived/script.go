package keepalived

import (
	"math"
	"strconv"
	"strings"

	"github.com/gvs-lb/gvs/internal/importer"
)

// kaScriptRef is one track_script, track_file or track_process entry of an
// instance, before it is checked against the blocks it names and keepalived's
// weight rules (trackWeights).
type kaScriptRef struct {
	kind    string // "track_script", "track_file", "track_process"
	pos     importer.Pos
	name    string
	weight  importer.Opt[int]
	reverse importer.Opt[bool]
}

// kaTracked is what a track entry resolves against: the block it names.
type kaTracked struct {
	pos     importer.Pos
	weight  int
	reverse bool
}

// kaTrackKinds names, for each track list, the block keepalived looks its entries
// up in, and what it tracks (for notes).
var kaTrackKinds = map[string][2]string{
	"track_script":  {"vrrp_script", "the script failing"},
	"track_file":    {"vrrp_track_file", "a non-zero value"},
	"track_process": {"vrrp_track_process", "losing the quorum"},
}

// vrrpScript reads one vrrp_script block into a [[vrrp_script]] (docs/scripts.md
// §1): keepalived's keywords map one to one.
func (k *kaImporter) vrrpScript(n *kaNode) {
	if !k.needArgs("vrrp_script", n, 1) {
		return
	}
	ctx := "vrrp_script " + n.arg(0)
	k.extra(ctx, n, 1)
	s := &importer.VRRPScript{Pos: n.pos(), Name: n.arg(0)}
	for _, c := range n.block {
		k.dispatch(ctx, c, nil, func(kw string) bool {
			switch kw {
			case "script":
				if !k.needArgs(ctx, c, 1) {
					break
				}
				if len(c.args) == 1 {
					s.Script = splitCommand(c.arg(0))
				} else {
					for _, a := range c.args {
						s.Script = append(s.Script, a.text)
					}
				}
			case "interval":
				k.seconds(ctx, c, &s.Interval)
			case "timeout":
				k.seconds(ctx, c, &s.Timeout)
			case "weight":
				var w importer.Opt[int]
				if k.needArgs(ctx, c, 1) {
					if n, err := strconv.Atoi(c.arg(0)); err != nil || n < -253 || n > 253 {
						k.note(c.pos(), "%s: %q: weight must be -253..253: ignored (as keepalived does)", ctx, c.words())
					} else {
						w = importer.Some(n)
					}
				}
				s.Weight = w.V
				if len(c.args) > 1 {
					if strings.EqualFold(c.arg(1), "reverse") {
						s.Reverse = true
						k.extra(ctx, c, 2)
					} else {
						k.note(c.pos(), "%s: %q: unknown weight option %q: ignored (as keepalived does)", ctx, c.words(), c.arg(1))
					}
				}
			case "rise":
				k.integer(ctx, c, 1, math.MaxInt32, &s.Rise)
			case "fall":
				k.integer(ctx, c, 1, math.MaxInt32, &s.Fall)
			case "user":
				if k.needArgs(ctx, c, 1) {
					k.extra(ctx, c, 2)
					s.User = strings.Join(strings.Fields(c.words())[1:], " ")
				}
			case "init_fail":
				k.extra(ctx, c, 0)
				s.InitFail = true
			default:
				return false
			}
			return true
		})
	}
	switch {
	case len(s.Script) == 0 || s.Script[0] == "":
		k.note(n.pos(), "%s has no script: left out (keepalived drops it too)", ctx)
		return
	case k.scripts[s.Name] != nil:
		k.note(n.pos(), "%s is defined twice: the first is written", ctx)
		return
	}
	if k.scripts == nil {
		k.scripts = map[string]*importer.VRRPScript{}
	}
	k.scripts[s.Name] = s
	k.define("vrrp_script", s.Name, kaTracked{s.Pos, s.Weight, s.Reverse})
	k.doc.VRRPScripts = append(k.doc.VRRPScripts, s)
}

// splitCommand splits a quoted script into words as keepalived does: at white
// space, with '…' and "…" grouping (no shell runs it, in keepalived or gvs).
func splitCommand(s string) []string {
	var out []string
	var w strings.Builder
	in, quote := false, rune(0)
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			w.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				out = append(out, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, w.String())
	}
	return out
}

// trackScript reads a track_script, track_file or track_process block (kind):
// "NAME", "NAME weight W", "NAME weight W reverse" a line.
func (k *kaImporter) trackScript(ctx, kind string, n *kaNode, v *importer.VRRP) {
	k.extra(ctx, n, 0)
	if k.scriptRefs == nil {
		k.scriptRefs = map[*importer.VRRP][]kaScriptRef{}
	}
	for _, e := range n.block {
		k.noBlock(ctx, e)
		r := kaScriptRef{kind: kind, pos: e.pos(), name: e.key.text}
		ok := true
		if len(e.args) > 0 {
			w, err := strconv.Atoi(e.arg(1))
			switch {
			case e.arg(0) != "weight" || len(e.args) < 2 || err != nil || w < -254 || w > 254:
				ok = false
			case len(e.args) == 3 && (e.arg(2) == "reverse" || e.arg(2) == "noreverse"):
				r.reverse = importer.Some(e.arg(2) == "reverse")
			case len(e.args) > 2:
				ok = false
			}
			if kind == "track_script" {
				w = max(min(w, 253), -253) // keepalived takes ±254 as ±253
			}
			r.weight = importer.Some(w)
		}
		if !ok {
			k.note(e.pos(), "%s: %s %q: want NAME or NAME weight W [reverse]: left out (keepalived ignores it too)", ctx, kind, e.words())
			continue
		}
		k.scriptRefs[v] = append(k.scriptRefs[v], r)
	}
}

// trackScripts resolves each instance's track_script, track_file and
// track_process entries as keepalived does: the block named must be defined before
// the instance, and named once; a weight is the entry's or the block's; keepalived's
// weight rules for sync groups and the address owner apply as for track_interface
// (trackWeights).
func (k *kaImporter) trackScripts(v *importer.VRRP, owner bool, s *kaSync) {
	ctx := "vrrp_instance " + v.Name
	seen := map[string]bool{}
	for _, r := range k.scriptRefs[v] {
		block, what := kaTrackKinds[r.kind][0], kaTrackKinds[r.kind][1]
		d, ok := k.tracked[block+" "+r.name]
		switch {
		case !ok:
			k.note(r.pos, "%s: %s %s: no %s has that name: left out (keepalived ignores it too)", ctx, r.kind, r.name, block)
			continue
		case d.pos.Seq > v.Pos.Seq:
			k.note(r.pos, "%s: %s %s: the %s is defined after the instance: left out (keepalived only finds those defined before)", ctx, r.kind, r.name, block)
			continue
		case seen[r.kind+" "+r.name]:
			k.note(r.pos, "%s: %s %s listed twice: the first is written (as keepalived)", ctx, r.kind, r.name)
			continue
		}
		seen[r.kind+" "+r.name] = true
		w := r.weight.Or(importer.Some(d.weight)).V
		rev := r.reverse.Or(importer.Some(d.reverse)).V
		switch {
		case w == 0:
		case s != nil && !s.trackingWeight:
			k.note(r.pos, "%s: %s %s: weight %d dropped: keepalived ignores tracking weights in a sync group (%s) without sync_group_tracking_weight, so %s means FAULT", ctx, r.kind, r.name, w, s.g.Name, what)
			w = 0
		case owner:
			k.note(r.pos, "%s: %s %s weight %d left out: keepalived ignores weights on the address owner (priority 255) and stops tracking it; gvs refuses them", ctx, r.kind, r.name, w)
			continue
		}
		e := r.name
		if w != d.weight || rev != d.reverse {
			e += " weight " + strconv.Itoa(w)
			if rev {
				e += " reverse"
			}
		}
		switch r.kind {
		case "track_script":
			v.TrackScript = append(v.TrackScript, e)
		case "track_file":
			v.TrackFile = append(v.TrackFile, e)
		case "track_process":
			v.TrackProcess = append(v.TrackProcess, e)
		}
	}
}

// define records a block track entries can name.
func (k *kaImporter) define(block, name string, d kaTracked) {
	if k.tracked == nil {
		k.tracked = map[string]kaTracked{}
	}
	k.tracked[block+" "+name] = d
}
