package script

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"
)

// needRoot skips a test that must run as root (or fails it under GVS_LAB_REQUIRED=1).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("GVS_LAB_REQUIRED") == "1" {
			t.Fatal("needs root (GVS_LAB_REQUIRED=1)")
		}
		t.Skip("needs root")
	}
}

// rootDir returns a fresh directory owned by root, mode 0755, that other users can
// enter; it is removed at the end of the test. (t.TempDir's parent is 0700.)
func rootDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "gvs-script-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// writeScript writes an executable shell script with mode perm.
func writeScript(t *testing.T, path, body string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // not subject to the umask
		t.Fatal(err)
	}
}

func TestSecurityRefusesWorldWritableScript(t *testing.T) {
	needRoot(t)
	d := rootDir(t)
	p := filepath.Join(d, "check.sh")
	writeScript(t, p, "exit 0", 0o777)
	r := &Runner{Secure: true}
	_, err := r.Run(context.Background(), Cmd{Argv: []string{p}, Timeout: 5 * time.Second})
	var ie *InsecureError
	if !errors.As(err, &ie) || !errors.Is(err, ErrInsecure) {
		t.Fatalf("Run = %v, want an InsecureError", err)
	}
	if ie.Path != p || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "writable by everyone") {
		t.Errorf("error %q: want it to name %s as writable by everyone", err, p)
	}

	// The same file, made safe, runs.
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := r.Run(context.Background(), Cmd{Argv: []string{p}, Timeout: 5 * time.Second})
	if err != nil || !res.OK() {
		t.Fatalf("safe script: %+v, %v", res, err)
	}
}

func TestSecurityRefusesUnsafeDirectory(t *testing.T) {
	needRoot(t)
	d := rootDir(t)
	sub := filepath.Join(d, "scripts")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(sub, "check.sh")
	writeScript(t, p, "exit 0", 0o755)
	r := &Runner{Secure: true}
	for _, tc := range []struct {
		name string
		prep func() error
		why  string
	}{
		{"group writable", func() error {
			if err := os.Chown(sub, 0, 65534); err != nil {
				return err
			}
			return os.Chmod(sub, 0o775)
		}, "writable by group 65534"},
		{"owned by another user", func() error {
			if err := os.Chown(sub, 65534, 0); err != nil {
				return err
			}
			return os.Chmod(sub, 0o755)
		}, "owned by uid 65534"},
		// The shell command's first word is checked the same way.
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.prep(); err != nil {
				t.Fatal(err)
			}
			for _, c := range []Cmd{{Argv: []string{p}}, {Shell: p + " arg >/dev/null"}} {
				err := r.Check(c)
				var ie *InsecureError
				if !errors.As(err, &ie) || ie.Path != sub || !strings.Contains(err.Error(), tc.why) {
					t.Errorf("Check(%s) = %v, want %s named as %s", c.String(), err, sub, tc.why)
				}
			}
		})
	}
	// A sticky world-writable directory (like /tmp) is safe for root-owned files.
	if err := os.Chown(sub, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sub, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := r.Check(Cmd{Argv: []string{p}}); err != nil {
		t.Errorf("sticky directory: %v", err)
	}
}

func TestSecurityOffRunsUnsafeScript(t *testing.T) {
	needRoot(t)
	d := rootDir(t)
	p := filepath.Join(d, "check.sh")
	writeScript(t, p, "exit 3", 0o777)
	res, err := (&Runner{}).Run(context.Background(), Cmd{Argv: []string{p}, Timeout: 5 * time.Second})
	if err != nil || res.Exit != 3 || res.OK() {
		t.Fatalf("Run = %+v, %v; want exit 3", res, err)
	}
}

func TestRunsAsConfiguredUser(t *testing.T) {
	needRoot(t)
	nobody, err := LookupUser("nobody", "")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	d := rootDir(t)
	p := filepath.Join(d, "whoami.sh")
	writeScript(t, p, "id -u; id -g", 0o755)
	for _, tc := range []struct {
		name string
		r    Runner
		c    Cmd
	}{
		{"runner default (script_user)", Runner{User: nobody, Secure: true}, Cmd{Argv: []string{p}}},
		{"the command's own user", Runner{Secure: true}, Cmd{Argv: []string{p}, User: nobody}},
		{"shell command", Runner{User: nobody}, Cmd{Shell: p}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Timeout = 5 * time.Second
			res, err := tc.r.Run(context.Background(), tc.c)
			if err != nil || !res.OK() {
				t.Fatalf("Run = %+v (%s), %v", res, res.Output, err)
			}
			want := strconv.Itoa(int(nobody.UID)) + "\n" + strconv.Itoa(int(nobody.GID)) + "\n"
			if string(res.Output) != want {
				t.Errorf("id -u; id -g printed %q, want %q", res.Output, want)
			}
		})
	}
	// A world-writable script run as nobody is not refused: nothing runs with
	// root's rights (keepalived protects root runs only).
	if err := os.Chmod(p, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := (&Runner{User: nobody, Secure: true}).Check(Cmd{Argv: []string{p}}); err != nil {
		t.Errorf("unprivileged run of a writable script: %v", err)
	}
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	d := t.TempDir()
	pidFile := filepath.Join(d, "pid")
	for _, tc := range []struct {
		name   string
		script string
	}{
		{"leader waits", "sleep 60 & echo $! > " + pidFile + "; wait"},
		// The leader ignores SIGTERM: SIGKILL follows after the grace period.
		{"leader ignores TERM", "trap '' TERM; sleep 60 & echo $! > " + pidFile + "; while :; do wait; done"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(pidFile)
			r := &Runner{Grace: 100 * time.Millisecond}
			res, err := r.Run(context.Background(), Cmd{Shell: tc.script, Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if !res.TimedOut || res.OK() || res.Reason(300*time.Millisecond) != "killed at timeout 300ms" {
				t.Fatalf("Result %+v: want timed out", res)
			}
			b, err := os.ReadFile(pidFile)
			if err != nil {
				t.Fatalf("script did not record its child: %v", err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, 5*time.Second, func() bool { return gone(pid) }, "the script's child to die")
		})
	}
}

// gone reports whether pid has exited (it may linger as a zombie until reaped).
func gone(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X')
}

func TestRunResults(t *testing.T) {
	r := &Runner{}
	res, err := r.Run(context.Background(), Cmd{Shell: `echo "$RS_ADDR:$RS_PORT"; exit 7`, Env: []string{"RS_ADDR=198.18.0.5", "RS_PORT=80"}})
	if err != nil || res.Exit != 7 || string(res.Output) != "198.18.0.5:80\n" || res.Reason(0) != "exit 7" {
		t.Fatalf("Run = %+v (%q), %v", res, res.Output, err)
	}
	res, err = r.Run(context.Background(), Cmd{Argv: []string{"/bin/sh", "-c", "head -c 100000 /dev/zero"}})
	if err != nil || !res.OK() || len(res.Output) != DefaultMaxOutput {
		t.Fatalf("long output: %d bytes kept, %v", len(res.Output), err)
	}
	_, err = r.Run(context.Background(), Cmd{Argv: []string{"/nonexistent/gvs-check"}})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "/nonexistent/gvs-check") {
		t.Fatalf("missing program: %v, want ErrNotFound naming it", err)
	}
	_, err = r.Run(context.Background(), Cmd{Argv: []string{"gvs-no-such-program-in-path"}})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("program not in PATH: %v, want ErrNotFound", err)
	}
}

func TestParseUser(t *testing.T) {
	u, err := ParseUser("root root")
	if err != nil || u.UID != 0 || u.GID != 0 || !u.Root() {
		t.Fatalf("ParseUser(root root) = %+v, %v", u, err)
	}
	if _, err := ParseUser("gvs-no-such-user-xyz"); err == nil || !strings.Contains(err.Error(), "gvs-no-such-user-xyz") {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := ParseUser("a b c"); err == nil {
		t.Error("three words accepted")
	}
	if _, err := ParseUser("root gvs-no-such-group-xyz"); err == nil {
		t.Error("unknown group accepted")
	}
}

func TestMain(m *testing.M) { os.Exit(testutil.RunMain(m)) }
