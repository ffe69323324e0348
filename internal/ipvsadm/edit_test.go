package ipvsadm

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/sched"
)

// edits parses and applies command lines in order, failing the test on any error.
func edits(t *testing.T, services []ipvs.Service, lines ...string) []ipvs.Service {
	t.Helper()
	for _, l := range lines {
		o, rest, err := SplitOptions(words(l))
		if err != nil {
			t.Fatalf("SplitOptions(%q): %v", l, err)
		}
		c, err := Parse(rest)
		if err == nil {
			err = ApplyOptions(c, o)
		}
		if err != nil {
			t.Fatalf("Parse(%q): %v", l, err)
		}
		if services, err = Edit(services, c); err != nil {
			t.Fatalf("Edit(%q): %v", l, err)
		}
	}
	return services
}

func tcpKey(ap string) ipvs.Key { return ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort(ap)) }

func dr(ap string, w int32) ipvs.RealServer {
	return ipvs.RealServer{Addr: netip.MustParseAddrPort(ap), Weight: w, Method: ipvs.DR}
}

var full4 = netip.MustParsePrefix("0.0.0.0/32")

// TestEditSeedWalkthrough follows seed 000's session: services and real servers
// in the order they were added, -e replacing a real server's settings.
func TestEditSeedWalkthrough(t *testing.T) {
	got := edits(t, nil,
		"-A -t 172.19.0.100:80 -s rr",
		"-a -t 172.19.0.100:80 -r 172.19.0.5 -g",
		"-a -t 172.19.0.100:80 -r 172.19.0.6 -g",
		"-d -t 172.19.0.100:80 -r 172.19.0.6",
		"-a -t 172.19.0.100:80 -r 172.19.0.6 -g -w 2",
		"-e -t 172.19.0.100:80 -r 172.19.0.6 -g -w 3",
	)
	want := []ipvs.Service{{
		Key: tcpKey("172.19.0.100:80"), Scheduler: "rr", Netmask: full4,
		RealServers: []ipvs.RealServer{dr("172.19.0.5:80", 1), dr("172.19.0.6:80", 3)},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	// -E replaces the service's settings and keeps its real servers; -e without
	// -w sets the weight back to 1, as ipvsadm sends the whole structure.
	got = edits(t, got, "-E -t 172.19.0.100:80 -s wrr -p 60 -M 255.255.255.0", "-e -t 172.19.0.100:80 -r 172.19.0.5 -m -x 10 -y 5")
	want[0].Scheduler, want[0].Persistence, want[0].Netmask = "wrr", time.Minute, netip.MustParsePrefix("0.0.0.0/24")
	want[0].RealServers = []ipvs.RealServer{{Addr: netip.MustParseAddrPort("172.19.0.5:80"), Weight: 1, Method: ipvs.NAT, UpperThreshold: 10, LowerThreshold: 5}, dr("172.19.0.6:80", 3)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after -E and -e\n got  %+v\nwant %+v", got, want)
	}

	if got = edits(t, got, "-D -t 172.19.0.100:80"); len(got) != 0 {
		t.Errorf("after -D: %+v", got)
	}
}

// TestEditKinds covers every kind of service gvs adm saves (the daemon's
// TestSaveClearRestore set): IPv6, UDP with OPS and flags, mh, port 0, fwmark.
func TestEditKinds(t *testing.T) {
	got := edits(t, nil,
		"-A -t 198.18.0.100:443 -s wlc -p 600 -M 255.255.255.0",
		"-a -t 198.18.0.100:443 -r 10.0.0.5:8443 -m -x 100 -y 50",
		"-A -u 198.18.0.100:53 -s sh -b sh-port,sh-fallback -o",
		"-a -u 198.18.0.100:53 -r 10.0.0.53:53 -m",
		"-A -t [2001:db8::100]:80 -s mh -b mh-port",
		"-a -t [2001:db8::100]:80 -r [2001:db8::5]:80 -g",
		"-A -t 198.18.0.200:0 -s lc -p",
		"-A -f 7 -6 -s rr",
		"-a -f 7 -6 -r 2001:db8::9 -i",
	)
	want := []ipvs.Service{{
		Key: tcpKey("198.18.0.100:443"), Scheduler: "wlc", Persistence: 600 * time.Second, Netmask: netip.MustParsePrefix("0.0.0.0/24"),
		RealServers: []ipvs.RealServer{{Addr: netip.MustParseAddrPort("10.0.0.5:8443"), Weight: 1, Method: ipvs.NAT, UpperThreshold: 100, LowerThreshold: 50}},
	}, {
		Key: ipvs.AddrKey(ipvs.UDP, netip.MustParseAddrPort("198.18.0.100:53")), Scheduler: "sh", Flags: sched.FlagSched1 | sched.FlagSched2,
		OPS: true, Netmask: full4,
		RealServers: []ipvs.RealServer{{Addr: netip.MustParseAddrPort("10.0.0.53:53"), Weight: 1, Method: ipvs.NAT}},
	}, {
		Key: tcpKey("[2001:db8::100]:80"), Scheduler: "mh", Flags: sched.FlagSched2, Netmask: netip.MustParsePrefix("::/128"),
		RealServers: []ipvs.RealServer{dr("[2001:db8::5]:80", 1)},
	}, {
		Key: tcpKey("198.18.0.200:0"), Scheduler: "lc", Persistence: DefaultPersistentTimeout, Netmask: full4,
	}, {
		Key: ipvs.MarkKey(7, true), Scheduler: "rr", Netmask: netip.MustParsePrefix("::/128"),
		RealServers: []ipvs.RealServer{{Addr: netip.MustParseAddrPort("[2001:db8::9]:0"), Weight: 1, Method: ipvs.TUN}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if got = edits(t, got, "-C"); len(got) != 0 {
		t.Errorf("after -C: %+v", got)
	}
}

// TestEditKeeps checks what -E and -e keep of what ipvsadm's command line does
// not carry: match rules, the MAC, the mh table size.
func TestEditKeeps(t *testing.T) {
	mac := ipvs.MAC{2, 0, 0, 0, 0, 9}
	match := []ipvs.Match{{Protocol: ipvs.TCP, Addr: netip.MustParseAddr("198.18.0.100"), PortLo: 8000, PortHi: 8100}}
	in := []ipvs.Service{{
		Key: ipvs.MarkKey(7, false), Scheduler: "mh", MHTableSize: 251, Netmask: full4, Match: match,
		RealServers: []ipvs.RealServer{{Addr: netip.MustParseAddrPort("198.18.0.9:0"), Weight: 1, Method: ipvs.DR, MAC: mac}},
	}}
	got := edits(t, in, "-E -f 7 -s mh -b mh-port", "-e -f 7 -r 198.18.0.9 -w 5")
	s := got[0]
	if s.MHTableSize != 251 || !reflect.DeepEqual(s.Match, match) || s.Flags != sched.FlagSched2 {
		t.Errorf("-E kept %+v", s)
	}
	if r := s.RealServers[0]; r.MAC != mac || r.Weight != 5 {
		t.Errorf("-e kept %+v", r)
	}
	if got = edits(t, got, "-E -f 7 -s rr"); got[0].MHTableSize != 0 {
		t.Errorf("-E to rr kept the mh table size %d", got[0].MHTableSize)
	}
	if got = edits(t, nil, "-A -f 7 -s rr"); got[0].Match != nil {
		t.Errorf("-A of an fwmark service has match rules %+v", got[0].Match)
	}
}

// TestEditDoesNotModify checks that Edit leaves its input alone, so a caller may
// edit a published configuration.
func TestEditDoesNotModify(t *testing.T) {
	in := edits(t, nil, "-A -t 198.18.0.100:80 -s rr", "-a -t 198.18.0.100:80 -r 198.18.0.5", "-a -t 198.18.0.100:80 -r 198.18.0.6",
		"-A -t 198.18.0.101:80")
	in = append(in[:len(in):len(in)], ipvs.Service{}) // spare capacity must not be written either
	in = in[:len(in)-1]
	snapshot := func() []ipvs.Service {
		out := make([]ipvs.Service, len(in), cap(in))
		copy(out, in[:cap(in)])
		for i := range out {
			out[i].RealServers = append([]ipvs.RealServer(nil), out[i].RealServers...)
		}
		return out
	}
	before := snapshot()
	for _, l := range []string{
		"-A -t 198.18.0.102:80", "-E -t 198.18.0.100:80 -s wlc", "-D -t 198.18.0.100:80",
		"-a -t 198.18.0.100:80 -r 198.18.0.7", "-e -t 198.18.0.100:80 -r 198.18.0.5 -w 9",
		"-d -t 198.18.0.100:80 -r 198.18.0.5", "-C",
	} {
		edits(t, in, l)
		if !reflect.DeepEqual(snapshot(), before) {
			t.Fatalf("Edit(%q) modified its input", l)
		}
	}
}

// TestEditErrors are the daemon's TestErrorsChangeNothing cases that reach the
// table: ipvsadm's messages and exit statuses, and the input returned unchanged.
func TestEditErrors(t *testing.T) {
	base := edits(t, nil,
		"-A -t 198.18.0.100:80 -s wrr",
		"-a -t 198.18.0.100:80 -r 198.18.0.5:80 -g -w 2",
		"-a -t 198.18.0.100:80 -r 198.18.0.6:80 -m -x 10 -y 5",
	)
	full := ipvs.Service{Key: tcpKey("198.18.0.100:8080"), Scheduler: "mh", MHTableSize: 251, Netmask: full4} // an mh table with every slot taken
	for i := range 251 {
		full.RealServers = append(full.RealServers, dr("10.0."+strconv.Itoa(i/250)+"."+strconv.Itoa(i%250+1)+":8080", 1))
	}
	base = append(base, full)
	for _, tc := range []struct {
		name, line, msg string
		status          int
	}{
		{"add existing service", "-A -t 198.18.0.100:80 -s rr", "Service already exists", 255},
		{"edit missing service", "-E -t 198.18.0.100:81 -s rr", "No such service", 255},
		{"delete missing service", "-D -u 198.18.0.100:80", "No such service", 255},
		{"add server to missing service", "-a -t 198.18.0.101:80 -r 198.18.0.5", "Service not defined", 255},
		{"add existing server", "-a -t 198.18.0.100:80 -r 198.18.0.5:80 -w 7", "Destination already exists", 255},
		{"edit missing server", "-e -t 198.18.0.100:80 -r 198.18.0.7:80 -w 7", "No such destination", 255},
		{"delete missing server", "-d -t 198.18.0.100:80 -r 198.18.0.7:80", "No such destination", 255},
		{"delete server of missing service", "-d -t 198.18.0.100:8081 -r 198.18.0.5:80", "Service not defined", 255},
		{"unknown scheduler", "-A -t 198.18.0.100:443 -s fastest", "Scheduler or persistence engine not found", 255},
		{"edit to unknown scheduler", "-E -t 198.18.0.100:80 -s fastest", "Scheduler or persistence engine not found", 255},
		{"persistence engine", "-A -u 198.18.0.100:5060 -p --pe sip", "Scheduler or persistence engine not found", 255},
		{"sctp", "--add-service --sctp-service 198.18.0.100:9 -s rr", "Protocol not available", 255},
		{"thresholds", "-e -t 198.18.0.100:80 -r 198.18.0.5:80 -x 5 -y 10", "Numerical result out of range", 255},
		{"gue tunnel", "-a -t 198.18.0.100:80 -r 198.18.0.9 -i --tun-type gue --tun-port 6080", "--tun-type gue is not supported: gvs tunnels with IP-in-IP only", 255},
		{"mh table full", "-a -t 198.18.0.100:8080 -r 10.0.9.9", "Memory allocation problem", 255},
		{"not a table command", "-L -n", "list cannot be restored: -R takes -A -E -D -C -a -e -d and --set", 255},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(words(tc.line))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, err := Edit(base, c)
			if err == nil || err.Error() != tc.msg || ExitStatus(err) != tc.status {
				t.Errorf("Edit(%q) = %v (status %d), want %q (status %d)", tc.line, err, ExitStatus(err), tc.msg, tc.status)
			}
			if !reflect.DeepEqual(got, base) {
				t.Errorf("Edit(%q) failed but changed the services", tc.line)
			}
		})
	}
	var ue *UnsupportedError
	c, _ := Parse(words("-a -t 198.18.0.100:80 -r 198.18.0.9 -i --tun-type gre"))
	if _, err := Edit(base, c); !errors.As(err, &ue) {
		t.Errorf("a GRE tunnel: %v is not an *UnsupportedError", err)
	}
}

// TestServiceOfRoundTrip saves a table built with Edit (ServiceOf, FormatSave),
// restores it (ParseRestore, Edit) and expects the same table, up to the order
// ipvsadm-save sorts services and real servers in and the thresholds it does not
// save.
func TestServiceOfRoundTrip(t *testing.T) {
	table := edits(t, nil,
		"-A -t 198.18.0.100:80 -s rr",
		"-a -t 198.18.0.100:80 -r 198.18.0.7 -i -w 0",
		"-a -t 198.18.0.100:80 -r 198.18.0.5 -g -w 3 -x 10 -y 5",
		"-A -t 198.18.0.100:443 -s wlc -p 600 -M 255.255.255.0",
		"-a -t 198.18.0.100:443 -r 10.0.0.5:8443 -m",
		"-A -u 198.18.0.100:53 -s sh -b sh-port,sh-fallback -o",
		"-A -t [2001:db8::100]:80 -s mh -b mh-port -p 60 -M 64",
		"-a -t [2001:db8::100]:80 -r [2001:db8::5]:80 -g",
		"-A -f 7 -s wlc -p 300 --match address=198.18.0.110,protocol=tcp,port=8000-8099 --match address=198.18.0.111",
		"-a -f 7 -r 198.18.0.9 -g",
		"-A -f 8 -6 -s lc --match address=2001:db8::110,protocol=udp,port=53",
		"-A -t 198.18.0.101:0 -s rr -p 60 -M 0.0.0.0",
	)
	var svcs []Service
	for i := range table {
		svcs = append(svcs, ServiceOf(&table[i]))
	}
	if d := svcs[0].Dests; len(d) != 2 || d[0].Addr != netip.MustParseAddr("198.18.0.5") || d[0].Method != MethodRoute || d[0].UThreshold != 10 || d[1].Method != MethodTunnel {
		t.Errorf("dests in the kernel's order (newest first): %+v", d)
	}
	var saved bytes.Buffer
	if err := FormatSave(&saved, svcs, Format{Numeric: true}, nil); err != nil {
		t.Fatal(err)
	}
	text := saved.String()
	cmds, err := ParseRestore(strings.NewReader(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	var back []ipvs.Service
	for _, c := range cmds {
		if back, err = Edit(back, c); err != nil {
			t.Fatalf("Edit(%q): %v", c.Args(), err)
		}
	}
	norm := func(ss []ipvs.Service) []ipvs.Service {
		out := slices.Clone(ss)
		slices.SortFunc(out, func(a, b ipvs.Service) int { return strings.Compare(a.String(), b.String()) })
		for i := range out {
			out[i].RealServers = slices.Clone(out[i].RealServers)
			slices.SortFunc(out[i].RealServers, func(a, b ipvs.RealServer) int { return a.Addr.Compare(b.Addr) })
			for j := range out[i].RealServers {
				// ipvsadm-save writes no thresholds (docs/ipvsadm-format.md), so -R loses them.
				out[i].RealServers[j].UpperThreshold, out[i].RealServers[j].LowerThreshold = 0, 0
			}
		}
		return out
	}
	if got, want := norm(back), norm(table); !reflect.DeepEqual(got, want) {
		t.Errorf("restored\n got %+v\nwant %+v\nsaved:\n%s", got, want, text)
	}
}

// TestEditor: an Editor's table after a run of commands, failing ones among
// them, is Edit's, and the table it started from is not modified.
func TestEditor(t *testing.T) {
	base := edits(t, nil,
		"-A -t 198.18.0.100:80 -s rr",
		"-a -t 198.18.0.100:80 -r 198.18.0.5 -g",
		"-A -t 198.18.0.101:80 -s wlc",
		"-A -f 7 -s rr --match address=198.18.0.110",
	)
	keep := cloneTable(base)
	lines := []string{
		"-A -t 198.18.0.102:80 -s rr",
		"-A -t 198.18.0.100:80", // exists
		"-a -t 198.18.0.100:80 -r 198.18.0.6 -m -w 3",
		"-e -t 198.18.0.100:80 -r 198.18.0.5 -g -w 0",
		"-d -t 198.18.0.100:80 -r 198.18.0.9", // no such destination
		"-D -t 198.18.0.101:80",
		"-E -f 7 -s wlc",
		"-a -t 198.18.0.102:80 -r 198.18.0.7 -g",
		"-D -t 198.18.0.101:80", // gone
		"-E -t 198.18.0.102:80 -s sh",
		"-d -t 198.18.0.100:80 -r 198.18.0.5",
		"-A -t 198.18.0.101:80 -s lc",
	}
	ed := NewEditor(base)
	want := base
	for _, l := range lines {
		c, err := Parse(words(l))
		if err != nil {
			t.Fatal(err)
		}
		var werr error
		want, werr = Edit(want, c)
		gerr := ed.Edit(c)
		if !errors.Is(gerr, werr) && gerr != werr {
			t.Errorf("%s: Editor %v, Edit %v", l, gerr, werr)
		}
		for _, s := range want {
			if got := ed.Service(s.Key); got == nil || !reflect.DeepEqual(*got, s) {
				t.Errorf("after %s: Service(%s) = %+v, want %+v", l, s.Key, got, s)
			}
		}
	}
	if !reflect.DeepEqual(ed.Services(), want) {
		t.Errorf("Editor:\n%+v\nEdit:\n%+v", ed.Services(), want)
	}
	if !reflect.DeepEqual(base, keep) {
		t.Errorf("the Editor modified the table it started from")
	}
	if err := ed.Edit(&Command{Op: OpClear}); err != nil || len(ed.Services()) != 0 || ed.Service(base[0].Key) != nil {
		t.Errorf("-C: %v, %+v", err, ed.Services())
	}
	if !reflect.DeepEqual(base, keep) {
		t.Errorf("-C modified the table the Editor started from")
	}
}

// cloneTable copies services deeply.
func cloneTable(ss []ipvs.Service) []ipvs.Service {
	out := slices.Clone(ss)
	for i := range out {
		out[i].RealServers = slices.Clone(out[i].RealServers)
		out[i].Match = slices.Clone(out[i].Match)
	}
	return out
}

// TestEditorReset: an Editor reset to another table edits it as a new Editor
// would, keeps nothing of the table before, leaves the services it was given
// as they were, and once grown allocates nothing for a command's service.
func TestEditorReset(t *testing.T) {
	first := edits(t, nil,
		"-A -t 198.18.0.100:80 -s rr",
		"-a -t 198.18.0.100:80 -r 198.18.0.5 -g",
		"-A -t 198.18.0.101:80 -s wlc",
	)
	second := edits(t, nil,
		"-A -f 7 -s rr --match address=198.18.0.110",
		"-A -u 198.18.0.102:53 -s sh",
		"-a -u 198.18.0.102:53 -r 198.18.0.7 -m -w 2",
	)
	keep := cloneTable(second)
	ed := NewEditor(first)
	for _, l := range []string{"-D -t 198.18.0.101:80", "-A -t 198.18.0.103:80 -s rr", "-e -t 198.18.0.100:80 -r 198.18.0.5 -g -w 4"} {
		c, err := Parse(words(l))
		if err != nil {
			t.Fatal(err)
		}
		if err := ed.Edit(c); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
	}
	ed.Reset(second)
	fresh := NewEditor(second)
	if ed.Service(first[0].Key) != nil || ed.Service(tcpKey("198.18.0.103:80")) != nil {
		t.Errorf("after Reset the Editor still has services of the table before: %+v", ed.Services())
	}
	for _, l := range []string{"-E -f 7 -s wlc", "-a -u 198.18.0.102:53 -r 198.18.0.8 -m -w 1", "-D -u 198.18.0.102:53", "-A -t 198.18.0.104:80 -s rr"} {
		c, err := Parse(words(l))
		if err != nil {
			t.Fatal(err)
		}
		if gerr, werr := ed.Edit(c), fresh.Edit(c); gerr != nil || werr != nil {
			t.Fatalf("%s: reset Editor %v, new Editor %v", l, gerr, werr)
		}
		if !reflect.DeepEqual(ed.Services(), fresh.Services()) {
			t.Errorf("after %s: reset Editor\n%+v\nnew Editor\n%+v", l, ed.Services(), fresh.Services())
		}
	}
	if !reflect.DeepEqual(second, keep) {
		t.Errorf("the reset Editor modified the table it started from")
	}

	// (An -A allocates the scheduler its check of the service builds.)
	one := edits(t, nil, "-A -t 198.18.0.100:80 -s rr")
	del, _ := Parse(words("-D -t 198.18.0.100:80"))
	if n := testing.AllocsPerRun(100, func() {
		ed.Reset(one)
		_ = ed.Edit(del)
		ed.Reset(second)
		ed.Reset(nil)
	}); n != 0 {
		t.Errorf("Reset and a -D allocate %v times, want 0", n)
	}
}
