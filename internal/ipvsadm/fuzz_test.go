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
	for _, name := range []string{"save_numeric.golden", "save_sort_quirk.golden", "save_names.golden"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
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
