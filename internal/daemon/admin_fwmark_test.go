package daemon

import (
	"strings"
	"testing"
)

// TestAdmFwmarkMatch: gvs adm -A -f MARK takes match rules (--match, the shape
// of [[service.match]]), which give the service its traffic at once; -S writes
// them in a "# gvs:" line before the service, which -R reads back; -A -f
// without rules is refused with a message naming --match.
func TestAdmFwmarkMatch(t *testing.T) {
	ta := newTestAdmin(t)
	const refusal = "gvs adm: -A -f 7 has no match rules: gvs has no netfilter to set marks, so no packet would ever carry mark 7; " +
		"say which packets do with --match address=ADDR[,protocol=tcp|udp][,port=N|N-M] (once per rule), " +
		"e.g. gvs adm -A -f 7 --match address=198.18.0.100,protocol=tcp,port=443\n"
	if _, errOut, st := ta.adm("-A -f 7 -s rr"); st != 255 || errOut != refusal {
		t.Errorf("-A -f 7 without rules: %q %d, want %q 255", errOut, st, refusal)
	}
	if _, errOut, st := ta.adm("-A -f 7 -6 -s rr"); st != 255 || !strings.Contains(errOut, "gvs adm -A -f 7 -6 --match address=2001:db8::100,") {
		t.Errorf("-A -f 7 -6 without rules: %q %d", errOut, st)
	}
	if out := ta.ok("-S -n"); out != "" {
		t.Fatalf("a refused -A -f added a service: %q", out)
	}

	ta.ok("-A -f 7 -s rr --match address=198.18.0.110,protocol=tcp,port=8000-8099 --match=address=198.18.0.110,port=443")
	ta.ok("-a -f 7 -r 198.18.0.9 -g")
	if got := ta.send(syns("198.18.0.110:443", 1)...); len(got) != 1 || got[0] != "02:00:00:00:00:09" {
		t.Errorf("a SYN to 198.18.0.110:443 went to %v, want the fwmark service's real server", got)
	}
	if got := ta.send(syns("198.18.0.110:8050", 1)...); len(got) != 1 || got[0] != "02:00:00:00:00:09" {
		t.Errorf("a SYN to 198.18.0.110:8050 went to %v, want the fwmark service's real server", got)
	}
	if got := ta.send(syns("198.18.0.110:80", 1)...); len(got) != 0 {
		t.Errorf("a SYN to 198.18.0.110:80, which no rule matches, was forwarded to %v", got)
	}
	const saved = "# gvs: --match address=198.18.0.110,protocol=tcp,port=8000-8099 --match address=198.18.0.110,port=443\n" +
		"-A -f 7 -s rr\n" +
		"-a -f 7 -r 198.18.0.9:0 -g -w 1\n"
	diffText(t, "-S -n", saved, ta.ok("-S -n"))
	// ipvsadm's listing has no place for them.
	if list := ta.ok("-L -n"); strings.Contains(list, "198.18.0.110") {
		t.Errorf("-L -n shows match rules:\n%s", list)
	}

	// -E keeps the rules unless it gives its own.
	ta.ok("-E -f 7 -s wlc")
	diffText(t, "-S -n after -E", strings.Replace(saved, "-s rr", "-s wlc", 1), ta.ok("-S -n"))
	ta.ok("-E -f 7 -s wlc --match address=198.18.0.111,protocol=udp,port=53")
	if got := ta.send(syns("198.18.0.110:443", 1)...); len(got) != 0 {
		t.Errorf("a SYN to 198.18.0.110:443 still forwarded after -E replaced the rules: %v", got)
	}
	ta.ok("-E -f 7 -s rr --match address=198.18.0.110,protocol=tcp,port=8000-8099 --match address=198.18.0.110,port=443")

	// Restore, line by line or all at once, reads the "# gvs:" line.
	for _, mode := range []string{"-R", "-R --atomic"} {
		ta.ok("-C")
		if _, errOut, st := ta.admIn(saved, mode); st != 0 || errOut != "" {
			t.Fatalf("%s of -S's output: %q %d", mode, errOut, st)
		}
		diffText(t, "-S -n after "+mode, saved, ta.ok("-S -n"))
	}

	// Deleted and added again without rules, it gets the ones it had.
	ta.ok("-D -f 7")
	ta.ok("-A -f 7 -s rr")
	diffText(t, "-S -n after -D, -A", "# gvs: --match address=198.18.0.110,protocol=tcp,port=8000-8099 --match address=198.18.0.110,port=443\n-A -f 7 -s rr\n", ta.ok("-S -n"))
}

// TestAdmMatchErrors: --match and --atomic where they do not belong, and bad
// rules, are refused with exit status 2 before anything changes.
func TestAdmMatchErrors(t *testing.T) {
	ta := newTestAdmin(t)
	tests := []struct{ line, msg string }{
		{"-A -t 198.18.0.100:80 --match address=198.18.0.100", "--match goes with -A or -E of an fwmark service (-f MARK): it says which packets carry the mark"},
		{"-a -f 7 -r 198.18.0.9 --match address=198.18.0.100", "--match goes with -A or -E of an fwmark service (-f MARK): it says which packets carry the mark"},
		{"-A -f 7 --match", "--match needs a rule: --match address=ADDR[,protocol=tcp|udp][,port=N|N-M]"},
		{"-A -f 7 --match port=80", "--match port=80: address is missing (want --match address=ADDR[,protocol=tcp|udp][,port=N|N-M])"},
		{"-A -f 7 --match address=2001:db8::1", "--match address=2001:db8::1: address 2001:db8::1 is not in the service's family, IPv4 (want --match address=ADDR[,protocol=tcp|udp][,port=N|N-M])"},
		{"-A -f 7 -6 --match address=198.18.0.1", "--match address=198.18.0.1: address 198.18.0.1 is not in the service's family, IPv6 (-6) (want --match address=ADDR[,protocol=tcp|udp][,port=N|N-M])"},
		{"-A -f 7 --match address=198.18.0.1,protocol=sctp", "--match address=198.18.0.1,protocol=sctp: protocol sctp is neither tcp nor udp (want --match address=ADDR[,protocol=tcp|udp][,port=N|N-M])"},
		{"-A -f 7 --match address=198.18.0.1,port=90-80", "--match address=198.18.0.1,port=90-80: port range 90-80 is empty (want --match address=ADDR[,protocol=tcp|udp][,port=N|N-M])"},
		{"-A -f 7 --match address=198.18.0.1,port=0", "--match address=198.18.0.1,port=0: port 0 is not a port (leave port out to match every port) (want --match address=ADDR[,protocol=tcp|udp][,port=N|N-M])"},
		{"-A -f 7 --match address=198.18.0.1,dport=80", "--match address=198.18.0.1,dport=80: unknown key dport (want --match address=ADDR[,protocol=tcp|udp][,port=N|N-M])"},
		{"-A -f 7 --match address=224.0.0.1", "--match address=224.0.0.1: address 224.0.0.1 is not a unicast address (want --match address=ADDR[,protocol=tcp|udp][,port=N|N-M])"},
		{"-A -f 7 --match address=198.18.0.1 --match address=198.18.0.1", "--match address=198.18.0.1 is given twice: the second would never match"},
		{"-A -t 198.18.0.100:80 --atomic", "--atomic goes with -R only: it makes a restore all or nothing"},
	}
	for _, tt := range tests {
		if _, errOut, st := ta.adm(tt.line); st != 2 || errOut != tt.msg+"\n" {
			t.Errorf("%s: %q %d, want %q 2", tt.line, errOut, st, tt.msg)
		}
	}
	if out := ta.ok("-S -n"); out != "" {
		t.Errorf("refused commands changed the table: %q", out)
	}
}
