package ipvsadm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse feeds Parse command lines whose words are separated by newlines
// (so words may hold blanks). Parse must not panic; an error must be an
// *Error with a message and one of ipvsadm's statuses; an accepted Command
// must come back unchanged through Args and Parse, and a listing or save of
// its service must not panic either.
//
// The seed corpus is in testdata/fuzz/FuzzParse: the seed walkthroughs'
// commands and the cases of TestParse and TestParseErrors.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, line string) {
		var args []string
		if line != "" {
			args = strings.Split(line, "\n")
		}
		names := testNames()
		p := Parser{Names: names}
		c, err := p.Parse(args)
		if err != nil {
			var e *Error
			var u *UnsupportedError
			if errors.As(err, &u) && u.Msg != "" {
				return // what gvs does not do (-M 255.0.255.0)
			}
			if !errors.As(err, &e) || e.Msg == "" || (e.Status != StatusFail && e.Status != StatusUsage) {
				t.Fatalf("Parse(%q): bad error %#v", args, err)
			}
			return
		}
		back := c.Args()
		c2, err := Parse(back)
		if err != nil {
			t.Fatalf("Parse(%q) = %+v; Args %q does not parse: %v", args, c, back, err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("Parse(%q) = %+v\nArgs %q parse to %+v", args, c, back, c2)
		}
		if c.HasService && c.Service.Scheduler != "" {
			s := c.Service
			s.Dests = []Dest{c.Dest}
			var b bytes.Buffer
			_ = FormatList(&b, Info{}, []Service{s}, c.Format, names)
			_ = FormatSave(&b, []Service{s}, c.Format, names)
		}
	})
}

// FuzzParseRestore checks that a restore stream never panics the reader and
// that every command it accepts survives Args and Parse.
func FuzzParseRestore(f *testing.F) {
	addSaveSeeds(f)
	f.Add("# ipvsadm.rules\n-A -t 10.0.0.1:80 -s rr # web\r\nipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2\n\n-R\n")
	f.Fuzz(func(t *testing.T, in string) {
		cmds, err := ParseRestore(strings.NewReader(in))
		if err != nil {
			var le *LineError
			if !errors.As(err, &le) || le.Line < 1 {
				t.Fatalf("ParseRestore: bad error %#v", err)
			}
		}
		for _, c := range cmds {
			c2, err := Parse(c.Args())
			if err != nil || !reflect.DeepEqual(c, c2) {
				t.Fatalf("command %+v: Args %q parse to %+v, %v", c, c.Args(), c2, err)
			}
		}
	})
}

// FuzzReadRestore checks ReadRestore on any stream: no panic; lines in order,
// each with a command or an error; only the last line may end the stream; every
// command survives Args and Parse (its match rules aside, which Parse never
// reads); the lenient reader agrees on every line without '#'.
func FuzzReadRestore(f *testing.F) {
	addSaveSeeds(f)
	f.Add("# ipvsadm.rules\n-A -t 10.0.0.1:80 -s rr # web\r\nipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2\n\n-R\n")
	f.Add("-L --bogus\n-A -t\n-C\n-a -t 10.0.0.1:80 -r 10.0.0.2 -w x\n-C\n")
	f.Add("# gvs: --match address=10.0.0.9,protocol=tcp,port=80-90 --match address=10.0.0.9\n-A -f 7 -s rr\n# gvs: --match port=1\n-A -f 8\n# gvs: -C\n")
	f.Add("-A -t 10.0.0.1:80 -p -M 24\n-A -t 10.0.0.2:80 -p -M 0.0.0.0\n-a -r 10.0.0.3 -t 10.0.0.1:80 -m\n")
	f.Fuzz(func(t *testing.T, in string) {
		var p Parser
		lines, err := p.ReadRestore(strings.NewReader(in))
		if err != nil {
			t.Fatalf("ReadRestore: %v", err)
		}
		last := 0
		for i, l := range lines {
			if l.Line <= last || (l.Cmd == nil) == (l.Err == nil) {
				t.Fatalf("line %d: %+v after line %d", i, l, last)
			}
			last = l.Line
			if l.Ends() && i != len(lines)-1 {
				t.Fatalf("line %d ends the stream but %d lines follow", l.Line, len(lines)-1-i)
			}
			if l.Cmd == nil {
				continue
			}
			c := *l.Cmd
			c.Match = nil
			c2, err := Parse(c.Args())
			if err != nil || !reflect.DeepEqual(&c, c2) {
				t.Fatalf("command %+v: Args %q parse to %+v, %v", c, c.Args(), c2, err)
			}
		}
	})
}

// FuzzParseMatch: a rule ParseMatch accepts is written by FormatMatch as a rule
// that reads back the same.
func FuzzParseMatch(f *testing.F) {
	for _, s := range []string{
		"address=198.18.0.110", "address=198.18.0.110,protocol=tcp,port=8000-8099", "address=2001:db8::1,protocol=udp,port=53",
		"port=443,address=198.18.0.1", "address=198.18.0.1,port=90:80", "address=::ffff:198.18.0.1", "address=198.18.0.1,,", "address=",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, spec string, ipv6 bool) {
		m, err := ParseMatch(spec, ipv6)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != StatusFail || !strings.HasPrefix(e.Msg, "--match ") {
				t.Fatalf("ParseMatch(%q): bad error %#v", spec, err)
			}
			return
		}
		back := FormatMatch(m)
		m2, err := ParseMatch(back, ipv6)
		if err != nil || m2 != m {
			t.Fatalf("ParseMatch(%q) = %+v; FormatMatch %q reads %+v, %v", spec, m, back, m2, err)
		}
	})
}

// addSaveSeeds seeds a restore fuzz target with the -S golden files.
func addSaveSeeds(f *testing.F) {
	for _, name := range []string{"save_numeric.golden", "save_sort_quirk.golden", "save_names.golden"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
}
