package ipvsadm

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
)

// apply builds a table from restore commands, as the daemon would, so that a
// save → restore → save cycle can be compared.
func apply(t *testing.T, cmds []*Command) []Service {
	t.Helper()
	var svcs []Service
	find := func(k *Service) int {
		for i := range svcs {
			s := &svcs[i]
			if s.FWMark == k.FWMark && s.IPv6 == k.IPv6 && (k.FWMark != 0 ||
				(s.Protocol == k.Protocol && s.Addr == k.Addr && s.Port == k.Port)) {
				return i
			}
		}
		return -1
	}
	for _, c := range cmds {
		switch c.Op {
		case OpAddService:
			s := c.Service
			if s.FWMark != 0 {
				s.Protocol = 0
			}
			svcs = append(svcs, s)
		case OpAddServer:
			i := find(&c.Service)
			if i < 0 {
				t.Fatalf("-a for a service not added: %q", c.Args())
			}
			svcs[i].Dests = append(svcs[i].Dests, c.Dest)
		default:
			t.Fatalf("unexpected command %v in a save", c.Op)
		}
	}
	return svcs
}

func TestSaveRestoreRoundTrip(t *testing.T) {
	v4names := func() []Service { return namesTable()[2:] }
	tests := []struct {
		name  string
		table func() []Service
		f     Format
	}{
		{"numeric", numericTable, Format{Numeric: true}},
		{"names", v4names, Format{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names := testNames()
			var saved bytes.Buffer
			if err := FormatSave(&saved, tt.table(), tt.f, names); err != nil {
				t.Fatal(err)
			}
			p := Parser{Names: names}
			cmds, err := p.ParseRestore(bytes.NewReader(saved.Bytes()))
			if err != nil {
				t.Fatalf("ParseRestore: %v\n%s", err, saved.String())
			}
			var again bytes.Buffer
			if err := FormatSave(&again, apply(t, cmds), tt.f, names); err != nil {
				t.Fatal(err)
			}
			if d := diffLines(saved.String(), again.String()); d != "" {
				t.Errorf("save → restore → save differs at %s", d)
			}
		})
	}
}

// TestRestoreCommands checks the commands of save_numeric.golden one by one,
// and that Args writes each of them back as the very line -S wrote.
func TestRestoreCommands(t *testing.T) {
	saved := golden(t, "save_numeric.golden")
	cmds, err := ParseRestore(strings.NewReader(saved))
	if err != nil {
		t.Fatal(err)
	}
	svc := func(s Service) Service { return s }
	web := svcTCP("10.0.0.1", 80)
	local := svcTCP("10.254.0.1", 443)
	dns := Service{Protocol: UDP, Addr: ip("10.0.0.1"), Port: 53}
	v6 := svcTCP("2001:db8::1", 443)
	mark := Service{Protocol: TCP, FWMark: 7}
	addSvc := func(s Service, sched string, f func(*Service)) *Command {
		s.Scheduler = sched
		if f != nil {
			f(&s)
		}
		return &Command{Op: OpAddService, Service: s, HasService: true}
	}
	addDest := func(s Service, d Dest) *Command {
		return &Command{Op: OpAddServer, Service: svc(s), HasService: true, Dest: d}
	}
	want := []*Command{
		addSvc(web, "rr", nil),
		addDest(web, rs("10.1.0.2", 8080, MethodMasq, 1)),
		addDest(web, rs("10.1.0.3", 8080, MethodMasq, 3)),
		addSvc(local, "rr", func(s *Service) { s.Persistent, s.Timeout = true, 10800*time.Second }),
		addDest(local, rs("127.0.0.1", 443, MethodRoute, 1)), // Local is saved as -g
		addSvc(dns, "wlc", func(s *Service) { s.OPS = true }),
		addDest(dns, rs("10.1.0.2", 53, MethodMasq, 1)),
		addSvc(v6, "sh", func(s *Service) { s.Flags = []string{"sh-fallback", "sh-port"} }),
		addDest(v6, rs("2001:db8::10", 443, MethodRoute, 1)),
		addSvc(mark, "wlc", func(s *Service) { s.Persistent, s.Timeout, s.Netmask = true, 300*time.Second, 24 }),
		addDest(mark, rs("10.1.0.8", 0, MethodTunnel, 2)),
		addDest(mark, rs("10.1.0.9", 0, MethodRoute, 1)),
	}
	if len(cmds) != len(want) {
		t.Fatalf("got %d commands, want %d", len(cmds), len(want))
	}
	lines := strings.Split(strings.TrimSuffix(saved, "\n"), "\n")
	for i := range want {
		if !reflect.DeepEqual(cmds[i], want[i]) {
			t.Errorf("line %d:\n got %+v\nwant %+v", i+1, cmds[i], want[i])
		}
		if got := strings.Join(cmds[i].Args(), " "); got != lines[i] {
			t.Errorf("Args of line %d = %q, want %q", i+1, got, lines[i])
		}
	}
}

func TestRestoreStream(t *testing.T) {
	in := "# ipvsadm.rules\n" +
		"-A -t 10.0.0.1:80 -s rr   # the web VIP\r\n" +
		"\n" +
		"   \t\n" +
		"ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2 -g -w 2\n" +
		"-A -u 10.0.0.1:53" // no final newline
	cmds, err := ParseRestore(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cmds {
		got = append(got, strings.Join(c.Args(), " "))
	}
	want := []string{
		"-A -t 10.0.0.1:80 -s rr",
		"-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 2",
		"-A -u 10.0.0.1:53 -s wlc",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("commands %q, want %q", got, want)
	}
	var p Parser
	cmds2, lines, err := p.ParseRestoreLines(strings.NewReader(in))
	if err != nil || !reflect.DeepEqual(cmds2, cmds) || !reflect.DeepEqual(lines, []int{2, 5, 6}) {
		t.Errorf("ParseRestoreLines: lines %v, %v", lines, err)
	}
}

func TestRestoreErrors(t *testing.T) {
	var quirk bytes.Buffer
	if err := FormatSave(&quirk, quirkTable(), Format{Numeric: true}, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in string
		line     int
		msg      string
		before   int // commands returned before the bad line
	}{
		{"bad weight", "-A -t 10.0.0.1:80 -s rr\n\n# comment\n-a -t 10.0.0.1:80 -r 10.0.0.2 -w x\n-C\n", 4, "illegal weight specified", 1},
		{"restore inside restore", "-C\n-R\n", 2, "Try `ipvsadm -h' or 'ipvsadm --help' for more information.", 1},
		{"unknown option", "-L --bogus\n", 1, "--bogus: unknown option", 0},
		// ipvsadm -S writes marks of 2^31 and more negative; -R refuses them.
		{"negative fwmark from -S", quirk.String(), 1, "invalid fwmark value `-1294967296' specified", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmds, err := ParseRestore(strings.NewReader(tt.in))
			var le *LineError
			if !errors.As(err, &le) {
				t.Fatalf("error %v, want a *LineError", err)
			}
			if le.Line != tt.line {
				t.Errorf("line %d, want %d", le.Line, tt.line)
			}
			var e *Error
			if !errors.As(err, &e) || e.Msg != tt.msg {
				t.Errorf("error %q, want %q", err, tt.msg)
			}
			if want := "line " + itoa(tt.line) + ": " + tt.msg; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
			if len(cmds) != tt.before {
				t.Errorf("%d commands before the error, want %d", len(cmds), tt.before)
			}
		})
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestRestoreReadError(t *testing.T) {
	if _, err := ParseRestore(errReader{}); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("error %v, want the read error", err)
	}
}

// TestReadRestore: ReadRestore reads a stream as ipvsadm 1.31's -R does, line
// by line: which lines end it (its parser's exits), which only fail (popt's
// errors, gvs's refusals), and where the stream stops being read.
func TestReadRestore(t *testing.T) {
	try := "Try `ipvsadm -h' or 'ipvsadm --help' for more information."
	type line struct {
		n    int
		args string // the command's Args, or the error's text
		ends bool
	}
	tests := []struct {
		name, in string
		want     []line
	}{
		{"blank lines and ipvsadm words", "\n  \t\r\nipvsadm -A -t 10.0.0.1:80 ipvsadm\n\n-C",
			[]line{{3, "-A -t 10.0.0.1:80 -s wlc", false}, {5, "-C", false}}},
		{"a comment line ends it", "-C\n# ipvsadm.rules\n-C\n",
			[]line{{1, "-C", false}, {2, try, true}}},
		{"a comment after a command ends it", "-A -t 10.0.0.1:80 # web\n-C\n",
			[]line{{1, "unexpected argument #", true}}},
		{"# glued to a word", "#-C\n-C\n", []line{{1, try, true}}},
		// popt skips the '#' to the command, which then has an argument too many.
		{"a comment whose words are options", "# -C\n-C\n", []line{{1, "unexpected argument #", true}}},
		{"popt errors go on", "-L --bogus\n-A -t\n-C\n",
			[]line{{1, "--bogus: unknown option", false}, {2, "-t: missing argument", false}, {3, "-C", false}}},
		{"argument checks end it", "-a -t 10.0.0.1:80 -r 10.0.0.2 -w x\n-C\n",
			[]line{{1, "illegal weight specified", true}}},
		{"a first word that is no command ends it", "10.0.0.1\n-C\n", []line{{1, try, true}}},
		{"-R inside ends it", "-R\n-C\n", []line{{1, try, true}}},
		{"gvs refusals go on", "-A -t 10.0.0.1:80 -p -M 255.0.255.0\n-C\n",
			[]line{{1, "-M 255.0.255.0 is not a netmask of leading ones: gvs groups persistent clients by address prefix; write the prefix as a mask, e.g. -M 255.255.255.0 for /24", false}, {2, "-C", false}}},
		{"no final newline", "-C\n-A -u 10.0.0.1:53", []line{{1, "-C", false}, {2, "-A -u 10.0.0.1:53 -s wlc", false}}},
		{"a gvs directive for the next command", "# gvs: --match address=10.0.0.9,port=443\n\n-A -f 7 -s rr\n-A -f 8\n",
			[]line{{3, "-A -f 7 -s rr", false}, {4, "-A -f 8 -s wlc", false}}},
		{"a gvs directive for a command without marks", "# gvs: --match address=10.0.0.9\n-A -t 10.0.0.1:80\n-C\n",
			[]line{{2, "the \"# gvs:\" line 1 before it: --match goes with -A or -E of an fwmark service (-f MARK): it says which packets carry the mark", false}, {3, "-C", false}}},
		{"a gvs directive with more than rules", "# gvs: -C\n-C\n",
			[]line{{1, "a \"# gvs:\" line takes --match rules only, for the fwmark service of the next line", false}, {2, "-C", false}}},
		{"a bad rule", "# gvs: --match port=80\n-A -f 7\n",
			[]line{{2, "the \"# gvs:\" line 1 before it: --match port=80: address is missing (want --match address=ADDR[,protocol=tcp|udp][,port=N|N-M])", false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Parser
			got, err := p.ReadRestore(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d lines, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				g := got[i]
				text := ""
				if g.Err != nil {
					text = g.Err.Error()
				} else {
					text = strings.Join(g.Cmd.Args(), " ")
				}
				if g.Line != w.n || text != w.args || g.Ends() != w.ends {
					t.Errorf("line %d: %d %q ends=%v, want %d %q ends=%v", i, g.Line, text, g.Ends(), w.n, w.args, w.ends)
				}
			}
		})
	}
	// The directive's rules reach the command.
	var p Parser
	got, _ := p.ReadRestore(strings.NewReader("# gvs: --match address=10.0.0.9,protocol=udp,port=53-54 --match address=10.0.0.10\n-A -f 7\n"))
	if len(got) != 1 || got[0].Cmd == nil || len(got[0].Cmd.Match) != 2 ||
		FormatMatch(got[0].Cmd.Match[0]) != "address=10.0.0.9,protocol=udp,port=53-54" || FormatMatch(got[0].Cmd.Match[1]) != "address=10.0.0.10" {
		t.Errorf("directive rules: %+v", got)
	}
}

// TestSaveWritesMatchRules: -S writes an fwmark service's match rules in a
// "# gvs:" line before its -A, which both restore readers give back.
func TestSaveWritesMatchRules(t *testing.T) {
	m1, err := ParseMatch("address=10.0.0.9,protocol=tcp,port=8000:8099", false)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := ParseMatch("address=10.0.0.9,port=443", false)
	svcs := []Service{{Protocol: TCP, FWMark: 7, Scheduler: "rr", Match: []ipvs.Match{m1, m2}, Dests: []Dest{rs("10.1.0.8", 0, MethodRoute, 1)}}}
	var b bytes.Buffer
	if err := FormatSave(&b, svcs, Format{Numeric: true}, nil); err != nil {
		t.Fatal(err)
	}
	want := "# gvs: --match address=10.0.0.9,protocol=tcp,port=8000-8099 --match address=10.0.0.9,port=443\n" +
		"-A -f 7 -s rr\n" +
		"-a -f 7 -r 10.1.0.8:0 -g -w 1\n"
	if b.String() != want {
		t.Fatalf("-S:\n%s\nwant\n%s", b.String(), want)
	}
	cmds, err := ParseRestore(strings.NewReader(want))
	if err != nil || len(cmds) != 2 || !reflect.DeepEqual(cmds[0].Match, []ipvs.Match{m1, m2}) {
		t.Errorf("ParseRestore: %+v, %v", cmds, err)
	}
	var p Parser
	lines, err := p.ReadRestore(strings.NewReader(want))
	if err != nil || len(lines) != 2 || lines[0].Cmd == nil || !reflect.DeepEqual(lines[0].Cmd.Match, []ipvs.Match{m1, m2}) {
		t.Errorf("ReadRestore: %+v, %v", lines, err)
	}
}
