package daemon

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"
)

// notifySocket is a fake systemd notification socket: the unixgram socket
// NOTIFY_SOCKET names for the test.
type notifySocket struct {
	t *testing.T
	c *net.UnixConn
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return &notifySocket{t: t, c: c}
}

// next returns the next message, failing the test when none comes in 10 s.
func (n *notifySocket) next() string {
	n.t.Helper()
	n.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 4096)
	k, _, err := n.c.ReadFrom(b)
	if err != nil {
		n.t.Fatalf("no sd_notify message: %v", err)
	}
	return string(b[:k])
}

// TestRunSdNotify: gvs run tells systemd READY=1 once the workers serve,
// RELOADING=1 (with MONOTONIC_USEC) then READY=1 around each SIGHUP reload — with
// STATUS= saying when the file was refused — and STOPPING=1 when it stops; the
// reload metrics follow the reloads, and gvs_build_info carries the version.
func TestRunSdNotify(t *testing.T) {
	testutil.CheckLeaks(t)
	ns := newNotifySocket(t)
	path := filepath.Join(t.TempDir(), "gvs.toml")
	conf := strings.Replace(directorConf, "[director]", "[director]\ncontrol_socket = \"\"\nmetrics_listen = \"127.0.0.1:0\"", 1) + webConf
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	ta := &testAdmin{t: t, res: &fakeResolver{}, link: &filterLink{Channel: newChannel()}, logs: logs}
	deps := testDeps(ta)
	reload := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{ConfigPath: path, Logger: deps.Logger, Deps: &deps, Reload: reload, Version: "9.9.9-test"})
	}()

	if got := ns.next(); got != "READY=1" {
		t.Fatalf("first message %q, want READY=1", got)
	}
	if !strings.Contains(logs.String(), "msg=serving") {
		t.Errorf("READY=1 before the workers serve:\n%s", logs)
	}
	ta.logs = logs
	url := "http://" + metricsAddr(t, ta) + "/metrics"
	got := scrape(t, url)
	if got[`gvs_config_last_reload_successful`] != 1 || got[`gvs_config_last_reload_success_timestamp_seconds`] <= 0 {
		t.Errorf("after start: reload metrics %v, %v", got[`gvs_config_last_reload_successful`], got[`gvs_config_last_reload_success_timestamp_seconds`])
	}
	started := got[`gvs_config_last_reload_success_timestamp_seconds`]
	build := false
	for s, v := range got {
		if strings.HasPrefix(s, "gvs_build_info{") && strings.Contains(s, `version="9.9.9-test"`) && v == 1 {
			build = true
		}
	}
	if !build {
		t.Error("no gvs_build_info with the version given to Run")
	}

	// A refused reload.
	if err := os.WriteFile(path, []byte(conf+"\n[[service]]\naddress = \"198.18.0.100:443\"\nscheduler = \"fastest\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	if m := ns.next(); !strings.HasPrefix(m, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("reload began with %q, want RELOADING=1 and MONOTONIC_USEC", m)
	}
	if m := ns.next(); !strings.HasPrefix(m, "READY=1\nSTATUS=reload failed") || !strings.Contains(m, "scheduler") || strings.Count(m, "\n") != 1 {
		t.Errorf("after a refused reload: %q, want READY=1 and a one-line STATUS naming the problem", m)
	}
	if v := scrape(t, url)["gvs_config_last_reload_successful"]; v != 0 {
		t.Errorf("gvs_config_last_reload_successful = %v after a refused reload", v)
	}

	// A good one.
	if err := os.WriteFile(path, []byte(strings.Replace(conf, "conn_max = 4096", "conn_max = 8192", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	reload <- struct{}{}
	if m := ns.next(); !strings.HasPrefix(m, "RELOADING=1") {
		t.Errorf("reload began with %q", m)
	}
	if m := ns.next(); m != "READY=1\nSTATUS=reloaded "+path {
		t.Errorf("after a good reload: %q", m)
	}
	got = scrape(t, url)
	if got["gvs_config_last_reload_successful"] != 1 || got["gvs_config_last_reload_success_timestamp_seconds"] < started {
		t.Errorf("after a good reload: successful %v, timestamp %v (started %v)", got["gvs_config_last_reload_successful"], got["gvs_config_last_reload_success_timestamp_seconds"], started)
	}
	if got["gvs_conntrack_max"] != 8192 {
		t.Errorf("gvs_conntrack_max = %v, the reload did not apply", got["gvs_conntrack_max"])
	}
	http.DefaultClient.CloseIdleConnections()

	cancel()
	if m := ns.next(); m != "STOPPING=1" {
		t.Errorf("on stop: %q, want STOPPING=1", m)
	}
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	// Exactly one STOPPING=1.
	ns.c.SetReadDeadline(time.Now())
	if k, _, err := ns.c.ReadFrom(make([]byte, 64)); err == nil {
		t.Errorf("another message after STOPPING=1 (%d bytes)", k)
	}
}

// TestRunSdNotifyFailedStart: a director that cannot start never says READY=1.
func TestRunSdNotifyFailedStart(t *testing.T) {
	ns := newNotifySocket(t)
	path := filepath.Join(t.TempDir(), "gvs.toml")
	if err := os.WriteFile(path, []byte(directorConf+"\ncontrol_socket = \"\"\nmetrics_web_config = \"absent.yml\"\nmetrics_listen = \"127.0.0.1:0\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ta := &testAdmin{t: t, res: &fakeResolver{}, link: &filterLink{Channel: newChannel()}, logs: &logBuffer{}}
	deps := testDeps(ta)
	err := Run(context.Background(), Options{ConfigPath: path, Deps: &deps})
	if err == nil || !strings.Contains(err.Error(), "absent.yml") {
		t.Fatalf("Run: %v, want the missing web config named", err)
	}
	if m := ns.next(); m != "STOPPING=1" {
		t.Errorf("a failed start said %q, want only STOPPING=1", m)
	}
}
