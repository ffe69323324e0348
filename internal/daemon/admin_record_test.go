package daemon

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gvs-lb/gvs/ipvs"
)

// TestAdmRecordFollowsService: the command line that last changed a service is
// found wherever its record is kept (admTouch) — with the service's entry in
// the configured table while it is there, in touched once a file's service is
// deleted, with the entry again once it is added back — across a compaction of
// the table, a whole commit (a restore deleting and adding a service) and a
// reload, whose warning names it; a service no file has keeps no record once
// deleted.
func TestAdmRecordFollowsService(t *testing.T) {
	file := admFileConf
	ta := newTestDirector(t, file, nil)
	svc := func(s string) target { return target{svc: ipvs.AddrKey(ipvs.TCP, ap(s))} }
	check := func(step string, tg target, want string) {
		t.Helper()
		if got := ta.d.admLineOf(tg); got != want {
			t.Fatalf("%s: %v last changed by %q, want %q", step, tg.svc, got, want)
		}
	}
	a, b, c := svc("198.18.0.100:80"), svc("198.18.1.1:80"), svc("198.18.1.2:80")

	ta.ok("-A -t 198.18.1.1:80 -s rr")
	check("added", b, "-A -t 198.18.1.1:80 -s rr")
	if _, ok := ta.d.st.conf.tag(packKey(b.svc)); !ok || len(ta.d.st.touched) != 0 {
		t.Fatalf("a configured service's record is not its entry's tag (touched %v)", ta.d.st.touched)
	}
	ta.ok("-A -t 198.18.1.2:80 -s rr")
	ta.ok("-D -t 198.18.1.2:80")
	check("deleted, no file has it", c, "")

	ta.ok("-D -t 198.18.0.100:80")
	check("a file's service deleted", a, "-D -t 198.18.0.100:80")
	if ta.d.st.touchedSvcs != 1 || len(ta.d.st.conf.dropped) != 0 {
		t.Fatalf("touched holds %d services' records, %d dropped tags left; want 1, 0", ta.d.st.touchedSvcs, len(ta.d.st.conf.dropped))
	}
	ta.ok("-A -t 198.18.0.100:80 -s wrr")
	check("added back", a, "-A -t 198.18.0.100:80 -s wrr")
	if ta.d.st.touchedSvcs != 0 || len(ta.d.st.touched) != 0 {
		t.Fatalf("touched keeps %v (%d services) once the service is back", ta.d.st.touched, ta.d.st.touchedSvcs)
	}

	// Holes past the entries: the table is compacted, and keeps its tags.
	for i := range 80 {
		ta.ok(fmt.Sprintf("-A -t 198.18.2.%d:80 -s rr", 1+i))
	}
	for i := range 80 {
		ta.ok(fmt.Sprintf("-D -t 198.18.2.%d:80", 1+i))
	}
	if end, n := ta.d.st.conf.seq.end, ta.d.st.conf.seq.n; end-n > n {
		t.Fatalf("the table was not compacted: %d slots, %d entries", end, n)
	}
	check("after a compaction", b, "-A -t 198.18.1.1:80 -s rr")
	check("after a compaction", a, "-A -t 198.18.0.100:80 -s wrr")
	if len(ta.d.st.touched) != 0 || len(ta.d.st.admLines) != 2 {
		t.Fatalf("after the churn touched %v, %d lines kept; want none and 2", ta.d.st.touched, len(ta.d.st.admLines))
	}

	// A whole commit: a restore deleting a service and adding it back.
	if _, stderr, status := ta.admIn("-D -t 198.18.1.1:80\n-A -t 198.18.1.1:80 -s wlc\n", "-R"); status != 0 {
		t.Fatalf("restore: %d %s", status, stderr)
	}
	check("after a whole commit", b, "-R")
	check("after a whole commit", a, "-A -t 198.18.0.100:80 -s wrr")
	if ta.d.st.touchedSvcs != 0 {
		t.Fatalf("after a whole commit touched holds %d services' records, want them with their entries", ta.d.st.touchedSvcs)
	}

	// A reload whose file adds b (the file's wins) and changes a.
	if err := ta.reloadText(strings.Replace(file, `address = "198.18.0.5:80"`, `address = "198.18.0.5:80"
  weight = 3`, 1) + `
[[service]]
address = "198.18.1.1:80"
scheduler = "sh"
`); err != nil {
		t.Fatal(err)
	}
	logs := ta.logs.String()
	for _, want := range []string{
		`what="TCP 198.18.1.1:80" adm=added command=-R file=added`,
		`what="TCP 198.18.0.100:80 real server 198.18.0.5:80" adm=deleted command="-A -t 198.18.0.100:80 -s wrr"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the reload's warnings do not say %s:\n%s", want, logs)
		}
	}
	check("overridden by the reload", b, "")
}
