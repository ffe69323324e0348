package ipvsadm

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
)

func words(s string) []string { return strings.Fields(s) }

// svcTCP and friends build the Service part of expected Commands.
func svcTCP(addr string, port uint16) Service {
	return Service{Protocol: TCP, Addr: ip(addr), Port: port}
}

func withSched(s Service, sched string) Service { s.Scheduler = sched; return s }

func rs(addr string, port uint16, m Method, w int) Dest {
	return Dest{Addr: ip(addr), Port: port, Method: m, Weight: w}
}

// TestParseSeeds parses the ipvsadm lines that users type in the seed
// walkthroughs (docs/seeds.md), in order.
func TestParseSeeds(t *testing.T) {
	tests := []struct {
		line string
		want *Command
	}{
		// 000: DR with round robin.
		{"-A -t 172.19.0.100:80 -s rr", &Command{Op: OpAddService, Service: withSched(svcTCP("172.19.0.100", 80), "rr"), HasService: true}},
		{"-a -t 172.19.0.100:80 -r  172.19.0.5 -g", &Command{Op: OpAddServer, Service: svcTCP("172.19.0.100", 80), HasService: true,
			Dest: rs("172.19.0.5", 80, MethodRoute, 1)}},
		{"-a -t 172.19.0.100:80 -r  172.19.0.6 -g", &Command{Op: OpAddServer, Service: svcTCP("172.19.0.100", 80), HasService: true,
			Dest: rs("172.19.0.6", 80, MethodRoute, 1)}},
		{"-Ln", &Command{Op: OpList, Format: Format{Numeric: true}}},
		// 001: NAT, then DR.
		{"-C", &Command{Op: OpClear}},
		{"-A -t 12.0.0.1:80 -s rr", &Command{Op: OpAddService, Service: withSched(svcTCP("12.0.0.1", 80), "rr"), HasService: true}},
		{"-a -t 12.0.0.1:80 -r 192.168.233.20:80 -m", &Command{Op: OpAddServer, Service: svcTCP("12.0.0.1", 80), HasService: true,
			Dest: rs("192.168.233.20", 80, MethodMasq, 1)}},
		{"-ln", &Command{Op: OpList, Format: Format{Numeric: true}}},
		{"-D -t 192.168.233.10:80", &Command{Op: OpDeleteService, Service: svcTCP("192.168.233.10", 80), HasService: true}},
		{"-A -t 192.168.233.100:80 -s rr", &Command{Op: OpAddService, Service: withSched(svcTCP("192.168.233.100", 80), "rr"), HasService: true}},
		{"-a -t 192.168.233.100:80 -r 192.168.233.20:80 -g", &Command{Op: OpAddServer, Service: svcTCP("192.168.233.100", 80), HasService: true,
			Dest: rs("192.168.233.20", 80, MethodRoute, 1)}},
		{"-a -t 192.168.233.100:80 -r 192.168.233.30:80 -g", &Command{Op: OpAddServer, Service: svcTCP("192.168.233.100", 80), HasService: true,
			Dest: rs("192.168.233.30", 80, MethodRoute, 1)}},
		{"-S", &Command{Op: OpSave}}, // ipvsadm-save
		// 003: watching counters.
		{"-Ln --stats", &Command{Op: OpList, Format: Format{Numeric: true, Stats: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := Parse(words(tt.line))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse:\n got %+v\nwant %+v", got, tt.want)
			}
			checkArgsRoundTrip(t, got)
		})
	}

	// 001 also shows "ipvsadm -d -r 192.168.233.20: -t 12.0.0.1:80": an empty
	// port is neither a number nor a service name.
	_, err := Parse(words("-d -r 192.168.233.20: -t 12.0.0.1:80"))
	wantError(t, err, "illegal real server address[:port] specified", StatusFail)
}

func checkArgsRoundTrip(t *testing.T, c *Command) {
	t.Helper()
	args := c.Args()
	back, err := Parse(args)
	if err != nil {
		t.Fatalf("Parse(%q) of Args: %v", args, err)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("Args round trip %q:\n got %+v\nwant %+v", args, back, c)
	}
}

func wantError(t *testing.T, err error, msg string, status int) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want *Error %q", err, err, msg)
	}
	if e.Msg != msg || e.Status != status {
		t.Errorf("error %q (status %d), want %q (status %d)", e.Msg, e.Status, msg, status)
	}
}

func TestParse(t *testing.T) {
	persist := func(s Service, d time.Duration, mask int) Service {
		s.Persistent, s.Timeout, s.Netmask = true, d, mask
		return s
	}
	udp53 := Service{Protocol: UDP, Addr: ip("10.0.0.1"), Port: 53}
	mark7v6 := Service{Protocol: TCP, FWMark: 7, IPv6: true}
	v6svc := Service{Protocol: TCP, Addr: ip("2001:db8::1"), Port: 80}
	tests := []struct {
		name string
		args []string
		want *Command
	}{
		{"empty is list", nil, &Command{Op: OpList}},
		{"long options", words("--add-service --tcp-service=10.0.0.1:80 --scheduler=rr --persistent=600"),
			&Command{Op: OpAddService, Service: persist(withSched(svcTCP("10.0.0.1", 80), "rr"), 600*time.Second, 0), HasService: true}},
		{"clustered with attached args", words("-At10.0.0.1:80 -srr"),
			&Command{Op: OpAddService, Service: withSched(svcTCP("10.0.0.1", 80), "rr"), HasService: true}},
		{"-p takes a following number", words("-A -t 10.0.0.1:80 -p 60 -s rr"),
			&Command{Op: OpAddService, Service: persist(withSched(svcTCP("10.0.0.1", 80), "rr"), time.Minute, 0), HasService: true}},
		{"-p before an option is 360", words("-A -t 10.0.0.1:80 -p -s rr"),
			&Command{Op: OpAddService, Service: persist(withSched(svcTCP("10.0.0.1", 80), "rr"), 360*time.Second, 0), HasService: true}},
		{"-p last is 360", words("-A -t 10.0.0.1:80 -p"),
			&Command{Op: OpAddService, Service: persist(withSched(svcTCP("10.0.0.1", 80), "wlc"), 360*time.Second, 0), HasService: true}},
		{"-p=30", words("-A -t 10.0.0.1:80 -p=30"),
			&Command{Op: OpAddService, Service: persist(withSched(svcTCP("10.0.0.1", 80), "wlc"), 30*time.Second, 0), HasService: true}},
		{"port 0 persistent", words("-A -t 10.0.0.1:0 -p 300 -M 255.255.255.0"),
			&Command{Op: OpAddService, Service: persist(withSched(svcTCP("10.0.0.1", 0), "wlc"), 300*time.Second, 24), HasService: true}},
		{"mask /32 is the default", words("-A -t 10.0.0.1:80 -p 300 -M 255.255.255.255"),
			&Command{Op: OpAddService, Service: persist(withSched(svcTCP("10.0.0.1", 80), "wlc"), 300*time.Second, 0), HasService: true}},
		{"udp ops", words("-A -u 10.0.0.1:53 -s rr -o"),
			&Command{Op: OpAddService, Service: func() Service { s := withSched(udp53, "rr"); s.OPS = true; return s }(), HasService: true}},
		{"fwmark ipv6 sh flags", words("-A -f 7 -6 -s sh -b sh-port,sh-fallback -p 60 -M 64"),
			&Command{Op: OpAddService, Service: func() Service {
				s := persist(withSched(mark7v6, "sh"), time.Minute, 64)
				s.Flags = []string{"sh-fallback", "sh-port"}
				return s
			}(), HasService: true}},
		{"flag-1 named for sh", words("-A -t 10.0.0.1:80 -b flag-1,flag-3 -s sh"),
			&Command{Op: OpAddService, Service: func() Service {
				s := withSched(svcTCP("10.0.0.1", 80), "sh")
				s.Flags = []string{"sh-fallback", "flag-3"}
				return s
			}(), HasService: true}},
		{"edit resets scheduler", words("-E -t 10.0.0.1:80"),
			&Command{Op: OpEditService, Service: withSched(svcTCP("10.0.0.1", 80), "wlc"), HasService: true}},
		{"pe", words("-A -u 10.0.0.1:5060 -p 60 --pe sip"),
			&Command{Op: OpAddService, Service: func() Service {
				s := persist(withSched(Service{Protocol: UDP, Addr: ip("10.0.0.1"), Port: 5060}, "wlc"), time.Minute, 0)
				s.PE = "sip"
				return s
			}(), HasService: true}},
		{"sctp", words("-A --sctp-service 10.0.0.1:9 -s rr"),
			&Command{Op: OpAddService, Service: withSched(Service{Protocol: SCTP, Addr: ip("10.0.0.1"), Port: 9}, "rr"), HasService: true}},
		{"inet_aton short form", words("-A -t 10.1:80"),
			&Command{Op: OpAddService, Service: withSched(svcTCP("10.0.0.1", 80), "wlc"), HasService: true}},
		{"bracketed IPv4 loses its port", words("-A -t [10.0.0.1]:80 -p"),
			&Command{Op: OpAddService, Service: persist(withSched(svcTCP("10.0.0.1", 0), "wlc"), 360*time.Second, 0), HasService: true}},
		{"bare IPv6 has no port", words("-A -t 2001:db8::1 -p"),
			&Command{Op: OpAddService, Service: persist(withSched(Service{Protocol: TCP, Addr: ip("2001:db8::1")}, "wlc"), 360*time.Second, 0), HasService: true}},
		{"masq keeps its port", words("-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -w 0 -x 100 -y 50"),
			&Command{Op: OpAddServer, Service: svcTCP("10.0.0.1", 80), HasService: true,
				Dest: Dest{Addr: ip("10.0.0.2"), Port: 8080, Method: MethodMasq, Weight: 0, UThreshold: 100, LThreshold: 50}}},
		{"DR takes the service port", words("-a -t 10.0.0.1:80 -r 10.0.0.2:8080"),
			&Command{Op: OpAddServer, Service: svcTCP("10.0.0.1", 80), HasService: true, Dest: rs("10.0.0.2", 80, MethodRoute, 1)}},
		// ipvsadm copies the service port when it meets -r: none yet.
		{"-r before -t", words("-a -r 10.0.0.2 -t 10.0.0.1:80 -m"),
			&Command{Op: OpAddServer, Service: svcTCP("10.0.0.1", 80), HasService: true, Dest: rs("10.0.0.2", 0, MethodMasq, 1)}},
		{"-r after -t", words("-a -t 10.0.0.1:80 -r 10.0.0.2 -m"),
			&Command{Op: OpAddServer, Service: svcTCP("10.0.0.1", 80), HasService: true, Dest: rs("10.0.0.2", 80, MethodMasq, 1)}},
		// DR and tunnels take the service port whatever the order.
		{"-r before -t, DR", words("-a -r 10.0.0.2 -t 10.0.0.1:80 -g"),
			&Command{Op: OpAddServer, Service: svcTCP("10.0.0.1", 80), HasService: true, Dest: rs("10.0.0.2", 80, MethodRoute, 1)}},
		{"-r before -t, delete", words("-d -r 10.0.0.2 -t 10.0.0.1:80"),
			&Command{Op: OpDeleteServer, Service: svcTCP("10.0.0.1", 80), HasService: true, Dest: rs("10.0.0.2", 0, MethodRoute, 1)}},
		// inet_aton masks.
		{"mask 0.0.0.0", words("-A -t 10.0.0.1:80 -p 300 -M 0.0.0.0"),
			&Command{Op: OpAddService, Service: persist(withSched(svcTCP("10.0.0.1", 80), "wlc"), 300*time.Second, NetmaskAll), HasService: true}},
		{"mask 0", words("-A -t 10.0.0.1:80 -p 300 -M 0"),
			&Command{Op: OpAddService, Service: persist(withSched(svcTCP("10.0.0.1", 80), "wlc"), 300*time.Second, NetmaskAll), HasService: true}},
		{"mask in hex", words("-A -t 10.0.0.1:80 -p 300 -M 0xffffff00"),
			&Command{Op: OpAddService, Service: persist(withSched(svcTCP("10.0.0.1", 80), "wlc"), 300*time.Second, 24), HasService: true}},
		{"mask short form", words("-A -t 10.0.0.1:80 -p 300 -M 255.255.65280"),
			&Command{Op: OpAddService, Service: persist(withSched(svcTCP("10.0.0.1", 80), "wlc"), 300*time.Second, 24), HasService: true}},
		{"fwmark real server port 0", words("-a -f 5 -r 10.0.0.2 -m -w 3"),
			&Command{Op: OpAddServer, Service: Service{Protocol: TCP, FWMark: 5}, HasService: true, Dest: rs("10.0.0.2", 0, MethodMasq, 3)}},
		{"ipv6 real server", words("-a -t [2001:db8::1]:80 -r 2001:db8::2 -m"),
			&Command{Op: OpAddServer, Service: v6svc, HasService: true, Dest: rs("2001:db8::2", 80, MethodMasq, 1)}},
		{"tunnel across families", words("-a -t 10.0.0.1:80 -r [2001:db8::2]:80 -i"),
			&Command{Op: OpAddServer, Service: svcTCP("10.0.0.1", 80), HasService: true, Dest: rs("2001:db8::2", 80, MethodTunnel, 1)}},
		{"gue tunnel", words("-a -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gue --tun-port 6080 --tun-remcsum"),
			&Command{Op: OpAddServer, Service: svcTCP("10.0.0.1", 80), HasService: true,
				Dest: Dest{Addr: ip("10.0.0.2"), Port: 80, Method: MethodTunnel, Weight: 1, TunnelType: TunnelGUE, TunnelPort: 6080, TunnelCsum: TunnelRemCsum}}},
		{"gre tunnel", words("-e -t 10.0.0.1:80 -r 10.0.0.2 -i --tun-type gre --tun-csum"),
			&Command{Op: OpEditServer, Service: svcTCP("10.0.0.1", 80), HasService: true,
				Dest: Dest{Addr: ip("10.0.0.2"), Port: 80, Method: MethodTunnel, Weight: 1, TunnelType: TunnelGRE, TunnelCsum: TunnelCsumOn}}},
		{"delete server", words("-d -t 10.0.0.1:80 -r 10.0.0.2:8080"),
			&Command{Op: OpDeleteServer, Service: svcTCP("10.0.0.1", 80), HasService: true, Dest: rs("10.0.0.2", 8080, MethodRoute, 1)}},
		{"list one service", words("-L -t 10.0.0.1:80 --stats --exact"),
			&Command{Op: OpList, Service: svcTCP("10.0.0.1", 80), HasService: true, Format: Format{Stats: true, Exact: true}}},
		{"list fwmark", words("-l -f 7 -6 -n"),
			&Command{Op: OpList, Service: mark7v6, HasService: true, Format: Format{Numeric: true}}},
		{"-Lnc", words("-Lnc"), &Command{Op: OpList, Format: Format{Numeric: true}, Connections: true}},
		{"-L -c --persistent-conn", words("-L -c --persistent-conn"), &Command{Op: OpList, Format: Format{PersistentConn: true}, Connections: true}},
		{"--timeout", words("-L --timeout"), &Command{Op: OpList, Timeouts: true}},
		{"--daemon", words("--list --daemon"), &Command{Op: OpList, Daemons: true}},
		{"all list formats", words("-L --rate --thresholds --persistent-conn --tun-info --nosort --sort -X"),
			&Command{Op: OpList, Format: Format{Rate: true, Thresholds: true, PersistentConn: true, TunInfo: true, NoSort: true, Exact: true}}},
		{"zero all", words("-Z"), &Command{Op: OpZero}},
		{"zero one", words("-Z -u 10.0.0.1:53"), &Command{Op: OpZero, Service: udp53, HasService: true}},
		{"save -n", words("-S -n"), &Command{Op: OpSave, Format: Format{Numeric: true}}},
		{"restore", words("-R"), &Command{Op: OpRestore}},
		{"set", words("--set 900 120 300"), &Command{Op: OpSetTimeouts,
			SetTimeouts: Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}}},
		{"set args anywhere", words("900 --set 120 -- 300"), &Command{Op: OpSetTimeouts,
			SetTimeouts: Timeouts{TCP: 900 * time.Second, TCPFin: 120 * time.Second, UDP: 300 * time.Second}}},
		{"start daemon", words("--start-daemon master --syncid 5 --mcast-group 239.1.2.3 --mcast-port 9000 --mcast-ttl 2 --sync-maxlen 1400"),
			&Command{Op: OpStartDaemon, Sync: SyncDaemon{State: SyncMaster, McastIfn: "eth0", SyncID: 5, Group: ip("239.1.2.3"), Port: 9000, TTL: 2, MaxLen: 1400}}},
		{"stop daemon", words("--stop-daemon backup"), &Command{Op: OpStopDaemon, Sync: SyncDaemon{State: SyncBackup}}},
		{"help ignores the rest", words("-h --bogus"), &Command{Op: OpHelp}},
		{"version", words("--version"), &Command{Op: OpVersion}},
		{"scheduler truncated to 15", words("-A -t 10.0.0.1:80 -s abcdefghijklmnopq"),
			&Command{Op: OpAddService, Service: withSched(svcTCP("10.0.0.1", 80), "abcdefghijklmno"), HasService: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.args)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.args, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q):\n got %+v\nwant %+v", tt.args, got, tt.want)
			}
			checkArgsRoundTrip(t, got)
		})
	}
}

func TestParseErrors(t *testing.T) {
	const try = "Try `ipvsadm -h' or 'ipvsadm --help' for more information."
	const a80 = "-a -t 10.0.0.1:80 -r 10.0.0.2 "
	tests := []struct {
		line   string
		msg    string
		status int
	}{
		{"-n -L", try, StatusUsage},
		{"foo", try, StatusUsage},
		{"--bogus", try, StatusUsage},
		{"-t 10.0.0.1:80", try, StatusUsage},
		{"--start-daemon", try, StatusUsage},
		{"-L --bogus", "--bogus: unknown option", StatusUsage},
		{"-Lq", "-Lq: unknown option", StatusUsage},
		{"-A -t", "-t: missing argument", StatusUsage},
		{"-L --numeric=1", "--numeric=1: option does not take an argument", StatusUsage},
		{"-L --list", "invalid option `--list'", StatusFail},
		{"-L -A", "invalid option `-A'", StatusFail},
		{"-L -h", "invalid option `-h'", StatusFail},
		{"-L --start-daemon master", "invalid option `master'", StatusFail},
		{"-A", "You need to supply the 'service-address' option for the 'add-service' command", StatusFail},
		{"-a -t 10.0.0.1:80", "You need to supply the 'real-server' option for the 'add-server' command", StatusFail},
		{"-d -r 10.0.0.2", "You need to supply the 'service-address' option for the 'delete-server' command", StatusFail},
		{"-A -t 10.0.0.1:80 -w 5", "Illegal 'weight' option with the 'add-service' command", StatusFail},
		{"-A -t 10.0.0.1:80 -r 10.0.0.2", "Illegal 'real-server' option with the 'add-service' command", StatusFail},
		{"-C -n", "Illegal 'numeric' option with the 'flush' command", StatusFail},
		{"-D -t 10.0.0.1:80 -s rr", "Illegal 'scheduler' option with the 'delete-service' command", StatusFail},
		{"-d -t 10.0.0.1:80 -r 10.0.0.2 -w 3", "Illegal 'weight' option with the 'delete-server' command", StatusFail},
		{"-L -c --timeout", "The option 'timeout' conflicts with the 'connection' option in the 'list' command", StatusFail},
		{"-L -t 10.0.0.1:80 -c", "The option 'service-address' conflicts with the 'connection' option in the 'list' command", StatusFail},
		{"-L -c --stats", "options conflicts in the list command", StatusFail},
		{"-L --timeout --persistent-conn", "options conflicts in the list command", StatusFail},
		{"-L extra", "unexpected argument extra", StatusFail},
		{"--set 900 120", "--set option requires 3 timeout values", StatusFail},
		{"--set 900 120 x", "invalid timeout value `x' specified", StatusFail},
		{"--set 1 2 3 4", "unexpected argument 4", StatusFail},
		{a80 + "-w 70000", "illegal weight specified", StatusFail},
		{a80 + "-w -1", "illegal weight specified", StatusFail},
		{a80 + "-w abc", "illegal weight specified", StatusFail},
		{a80 + "-w 1x", "illegal weight specified", StatusFail},
		{a80 + "-x -1", "illegal u_threshold specified", StatusFail},
		{a80 + "-y 2147483648", "illegal l_threshold specified", StatusFail},
		{"-A -t 10.0.0.1:80 -s rr -s wlc", "multiple 'scheduler' options specified", StatusFail},
		{a80 + "-g -m", "multiple 'forwarding-method' options specified", StatusFail},
		{"-A -t 10.0.0.1:80 -u 10.0.0.1:53", "multiple 'service-address' options specified", StatusFail},
		{"-A -t 10.0.0.1", "Zero port specified for non-persistent service", StatusFail},
		{"-A -t 10.0.0.1:80 -o", "One-Packet Scheduling is only for UDP virtual services", StatusFail},
		{"-A -t 300.0.0.1:80", "illegal virtual server address[:port] specified", StatusFail},
		{"-A -t 80", "illegal virtual server address[:port] specified", StatusFail},
		{"-A -t 10.0.0.1:http", "illegal virtual server address[:port] specified", StatusFail},
		{"-A -t 10.0.0.1:65536", "illegal virtual server address[:port] specified", StatusFail},
		{"-A -t [2001:db8::1]", "illegal virtual server address[:port] specified", StatusFail},
		{"-A -t [2001:db8::1:80", "illegal virtual server address[:port] specified", StatusFail},
		{"-A -t fe80::1%eth0", "illegal virtual server address[:port] specified", StatusFail},
		{"-A -f 0", "invalid fwmark value `0' specified", StatusFail},
		{"-A -f 4294967296", "invalid fwmark value `4294967296' specified", StatusFail},
		{"-A -f -1412536447", "invalid fwmark value `-1412536447' specified", StatusFail},
		{"-A -t 10.0.0.1:80 -6", "-6 used before -f\n", StatusFail},
		{"-A -t 10.0.0.1:80 -p 0", "invalid timeout value `0' specified", StatusFail},
		{"-A -t 10.0.0.1:80 -p 2678401", "invalid timeout value `2678401' specified", StatusFail},
		{"-A -t 10.0.0.1:80 -p rr", "invalid timeout value `rr' specified", StatusFail},
		{"-A -t 10.0.0.1:80 -s rr -b sh-port", "incompatible scheduler flag `sh-port'", StatusFail},
		{"-E -t 10.0.0.1:80 -b mh-port", "incompatible scheduler flag `mh-port'", StatusFail},
		{"-A -t 10.0.0.1:80 -b foo", "invalid scheduler flag `foo'", StatusFail},
		{"-A -t 10.0.0.1:80 -b ,", "invalid scheduler flag `,'", StatusFail},
		{"-A -t 10.0.0.1:80 -p -M 256.0.0.0", "illegal virtual server persistent mask specified", StatusFail},
		{"-A -t 10.0.0.1:80 -p -M 255.255.255.0.", "illegal virtual server persistent mask specified", StatusFail},
		{"-A -t 10.0.0.1:80 -p -M mask", "illegal virtual server persistent mask specified", StatusFail},
		{"-A -t [2001:db8::1]:80 -p -M 129", "illegal ipv6 netmask specified", StatusFail},
		{"-A -f 1 -6 -p -M 0", "illegal ipv6 netmask specified", StatusFail},
		{"-a -t 10.0.0.1:80 -r [2001:db8::2]:80", "Different address family is allowed only for tunneling servers", StatusFail},
		{"-a -f 1 -6 -r 10.0.0.2 -m", "Different address family is allowed only for tunneling servers", StatusFail},
		{a80 + "--tun-type gue", "Tunnel options conflict with forward method", StatusFail},
		{a80 + "-i --tun-type gue", "You need to supply the 'tun-port' option for the 'gue' tunnel type", StatusFail},
		{a80 + "-i --tun-type gue --tun-port 6080 --tun-csum --tun-remcsum",
			"The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type", StatusFail},
		{a80 + "-i --tun-csum", "Illegal 'tun-csum' option with the 'ipip' tunnel type", StatusFail},
		{a80 + "-i --tun-type gre --tun-port 1", "Illegal 'tun-port' option with the 'gre' tunnel type", StatusFail},
		{a80 + "-i --tun-type foo", "illegal tunnel type specified", StatusFail},
		{a80 + "-i --tun-type gue --tun-port 0", "illegal tunnel port specified", StatusFail},
		{"-d -r 192.168.233.20: -t 12.0.0.1:80", "illegal real server address[:port] specified", StatusFail},
		{"-a -t 10.0.0.1:80 -r 10.0.0.2:http", "illegal real server address[:port] specified", StatusFail},
		{"--start-daemon foo", "illegal start-daemon parameter specified", StatusFail},
		{"--stop-daemon foo", "illegal start_daemon specified", StatusFail},
		{"--start-daemon master --syncid 256", "illegal syncid specified", StatusFail},
		{"--start-daemon master --mcast-group 10.0.0.1", "invalid IPv4 mcast-group `10.0.0.1'", StatusFail},
		{"--start-daemon master --mcast-group 2001:db8::1", "invalid IPv6 mcast-group `2001:db8::1'", StatusFail},
		{"--start-daemon master --mcast-port 0", "illegal mcast-port specified", StatusFail},
		{"--start-daemon master --mcast-ttl 256", "illegal mcast-ttl specified", StatusFail},
		{"--start-daemon master --sync-maxlen 65508", "illegal sync-maxlen specified", StatusFail},
		{"--stop-daemon master --mcast-port 9", "Illegal 'mcast-port' option with the 'stop-daemon' command", StatusFail},
		{"-R -n", "Illegal 'numeric' option with the 'restore' command", StatusFail},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			c, err := Parse(words(tt.line))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want error %q", tt.line, c, tt.msg)
			}
			wantError(t, err, tt.msg, tt.status)
		})
	}
}

// TestParseMaskNotAPrefix: ipvsadm hands any inet_aton value of -M to the
// kernel; gvs reads it the same way, then refuses a mask that is not a run of
// leading ones, naming how ipvsadm read it.
func TestParseMaskNotAPrefix(t *testing.T) {
	tests := []struct{ arg, msg string }{
		{"24", "-M 0.0.0.24 is not a netmask of leading ones (ipvsadm reads -M 24 as the address 0.0.0.24, not as a prefix length): gvs groups persistent clients by address prefix; write the prefix as a mask, e.g. -M 255.255.255.0 for /24"},
		{"255.0.255.0", "-M 255.0.255.0 is not a netmask of leading ones: gvs groups persistent clients by address prefix; write the prefix as a mask, e.g. -M 255.255.255.0 for /24"},
		{"0x00ffffff", "-M 0.255.255.255 is not a netmask of leading ones: gvs groups persistent clients by address prefix; write the prefix as a mask, e.g. -M 255.255.255.0 for /24"},
	}
	for _, tt := range tests {
		c, err := Parse(words("-A -t 10.0.0.1:80 -p -M " + tt.arg))
		var u *UnsupportedError
		if !errors.As(err, &u) || u.Msg != tt.msg {
			t.Errorf("-M %s: %+v, %v; want *UnsupportedError %q", tt.arg, c, err, tt.msg)
		}
		if ExitStatus(err) != StatusUsage {
			t.Errorf("-M %s: status %d, want %d", tt.arg, ExitStatus(err), StatusUsage)
		}
	}
}

func TestParserProgramAndNames(t *testing.T) {
	p := Parser{Program: "gvs adm"}
	_, err := p.Parse(words("-x"))
	wantError(t, err, "Try `gvs adm -h' or 'gvs adm --help' for more information.", StatusUsage)

	p = Parser{Names: testNames()}
	c, err := p.Parse(words("-a -t vip.example:http -r 10.1.0.2:webcache -m"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Command{Op: OpAddServer, Service: svcTCP("10.0.0.1", 80), HasService: true, Dest: rs("10.1.0.2", 8080, MethodMasq, 1)}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse with names:\n got %+v\nwant %+v", c, want)
	}
	// Service names depend on the protocol: domain is only listed for 53.
	if _, err := p.Parse(words("-A -u dns:domain")); err != nil {
		t.Errorf("udp domain: %v", err)
	}
	// gethostbyname returns IPv4 only.
	_, err = p.Parse(words("-A -t www6.example.com:https"))
	wantError(t, err, "illegal virtual server address[:port] specified", StatusFail)
	// -M takes a host name too, as parse_netmask falls back to gethostbyname.
	pm := Parser{Names: &Names{Hosts: []HostEntry{{Addr: ip("255.255.255.0"), Names: []string{"masks.example.com"}}}}}
	c, err = pm.Parse(words("-A -t 10.0.0.1:80 -p -M masks.example.com"))
	if err != nil || c.Service.Netmask != 24 {
		t.Errorf("-M with a host name: %+v, %v", c, err)
	}
	// -r before -t looks its port name up with no protocol, as ipvsadm does.
	_, err = p.Parse(words("-a -r 10.1.0.2:webcache -t 10.0.0.1:80 -m"))
	wantError(t, err, "illegal real server address[:port] specified", StatusFail)
}

// TestMaskAllListed: -M 0.0.0.0 lists and saves as ipvsadm prints a netmask of
// 0 (inet_ntoa), and reads back.
func TestMaskAllListed(t *testing.T) {
	c, err := Parse(words("-A -t 10.0.0.1:80 -s rr -p 60 -M 0.0.0.0"))
	if err != nil {
		t.Fatal(err)
	}
	var list, save bytes.Buffer
	if err := FormatList(&list, Info{}, []Service{c.Service}, Format{Numeric: true}, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(list.String(), "\nTCP  10.0.0.1:80 rr persistent 60 mask 0.0.0.0\n") {
		t.Errorf("-L -n:\n%s", list.String())
	}
	if err := FormatSave(&save, []Service{c.Service}, Format{Numeric: true}, nil); err != nil {
		t.Fatal(err)
	}
	if save.String() != "-A -t 10.0.0.1:80 -s rr -p 60 -M 0.0.0.0\n" {
		t.Errorf("-S -n: %q", save.String())
	}
	if got := strings.Join(c.Args(), " "); got != "-A -t 10.0.0.1:80 -s rr -p 60 -M 0.0.0.0" {
		t.Errorf("Args: %q", got)
	}
}

// TestParseInto: a Command parsed into again holds what Parse returns for the
// new line, nothing of the line before (gvs adm parses each command into one
// it reuses), and a table command's parse into it allocates nothing.
func TestParseInto(t *testing.T) {
	busy := "-A -f 7 -6 -s mh -b mh-fallback,mh-port -p 60 -M 64 --pe sip -o"
	lines := []string{
		"-A -t 198.18.200.1:80 -s rr",
		"-D -t 198.18.200.1:80",
		"-a -t [2001:db8::1]:80 -r [2001:db8::2]:8080 -m -w 3 -x 10 -y 2",
		"-a -u 198.18.0.1:53 -r 198.19.0.1 -i --tun-type gue --tun-port 6080",
		"-e -f 7 -r 198.19.0.2 -g -w 0",
		"--set 10 20 30",
		"-Ln --stats --exact",
		"-h",
		"-v",
		"",
	}
	var p Parser
	var c Command
	for _, l := range lines {
		if err := p.ParseInto(&c, words(busy)); err != nil {
			t.Fatalf("%s: %v", busy, err)
		}
		c.Match = []ipvs.Match{{Addr: netip.MustParseAddr("198.18.0.1")}} // as ApplyOptions sets
		want, werr := Parse(words(l))
		if err := p.ParseInto(&c, words(l)); err != nil || werr != nil {
			t.Fatalf("%q: ParseInto %v, Parse %v", l, err, werr)
		}
		if !reflect.DeepEqual(&c, want) {
			t.Errorf("%q after %q: ParseInto\n%+v\nParse\n%+v", l, busy, c, *want)
		}
	}
	for _, l := range lines[:2] {
		args := words(l)
		if n := testing.AllocsPerRun(100, func() { _ = p.ParseInto(&c, args) }); n != 0 {
			t.Errorf("ParseInto(%q) allocates %v times, want 0", l, n)
		}
	}
}
