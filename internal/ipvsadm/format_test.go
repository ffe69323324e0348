package ipvsadm

import (
	"bytes"
	"errors"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Constructors for the models the golden files describe.

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func tcp(addr string, port uint16, sched string, dests ...Dest) Service {
	return Service{Protocol: TCP, Addr: ip(addr), Port: port, Scheduler: sched, Dests: dests}
}

func udp(addr string, port uint16, sched string, dests ...Dest) Service {
	s := tcp(addr, port, sched, dests...)
	s.Protocol = UDP
	return s
}

func fwm(mark uint32, sched string, dests ...Dest) Service {
	return Service{FWMark: mark, Scheduler: sched, Dests: dests}
}

func dest(addr string, port uint16, m Method, weight int, active, inact uint32) Dest {
	return Dest{Addr: ip(addr), Port: port, Method: m, Weight: weight, ActiveConns: active, InactConns: inact}
}

func defaultInfo() Info { return Info{Version: "1.2.1", ConnTableSize: 4096} }

// numericTable is the model of list_numeric.golden and save_numeric.golden,
// given in an order the listing must sort.
func numericTable() []Service {
	udp53 := udp("10.0.0.1", 53, "wlc", dest("10.1.0.2", 53, MethodMasq, 1, 0, 12))
	udp53.OPS = true
	web := tcp("10.0.0.1", 80, "rr",
		dest("10.1.0.3", 8080, MethodMasq, 3, 17, 120),
		dest("10.1.0.2", 8080, MethodMasq, 1, 5, 0))
	mark := fwm(7, "wlc",
		dest("10.1.0.9", 0, MethodRoute, 1, 0, 0),
		func() Dest {
			d := dest("10.1.0.8", 0, MethodTunnel, 2, 0, 0)
			d.TunnelType = TunnelIPIP
			return d
		}())
	mark.Persistent, mark.Timeout, mark.Netmask = true, 300*time.Second, 24
	v6 := tcp("2001:db8::1", 443, "sh", dest("2001:db8::10", 443, MethodRoute, 1, 2, 3))
	v6.Flags = []string{"sh-port", "sh-fallback"}
	local := tcp("10.254.0.1", 443, "rr", dest("127.0.0.1", 443, MethodLocal, 1, 0, 0))
	local.Persistent, local.Timeout = true, 10800*time.Second
	return []Service{udp53, web, mark, v6, local}
}

// testNames resolves the names of list_names.golden and conns_names.golden.
func testNames() *Names {
	return &Names{
		Hosts: []HostEntry{
			{Addr: ip("10.0.62.121"), Names: []string{"ip-10-0-62-121.ec2.internal"}},
			{Addr: ip("10.0.62.92"), Names: []string{"ip-10-0-62-92.ec2.internal"}},
			{Addr: ip("10.0.0.99"), Names: []string{"dns.example", "dns"}},
			{Addr: ip("2001:db8::1"), Names: []string{"www6.example.com"}},
			{Addr: ip("2001:db8::10"), Names: []string{"a-rather-long-backend-name.example.com"}},
			{Addr: ip("10.1.0.50"), Names: []string{"fw-backend"}},
			{Addr: ip("192.0.2.10"), Names: []string{"client.example"}},
			{Addr: ip("10.0.0.1"), Names: []string{"vip.example", "www"}},
		},
		Services: []ServiceEntry{
			{Name: "http", Port: 80, Protocol: TCP, Aliases: []string{"www"}},
			{Name: "https", Port: 443, Protocol: TCP},
			{Name: "domain", Port: 53, Protocol: TCP},
			{Name: "domain", Port: 53, Protocol: UDP},
			{Name: "webcache", Port: 8080, Protocol: TCP},
		},
	}
}

func namesTable() []Service {
	return []Service{
		fwm(9, "rr", dest("10.1.0.50", 80, MethodRoute, 1, 0, 0)),
		tcp("2001:db8::1", 443, "rr", dest("2001:db8::10", 443, MethodRoute, 1, 0, 0)),
		udp("10.0.0.99", 53, "rr", dest("10.0.0.53", 53, MethodRoute, 1, 0, 0)),
		tcp("10.0.62.121", 80, "wlc",
			dest("10.0.62.93", 80, MethodMasq, 1, 0, 0),
			dest("10.0.62.92", 9090, MethodMasq, 1, 0, 0)),
	}
}

// quirkTable is the model of the *_sort_quirk.golden files.
func quirkTable() []Service {
	return []Service{
		tcp("192.168.0.1", 80, "rr",
			dest("192.168.1.1", 80, MethodRoute, 1, 0, 0),
			dest("100.1.1.1", 80, MethodRoute, 1, 0, 0),
			dest("10.1.1.1", 80, MethodRoute, 1, 0, 0)),
		tcp("100.0.0.1", 80, "rr"),
		tcp("10.0.0.1", 80, "rr"),
		tcp("100.0.0.1", 81, "rr"),
		fwm(3000000000, "rr"),
		fwm(1, "rr"),
	}
}

func golden(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// diffLines reports the first differing line, with blanks made visible.
func diffLines(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			vis := func(s string) string { return strings.ReplaceAll(s, " ", "·") + "$" }
			return "line " + itoa(i+1) + ":\nwant " + vis(w) + "\ngot  " + vis(g)
		}
	}
	return ""
}

func TestGolden(t *testing.T) {
	names := testNames()
	one := numericTable()[1]
	statsTable := func() []Service {
		a := tcp("10.0.0.1", 80, "rr", Dest{Addr: ip("10.1.0.2"), Port: 8080, Method: MethodMasq, Weight: 1,
			Stats: Stats{99999999999, 100000000000, 99999999999999, 100000000000000, math.MaxUint64}})
		a.Stats = Stats{0, 99999999, 100000000, 999999999, 1000000000}
		b := tcp("2001:db8::1", 443, "rr", Dest{Addr: ip("2001:db8::10"), Port: 443, Method: MethodRoute, Weight: 1,
			Stats: Stats{1105123456, 13034999999, 0, 0, 0}})
		b.Stats = Stats{1, 2, 3, 125426999, 181747001}
		return []Service{b, a}
	}
	rateTable := func() []Service {
		r := Rates{12, 123456789, 1234567890, 0, 5000000000}
		s := udp("10.0.0.1", 53, "rr", Dest{Addr: ip("10.1.0.2"), Port: 53, Method: MethodMasq, Weight: 1, Rates: r})
		s.Rates = r
		return []Service{s}
	}
	exactTable := func() []Service {
		s := tcp("10.0.0.1", 80, "rr", dest("10.1.0.2", 8080, MethodMasq, 1, 0, 0))
		s.Stats = Stats{5, 99999999, 100000000, 123456789012, math.MaxUint64}
		return []Service{s}
	}
	thresholdsTable := func() []Service {
		s := tcp("10.0.0.1", 80, "wrr",
			dest("10.1.0.3", 80, MethodRoute, 1, 0, 0),
			Dest{Addr: ip("10.1.0.2"), Port: 80, Method: MethodRoute, Weight: 1, UThreshold: 200, LThreshold: 100, ActiveConns: 150, InactConns: 30})
		s.Persistent, s.Timeout, s.Netmask = true, 360*time.Second, 16
		return []Service{s}
	}
	persistTable := func() []Service {
		a := tcp("10.11.12.13", 6379, "wlc", Dest{Addr: ip("10.11.12.14"), Port: 6379, Method: MethodRoute,
			Weight: 1, PersistConns: 3, ActiveConns: 2, InactConns: 1})
		a.Persistent, a.Timeout = true, 10*time.Second
		b := fwm(5, "lc", dest("2001:db8::5", 0, MethodRoute, 10, 0, 0))
		b.IPv6, b.Persistent, b.Timeout, b.Netmask = true, true, 60*time.Second, 64
		return []Service{b, a}
	}
	tunTable := func() []Service {
		gue := dest("10.1.0.3", 80, MethodTunnel, 1, 0, 0)
		gue.TunnelType, gue.TunnelPort, gue.TunnelCsum = TunnelGUE, 6080, TunnelCsumOn
		gre := dest("10.1.0.4", 80, MethodTunnel, 1, 0, 0)
		gre.TunnelType, gre.TunnelCsum = TunnelGRE, TunnelRemCsum
		s := tcp("10.0.0.1", 80, "mh", dest("10.1.0.5", 80, MethodRoute, 1, 0, 0), gre, gue,
			dest("10.1.0.2", 80, MethodTunnel, 1, 0, 0))
		s.Flags = []string{"flag-2"} // bit 2 is mh-port under mh
		return []Service{s}
	}
	seed := []Service{tcp("172.19.0.100", 80, "rr",
		dest("172.19.0.6", 80, MethodRoute, 2, 0, 0),
		dest("172.19.0.5", 80, MethodRoute, 1, 0, 4))}

	n := Format{Numeric: true}
	tests := []struct {
		name string
		run  func(w *bytes.Buffer) error
	}{
		{"list_seed000.golden", func(w *bytes.Buffer) error { return FormatList(w, defaultInfo(), seed, n, nil) }},
		{"list_numeric.golden", func(w *bytes.Buffer) error { return FormatList(w, defaultInfo(), numericTable(), n, names) }},
		{"list_numeric.golden", func(w *bytes.Buffer) error {
			// Without -n and without a resolver, everything is numeric.
			return FormatList(w, defaultInfo(), numericTable(), Format{}, nil)
		}},
		{"save_numeric.golden", func(w *bytes.Buffer) error { return FormatSave(w, numericTable(), n, names) }},
		{"list_empty.golden", func(w *bytes.Buffer) error { return FormatList(w, defaultInfo(), nil, n, nil) }},
		{"list_service.golden", func(w *bytes.Buffer) error { return FormatService(w, &one, n, nil) }},
		{"list_stats.golden", func(w *bytes.Buffer) error {
			return FormatList(w, Info{"1.2.1", 1048576}, statsTable(), Format{Numeric: true, Stats: true}, nil)
		}},
		{"list_stats.golden", func(w *bytes.Buffer) error {
			// --stats wins over --rate (§2).
			return FormatList(w, Info{"1.2.1", 1048576}, statsTable(), Format{Numeric: true, Stats: true, Rate: true}, nil)
		}},
		{"list_rate.golden", func(w *bytes.Buffer) error {
			return FormatList(w, defaultInfo(), rateTable(), Format{Numeric: true, Rate: true}, nil)
		}},
		{"list_exact.golden", func(w *bytes.Buffer) error {
			return FormatList(w, defaultInfo(), exactTable(), Format{Numeric: true, Stats: true, Exact: true}, nil)
		}},
		{"list_thresholds.golden", func(w *bytes.Buffer) error {
			return FormatList(w, defaultInfo(), thresholdsTable(), Format{Numeric: true, Thresholds: true}, nil)
		}},
		{"list_persistent_conn.golden", func(w *bytes.Buffer) error {
			return FormatList(w, defaultInfo(), persistTable(), Format{Numeric: true, PersistentConn: true}, nil)
		}},
		{"list_tuninfo.golden", func(w *bytes.Buffer) error {
			return FormatList(w, defaultInfo(), tunTable(), Format{Numeric: true, TunInfo: true}, nil)
		}},
		{"list_names.golden", func(w *bytes.Buffer) error { return FormatList(w, defaultInfo(), namesTable(), Format{}, names) }},
		{"save_names.golden", func(w *bytes.Buffer) error { return FormatSave(w, namesTable(), Format{}, names) }},
		{"list_sort_quirk.golden", func(w *bytes.Buffer) error { return FormatList(w, defaultInfo(), quirkTable(), n, nil) }},
		{"save_sort_quirk.golden", func(w *bytes.Buffer) error { return FormatSave(w, quirkTable(), n, nil) }},
		{"conns.golden", func(w *bytes.Buffer) error { return FormatConns(w, testConns(), n, names) }},
		{"conns_names.golden", func(w *bytes.Buffer) error {
			return FormatConns(w, []Conn{{Protocol: TCP, Client: ap("192.0.2.10:51234"), Virtual: ap("10.0.0.1:80"),
				Dest: ap("10.1.0.2:8080"), State: "ESTABLISHED", Expires: 899 * time.Second}}, Format{}, names)
		}},
		{"conns_pe.golden", func(w *bytes.Buffer) error {
			return FormatConns(w, []Conn{
				{Protocol: UDP, Client: ap("192.0.2.20:5060"), Virtual: ap("10.0.0.2:5060"), Dest: ap("10.1.0.7:5060"),
					State: "UDP", Expires: 120 * time.Second},
				{Protocol: UDP, Client: ap("192.0.2.20:0"), Virtual: ap("10.0.0.2:5060"), Dest: ap("10.1.0.7:5060"),
					State: "NONE", Expires: 1800 * time.Second, Template: true, PEName: "sip", PEData: "a84b4c76e66710"},
			}, Format{Numeric: true, PersistentConn: true}, nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.run(&b); err != nil {
				t.Fatal(err)
			}
			if d := diffLines(golden(t, tt.name), b.String()); d != "" {
				t.Errorf("%s differs at %s", tt.name, d)
			}
		})
	}
}

func testConns() []Conn {
	return []Conn{
		{Protocol: TCP, Client: ap("192.0.2.10:51234"), Virtual: ap("10.0.0.1:80"), Dest: ap("10.1.0.2:8080"),
			State: "ESTABLISHED", Expires: 899 * time.Second},
		{Protocol: TCP, Client: ap("198.51.100.200:40000"), Virtual: ap("10.0.0.1:80"), Dest: ap("10.1.0.3:8080"),
			State: "ESTABLISHED", Expires: 2*time.Hour + 13*time.Minute + 35*time.Second + 400*time.Millisecond},
		{Protocol: TCP, Client: ap("192.0.2.11:1024"), Virtual: ap("10.0.0.1:80"), Dest: ap("10.1.0.2:8080"),
			State: "FIN_WAIT", Expires: 59 * time.Second},
		{Protocol: UDP, Client: ap("192.0.2.12:5353"), Virtual: ap("10.0.0.1:53"), Dest: ap("10.1.0.2:53"),
			State: "UDP", Expires: 298 * time.Second},
		{Protocol: TCP, Client: ap("192.0.2.0:0"), Virtual: ap("10.254.0.1:443"), Dest: ap("127.0.0.1:443"),
			State: "NONE", Expires: 300 * time.Second, Template: true},
		{Protocol: 0, Client: ap("192.0.2.10:0"), Virtual: ap("0.0.0.7:0"), Dest: ap("10.1.0.9:0"),
			State: "NONE", Expires: 60000 * time.Second, Template: true},
		{Protocol: TCP, Client: ap("[2001:db8:1::1]:60000"), Virtual: ap("[2001:db8::1]:443"), Dest: ap("[2001:db8::10]:443"),
			State: "SYN_RECV", Expires: 60 * time.Second},
	}
}

// TestFormatDoesNotModify checks that listings sort copies, not the caller's
// slices.
func TestFormatDoesNotModify(t *testing.T) {
	tab := numericTable()
	before := tab[1].Dests[0].Addr
	var b bytes.Buffer
	if err := FormatList(&b, defaultInfo(), tab, Format{Numeric: true}, nil); err != nil {
		t.Fatal(err)
	}
	if tab[0].Protocol != UDP || tab[1].Dests[0].Addr != before {
		t.Error("FormatList reordered its input")
	}
}

func TestNoSort(t *testing.T) {
	tab := []Service{tcp("10.0.0.2", 80, "rr", dest("10.1.0.2", 80, MethodRoute, 1, 0, 0), dest("10.1.0.1", 80, MethodRoute, 1, 0, 0)),
		tcp("10.0.0.1", 80, "rr")}
	var b bytes.Buffer
	if err := FormatSave(&b, tab, Format{Numeric: true, NoSort: true}, nil); err != nil {
		t.Fatal(err)
	}
	// -S always sorts.
	want := "-A -t 10.0.0.1:80 -s rr\n-A -t 10.0.0.2:80 -s rr\n-a -t 10.0.0.2:80 -r 10.1.0.1:80 -g -w 1\n-a -t 10.0.0.2:80 -r 10.1.0.2:80 -g -w 1\n"
	if b.String() != want {
		t.Errorf("FormatSave:\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := FormatList(&b, defaultInfo(), tab, Format{Numeric: true, NoSort: true}, nil); err != nil {
		t.Fatal(err)
	}
	got := b.String()
	i2, i1 := strings.Index(got, "10.0.0.2:80"), strings.Index(got, "10.0.0.1:80")
	d2, d1 := strings.Index(got, "10.1.0.2:80"), strings.Index(got, "10.1.0.1:80")
	if i2 > i1 || d2 > d1 {
		t.Errorf("--nosort reordered:\n%s", got)
	}
}

func TestLargenum(t *testing.T) {
	tests := []struct {
		v     uint64
		exact bool
		want  string
	}{
		{0, false, "        0"},
		{99_999_999, false, " 99999999"},
		{100_000_000, false, "  100000K"},
		{999_999_999, false, "  999999K"},
		{1_000_000_000, false, "    1000M"},
		{99_999_999_999, false, "   99999M"},
		{100_000_000_000, false, "     100G"},
		{99_999_999_999_999, false, "   99999G"},
		{100_000_000_000_000, false, "     100T"},
		{math.MaxUint64, false, "18446744T"},
		{7, true, "        7"},
		{12_345_678, true, " 12345678"},
		{123_456_789, true, " 123456789"},
		{math.MaxUint64, true, " 18446744073709551615"},
	}
	for _, tt := range tests {
		p := &printer{f: Format{Exact: tt.exact}}
		p.largenum(tt.v)
		if string(p.b) != tt.want {
			t.Errorf("largenum(%d, exact=%v) = %q, want %q", tt.v, tt.exact, p.b, tt.want)
		}
	}
}

func TestLabels(t *testing.T) {
	sctp := Service{Protocol: SCTP, Addr: ip("10.0.0.1"), Port: 9, Scheduler: "rr"}
	unknown := Service{Protocol: 99, Addr: ip("10.0.0.1"), Port: 9, Scheduler: "rr"}
	big := fwm(0x80000001, "rr")
	big6 := fwm(0x80000001, "rr")
	big6.IPv6 = true
	ops := fwm(3, "rr")
	ops.OPS, ops.PE, ops.Persistent, ops.Timeout = true, "sip", true, time.Minute
	v6mask := tcp("2001:db8::1", 5060, "rr")
	v6mask.Persistent, v6mask.Timeout, v6mask.Netmask = true, time.Minute, 48
	shOnly3 := tcp("10.0.0.1", 80, "sh")
	shOnly3.Flags = []string{"flag-3"} // sh shows no name for bit 3
	tests := []struct {
		svc        Service
		list, save string
	}{
		{sctp, "SCTP 10.0.0.1:9 rr", "-A --sctp-service 10.0.0.1:9 -s rr"},
		{unknown, "?    10.0.0.1:9 rr", "-A --xxx-service 10.0.0.1:9 -s rr"},
		{big, "FWM  -2147483647 rr", "-A -f -2147483647 -s rr"},
		{big6, "FWM  -2147483647 IPv6 rr", "-A -f -2147483647 -6 -s rr"},
		{ops, "FWM  3 rr persistent 60 pe sip ops", "-A -f 3 -s rr -p 60 --pe sip -o"},
		{v6mask, "TCP  [2001:db8::1]:5060 rr persistent 60 mask 48", "-A -t [2001:db8::1]:5060 -s rr -p 60 -M 48"},
		{shOnly3, "TCP  10.0.0.1:80 sh ()", "-A -t 10.0.0.1:80 -s sh -b "},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := FormatService(&b, &tt.svc, Format{Numeric: true}, nil); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(b.String(), "\n")
		if lines[2] != tt.list {
			t.Errorf("list %q, want %q", lines[2], tt.list)
		}
		b.Reset()
		if err := FormatSave(&b, []Service{tt.svc}, Format{Numeric: true}, nil); err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSuffix(b.String(), "\n"); got != tt.save {
			t.Errorf("save %q, want %q", got, tt.save)
		}
	}
}

func TestNtop(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1":       "10.0.0.1",
		"2001:db8::1":    "2001:db8::1",
		"::ffff:1.2.3.4": "::ffff:1.2.3.4",
		"::1.2.3.4":      "::1.2.3.4",
		"::1":            "::1",
		"::":             "::",
		"2001:db8:0:1::": "2001:db8:0:1::",
	} {
		if got := ntop(ip(in)); got != want {
			t.Errorf("ntop(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestTimeoutsDaemonsVersion(t *testing.T) {
	var b bytes.Buffer
	if err := FormatTimeouts(&b, Timeouts{900 * time.Second, 120 * time.Second, 300 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "Timeout (tcp tcpfin udp): 900 120 300\n"; got != want {
		t.Errorf("FormatTimeouts = %q, want %q", got, want)
	}
	b.Reset()
	err := FormatDaemons(&b, []SyncDaemon{
		{State: SyncMaster, McastIfn: "eth0", SyncID: 1},
		{},
		{State: SyncBackup, McastIfn: "eth1", SyncID: 2, MaxLen: 1472, Group: ip("224.0.0.81"), Port: 8848, TTL: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "master sync daemon (mcast=eth0, syncid=1)\n" +
		"backup sync daemon (mcast=eth1, syncid=2, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
	if b.String() != want {
		t.Errorf("FormatDaemons = %q, want %q", b.String(), want)
	}
	b.Reset()
	if err := FormatVersion(&b); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n"; got != want {
		t.Errorf("FormatVersion = %q, want %q", got, want)
	}
	b.Reset()
	if err := FormatUsage(&b, "gvs adm"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), VersionLine+"\nUsage:\n  gvs adm -A|E virtual-service") {
		t.Errorf("FormatUsage starts %q", b.String()[:120])
	}
	b.Reset()
	if err := FormatList(&b, Info{}, nil, Format{}, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "IP Virtual Server version 0.0.0 (size=0)\n") {
		t.Errorf("zero Info: %q", b.String())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteError(t *testing.T) {
	if err := FormatList(failWriter{}, defaultInfo(), numericTable(), Format{}, nil); err == nil {
		t.Error("FormatList: no error from a failing writer")
	}
	if err := FormatConns(failWriter{}, testConns(), Format{}, nil); err == nil {
		t.Error("FormatConns: no error from a failing writer")
	}
}

func TestNamesFiles(t *testing.T) {
	var n Names
	err := n.ReadServices(strings.NewReader("# comment\nhttp\t\t80/tcp\t\twww # WorldWideWeb\nhttp 80/udp\nbogus\nx 99999/tcp\ndomain 53/udp\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = n.ReadHosts(strings.NewReader("127.0.0.1 localhost\n10.0.0.1 vip.example vip # the VIP\n2001:db8::1 six\nfe80::1%eth0 zoned\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := n.ServicePort("www", TCP); !ok || p != 80 {
		t.Errorf("ServicePort(www) = %d, %v", p, ok)
	}
	if _, ok := n.ServicePort("domain", TCP); ok {
		t.Error("domain/tcp found, only udp was listed")
	}
	if s, ok := n.ServiceName(80, UDP); !ok || s != "http" {
		t.Errorf("ServiceName(80/udp) = %q, %v", s, ok)
	}
	if a, ok := n.HostAddr("vip"); !ok || a != ip("10.0.0.1") {
		t.Errorf("HostAddr(vip) = %v, %v", a, ok)
	}
	if _, ok := n.HostAddr("six"); ok {
		t.Error("HostAddr returned an IPv6 address")
	}
	if h, ok := n.HostName(ip("2001:db8::1")); !ok || h != "six" {
		t.Errorf("HostName = %q, %v", h, ok)
	}
	if len(n.Hosts) != 3 || len(n.Services) != 3 {
		t.Errorf("read %d hosts, %d services", len(n.Hosts), len(n.Services))
	}
}
