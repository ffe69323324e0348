package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckMetricsWebConfig: gvs check refuses a metrics_web_config naming a TLS
// certificate that does not exist, with exit status 1 and a message naming the
// key, the file and the fix; a file without TLS or users passes.
func TestCheckMetricsWebConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "web.yml"), []byte("tls_server_config:\n  cert_file: gone.crt\n  key_file: gone.key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plain.yml"), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file string
		code int
		want string
	}{
		{"web.yml", 1, "metrics_web_config " + filepath.Join(dir, "web.yml")},
		{"plain.yml", 0, "ok (0 services"},
	} {
		path := filepath.Join(dir, "gvs.toml")
		text := "[director]\ninterface = \"eth0\"\nmetrics_listen = \"127.0.0.1:9100\"\nmetrics_web_config = \"" + tc.file + "\"\n"
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := run([]string{"check", "-c", path}, &stdout, &stderr)
		out := stdout.String() + stderr.String()
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("%s: exit %d, want %d with %q:\n%s", tc.file, code, tc.code, tc.want, out)
		}
		if tc.code == 1 && (!strings.Contains(out, "gone.crt") || !strings.Contains(out, "remove metrics_web_config")) {
			t.Errorf("%s: the message names neither the missing file nor the fix:\n%s", tc.file, out)
		}
	}
}
