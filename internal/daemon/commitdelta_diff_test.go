package daemon

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/health"
	"github.com/gvs-lb/gvs/internal/testutil"
	"github.com/gvs-lb/gvs/ipvs"
)

// TestAdmDeltaMatchesWholeCommit runs random gvs adm commands on a director of a
// few hundred services, where each is committed as a delta (commitDelta: the
// configured table's pages, the Director's ApplyDelta, the filter's lists), and
// after each gives a second director the first one's whole table (-C and -R
// --atomic of its -S: a whole commit, every time). Both must then publish the
// same configured table, run the same services and real servers, list the same
// -Ln, give the links the same filter and track_service the same liveness.
// With a backend's address limit just above the starting table's, both refuse
// the same changes.
func TestAdmDeltaMatchesWholeCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("a few hundred commands on two directors")
	}
	t.Run("any number of addresses", func(t *testing.T) { admDeltaMatchesWholeCommit(t, 0) })
	t.Run("an address limit", func(t *testing.T) { admDeltaMatchesWholeCommit(t, 3) })
}

// admDeltaMatchesWholeCommit is the test, with a limit of room more IPv4
// addresses than the starting table's if room > 0.
func admDeltaMatchesWholeCommit(t *testing.T, room int) {
	delta := newTestDirector(t, directorConf, nil)
	rng := rand.New(rand.NewPCG(15, 3))
	vip := func() string {
		if rng.IntN(8) == 0 {
			return fmt.Sprintf("[2001:db8::%x]:%d", 1+rng.IntN(40), []int{80, 443}[rng.IntN(2)])
		}
		return fmt.Sprintf("198.18.%d.%d:%d", rng.IntN(2), 1+rng.IntN(200), []int{80, 443}[rng.IntN(2)])
	}
	rs := func(v string) string {
		if strings.HasPrefix(v, "[") {
			return fmt.Sprintf("[2001:db8:1::%x]:80", 1+rng.IntN(6))
		}
		return fmt.Sprintf("198.19.0.%d:80", 1+rng.IntN(60))
	}
	proto := func() string { return []string{"-t", "-u"}[rng.IntN(2)] }
	method := func() string { return []string{"-g", "-m", "-m"}[rng.IntN(3)] }

	// A table of 300 services to start from, half with a real server.
	var b strings.Builder
	for i := range 300 {
		v := fmt.Sprintf("198.18.%d.%d:80", i/200, 1+i%200)
		fmt.Fprintf(&b, "-A -t %s -s wrr\n", v)
		if i%2 == 0 {
			fmt.Fprintf(&b, "-a -t %s -r %s %s -w %d\n", v, rs(v), method(), 1+i%3)
		}
	}
	if _, errOut, st := delta.admIn(b.String(), "-R --atomic"); st != 0 {
		t.Fatalf("restore: %d %s", st, errOut)
	}
	// The second director once the first runs all its goroutines (it answered
	// the restore): its leak check then counts none of them.
	whole := newTestDirector(t, directorConf, nil)
	refused := 0
	if room > 0 {
		// Set before the next request is posted: the controllers read it after.
		n4, _ := countAddrs(delta.d.Configured())
		limit := capacity{backend: "test", max4: n4 + room, why: "a test's limit"}
		delta.d.capacity, whole.d.capacity = limit, limit
	}

	line := func() string {
		if rng.IntN(12) == 0 {
			// A new address: past the limit, if there is one, once a few came.
			return fmt.Sprintf("-A -t 198.18.2.%d:80 -s rr", 1+rng.IntN(250))
		}
		p, v := proto(), vip()
		if rng.IntN(10) < 7 {
			// Mostly services that exist (the starting table's).
			i := rng.IntN(300)
			p, v = "-t", fmt.Sprintf("198.18.%d.%d:80", i/200, 1+i%200)
		}
		switch rng.IntN(10) {
		case 0, 1:
			return fmt.Sprintf("-A %s %s -s %s", p, v, []string{"rr", "wlc", "sh"}[rng.IntN(3)])
		case 2:
			return fmt.Sprintf("-D %s %s", p, v)
		case 3:
			return fmt.Sprintf("-E %s %s -s %s", p, v, []string{"rr", "wrr", "lc"}[rng.IntN(3)])
		case 4, 5, 6:
			return fmt.Sprintf("-a %s %s -r %s %s -w %d", p, v, rs(v), method(), rng.IntN(3))
		case 7:
			return fmt.Sprintf("-e %s %s -r %s %s -w %d", p, v, rs(v), method(), rng.IntN(3))
		default:
			return fmt.Sprintf("-d %s %s -r %s", p, v, rs(v))
		}
	}
	deltas := delta.generations()
	for step := range 250 {
		var what string
		if rng.IntN(5) == 0 {
			// A few lines at once: an atomic restore naming several services.
			var lines []string
			for range 2 + rng.IntN(4) {
				lines = append(lines, line())
			}
			what = strings.Join(lines, "; ")
			_, errOut, _ := delta.admIn(strings.Join(lines, "\n")+"\n", "-R --atomic") // may fail as a whole
			if strings.Contains(errOut, "a test's limit") {
				refused++
			}
		} else {
			what = line()
			// Some fail (no such service, …): the table then stays.
			if _, errOut, _ := delta.adm(what); strings.Contains(errOut, "a test's limit") {
				refused++
			}
		}
		save := delta.ok("-S -n")
		if _, errOut, st := whole.admIn("-C\n"+save, "-R --atomic"); st != 0 {
			t.Fatalf("step %d (%s): the whole restore failed: %d %s\n%s", step, what, st, errOut, save)
		}
		compareDirectors(t, fmt.Sprintf("step %d (%s)", step, what), delta, whole)
	}
	t.Logf("%d changes past the address limit refused", refused)
	if room > 0 && refused == 0 {
		t.Fatal("no change went past the address limit: the test does not exercise it")
	}
	if n := delta.generations() - deltas; n < 60 {
		t.Fatalf("only %d of 250 commands changed the table: the test does not exercise deltas", n)
	}
}

// compareDirectors fails the test unless a and b publish the same configured
// table (by key), run the same services and real servers (-Ln and the
// Director's views), give the links the same filter and have the same liveness.
func compareDirectors(t *testing.T, what string, a, b *testAdmin) {
	t.Helper()
	compareStates(t, what, directorState(t, what, a), directorState(t, what, b))
}

// compareStates fails the test unless two directorStates are the same.
func compareStates(t *testing.T, what string, a, b [5]string) {
	t.Helper()
	for i, name := range []string{"configured tables", "-Ln", "the Directors' services", "the links' filters", "liveness"} {
		if a[i] != b[i] {
			t.Fatalf("%s: %s differ:\n%s", what, name, lineDiff(a[i], b[i]))
		}
	}
}

// directorState is what compareDirectors compares of a director: its configured
// table, -Ln, its Director's services, the links' filter and the liveness.
func directorState(t *testing.T, what string, ta *testAdmin) [5]string {
	t.Helper()
	conf := func(ta *testAdmin) string {
		c := ta.d.Configured()
		slices.SortFunc(c, func(x, y ipvs.Service) int { return strings.Compare(x.Key.String(), y.Key.String()) })
		var out []string
		for _, s := range c {
			// -S lists real servers in the Director's order, not the
			// table's: the whole director's table has them in that order.
			s.RealServers = slices.Clone(s.RealServers)
			slices.SortFunc(s.RealServers, func(x, y ipvs.RealServer) int { return x.Addr.Compare(y.Addr) })
			out = append(out, fmt.Sprintf("%+v", s))
		}
		return strings.Join(out, "\n")
	}
	views := func(ta *testAdmin) string {
		var out []string
		for _, v := range ta.d.Director().Services() {
			l := fmt.Sprintf("%+v %s", v.Spec, v.Sched)
			for _, dst := range v.Dests {
				l += fmt.Sprintf(" %s w%d %v u%d l%d mac=%v", netip.AddrPortFrom(dst.Addr, dst.Port), dst.Weight, dst.Method,
					dst.UpperThreshold, dst.LowerThreshold, ta.d.Director().DestHasMAC(dst.ID))
			}
			out = append(out, l)
		}
		slices.Sort(out)
		return strings.Join(out, "\n")
	}
	filter := func(ta *testAdmin) string {
		<-ta.d.fx.flushed()
		f := ta.link.lastFilter()
		if f == nil {
			return "none"
		}
		set := func(name string, l []netip.Addr) string {
			s := slices.Clone(l)
			slices.SortFunc(s, netip.Addr.Compare)
			if len(slices.Compact(slices.Clone(s))) != len(s) {
				t.Fatalf("%s: an address listed twice in %v", what, l)
			}
			var out []string
			for _, a := range s {
				out = append(out, name+" "+a.String())
			}
			return strings.Join(out, "\n")
		}
		return fmt.Sprintf("%s\n%s\nlocal %v macs %v arp %v ndp %v vrrp %v",
			set("vip", f.VIPs), set("nat", f.NATRealServers), f.Local, f.MACs, f.ARP, f.NDP, f.VRRP)
	}
	alive := func(ta *testAdmin) string { return fmt.Sprint(ta.d.pub.Load().alive.set()) }
	return [5]string{conf(ta), ta.ok("-Ln"), views(ta), filter(ta), alive(ta)}
}

// lineDiff lists the lines only delta (-) or only whole (+) has.
func lineDiff(delta, whole string) string {
	x, y := strings.Split(delta, "\n"), strings.Split(whole, "\n")
	var out []string
	for _, l := range x {
		if !slices.Contains(y, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range y {
		if !slices.Contains(x, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// TestHealthDeltaMatchesWholeCommit: random health transitions (down, up, a new
// weight), one at a time, of the real servers of 40 checked services — some with a quorum and
// a sorry server, some inhibit_on_failure, NAT and DR — are each given to the
// Director as a delta of the services they touch (commitStale); a reload of the
// same file then commits the whole table, which must change nothing the
// director publishes, runs, lists, filters or tracks.
func TestHealthDeltaMatchesWholeCommit(t *testing.T) {
	var b strings.Builder
	b.WriteString(directorConf)
	for i := range 40 {
		fmt.Fprintf(&b, "[[service]]\naddress = \"198.18.0.%d:80\"\nscheduler = \"wrr\"\n", 1+i)
		if i%4 == 0 {
			fmt.Fprintf(&b, "quorum = 2\nsorry_server = \"198.19.1.%d:80\"\n", 1+i)
		}
		b.WriteString("  [service.check]\n  type = \"tcp\"\n")
		for j := range 3 {
			fmt.Fprintf(&b, "  [[service.real_server]]\n  address = \"198.19.0.%d:80\"\n  weight = %d\n", 1+(i*3+j)%50, 1+j)
			if i%3 == 0 {
				b.WriteString("  method = \"nat\"\n")
			}
			if j == 2 && i%5 == 0 {
				b.WriteString("  inhibit_on_failure = true\n")
			}
		}
	}
	text := b.String()
	ta := newTestDirector(t, text, nil)
	rng := rand.New(rand.NewPCG(8, 9))
	for step := range 100 {
		// One at a time: the next generation is then the one that took it.
		g := ta.generations()
		i, j := rng.IntN(40), rng.IntN(3)
		target := fmt.Sprintf("198.19.0.%d:80", 1+(i*3+j)%50)
		var id string
		ta.health.mu.Lock()
		for _, s := range ta.health.specs {
			if s.Target.String() == target && strings.HasPrefix(s.ID, fmt.Sprintf("TCP 198.18.0.%d:80 ", 1+i)) {
				id = s.ID
			}
		}
		ta.health.mu.Unlock()
		if id == "" {
			t.Fatalf("no check of %s in service %d", target, i)
		}
		tr := health.Transition{ID: id, Up: rng.IntN(2) == 0, Weight: health.WeightUnchanged}
		if rng.IntN(4) == 0 {
			tr.Up, tr.Weight = true, rng.IntN(4)
		}
		ta.health.notify(tr)
		testutil.Eventually(t, 10*time.Second, func() bool { return ta.generations() > g }, "step %d: the transition applied", step)
		ta.settle()
		desc := fmt.Sprintf("step %d (%s up=%v weight=%d)", step, id, tr.Up, tr.Weight)
		deltaState := directorState(t, desc, ta)
		if err := ta.reloadText(text); err != nil { // a whole commit of the same table
			t.Fatalf("%s: reload: %v", desc, err)
		}
		compareStates(t, desc+", then a whole commit", deltaState, directorState(t, desc, ta))
	}
}
