package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gvs-lb/gvs/internal/config"
)

const (
	keepalivedData = "../../internal/importer/keepalived/testdata/"
	ipvsadmData    = "../../internal/importer/ipvsadm/testdata/"
)

// TestImportPassesCheck imports every keepalived.conf and ipvsadm dump of the
// importers' testdata (keepalived's samples, the seeds' configurations, messy
// files) with gvs import -o, then runs gvs check on the result.
func TestImportPassesCheck(t *testing.T) {
	var cases [][2]string
	kfiles, _ := filepath.Glob(keepalivedData + "*/*.conf")
	for _, f := range kfiles {
		if !strings.Contains(f, "/cycle/") {
			cases = append(cases, [2]string{"keepalived", f})
		}
	}
	ifiles, _ := filepath.Glob(ipvsadmData + "*")
	ifiles = slices.DeleteFunc(ifiles, func(f string) bool { return strings.HasSuffix(f, ".md") })
	for _, f := range ifiles {
		cases = append(cases, [2]string{"ipvsadm", f})
	}
	if len(kfiles) < 15 || len(ifiles) < 3 {
		t.Fatalf("testdata missing: %d keepalived, %d ipvsadm files", len(kfiles), len(ifiles))
	}
	dir := t.TempDir()
	for i, c := range cases {
		t.Run(filepath.Base(c[1]), func(t *testing.T) {
			out := filepath.Join(dir, filepath.Base(c[1])+".toml")
			var stdout, stderr bytes.Buffer
			if err := cmdImport([]string{c[0], c[1], "-o", out}, &stdout, &stderr); err != nil {
				t.Fatalf("import: %v\n%s", err, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout not empty with -o")
			}
			if !strings.Contains(stderr.String(), "gvs import "+c[0]+": "+c[1]+" -> "+out) {
				t.Errorf("no summary on stderr:\n%s", stderr.String())
			}
			stdout.Reset()
			if err := cmdCheck([]string{"-c", out}, &stdout, &stderr); err != nil {
				data, _ := os.ReadFile(out)
				t.Fatalf("gvs check of case %d: %v\n%s", i, err, data)
			}
			if !strings.Contains(stdout.String(), ": ok (") {
				t.Errorf("check output %q", stdout.String())
			}
		})
	}
}

func TestImportOutput(t *testing.T) {
	var stdout, stderr bytes.Buffer
	f := keepalivedData + "samples/06-acassen-keepalived-inhibit_on_failure.conf"
	if err := cmdImport([]string{"keepalived", f}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse("out.toml", stdout.Bytes()); err != nil {
		t.Errorf("stdout is not a config: %v", err)
	}
	want := "note: " + f + ":10: global_defs: \"router_id LVS_DEVEL\" not translated"
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
	}
	if !strings.Contains(stdout.String(), "# note: "+strings.TrimPrefix(want, "note: ")) {
		t.Errorf("TOML header lacks the note")
	}
	if strings.Contains(stderr.String(), `"inhibit_on_failure"`) || !strings.Contains(stdout.String(), "\n  inhibit_on_failure = true\n") {
		t.Errorf("inhibit_on_failure not translated:\n%s", stdout.String())
	}

	// -i, with the flags before FILE.
	stdout.Reset()
	f = keepalivedData + "samples/08-acassen-keepalived-conditional_conf.conf"
	if err := cmdImport([]string{"keepalived", "-i", "low", f}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "\npriority = 85\n") {
		t.Errorf("-i low: no priority 85:\n%s", stdout.String())
	}
}

func TestImportErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("global_defs {\n  router_id x\n\nvirtual_server 198.18.0.1 80 {\n}\n"), 0o644)
	var stdout, stderr bytes.Buffer
	err := cmdImport([]string{"keepalived", bad}, &stdout, &stderr)
	var es config.Errors
	if !errors.As(err, &es) || es[0].Line != 1 || !strings.Contains(es[0].Error(), bad+":1: syntax error: '{' is never closed") {
		t.Errorf("unbalanced braces: %v", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("output written despite the error")
	}
	if code := run([]string{"check", "-c", bad}, &stdout, &stderr); code != 1 {
		// not an import test: make sure the file really is bad for gvs too
		t.Logf("check exit %d", code)
	}

	dump := filepath.Join(dir, "rules")
	os.WriteFile(dump, []byte("-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -w 1\n"), 0o644)
	if err := cmdImport([]string{"ipvsadm", dump}, &stdout, &stderr); !errors.As(err, &es) || !strings.Contains(es[0].Error(), dump+":2: ") {
		t.Errorf("ipvsadm error: %v", err)
	}

	for _, args := range [][]string{
		nil,
		{"haproxy", "x"},
		{"keepalived"},
		{"keepalived", "-o", "x.toml"},
		{"ipvsadm", dump, "-i", "x"}, // -i is keepalived's
		{"keepalived", bad, "-o", bad},
	} {
		if err := cmdImport(args, &stdout, &stderr); !errors.Is(err, errUsage) {
			t.Errorf("%q: got %v, want a usage error", args, err)
		}
	}
	if err := cmdImport([]string{"keepalived", filepath.Join(dir, "missing.conf")}, &stdout, &stderr); err == nil || errors.Is(err, errUsage) {
		t.Errorf("missing file: %v", err)
	}
	if err := cmdImport([]string{"-h"}, &stdout, &stderr); !errors.Is(err, errHelp) {
		t.Errorf("-h: %v", err)
	}
}

func TestSplitFileArg(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		file  string
		flags int
	}{
		{[]string{"a.conf", "-o", "x"}, "a.conf", 2},
		{[]string{"-o", "x", "a.conf"}, "a.conf", 2},
		{[]string{"-o", "x"}, "", 2},
		{[]string{"-", "-o", "x"}, "-", 2},
		{[]string{"-i", "high", "-o", "x", "a.conf"}, "a.conf", 4},
		{[]string{"-i", "high", "a.conf", "-o", "x"}, "a.conf", 4},
		{[]string{"-o=x", "a.conf", "-i", "low"}, "a.conf", 3},
		{[]string{"a.conf", "b.conf"}, "a.conf", 1},
		{nil, "", 0},
	} {
		file, flags := splitFileArg(tc.args)
		if file != tc.file || len(flags) != tc.flags {
			t.Errorf("%q: file %q flags %q", tc.args, file, flags)
		}
	}
}
