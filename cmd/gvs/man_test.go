package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestManPagesUpToDate: the committed pages in docs/man are what gvs man makes of
// today's help texts and config.example.toml.
func TestManPagesUpToDate(t *testing.T) {
	example, err := os.ReadFile("../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	pages, err := manPages(example)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pages {
		committed, err := os.ReadFile(filepath.Join("../../docs/man", p.name))
		if err != nil {
			t.Fatalf("%v: run go generate ./cmd/gvs", err)
		}
		if !bytes.Equal(committed, p.text) {
			t.Errorf("docs/man/%s is out of date: run go generate ./cmd/gvs", p.name)
		}
	}
}

// TestManCoversEveryCommand: every command the usage lists has a section in
// gvs.8, holding the help that command prints.
func TestManCoversEveryCommand(t *testing.T) {
	pages, err := manPages([]byte("[director]\n# a key\ninterface = \"eth0\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	gvs8 := string(pages[0].text)
	for _, m := range regexp.MustCompile(`(?m)^  gvs ([a-z]+)`).FindAllStringSubmatch(usage, -1) {
		cmd := m[1]
		if cmd == "version" {
			continue
		}
		if !slices.ContainsFunc(manCommands, func(c []string) bool { return c[0] == cmd }) {
			t.Errorf("gvs %s is in the usage but not in gvs.8 (manCommands)", cmd)
		}
	}
	h, err := helpOf([]string{"check"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(gvs8, ".SS gvs check\n.nf\n"+roffEscape(h)) {
		t.Errorf("gvs.8 lacks gvs check's help as it prints it:\n%s", h)
	}
	toml5 := string(pages[1].text)
	if !strings.Contains(toml5, ".SS [director]\n.nf\n[director]\n# a key\ninterface = \"eth0\"\n.fi\n") {
		t.Errorf("gvs.toml.5 does not carry the example's [director] table:\n%s", toml5)
	}
}

// TestManRoffEscape: text that roff would read as requests or escapes is printed
// as it is.
func TestManRoffEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`.TH oops`, `\&.TH oops` + "\n"},
		{`'quote`, `\&'quote` + "\n"},
		{`a\b -x`, `a\eb \-x` + "\n"},
		{"two\n.lines", "two\n\\&.lines\n"},
		{"gvs — x → y", `gvs \[u2014] x \[u2192] y` + "\n"},
	} {
		if got := roffEscape(tc.in); got != tc.want {
			t.Errorf("roffEscape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestManPagesRender: groff formats both pages without a warning, where it is
// installed.
func TestManPagesRender(t *testing.T) {
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff not installed (Debian package groff-base): cannot render the pages")
	}
	for _, name := range []string{"gvs.8", "gvs.toml.5"} {
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z", filepath.Join("../../docs/man", name))
		out, err := cmd.CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("groff -man -ww %s: %v\n%s", name, err, out)
		}
	}
}

// TestSystemdUnit checks contrib/systemd/gvs.service: Type=notify with reload by
// SIGHUP, the address families and capabilities the data path needs, and, where
// systemd-analyze is installed, that systemd accepts it without a warning.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("../../contrib/systemd/gvs.service")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = v
		}
	}
	for _, tc := range []struct{ key, want string }{
		{"Type", "notify"},
		{"ExecStart", "/usr/sbin/gvs run -c /etc/gvs/gvs.toml"},
		{"ExecReload", "/bin/kill -HUP $MAINPID"},
		{"RuntimeDirectory", "gvs"},
	} {
		if keys[tc.key] != tc.want {
			t.Errorf("%s=%q, want %q", tc.key, keys[tc.key], tc.want)
		}
	}
	for key, want := range map[string][]string{
		"RestrictAddressFamilies": {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET", "AF_XDP"},
		"CapabilityBoundingSet":   {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_BPF"},
	} {
		got := strings.Fields(keys[key])
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("%s lacks %s: %v", key, w, got)
			}
		}
	}

	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (Debian package systemd): the unit is not verified by systemd")
	}
	// verify wants the commands to exist: point them at an executable that does.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "gvs.service")
	if err := os.WriteFile(unit, bytes.ReplaceAll(b, []byte("/usr/sbin/gvs"), []byte(exe)), 0o644); err != nil {
		t.Fatal(err)
	}
	// --man=no: the pages are checked above; they are not installed here.
	out, err := exec.Command(sa, "verify", "--man=no", unit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
