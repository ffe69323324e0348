package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/sched"
)

// file joins lines with newlines, so that line n of the config is argument n.
func file(lines ...string) []byte { return []byte(strings.Join(lines, "\n") + "\n") }

// mustParse parses a config that must be valid.
func mustParse(t *testing.T, data []byte) *Config {
	t.Helper()
	c, err := Parse("gvs.toml", data)
	if err != nil {
		t.Fatalf("Parse: unexpected error:\n%v", err)
	}
	return c
}

func TestExampleParses(t *testing.T) {
	c, err := Load("../../config.example.toml")
	if err != nil {
		t.Fatalf("config.example.toml does not load:\n%v", err)
	}
	if got, want := len(c.Services), 4; got != want {
		t.Fatalf("services: got %d, want %d", got, want)
	}
	if len(c.VRRP) != 1 || c.VRRP[0].Name != "VI_1" {
		t.Errorf("vrrp: got %+v, want one instance VI_1", c.VRRP)
	}
	s := c.Services[0]
	if s.Addr != netip.MustParseAddrPort("198.18.0.100:80") || s.Check == nil || s.Check.Type != CheckHTTP {
		t.Errorf("service[0]: got %s with check %+v", s.String(), s.Check)
	}
	fw := c.Services[2]
	if fw.FWMark != 1 || fw.Scheduler != "mh" || fw.Flags != sched.FlagSched2 || fw.MHTableSize != 4093 || fw.Netmask.Bits() != 24 {
		t.Errorf("service[2]: got %+v", fw)
	}
}

// TestExampleDocumentsEveryKey checks that the reference file mentions each key the
// parser knows, so a new key cannot be added without documenting it.
func TestExampleDocumentsEveryKey(t *testing.T) {
	data, err := os.ReadFile("../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	// Read minimal tables, collecting the keys each asks for as it is done with
	// (done forgets them).
	r := newReader("x")
	known := map[string][]string{}
	done := map[*table][]string{}
	r.seen = func(tb *table) { done[tb] = slices.Clone(tb.known) }
	collect := func(name string, tb *table) { known[name] = append(known[name], done[tb]...) }
	d := r.table("director", map[string]any{})
	r.director(d, &Default().Director)
	collect("director", d)
	st := r.table("service[0]", map[string]any{
		"address":     "198.18.0.100:80",
		"real_server": []map[string]any{{"address": "198.18.0.5"}},
		"check":       map[string]any{"type": "tcp"},
	})
	r.service(st)
	collect("service", st)
	mt := r.table("service[1].match[0]", map[string]any{})
	r.match(mt, &Service{})
	collect("match", mt)
	vt := r.table("vrrp[0]", map[string]any{})
	r.vrrp(vt, &Director{})
	collect("vrrp", vt)
	gt := r.table("vrrp_sync_group[0]", map[string]any{})
	r.vrrpSyncGroup(gt)
	collect("vrrp_sync_group", gt)
	rt := r.table("service[0].real_server[0]", map[string]any{"address": "198.18.0.5"})
	svc := DefaultService()
	r.realServer(rt, &svc, false, checkTiming{})
	collect("real_server", rt)
	ct := r.table("service[0].check", map[string]any{"type": "tcp"})
	r.check(ct, &svc, checkTiming{})
	collect("check", ct)
	cl := r.table("cluster", map[string]any{})
	r.cluster(cl, &Cluster{})
	collect("cluster", cl)

	for _, table := range []string{"director", "service", "match", "vrrp", "vrrp_sync_group", "real_server", "check", "cluster"} {
		if len(known[table]) == 0 {
			t.Fatalf("no keys collected for %s: the test reads nothing", table)
		}
	}
	text := string(data)
	for table, keys := range known {
		for _, k := range keys {
			if strings.Contains(text, "."+k+"]") { // a table: [service.check], [[service.real_server]]
				continue
			}
			if !strings.Contains(text, "\n"+k+" =") && !strings.Contains(text, " "+k+" =") && !strings.Contains(text, "# "+k+" =") {
				t.Errorf("config.example.toml does not show %s key %q", table, k)
			}
		}
	}
}

func TestEmptyFileIsDefault(t *testing.T) {
	got := mustParse(t, nil)
	want := Default()
	want.File = "gvs.toml"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("empty file:\n got %+v\nwant %+v", got, want)
	}
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, file(
		`[[service]]`,
		`address = "198.18.0.100:80"`,
		`  [[service.real_server]]`,
		`  address = "198.18.0.5"`,
		`  [service.check]`,
		`  type = "http"`,
		`[[vrrp]]`,
		`name = "VI_1"`,
		`virtual_router_id = 51`,
		`virtual_ipaddress = ["198.18.0.100"]`,
	))
	d := c.Director
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"mtu", d.MTU, 1500},
		{"conn_max", d.ConnMax, 1048576},
		{"conn_shards", d.ConnShards, 256},
		{"control_socket", d.ControlSocket, "/run/gvs/gvs.sock"},
		{"metrics_listen", d.MetricsListen, ""},
		{"metrics_web_config", d.MetricsWebConfig, ""},
		{"metrics_node_ipvs", d.MetricsNodeIPVS, true},
		{"metrics_gvs", d.MetricsGVS, true},
		{"sysctl", d.Sysctl, Sysctl{ConnReuseMode: 1, PMTUDisc: true}},
		{"tcp_timeout", d.Timeouts.TCP, 900 * time.Second},
		{"tcpfin_timeout", d.Timeouts.TCPFin, 120 * time.Second},
		{"udp_timeout", d.Timeouts.UDP, 300 * time.Second},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("director %s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}

	s := c.Services[0]
	wantSvc := Service{
		Line: 1,
		Service: ipvs.Service{
			Key:       ipvs.AddrKey(ipvs.TCP, netip.MustParseAddrPort("198.18.0.100:80")),
			Scheduler: "wlc", Netmask: netip.MustParsePrefix("0.0.0.0/32"),
		},
		Method: ipvs.DR,
		RealServers: []RealServer{{
			Line: 3, RealServer: ipvs.RealServer{Addr: netip.MustParseAddrPort("198.18.0.5:80"), Weight: 1, Method: ipvs.DR},
		}},
		Check: &Check{
			Line: 5, Type: CheckHTTP, Interval: 60 * time.Second, Timeout: 5 * time.Second,
			Retries: 1, RetryDelay: 3 * time.Second, Rise: 1, Fall: 1, Path: "/", // HTTP_GET's delay_before_retry
		},
	}
	if !reflect.DeepEqual(s, wantSvc) {
		t.Errorf("service:\n got %+v\n     %+v\nwant %+v\n     %+v", s, *s.Check, wantSvc, *wantSvc.Check)
	}

	wantVRRP := VRRP{
		Line: 7, Name: "VI_1", State: VRRPBackup, VirtualRouterID: 51, Priority: 100,
		AdvertInt: time.Second, Version: 2,
		VirtualIPAddress: []netip.Addr{netip.MustParseAddr("198.18.0.100")},
		VIPs:             []VirtualAddress{{Prefix: netip.MustParsePrefix("198.18.0.100/32")}},
		GARPMasterDelay:  5 * time.Second, GARPMasterRepeat: 5, GARPMasterRefreshRepeat: 1,
		GARPLowerPrioDelay: 5 * time.Second, GARPLowerPrioRepeat: 5,
	}
	if !reflect.DeepEqual(c.VRRP[0], wantVRRP) {
		t.Errorf("vrrp:\n got %+v\nwant %+v", c.VRRP[0], wantVRRP)
	}
}

func TestDefaultsDependOnContext(t *testing.T) {
	c := mustParse(t, file(
		`[director]`,
		`interface = "eth1"`,
		`[[service]]`,
		`address = "[2001:db8::100]:443"`,
		`scheduler = "mh"`,
		`method = "nat"`,
		`  [[service.real_server]]`,
		`  address = "2001:db8::5"`,
		`[[service]]`,
		`fwmark = 7`,
		`persistence = 60`,
		`match = [{ address = "198.18.0.100" }]`,
		`  [[service.real_server]]`,
		`  address = "198.18.0.5"`,
		`  method = "tun"`,
		`[[vrrp]]`,
		`name = "v6"`,
		`state = "master"`,
		`virtual_router_id = 1`,
		`virtual_ipaddress = ["2001:db8::100"]`,
	))
	v6 := c.Services[0]
	if v6.Netmask != netip.MustParsePrefix("::/128") || v6.MHTableSize != 4093 || v6.Family() != FamilyInet6 {
		t.Errorf("IPv6 mh service: got netmask %s, table %d, family %v; want ::/128, 4093, inet6", v6.Netmask, v6.MHTableSize, v6.Family())
	}
	if rs := v6.RealServers[0]; rs.Method != ipvs.NAT || rs.Addr != netip.MustParseAddrPort("[2001:db8::5]:443") {
		t.Errorf("real server inherits method and port: got %v %v", rs.Method, rs.Addr)
	}
	fw := c.Services[1]
	// An fwmark service's key has no protocol (ipvs.MarkKey).
	if fw.Family() != FamilyInet || fw.Key != ipvs.MarkKey(7, false) || fw.RealServers[0].Addr.Port() != 0 || fw.RealServers[0].Method != ipvs.TUN {
		t.Errorf("fwmark service: got %+v", fw)
	}
	if fw.Persistence != 60*time.Second {
		t.Errorf("persistence = 60: got %v, want 1m0s", fw.Persistence)
	}
	v := c.VRRP[0]
	if v.Version != 3 || v.Priority != 255 || v.State != VRRPMaster || v.Interface != "eth1" {
		t.Errorf("IPv6 MASTER instance: got version %d priority %d state %v interface %q; want 3 255 MASTER eth1",
			v.Version, v.Priority, v.State, v.Interface)
	}
}

func TestRealServerOrderKept(t *testing.T) {
	c := mustParse(t, file(
		`[[service]]`,
		`address = "198.18.0.100:80"`,
		`  [[service.real_server]]`,
		`  address = "198.18.0.9"`,
		`  [[service.real_server]]`,
		`  address = "198.18.0.2"`,
		`  [[service.real_server]]`,
		`  address = "198.18.0.5"`,
		`[[service]]`,
		`address = "198.18.0.101:80"`,
		`real_server = [`,
		`  { address = "198.18.1.3" },`,
		`  { address = "198.18.1.1" },`,
		`]`,
		`[[service]]`,
		`address = "198.18.0.102:80"`,
		`  [[service.real_server]]`,
		`  address = "198.18.2.7"`,
		`  [[service.real_server]]`,
		`  address = "198.18.2.6"`,
	))
	want := [][]string{
		{"198.18.0.9:80", "198.18.0.2:80", "198.18.0.5:80"},
		{"198.18.1.3:80", "198.18.1.1:80"},
		{"198.18.2.7:80", "198.18.2.6:80"},
	}
	var got [][]string
	for _, s := range c.Services {
		var addrs []string
		for _, rs := range s.RealServers {
			addrs = append(addrs, rs.Addr.String())
		}
		got = append(got, addrs)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("real server order:\n got %v\nwant %v", got, want)
	}
	if c.Services[1].RealServers[1].Line != 13 {
		t.Errorf("inline real server line: got %d, want 13", c.Services[1].RealServers[1].Line)
	}
}

func TestValid(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input []byte
		check func(*Config) error
	}{
		{"nat real server may change the port", file(
			`[[service]]`,
			`address = "198.18.0.100:80"`,
			`method = "nat"`,
			`  [[service.real_server]]`,
			`  address = "198.18.0.5:8080"`,
		), func(c *Config) error {
			if p := c.Services[0].RealServers[0].Addr.Port(); p != 8080 {
				return fmt.Errorf("port %d, want 8080", p)
			}
			return nil
		}},
		{"dr real server may repeat the service port", file(
			`[[service]]`,
			`address = "198.18.0.100:80"`,
			`  [[service.real_server]]`,
			`  address = "198.18.0.5:80"`,
		), nil},
		{"same VIP:port for tcp and udp", file(
			`[[service]]`,
			`address = "198.18.0.100:53"`,
			`[[service]]`,
			`address = "198.18.0.100:53"`,
			`protocol = "UDP"`,
		), nil},
		{"same fwmark for inet and inet6", file(
			`[[service]]`,
			`fwmark = 1`,
			`match = [{ address = "198.18.0.100" }]`,
			`[[service]]`,
			`fwmark = 1`,
			`family = "inet6"`,
			`match = [{ address = "2001:db8::100" }]`,
		), nil},
		{"match rules", file(
			`[[service]]`,
			`fwmark = 1`,
			`  [[service.match]]`,
			`  address = "198.18.0.100"`,
			`  protocol = "tcp"`,
			`  port = 80`,
			`  [[service.match]]`,
			`  address = "198.18.0.100"`,
			`  port = "8000-8099"`,
			`  [[service.match]]`,
			`  address = "198.18.0.100"`,
			`  protocol = "udp"`,
			`  port = "53:54"`,
			`  [[service.match]]`,
			`  address = "198.18.0.101"`,
		), func(c *Config) error {
			want := []Match{
				{Line: 3, Match: ipvs.Match{Protocol: ipvs.TCP, Addr: netip.MustParseAddr("198.18.0.100"), PortLo: 80, PortHi: 80}},
				{Line: 7, Match: ipvs.Match{Addr: netip.MustParseAddr("198.18.0.100"), PortLo: 8000, PortHi: 8099}},
				{Line: 10, Match: ipvs.Match{Protocol: ipvs.UDP, Addr: netip.MustParseAddr("198.18.0.100"), PortLo: 53, PortHi: 54}},
				{Line: 14, Match: ipvs.Match{Addr: netip.MustParseAddr("198.18.0.101")}},
			}
			if got := c.Services[0].Match; !reflect.DeepEqual(got, want) {
				return fmt.Errorf("match:\n got %+v\nwant %+v", got, want)
			}
			return nil
		}},
		{"port zero when persistent", file(
			`[[service]]`,
			`address = "198.18.0.100:0"`,
			`persistence = "1m"`,
		), nil},
		{"durations as keepalived writes them", file(
			`[director]`,
			`tcp_timeout = 600`,
			`tcpfin_timeout = "60"`,
			`udp_timeout = 0.5`,
		), func(c *Config) error {
			want := ipvs.Timeouts{TCP: 10 * time.Minute, TCPFin: time.Minute, UDP: 500 * time.Millisecond}
			if c.Director.Timeouts != want {
				return fmt.Errorf("timeouts %+v, want %+v", c.Director.Timeouts, want)
			}
			return nil
		}},
		{"netmask forms", file(
			`[[service]]`,
			`address = "198.18.0.100:80"`,
			`persistence = 10`,
			`netmask = "255.255.240.0"`,
			`[[service]]`,
			`address = "198.18.0.101:80"`,
			`netmask = "/16"`,
			`[[service]]`,
			`address = "[2001:db8::1]:80"`,
			`netmask = 64`,
		), func(c *Config) error {
			if got := []int{c.Services[0].Netmask.Bits(), c.Services[1].Netmask.Bits(), c.Services[2].Netmask.Bits()}; !reflect.DeepEqual(got, []int{20, 16, 64}) {
				return fmt.Errorf("netmasks %v, want [20 16 64]", got)
			}
			return nil
		}},
		{"enum values ignore case", file(
			`[[service]]`,
			`address = "198.18.0.100:80"`,
			`protocol = "TCP"`,
			`scheduler = "WRR"`,
			`method = "DR"`,
		), func(c *Config) error {
			if s := c.Services[0]; s.Scheduler != "wrr" || s.Method != ipvs.DR {
				return fmt.Errorf("got %s %v", s.Scheduler, s.Method)
			}
			return nil
		}},
		{"generic scheduler flags and none", file(
			`[[service]]`,
			`address = "198.18.0.100:80"`,
			`scheduler = "wlc"`,
			`scheduler_flags = ["flag-3"]`,
			`[[service]]`,
			`address = "198.18.0.101:80"`,
			`scheduler = "none"`,
		), func(c *Config) error {
			if f := c.Services[0].Flags; f != sched.FlagSched3 {
				return fmt.Errorf("flags %v, want FlagSched3", f)
			}
			return nil
		}},
		{"exec check command as a string", file(
			`[[service]]`,
			`address = "198.18.0.100:80"`,
			`[service.check]`,
			`type = "exec"`,
			`command = "/bin/check  --fast"`,
		), func(c *Config) error {
			if got := c.Services[0].Check.Command; !reflect.DeepEqual(got, []string{"/bin/check", "--fast"}) {
				return fmt.Errorf("command %q", got)
			}
			return nil
		}},
		{"ipv4-mapped addresses become IPv4", file(
			`[[service]]`,
			`address = "[::ffff:198.18.0.100]:80"`,
			`  [[service.real_server]]`,
			`  address = "198.18.0.5"`,
		), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.input)
			if tc.check != nil {
				if err := tc.check(c); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// wantErr is one expected problem: its line, field and part of its message.
type wantErr struct {
	line  int
	field string
	msg   string
}

func TestErrors(t *testing.T) {
	svc := func(lines ...string) []byte {
		return file(append([]string{`[[service]]`, `address = "198.18.0.100:80"`}, lines...)...)
	}
	for _, tc := range []struct {
		name  string
		input []byte
		want  []wantErr
	}{
		{"syntax error", file(`[director]`, `mtu = = 3`),
			[]wantErr{{2, "", "syntax error"}}},
		{"negative weight", svc(
			`  [[service.real_server]]`,
			`  address = "198.18.0.5"`,
			`  [[service.real_server]]`,
			`  address = "198.18.0.6"`,
			`  weight = -2`,
		), []wantErr{{7, "service[0].real_server[1].weight", "must not be negative (got -2)"}}},
		{"weight of the wrong type", svc(
			`  [[service.real_server]]`,
			`  address = "198.18.0.5"`,
			`  weight = "two"`,
		), []wantErr{{5, "service[0].real_server[0].weight", `wrong type: want an integer, got string "two"`}}},
		{"weight in an inline table", svc(
			`real_server = [`,
			`  { address = "198.18.0.5" },`,
			`  { address = "198.18.0.6", weight = -1 },`,
			`]`,
		), []wantErr{{5, "service[0].real_server[1].weight", "must not be negative (got -1)"}}},
		{"unknown key with suggestion", svc(
			`  [[service.real_server]]`,
			`  address = "198.18.0.5"`,
			`  wieght = 3`,
		), []wantErr{{5, "service[0].real_server[0]", `unknown key "wieght" (did you mean "weight"?)`}}},
		{"unknown table and director key", file(
			`[director]`,
			`mtu = 1500`,
			`conn_maxx = 5`,
			`[servce]`,
			`address = "198.18.0.100:80"`,
		), []wantErr{
			{3, "director", `unknown key "conn_maxx" (did you mean "conn_max"?)`},
			{4, "", `unknown key "servce" (did you mean "service"?)`},
		}},
		{"unknown key without suggestion", file(`[director]`, `colour = "blue"`),
			[]wantErr{{2, "director", `unknown key "colour"`}}},
		{"bad service address", file(
			`[[service]]`,
			`address = "198.18.0.300:80"`,
			`[[service]]`,
			`address = "198.18.0.100"`,
			`[[service]]`,
			`address = "224.0.0.1:80"`,
		), []wantErr{
			{2, "service[0].address", `invalid address "198.18.0.300:80"`},
			{4, "service[1].address", `missing port in "198.18.0.100" (write "198.18.0.100:0" for all ports)`},
			{6, "service[2].address", "224.0.0.1 is a multicast address"},
		}},
		{"bad real server address", svc(
			`  [[service.real_server]]`,
			`  address = "198.18.0.5:http"`,
			`  [[service.real_server]]`,
			`  weight = 2`,
		), []wantErr{
			{4, "service[0].real_server[0].address", `invalid address "198.18.0.5:http"`},
			{5, "service[0].real_server[1]", "missing address"},
		}},
		{"duplicate real server", svc(
			`  [[service.real_server]]`,
			`  address = "198.18.0.5:80"`,
			`  [[service.real_server]]`,
			`  address = "198.18.0.6"`,
			`  [[service.real_server]]`,
			`  address = "198.18.0.5"`,
		), []wantErr{{8, "service[0].real_server[2].address", "duplicate real server 198.18.0.5:80 (first at line 3, service[0].real_server[0])"}}},
		{"duplicate service", file(
			`[[service]]`,
			`address = "198.18.0.100:80"`,
			`[[service]]`,
			`address = "198.18.0.100:80"`,
			`protocol = "tcp"`,
		), []wantErr{{4, "service[1].address", "duplicate service TCP 198.18.0.100:80 (first at line 1, service[0])"}}},
		{"duplicate fwmark service", file(
			`[[service]]`,
			`fwmark = 5`,
			`match = [{ address = "198.18.0.100" }]`,
			`[[service]]`,
			`fwmark = 5`,
			`match = [{ address = "198.18.0.101" }]`,
		), []wantErr{{5, "service[1].fwmark", "duplicate service FWM 5 (first at line 1, service[0])"}}},
		{"match rules wrong", file(
			`[[service]]`,
			`address = "198.18.0.100:80"`,
			`match = [{ address = "198.18.0.100" }]`,
			`[[service]]`,
			`fwmark = 1`,
			`[[service]]`,
			`fwmark = 2`,
			`  [[service.match]]`,
			`  address = "2001:db8::1"`,
			`  [[service.match]]`,
			`  address = "198.18.0.100"`,
			`  port = "90-80"`,
			`  [[service.match]]`,
			`  port = 0`,
			`  [[service.match]]`,
			`  address = "198.18.0.100"`,
			`  protocol = "tcp"`,
			`  [[service.match]]`,
			`  address = "198.18.0.100"`,
			`  protocol = "tcp"`,
		), []wantErr{
			{3, "service[0].match", "applies only to fwmark services"},
			{4, "service[1]", "missing match: an fwmark service needs [[service.match]] rules"},
			{9, "service[2].match[0].address", "is inet6 but the service's family is inet"},
			{12, "service[2].match[1].port", `port range "90-80" is empty (90 > 80)`},
			{13, "service[2].match[2]", "missing address"},
			{14, "service[2].match[2].port", "port 0 is not a port"},
			{18, "service[2].match[4]", "duplicate match rule (first at line 15, service[2].match[3])"},
		}},
		{"match rules empty", file(
			`[[service]]`,
			`fwmark = 10`,
			`match = []`,
		), []wantErr{{3, "service[0].match", "an fwmark service needs at least one [[service.match]] rule"}}},
		{"address and fwmark", file(
			`[[service]]`,
			`address = "198.18.0.100:80"`,
			`fwmark = 3`,
			`[[service]]`,
			`protocol = "udp"`,
			`[[service]]`,
			`fwmark = 0`,
		), []wantErr{
			{3, "service[0].fwmark", "set either address or fwmark, not both"},
			{4, "service[1]", "missing address"},
			{7, "service[2].fwmark", "must not be zero"},
		}},
		{"thresholds", svc(
			`  [[service.real_server]]`,
			`  address = "198.18.0.5"`,
			`  upper_threshold = 10`,
			`  lower_threshold = 20`,
			`  [[service.real_server]]`,
			`  address = "198.18.0.6"`,
			`  lower_threshold = 5`,
		), []wantErr{
			{6, "service[0].real_server[0].lower_threshold", "must not exceed upper_threshold (20 > 10)"},
			{9, "service[0].real_server[1].lower_threshold", "must not exceed upper_threshold (5 > 0)"},
		}},
		{"unknown scheduler", svc(`scheduler = "wrrr"`),
			[]wantErr{{3, "service[0].scheduler", `unknown scheduler "wrrr" (did you mean "wrr"?)`}}},
		{"flag of another scheduler", svc(
			`scheduler = "wlc"`,
			`scheduler_flags = [`,
			`  "flag-1",`,
			`  "sh-port",`,
			`]`,
		), []wantErr{{6, "service[0].scheduler_flags[1]", `flag "sh-port" is not valid for scheduler wlc`}}},
		{"misspelt flag", svc(`scheduler = "sh"`, `scheduler_flags = ["sh-prot"]`),
			[]wantErr{{4, "service[0].scheduler_flags[0]", `flag "sh-prot" is not valid for scheduler sh (did you mean "sh-port"?)`}}},
		{"mh table size", file(
			`[[service]]`,
			`address = "198.18.0.100:80"`,
			`scheduler = "mh"`,
			`mh_table_size = 4096`,
			`[[service]]`,
			`address = "198.18.0.101:80"`,
			`mh_table_size = 4093`,
		), []wantErr{
			{4, "service[0].mh_table_size", "must be one of 251 509 1021 2039 4093 8191 16381 32749 65521 131071 (got 4096)"},
			{7, "service[1].mh_table_size", "applies only to the mh scheduler (scheduler is wlc)"},
		}},
		{"bad MACs", file(
			`[director]`,
			`mac = "ff:ff:ff:ff:ff:ff"`,
			`gateway_mac = "00:00:00:00:00:00"`,
			`[[service]]`,
			`address = "198.18.0.100:80"`,
			`  [[service.real_server]]`,
			`  address = "198.18.0.5"`,
			`  mac = "02:00:00:00:05"`,
		), []wantErr{
			{2, "director.mac", "multicast or broadcast"},
			{3, "director.gateway_mac", "all zeros"},
			{8, "service[0].real_server[0].mac", `invalid MAC "02:00:00:00:05"`},
		}},
		{"bad durations", file(
			`[director]`,
			`tcp_timeout = "-5s"`,
			`tcpfin_timeout = "2 minutes"`,
			`udp_timeout = 0`,
			`[[service]]`,
			`address = "198.18.0.100:80"`,
			`persistence = true`,
		), []wantErr{
			{2, "director.tcp_timeout", "must not be negative (got -5s)"},
			{3, "director.tcpfin_timeout", `invalid duration "2 minutes"`},
			{4, "director.udp_timeout", "must be greater than zero"},
			{7, "service[0].persistence", "wrong type: want a duration"},
		}},
		{"IPv6 real server in an IPv4 DR service", svc(
			`  [[service.real_server]]`,
			`  address = "2001:db8::5"`,
			`  [[service.real_server]]`,
			`  address = "2001:db8::6"`,
			`  method = "tun"`,
		), []wantErr{
			{4, "service[0].real_server[0].address", "inet6 real server 2001:db8::5 in an inet service: DR and NAT need the real server in the service's address family"},
			{6, "service[0].real_server[1].address", "TUN across address families is not supported yet"},
		}},
		{"DR real server with another port", svc(
			`  [[service.real_server]]`,
			`  address = "198.18.0.5:8080"`,
		), []wantErr{{4, "service[0].real_server[0].address", "port 8080 differs from the service port 80: DR cannot change the port"}}},
		{"port zero not persistent", file(
			`[[service]]`,
			`address = "198.18.0.100:0"`,
		), []wantErr{{2, "service[0].address", "port zero only supported in persistent services"}}},
		{"fullnat", svc(
			`method = "fullnat"`,
			`  [[service.real_server]]`,
			`  address = "198.18.0.5"`,
			`  method = "masq"`,
		), []wantErr{
			{3, "service[0].method", "not implemented: method fullnat (use dr, nat or tun)"},
			{6, "service[0].real_server[0].method", `unknown method "masq" (did you mean "nat"?)`},
		}},
		{"ops needs udp", svc(`ops = true`),
			[]wantErr{{3, "service[0].ops", "one-packet scheduling is only for UDP services (protocol is tcp)"}}},
		{"netmask", file(
			`[[service]]`,
			`address = "198.18.0.100:80"`,
			`netmask = "255.0.255.0"`,
			`[[service]]`,
			`address = "[2001:db8::1]:80"`,
			`netmask = "255.255.255.0"`,
			`[[service]]`,
			`address = "198.18.0.101:80"`,
			`netmask = 33`,
		), []wantErr{
			{3, "service[0].netmask", "not a contiguous mask"},
			{6, "service[1].netmask", "an IPv6 service takes a prefix length"},
			{9, "service[2].netmask", "prefix length must be 0..32 for inet (got 33)"},
		}},
		{"director limits", file(
			`[director]`,
			`conn_max = 0`,
			`conn_shards = 100`,
			`conn_reuse_mode = 4`,
			`mtu = 1000`,
			`address6 = "2001:db8::3"`,
			`address = "2001:db8::4"`,
			`metrics_listen = "localhost"`,
		), []wantErr{
			{2, "director.conn_max", "must be at least 1 (got 0)"},
			{3, "director.conn_shards", "must be a power of two (got 100)"},
			{4, "director.conn_reuse_mode", "must be at most 3 (got 4)"},
			{5, "director.mtu", "must be at least 1280 with IPv6 in use (got 1000)"},
			{7, "director.address", "must be an IPv4 address"},
			{8, "director.metrics_listen", `want host:port or :port, got "localhost"`},
		}},
		{"shards above conn_max", file(`[director]`, `conn_max = 64`, `conn_shards = 128`),
			[]wantErr{{3, "director.conn_shards", "must not exceed conn_max (128 > 64)"}}},
		{"check timing", svc(
			`  [service.check]`,
			`  type = "tcp"`,
			`  interval = "0s"`,
			`  timeout = -1`,
			`  retries = -1`,
			`  rise = 0`,
		), []wantErr{
			{5, "service[0].check.interval", "must be greater than zero"},
			{6, "service[0].check.timeout", "must not be negative"},
			{7, "service[0].check.retries", "must not be negative (got -1)"},
			{8, "service[0].check.rise", "must be at least 1 (got 0)"},
		}},
		{"check type and keys", file(
			`[[service]]`,
			`address = "198.18.0.100:80"`,
			`  [service.check]`,
			`  path = "/"`,
			`[[service]]`,
			`address = "198.18.0.101:80"`,
			`  [service.check]`,
			`  type = "tcp"`,
			`  path = "/x"`,
			`  status_codes = [200, 99]`,
			`[[service]]`,
			`address = "198.18.0.102:80"`,
			`  [service.check]`,
			`  type = "https"`,
			`  path = "x"`,
			`  status_codes = [200, 99]`,
			`  digest = "abc"`,
			`[[service]]`,
			`address = "198.18.0.103:80"`,
			`  [service.check]`,
			`  type = "exec"`,
		), []wantErr{
			{3, "service[0].check", "missing type"},
			{9, "service[1].check.path", "applies only to http and https checks (type is tcp)"},
			{10, "service[1].check.status_codes", "applies only to http and https checks (type is tcp)"},
			{15, "service[2].check.path", `must start with "/"`},
			{16, "service[2].check.status_codes[1]", "not an HTTP status code (got 99)"},
			{17, "service[2].check.digest", "must be an MD5 digest"},
			{20, "service[3].check", "missing command"},
		}},
		{"check of a portless real server", file(
			`[[service]]`,
			`fwmark = 1`,
			`match = [{ address = "198.18.0.100" }]`,
			`  [service.check]`,
			`  type = "tcp"`,
			`  [[service.real_server]]`,
			`  address = "198.18.0.5"`,
		), []wantErr{{4, "service[0].check.connect_port", "is required: real server 198.18.0.5 has no port"}}},
		{"vrrp", file(
			`[[vrrp]]`,
			`state = "BACKUP"`,
			`[[vrrp]]`,
			`name = "a"`,
			`virtual_router_id = 256`,
			`virtual_ipaddress = ["198.18.0.100", "2001:db8::1"]`,
			`advert_int = "1.5s"`,
			`[[vrrp]]`,
			`name = "b"`,
			`virtual_router_id = 9`,
			`version = 3`,
			`auth_type = "PASS"`,
			`auth_pass = "123456789"`,
			`virtual_ipaddress = ["198.18.0.101"]`,
			`[[vrrp]]`,
			`name = "b"`,
			`virtual_router_id = 9`,
			`virtual_ipaddress = ["2001:db8::1"]`,
			`version = 2`,
			`[[vrrp]]`,
			`name = "d"`,
			`virtual_router_id = 9`,
			`virtual_ipaddress = ["198.18.0.102"]`,
			`state = "MASTER"`,
			`nopreempt = true`,
		), []wantErr{
			{1, "vrrp[0]", "missing name"},
			{1, "vrrp[0]", "missing virtual_router_id"},
			{1, "vrrp[0]", "missing virtual_ipaddress"},
			{5, "vrrp[1].virtual_router_id", "must be at most 255 (got 256)"},
			{6, "vrrp[1].virtual_ipaddress[1]", "one family per instance"},
			{7, "vrrp[1].advert_int", "VRRPv2 needs whole seconds 1..255 (got 1.5s)"},
			{12, "vrrp[2].auth_type", "authentication is VRRPv2 only (version is 3)"},
			{13, "vrrp[2].auth_pass", "must be 1..8 bytes"},
			{16, "vrrp[3].name", `duplicate name "b" (first at line 8, vrrp[2])`},
			{19, "vrrp[3].version", "VRRPv2 is IPv4 only"},
			{22, "vrrp[4].virtual_router_id", `duplicate virtual_router_id 9 on interface "" for inet (first at line 8, vrrp[2])`},
			{25, "vrrp[4].nopreempt", `needs state = "BACKUP"`},
		}},
		{"vrrp notify, track_service and sync groups", file(
			`[[service]]`,
			`address = "198.18.0.100:80"`,
			`[[vrrp]]`,
			`name = "VI_1"`,
			`virtual_router_id = 51`,
			`virtual_ipaddress = ["198.18.0.100"]`,
			`notify_master = " "`,
			`track_service = ["198.18.0.100:80", "198.18.0.100:443", "198.18.0.100"]`,
			`[[vrrp_sync_group]]`,
			`name = "VG_1"`,
			`group = ["VI_1", "VI_9"]`,
			`[[vrrp_sync_group]]`,
			`name = "VG_1"`,
			`group = ["VI_1"]`,
			`[[vrrp_sync_group]]`,
			`group = []`,
		), []wantErr{
			{7, "vrrp[0].notify_master", "must not be empty"},
			{8, "vrrp[0].track_service[2]", `want a service address VIP:PORT, got "198.18.0.100"`},
			{8, "vrrp[0].track_service[1]", "no [[service]] has address 198.18.0.100:443"},
			{11, "vrrp_sync_group[0].group[1]", `no [[vrrp]] is named "VI_9"`},
			{13, "vrrp_sync_group[1].name", `duplicate name "VG_1" (first at line 9, vrrp_sync_group[0])`},
			{14, "vrrp_sync_group[1].group[0]", `"VI_1" is already in vrrp_sync_group[0] (line 9)`},
			{15, "vrrp_sync_group[2]", "missing name"},
			{16, "vrrp_sync_group[2].group", "must list at least one [[vrrp]] name"},
		}},
		{"type errors in structure", file(
			`director = 5`,
			`[[service]]`,
			`address = "198.18.0.100:80"`,
			`scheduler_flags = "sh-port"`,
			`check = "tcp"`,
			`  [service.real_server]`,
			`  address = "198.18.0.5"`,
		), []wantErr{
			{1, "director", "wrong type: want a table, got integer 5"},
			{4, "service[0].scheduler_flags", "wrong type: want an array of strings"},
			{5, "service[0].check", "wrong type: want a table"},
			{6, "service[0].real_server", "wrong type: want an array of tables ([[service.real_server]]), got a table"},
		}},
		{"errors everywhere are all reported in line order", file(
			`[[service]]`,
			`address = "198.18.0.100:80"`,
			`scheduler = "nope"`,
			`  [[service.real_server]]`,
			`  address = "198.18.0.5"`,
			`  weight = -1`,
			`[director]`,
			`conn_shards = 3`,
			`[[service]]`,
			`address = "198.18.0.100:80"`,
		), []wantErr{
			{3, "service[0].scheduler", `unknown scheduler "nope"`},
			{6, "service[0].real_server[0].weight", "must not be negative"},
			{8, "director.conn_shards", "must be a power of two"},
			{10, "service[1].address", "duplicate service"},
		}},
		{"multi-line strings do not confuse lines", file(
			`[director]`,
			`interface = """`,
			`[[service]]`,
			`weight = -1"""`,
			`control_socket = '''`,
			`'''`,
			`mtu = -3`,
		), []wantErr{{7, "director.mtu", "must be at least 68 (got -3)"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, tc.input, tc.want)
		})
	}
}

func checkErrors(t *testing.T, input []byte, want []wantErr) {
	t.Helper()
	c, err := Parse("gvs.toml", input)
	if err == nil {
		t.Fatalf("Parse succeeded (%d services), want %d errors", len(c.Services), len(want))
	}
	if c != nil {
		t.Errorf("Parse returned a Config with an error")
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, want Errors: %v", err, err)
	}
	if len(errs) != len(want) {
		t.Errorf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i := range min(len(errs), len(want)) {
		w := want[i]
		prefix := fmt.Sprintf("gvs.toml:%d: ", w.line)
		if w.field != "" {
			prefix += w.field + ": "
		}
		got := errs[i].Error()
		if !strings.HasPrefix(got, prefix) || !strings.Contains(got[len(prefix):], w.msg) {
			t.Errorf("error %d:\n got %s\nwant %s…%s…", i, got, prefix, w.msg)
		}
		if errs[i].Line != w.line || errs[i].Field != w.field {
			t.Errorf("error %d: got Line %d Field %q, want %d %q", i, errs[i].Line, errs[i].Field, w.line, w.field)
		}
	}
}

func TestErrorsIsAndAs(t *testing.T) {
	_, err := Parse("gvs.toml", file(
		`[[service]]`,
		`address = "198.18.0.100:80"`,
		`method = "fullnat"`,
		`bogus = 1`,
		`[[service]]`,
		`address = "198.18.0.100:80"`,
	))
	for _, sentinel := range []error{ErrNotImplemented, ErrUnknownKey, ErrDuplicate} {
		if !errors.Is(err, sentinel) {
			t.Errorf("errors.Is(err, %v) = false; err:\n%v", sentinel, err)
		}
	}
	if errors.Is(err, ErrSyntax) {
		t.Errorf("errors.Is(err, ErrSyntax) = true for a file without syntax errors")
	}
	var e *Error
	if !errors.As(err, &e) || e.File != "gvs.toml" || e.Line != 3 {
		t.Errorf("errors.As(*Error): got %+v, want the first error at gvs.toml:3", e)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.toml")
	if err == nil || !strings.HasPrefix(err.Error(), "config: ") || !strings.Contains(err.Error(), "does-not-exist.toml") {
		t.Errorf("got %v, want a config: error naming the file", err)
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want time.Duration
		err  string
	}{
		{"300s", 300 * time.Second, ""},
		{"1m30s", 90 * time.Second, ""},
		{"250ms", 250 * time.Millisecond, ""},
		{int64(300), 300 * time.Second, ""},
		{"300", 300 * time.Second, ""},
		{" 2 ", 2 * time.Second, ""},
		{0.1, 100 * time.Millisecond, ""},
		{"1.5", 1500 * time.Millisecond, ""},
		{int64(0), 0, ""},
		{"-1s", 0, "must not be negative"},
		{int64(-3), 0, "must not be negative"},
		{"5 min", 0, "invalid duration"},
		{"", 0, "invalid duration"},
		{int64(1) << 62, 0, "out of range"},
		{"NaN", 0, "out of range"},
		{true, 0, "want a duration"},
	} {
		got, err := parseDuration(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("parseDuration(%#v) = %v, %v; want %v", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseDuration(%#v) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
		}
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"address", "weight", "mac", "upper_threshold", "lower_threshold", "method"}
	for _, tc := range []struct{ in, want string }{
		{"wieght", "weight"},
		{"adress", "address"},
		{"Weight", "weight"},
		{"lower_treshold", "lower_threshold"},
		{"amc", "mac"}, // a transposition is one edit
		{"colour", ""},
		{"x", ""},
	} {
		if got := suggest(tc.in, keys); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestSchedulerNames keeps the config's accepted names in step with the brief's
// list and the sched registry.
func TestSchedulerNames(t *testing.T) {
	names := SchedulerNames()
	for _, n := range strings.Fields("rr wrr lc wlc sed nq sh dh lblc lblcr fo ovf twos mh") {
		if !slices.Contains(names, n) {
			t.Errorf("scheduler %q not accepted", n)
		}
		if _, err := ParseSchedFlag(n, "flag-1"); err != nil {
			t.Errorf("flag-1 for %s: %v", n, err)
		}
	}
	for _, tc := range []struct {
		sched, flag string
		want        sched.Flags
		ok          bool
	}{
		{"sh", "sh-fallback", sched.FlagSched1, true},
		{"sh", "sh-port", sched.FlagSched2, true},
		{"mh", "mh-fallback", sched.FlagSched1, true},
		{"mh", "mh-port", sched.FlagSched2, true},
		{"mh", "sh-port", 0, false},
		{"rr", "mh-port", 0, false},
		{"sh", "", 0, false},
	} {
		got, err := ParseSchedFlag(tc.sched, tc.flag)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseSchedFlag(%q, %q) = %v, %v; want %v, ok %v", tc.sched, tc.flag, got, err, tc.want, tc.ok)
		}
	}
}

// TestDefaultCheck pins keepalived 2.2.7's checker defaults, which differ by
// checker: queue_checker (check_api.c) gives every checker retry 1 and
// delay_before_retry 1 s, HTTP_GET and SSL_GET (check_http.c, http_get_handler)
// delay_before_retry 3 s, MISC_CHECK (check_misc.c) retry 0.
func TestDefaultCheck(t *testing.T) {
	for _, tc := range []struct {
		typ        CheckType
		retries    int
		retryDelay time.Duration
		path       string
	}{
		{CheckTCP, 1, time.Second, ""},
		{CheckHTTP, 1, 3 * time.Second, "/"},
		{CheckHTTPS, 1, 3 * time.Second, "/"},
		{CheckUDP, 1, time.Second, ""},
		{CheckExec, 0, time.Second, ""},
	} {
		c := DefaultCheck(tc.typ)
		if c.Type != tc.typ || c.Retries != tc.retries || c.RetryDelay != tc.retryDelay || c.Path != tc.path ||
			c.Interval != 60*time.Second || c.Timeout != 5*time.Second || c.Rise != 1 || c.Fall != 1 {
			t.Errorf("DefaultCheck(%s) = %+v", tc.typ, c)
		}
	}
	// What Parse fills in for a check that sets nothing but its type.
	c := mustParse(t, file(
		`[[service]]`,
		`address = "198.18.0.100:80"`,
		`check = { type = "exec", command = ["/bin/true"] }`,
		`[[service]]`,
		`address = "198.18.0.101:80"`,
		`check = { type = "https" }`,
	))
	if ch := c.Services[0].Check; ch.Retries != 0 || ch.RetryDelay != time.Second {
		t.Errorf("exec check defaults: %+v", *ch)
	}
	if ch := c.Services[1].Check; ch.Retries != 1 || ch.RetryDelay != 3*time.Second || ch.Path != "/" {
		t.Errorf("https check defaults: %+v", *ch)
	}
}

func TestServiceString(t *testing.T) {
	c := mustParse(t, file(
		`[[service]]`,
		`address = "198.18.0.100:80"`,
		`[[service]]`,
		`address = "[2001:db8::1]:53"`,
		`protocol = "udp"`,
		`[[service]]`,
		`fwmark = 3`,
		`family = "inet6"`,
		`match = [{ address = "2001:db8::100" }]`,
	))
	var got []string
	for i := range c.Services {
		got = append(got, c.Services[i].String())
	}
	// The model's one form (ipvs.Key.String), which ipvs.ParseKey reads back.
	want := []string{"TCP 198.18.0.100:80", "UDP [2001:db8::1]:53", "FWM 3 IPv6"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestVRRPNotifyTrackAndSyncGroup(t *testing.T) {
	c := mustParse(t, file(
		`[[service]]`,
		`address = "198.18.0.100:80"`,
		`[[vrrp]]`,
		`name = "VI_1"`,
		`virtual_router_id = 51`,
		`virtual_ipaddress = ["198.18.0.100"]`,
		`notify_master = "m"`,
		`notify_backup = "b"`,
		`notify_fault = "f"`,
		`notify = "n"`,
		`track_service = ["198.18.0.100:80"]`,
		`[[vrrp]]`,
		`name = "VI_2"`,
		`virtual_router_id = 52`,
		`virtual_ipaddress = ["198.18.0.101"]`,
		`[[vrrp_sync_group]]`,
		`name = "VG_1"`,
		`group = ["VI_1", "VI_2"]`,
	))
	v := c.VRRP[0]
	if v.NotifyMaster != "m" || v.NotifyBackup != "b" || v.NotifyFault != "f" || v.Notify != "n" ||
		len(v.TrackService) != 1 || v.TrackService[0] != (TrackedService{Addr: netip.MustParseAddrPort("198.18.0.100:80")}) {
		t.Fatalf("%+v", v)
	}
	if len(c.VRRPSyncGroups) != 1 || c.VRRPSyncGroups[0].Name != "VG_1" || c.VRRPSyncGroups[0].Line != 16 ||
		strings.Join(c.VRRPSyncGroups[0].Group, ",") != "VI_1,VI_2" {
		t.Fatalf("%+v", c.VRRPSyncGroups)
	}
}

func TestVRRPTrackInterface(t *testing.T) {
	base := "[[vrrp]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\npriority = 100\nvirtual_ipaddress = [\"198.18.0.100\"]\n"
	c, err := Parse("t.toml", []byte(base+"track_interface = [\"eth1\", \"bond0  weight -20\", \"eth2 weight 5\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []TrackedInterface{{Name: "eth1"}, {Name: "bond0", Weight: -20}, {Name: "eth2", Weight: 5}}
	if got := c.VRRP[0].TrackInterface; !slices.Equal(got, want) {
		t.Fatalf("track_interface = %v, want %v", got, want)
	}
	for _, tc := range []struct{ entry, want string }{
		{`"eth 1"`, `t.toml:7: vrrp[0].track_interface[0]: want "NAME" or "NAME weight W", got "eth 1"`},
		{`""`, `t.toml:7: vrrp[0].track_interface[0]: want "NAME" or "NAME weight W"`},
		{`"eth1 weight 0"`, `weight "0": want a whole number from -253 to 253, not 0`},
		{`"eth1 weight -254"`, `weight "-254": want a whole number from -253 to 253`},
		{`"eth1 weight x"`, `weight "x"`},
		{`"eth1 wieght -2"`, `want "NAME" or "NAME weight W", got "eth1 wieght -2"`},
		{`"eth1", "eth1 weight -2"`, `t.toml:7: vrrp[0].track_interface[1]: duplicate interface eth1`},
		{`"a/b"`, `want an interface name, got "a/b"`},
	} {
		_, err := Parse("t.toml", []byte(base+"track_interface = ["+tc.entry+"]\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("track_interface = [%s]: %v, want %q", tc.entry, err, tc.want)
		}
	}
	owner := strings.Replace(base, "priority = 100", "priority = 255", 1)
	_, err = Parse("t.toml", []byte(owner+"track_interface = [\"eth1 weight -10\"]\n"))
	if err == nil || !strings.Contains(err.Error(), "address owner (priority 255): drop the weight, or lower the priority") {
		t.Fatalf("a weight on an owner: %v", err)
	}
	if _, err = Parse("t.toml", []byte(owner+"track_interface = [\"eth1\"]\n")); err != nil {
		t.Fatalf("an owner tracking without weight: %v", err)
	}
}

func TestVRRPTrackServiceWeight(t *testing.T) {
	cfg := "[[service]]\naddress = \"198.18.0.100:80\"\n[[service.real_server]]\naddress = \"198.18.1.1\"\nmac = \"02:00:00:00:00:01\"\n" +
		"[[vrrp]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\npriority = 100\nvirtual_ipaddress = [\"198.18.0.100\"]\n"
	c, err := Parse("t.toml", []byte(cfg+"track_service = [\"198.18.0.100:80 weight -50\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.VRRP[0].TrackService; len(got) != 1 || got[0] != (TrackedService{Addr: netip.MustParseAddrPort("198.18.0.100:80"), Weight: -50}) {
		t.Fatalf("track_service = %v", got)
	}
	_, err = Parse("t.toml", []byte(cfg+"track_service = [\"198.18.0.100:80\", \"198.18.0.100:443 weight 10\"]\n"))
	if err == nil || !strings.Contains(err.Error(), "vrrp[0].track_service[1]: no [[service]] has address 198.18.0.100:443") {
		t.Fatalf("an unknown weighted service: %v", err)
	}
}
