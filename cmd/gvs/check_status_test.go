package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckStatusPage: gvs check refuses status_listen with a web config naming
// a TLS file that does not exist, and status_actions with a web config without
// users, naming the problem; the page with a plain web config passes.
func TestCheckStatusPage(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"gone.yml":  "tls_server_config:\n  cert_file: gone.crt\n  key_file: gone.key\n",
		"plain.yml": "{}\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		keys string
		code int
		want string
	}{
		{"metrics_web_config = \"gone.yml\"\n", 1, "gone.crt"},
		{"metrics_web_config = \"plain.yml\"\nstatus_actions = true\n", 1, "has no basic_auth_users"},
		{"metrics_web_config = \"plain.yml\"\n", 0, "ok (0 services"},
		{"status_actions = true\n", 1, "needs metrics_web_config with basic_auth_users"},
	} {
		path := filepath.Join(dir, "gvs.toml")
		text := "[director]\ninterface = \"eth0\"\nstatus_listen = \"127.0.0.1:9200\"\n" + tc.keys
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := run([]string{"check", "-c", path}, &stdout, &stderr)
		if out := stdout.String() + stderr.String(); code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("%q: exit %d, want %d with %q:\n%s", tc.keys, code, tc.code, tc.want, out)
		}
	}
}
