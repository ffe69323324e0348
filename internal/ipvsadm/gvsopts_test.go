package ipvsadm

import (
	"reflect"
	"strings"
	"testing"
)

// TestSplitOptions: gvs adm's options are taken out wherever they stand, in every
// spelling, and ipvsadm's arguments come back in order; arguments without any come
// back as they are, not copied.
func TestSplitOptions(t *testing.T) {
	for _, tc := range []struct {
		args  string
		want  Options
		rest  string
		error string
	}{
		{args: "-A -t 198.18.0.1:80 -s rr", rest: "-A -t 198.18.0.1:80 -s rr"},
		{args: "-R --atomic", want: Options{Atomic: true}, rest: "-R"},
		{args: "--atomic -R", want: Options{Atomic: true}, rest: "-R"},
		{args: "-A -f 7 --match address=198.18.0.0/24", want: Options{Match: []string{"address=198.18.0.0/24"}}, rest: "-A -f 7"},
		{args: "--match=address=198.18.0.1,port=80 -A -f 7 --match address=198.18.0.2",
			want: Options{Match: []string{"address=198.18.0.1,port=80", "address=198.18.0.2"}}, rest: "-A -f 7"},
		{args: "-A -f 7 --match", error: "--match needs a rule"},
		// Not gvs adm options: ipvsadm's parser sees them and says so in its words.
		{args: "-A --matches x --atomically", rest: "-A --matches x --atomically"},
	} {
		args := strings.Fields(tc.args)
		o, rest, err := SplitOptions(args)
		if tc.error != "" {
			if err == nil || !strings.Contains(err.Error(), tc.error) {
				t.Errorf("SplitOptions(%q): error %v, want one saying %q", tc.args, err, tc.error)
			}
			continue
		}
		if err != nil {
			t.Errorf("SplitOptions(%q): %v", tc.args, err)
			continue
		}
		if !reflect.DeepEqual(o, tc.want) || strings.Join(rest, " ") != tc.rest {
			t.Errorf("SplitOptions(%q) = %+v, %q; want %+v, %q", tc.args, o, rest, tc.want, tc.rest)
		}
		if tc.want.Atomic || tc.want.Match != nil {
			continue
		}
		if &rest[0] != &args[0] {
			t.Errorf("SplitOptions(%q) copied arguments that hold no gvs adm option", tc.args)
		}
	}
	plain := strings.Fields("-a -t 198.18.0.1:80 -r 198.18.1.1 -g -w 3")
	if n := testing.AllocsPerRun(100, func() { _, _, _ = SplitOptions(plain) }); n != 0 {
		t.Errorf("SplitOptions of ipvsadm arguments alone: %v allocations, want 0", n)
	}
}
