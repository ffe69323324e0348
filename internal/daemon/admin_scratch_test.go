package daemon

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gvs-lb/gvs/dataplane"
)

// TestAdmScratchNotPublished: the lists a gvs adm command's delta keeps in the
// controller's scratch (deltaScratch) and reuses for the next one are never
// reachable from what a command publishes: the published state (configured
// table, liveness) and the Director's services held after each command read the
// same after every later command, and a reader goroutine reads them while the
// commands run (-race). The commands reuse the scratch in every shape: services
// added and deleted, a sibling of the other protocol at the same address and
// port, NAT real servers (filter addresses of their own) added, edited and
// deleted, several keys at once (a restore).
func TestAdmScratchNotPublished(t *testing.T) {
	ta := newTestDirector(t, directorConf, nil)
	type held struct {
		pub      *published
		views    []dataplane.ServiceView
		pubText  string
		viewText string
	}
	pubText := func(p *published) string {
		var b strings.Builder
		for s := range p.configured.all() {
			fmt.Fprintf(&b, "%+v\n", *s)
		}
		fmt.Fprintf(&b, "alive %v %v\n", p.alive.has(ap("198.18.1.1:80")), p.alive.has(ap("198.18.1.2:53")))
		return b.String()
	}
	viewText := func(vs []dataplane.ServiceView) string {
		var b strings.Builder
		for _, v := range vs {
			fmt.Fprintf(&b, "%d %+v\n", v.ID, v.Spec) // the spec's lists are the generation's
			for _, dv := range v.Dests {
				fmt.Fprintf(&b, "  %d %v:%d w%d %v\n", dv.ID, dv.Addr, dv.Port, dv.Weight, dv.Method)
			}
		}
		return b.String()
	}
	var kept []held
	keep := func() {
		p := ta.d.pub.Load()
		vs := ta.d.Director().Services()
		slices.SortFunc(vs, func(a, b dataplane.ServiceView) int { return int(a.ID) - int(b.ID) })
		kept = append(kept, held{p, vs, pubText(p), viewText(vs)})
	}

	done := make(chan struct{})
	reads := make(chan int, 1)
	stop := sync.OnceValue(func() int { close(done); return <-reads })
	t.Cleanup(func() { stop() }) // a failed step ends the reader too
	snap := make(chan held, 1)
	go func() { // reads what a command published while the next ones run
		n := 0
		defer func() { reads <- n }()
		var h held
		for {
			select {
			case <-done:
				return
			case h = <-snap:
			default:
			}
			if h.pub != nil {
				n += len(pubText(h.pub)) + len(viewText(h.views))
			}
		}
	}()
	lines := []string{
		"-A -t 198.18.1.1:80 -s rr",
		"-a -t 198.18.1.1:80 -r 198.19.0.1:80 -g -w 1",
		"-A -u 198.18.1.1:80 -s wrr", // the sibling: shares track_service's liveness
		"-a -u 198.18.1.1:80 -r 198.19.0.2:8080 -m -w 2",
		"-A -u 198.18.1.2:53 -s rr",
		"-a -u 198.18.1.2:53 -r 198.19.0.3:5353 -m -w 1",
		"-e -u 198.18.1.1:80 -r 198.19.0.2:8080 -m -w 5",
		"-d -u 198.18.1.1:80 -r 198.19.0.2:8080",
		"-D -u 198.18.1.1:80",
		"-A -t 198.18.1.3:443 -s sh",
		"-D -t 198.18.1.3:443",
		"-E -t 198.18.1.1:80 -s wlc",
		"-d -u 198.18.1.2:53 -r 198.19.0.3:5353",
		"-D -u 198.18.1.2:53",
	}
	keep()
	for i, line := range lines {
		ta.ok(line)
		keep()
		snap <- kept[len(kept)-1]
		if i == 7 {
			// Several keys in one delta.
			if _, stderr, status := ta.admIn("-A -t 198.18.1.4:80 -s rr\n-a -t 198.18.1.4:80 -r 198.19.0.4:80 -m -w 1\n-A -t 198.18.1.5:80 -s rr\n", "-R --atomic"); status != 0 {
				t.Fatalf("restore: status %d: %s", status, stderr)
			}
			keep()
			ta.ok("-D -t 198.18.1.4:80")
			keep()
		}
	}
	if stop() == 0 {
		t.Fatal("the reader never read what a command published")
	}
	for i, h := range kept {
		if got := pubText(h.pub); got != h.pubText {
			t.Errorf("the state published after step %d changed:\n%s\nwas\n%s", i, got, h.pubText)
		}
		if got := viewText(h.views); got != h.viewText {
			t.Errorf("the Director's services after step %d changed:\n%s\nwere\n%s", i, got, h.viewText)
		}
	}
	// The steps did publish something new each (the test compares something).
	distinct := map[string]bool{}
	for _, h := range kept {
		distinct[h.pubText+h.viewText] = true
	}
	if len(distinct) < len(lines) {
		t.Fatalf("%d steps published %d distinct states", len(kept), len(distinct))
	}
}

// TestAdmScratchTrimmed: a restore of 600 services, then one of 200 more (a
// delta of as many keys), leaves no scratch list past maxKeptScratch for the
// collector to scan on each cycle, and the commands after it still work from
// the scratch made anew.
func TestAdmScratchTrimmed(t *testing.T) {
	ta := newTestDirector(t, directorConf, nil)
	lines := strings.SplitAfter(admTable(800), "\n")
	for _, in := range []string{strings.Join(lines[:1200], ""), strings.Join(lines[1200:], "")} {
		if _, errOut, st := ta.admIn(in, "-R"); st != 0 {
			t.Fatalf("restore: status %d, %s", st, errOut)
		}
		ta.ok("-A -t 198.18.200.1:80 -s rr")
		ta.ok("-D -t 198.18.200.1:80")
		// Every list of the scratch, found by reflection: a list added to the
		// scratch and left out of trim fails here, not only one trim names.
		sc := reflect.ValueOf(&ta.d.st.scratch).Elem()
		lists := 0
		for i := range sc.NumField() {
			f := sc.Field(i)
			if f.Kind() != reflect.Slice {
				continue
			}
			lists++
			if c := f.Cap(); c > maxKeptScratch {
				t.Fatalf("scratch %s keeps %d entries after a restore, want at most %d", sc.Type().Field(i).Name, c, maxKeptScratch)
			}
		}
		if lists == 0 {
			t.Fatal("the scratch has no lists: the test looks at the wrong value")
		}
	}
	if got := len(ta.d.Director().Services()); got < 800 {
		t.Fatalf("%d services after the restores, want 800 and the config's", got)
	}
}
