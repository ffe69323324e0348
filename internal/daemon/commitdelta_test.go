package daemon

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"
	"github.com/gvs-lb/gvs/ipvs"
)

// TestAdmDeltaKeepsFilterAndLiveness runs random gvs adm commands, each committed
// as a delta (commitDelta): after each, the Director runs exactly the configured
// table, the links' filter lists exactly its VIPs and its NAT real servers that are
// not VIPs (and the interface's own address as local), and track_service's
// liveness is that of the table — as a whole commit would have them.
func TestAdmDeltaKeepsFilterAndLiveness(t *testing.T) {
	ta := newTestDirector(t, directorConf, nil)
	rng := rand.New(rand.NewPCG(21, 22))
	vip := func() string { return fmt.Sprintf("198.18.0.%d:%d", 1+rng.IntN(4), []int{80, 443}[rng.IntN(2)]) }
	rs := func() string { return fmt.Sprintf("198.18.1.%d:80", 1+rng.IntN(5)) }
	proto := func() string { return []string{"-t", "-u"}[rng.IntN(2)] }
	for step := range 150 {
		var line string
		switch rng.IntN(6) {
		case 0, 1:
			line = fmt.Sprintf("-A %s %s -s rr", proto(), vip())
		case 2:
			line = fmt.Sprintf("-D %s %s", proto(), vip())
		case 3, 4:
			line = fmt.Sprintf("-a %s %s -r %s %s -w %d", proto(), vip(), rs(), []string{"-g", "-m"}[rng.IntN(2)], rng.IntN(3))
		default:
			line = fmt.Sprintf("-d %s %s -r %s", proto(), vip(), rs())
		}
		ta.adm(line) // some fail (no such service, …): the table then stays
		conf := ta.d.pub.Load().configured.list()

		// The Director runs the table.
		want := map[string]bool{}
		for _, s := range conf {
			for _, r := range s.RealServers {
				want[fmt.Sprintf("%s %s w%d %v", s.Key, r.Addr, r.Weight, r.Method)] = true
			}
			want[s.Key.String()] = true
		}
		got := map[string]bool{}
		for _, v := range ta.d.Director().Services() {
			for _, dst := range v.Dests {
				got[fmt.Sprintf("%s %s w%d %v", v.Spec.Key, netip.AddrPortFrom(dst.Addr, dst.Port), dst.Weight, dst.Method)] = true
			}
			got[v.Spec.Key.String()] = true
		}
		if fmt.Sprint(want) != fmt.Sprint(got) {
			t.Fatalf("step %d (%s): the Director runs\n%v\nthe table is\n%v", step, line, got, want)
		}

		// The filter and the liveness.
		vips, nat, alive := map[netip.Addr]bool{}, map[netip.Addr]bool{}, map[netip.AddrPort]bool{}
		for _, s := range conf {
			vips[s.Addr.Addr()] = true
			for _, r := range s.RealServers {
				if r.Method == ipvs.NAT {
					nat[r.Addr.Addr()] = true
				}
				if r.Weight > 0 {
					alive[s.Addr] = true
				}
			}
		}
		for a := range vips {
			delete(nat, a)
		}
		setOf := func(l []netip.Addr) map[netip.Addr]bool {
			m := map[netip.Addr]bool{}
			for _, a := range l {
				if m[a] {
					t.Fatalf("step %d (%s): %s listed twice in the filter", step, line, a)
				}
				m[a] = true
			}
			return m
		}
		testutil.Eventually(t, 10*time.Second, func() bool {
			f := ta.link.lastFilter()
			if f == nil {
				return len(vips) == 0 && len(nat) == 0
			}
			return fmt.Sprint(setOf(f.VIPs)) == fmt.Sprint(vips) && fmt.Sprint(setOf(f.NATRealServers)) == fmt.Sprint(nat) &&
				slices.Equal(f.Local, []netip.Addr{netip.MustParseAddr("172.19.0.3")})
		}, fmt.Sprintf("step %d (%s): the links' filter has VIPs %v, NAT real servers %v", step, line, vips, nat))
		if p := ta.d.pub.Load(); fmt.Sprint(p.alive.set()) != fmt.Sprint(alive) {
			t.Fatalf("step %d (%s): alive %v, want %v", step, line, p.alive.set(), alive)
		}
	}
}

// TestAdmAddsKeepPublishedTables: services added one by one go at the end of the
// configured table, a deleted one leaves it, and a table once published never
// changes (its pages are copied before a write), read concurrently (-race) while
// services are added, deleted and added again — past a compaction of the holes.
func TestAdmAddsKeepPublishedTables(t *testing.T) {
	ta := newTestDirector(t, directorConf, nil)
	type seen struct {
		table pseq[ipvs.Service]
		keys  string
	}
	keysOf := func(table pseq[ipvs.Service]) string {
		var b []string
		for s := range table.all() {
			b = append(b, s.Key.String())
		}
		return fmt.Sprint(b)
	}
	done := make(chan struct{})
	read := make(chan int)
	go func() {
		n := 0
		defer func() { read <- n }()
		for {
			select {
			case <-done:
				return
			default:
			}
			if p := ta.d.pub.Load(); p != nil {
				n += len(keysOf(p.configured)) // reads every element
			}
		}
	}()
	var kept []seen
	var want []string // the keys the table lists, in order
	for _, s := range ta.d.Configured() {
		want = append(want, s.Key.String())
	}
	for i := range 200 {
		vip := fmt.Sprintf("198.18.%d.%d:80", 2+i/250, 1+i%250)
		ta.ok("-A -t " + vip + " -s rr")
		want = append(want, "TCP "+vip)
		if i%3 != 0 {
			// Delete an older one: holes in the middle, then a compaction.
			old := fmt.Sprintf("198.18.%d.%d:80", 2+(i-1)/250, 1+(i-1)%250)
			if i%3 == 2 {
				old = fmt.Sprintf("198.18.%d.%d:80", 2+(i/2)/250, 1+(i/2)%250)
			}
			if j := slices.Index(want, "TCP "+old); j >= 0 {
				ta.ok("-D -t " + old)
				want = slices.Delete(want, j, j+1)
			}
		}
		p := ta.d.pub.Load()
		if got := keysOf(p.configured); got != fmt.Sprint(want) {
			t.Fatalf("after command %d the table lists\n%s\nwant\n%s", i, got, fmt.Sprint(want))
		}
		if p.configured.Len() != len(want) {
			t.Fatalf("after command %d Len %d, want %d", i, p.configured.Len(), len(want))
		}
		kept = append(kept, seen{p.configured, keysOf(p.configured)})
	}
	close(done)
	if <-read == 0 {
		t.Fatal("the reader never read a table")
	}
	for i, s := range kept {
		if got := keysOf(s.table); got != s.keys {
			t.Fatalf("table published after command %d changed:\n%s\nwas\n%s", i, got, s.keys)
		}
	}
}

// TestAdmDeltaFirstChangeAfterStart: the first gvs adm change after the start,
// with nothing resolved in between (no whole commit since New), deletes a
// service of the file from the Director too. It did not while a delta counted
// only the services of a whole commit since the start, and New's were none.
func TestAdmDeltaFirstChangeAfterStart(t *testing.T) {
	ta := newTestDirector(t, directorConf+"[[service]]\naddress = \"198.18.0.100:80\"\n[[service]]\naddress = \"198.18.0.101:80\"\n", nil)
	ta.ok("-D -t 198.18.0.100:80")
	var got []string
	for _, v := range ta.d.Director().Services() {
		got = append(got, v.Spec.Key.String())
	}
	if fmt.Sprint(got) != "[TCP 198.18.0.101:80]" {
		t.Fatalf("the Director runs %v after -D of 198.18.0.100:80", got)
	}
}

// TestAdmDeltaSiblingKeepsLiveness: deleting one protocol's service at an
// address and port leaves track_service's liveness to the other protocol's
// service there (the sibling a delta looks up while another configured service
// holds the address), and a service that never had a real server does not make
// an address and port live or not.
func TestAdmDeltaSiblingKeepsLiveness(t *testing.T) {
	ta := newTestDirector(t, directorConf, nil)
	ap := netip.MustParseAddrPort("198.18.0.50:80")
	alive := func() bool { return ta.d.pub.Load().alive.has(ap) }
	ta.ok("-A -t 198.18.0.50:80 -s rr")
	ta.ok("-a -t 198.18.0.50:80 -r 198.18.1.1:80 -g -w 1")
	ta.ok("-A -u 198.18.0.50:80 -s rr")
	ta.ok("-a -u 198.18.0.50:80 -r 198.18.1.2:80 -g -w 1")
	ta.ok("-D -t 198.18.0.50:80")
	if !alive() {
		t.Fatalf("%s not live after its TCP service went, the UDP one serving", ap)
	}
	ta.ok("-A -t 198.18.0.50:80 -s rr") // no real server
	ta.ok("-D -t 198.18.0.50:80")
	if !alive() {
		t.Fatalf("%s not live after a TCP service without real servers came and went", ap)
	}
	ta.ok("-D -u 198.18.0.50:80")
	if alive() {
		t.Fatalf("%s live with no service left", ap)
	}
}

// TestAdmDeltaMatchAddressesLeave: an fwmark service's match addresses are
// VIPs of the links' filter while the service is there (its configured service
// names them, so a delta finds what its effective form holds), and leave it
// with the service, or with the rule; a NAT real server likewise.
func TestAdmDeltaMatchAddressesLeave(t *testing.T) {
	ta := newTestDirector(t, directorConf, nil)
	m, m2, nat := netip.MustParseAddr("198.18.0.77"), netip.MustParseAddr("198.18.0.78"), netip.MustParseAddr("198.18.1.9")
	filterHas := func(what string, want map[netip.Addr]bool) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, func() bool {
			f := ta.link.lastFilter()
			if f == nil {
				return false
			}
			for a, in := range want {
				if (slices.Contains(f.VIPs, a) || slices.Contains(f.NATRealServers, a)) != in {
					return false
				}
			}
			return true
		}, "%s: the filter to hold %v", what, want)
	}
	ta.ok("-A -f 5 -s rr --match address=198.18.0.77,protocol=tcp,port=443")
	ta.ok("-A -t 198.18.0.79:80 -s rr")
	ta.ok("-a -t 198.18.0.79:80 -r 198.18.1.9:8080 -m -w 1")
	filterHas("added", map[netip.Addr]bool{m: true, nat: true})
	ta.ok("-E -f 5 -s rr --match address=198.18.0.78,protocol=tcp,port=443")
	filterHas("the rule changed", map[netip.Addr]bool{m: false, m2: true, nat: true})
	ta.ok("-D -f 5")
	ta.ok("-D -t 198.18.0.79:80")
	filterHas("deleted", map[netip.Addr]bool{m: false, m2: false, nat: false})
}
