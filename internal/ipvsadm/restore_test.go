package ipvsadm

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
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
