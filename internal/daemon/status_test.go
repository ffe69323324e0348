package daemon

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/gvs-lb/gvs/health"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/kaddr"
	"github.com/gvs-lb/gvs/internal/status"
	"github.com/gvs-lb/gvs/internal/testutil"
)

// statusAddr is the address the status page listens on, from the log.
func statusAddr(t *testing.T, ta *testAdmin) string {
	t.Helper()
	const mark = `msg="status page" listen=`
	var logs string
	testutil.Eventually(t, 10*time.Second, func() bool {
		logs = ta.logs.String()
		return strings.Contains(logs, mark)
	}, "the status page to be served")
	line, _, _ := strings.Cut(logs[strings.LastIndex(logs, mark)+len(mark):], "\n")
	return line
}

// lnTuples reduces gvs adm -Ln to one line per service ("TCP 198.18.0.100:80
// rr") and real server ("TCP 198.18.0.100:80 -> 198.18.0.5:80 Route 1 0 0").
func lnTuples(out string) []string {
	var got []string
	svc := ""
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && (f[0] == "TCP" || f[0] == "UDP" || f[0] == "FWM"):
			svc = f[0] + " " + f[1]
			got = append(got, svc+" "+f[2])
		case len(f) == 6 && f[0] == "->" && f[1] != "RemoteAddress:Port":
			got = append(got, svc+" -> "+strings.Join(f[1:], " "))
		}
	}
	slices.Sort(got)
	return got
}

// jsonTuples is lnTuples of a snapshot: the servers in the data path.
func jsonTuples(s *status.Snapshot) []string {
	var got []string
	for _, v := range s.Services {
		svc := strings.Replace(v.Name, "/", " ", 1)
		got = append(got, svc+" "+v.Scheduler)
		for _, r := range v.Servers {
			if r.InTable {
				got = append(got, svc+" -> "+fmt.Sprintf("%s %s %d %d %d", r.Address, r.Method, r.Weight, r.Active, r.Inactive))
			}
		}
	}
	slices.Sort(got)
	return got
}

func fetchSnapshot(t *testing.T, client *http.Client, base string) *status.Snapshot {
	t.Helper()
	resp, err := client.Get(base + "/status.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status.json: %d %s", resp.StatusCode, b)
	}
	var s status.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return &s
}

const statusServices = `
[[service]]
address = "198.18.0.100:80"
scheduler = "wrr"
  [service.check]
  type = "tcp"
  [[service.real_server]]
  address = "198.18.0.5:80"
  weight = 3
  [[service.real_server]]
  address = "198.18.0.6:80"
[[service]]
address = "198.18.0.100:53"
protocol = "udp"
  [[service.real_server]]
  address = "198.18.0.7:53"
  weight = 2
`

// TestStatusAgreesWithAdm: /status.json lists the services and real servers
// (weights, methods, connection counts) gvs adm -Ln lists, after an adm edit
// and a failed health check too; the failed server stays on the page as down
// with its reason's state; the page itself is served.
func TestStatusAgreesWithAdm(t *testing.T) {
	conf := strings.Replace(directorConf, "[director]", "[director]\nstatus_listen = \"127.0.0.1:0\"", 1) + statusServices
	ta := newTestDirector(t, conf, nil)
	base := "http://" + statusAddr(t, ta)
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	// The page's cache follows the daemon's (fake) clock: move it past the
	// interval before each look, so each look is a new snapshot.
	look := func() *status.Snapshot {
		t.Helper()
		ta.clock.Advance(status.DefaultInterval)
		return fetchSnapshot(t, client, base)
	}
	agree := func(when string, lines int) *status.Snapshot {
		t.Helper()
		s := look()
		want, got := lnTuples(ta.ok("-Ln")), jsonTuples(s)
		if !slices.Equal(got, want) || len(want) != lines {
			t.Fatalf("%s: status.json %q\ngvs adm -Ln %q", when, got, want)
		}
		return s
	}
	s := agree("at start", 5)
	if s.Actions {
		t.Error("actions on without status_actions")
	}
	if rs := s.Services[0].Servers[0]; rs.State != "up" || rs.Health == nil || !rs.Health.Up {
		t.Errorf("checked server at start: %+v", rs)
	}
	ta.ok("-e -u 198.18.0.100:53 -r 198.18.0.7:53 -g -w 0")
	s = agree("after an edit to weight 0", 5)
	if rs := s.Services[1].Servers[0]; rs.State != "drained" || rs.Health != nil {
		t.Errorf("unchecked server at weight 0: %+v", rs)
	}
	ta.health.notify(health.Transition{ID: ta.health.id(t, "198.18.0.6:80"), Up: false, Weight: health.WeightUnchanged})
	testutil.Eventually(t, 10*time.Second, func() bool { return len(ta.weights("198.18.0.100:80")) == 1 }, "the failed server to leave the data path")
	s = agree("after a failed check", 4)
	var failed *status.Server
	for i := range s.Services[0].Servers {
		if r := &s.Services[0].Servers[i]; r.Address == "198.18.0.6:80" {
			failed = r
		}
	}
	if failed == nil || failed.InTable || failed.State != "down" {
		t.Errorf("failed server on the page: %+v", failed)
	}
	// A service deleted between two looks is simply gone.
	ta.ok("-D -u 198.18.0.100:53")
	if s = look(); len(s.Services) != 1 || s.Services[0].Name != "TCP/198.18.0.100:80" {
		t.Errorf("after deleting the UDP service: %+v", s.Services)
	}
	resp, err := client.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "status.json") {
		t.Errorf("page: %d %.200s", resp.StatusCode, page)
	}
	resp, err = client.PostForm(base+"/actions/drain", url.Values{"service": {"TCP/198.18.0.100:80"}, "server": {"198.18.0.5:80"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("drain with actions off: %d, want 403", resp.StatusCode)
	}
	// A reload cannot move the page: it says so, and the page stays.
	if err := ta.reloadText(strings.Replace(conf, "127.0.0.1:0", "127.0.0.1:1", 1)); err != nil {
		t.Fatal(err)
	}
	if logs := ta.logs.String(); !strings.Contains(logs, "need a restart") || !strings.Contains(logs, "status_listen") {
		t.Errorf("a reload changing status_listen does not say it needs a restart:\n%s", logs)
	}
	fetchSnapshot(t, client, base)
}

// writeWebConfig writes a web config with TLS (writeCert's files in dir) and the
// user admin with password s3cret.
func writeWebConfig(t *testing.T, dir string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(p, []byte("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  admin: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestStatusActions: with status_actions and the web config's TLS and basic
// auth, the page is refused without credentials or with wrong ones; drain needs
// the page's header, sets the weight to 0 through the controller (gvs adm -Ln
// shows it) and undrain gives the weight back; an unknown server is 404.
func TestStatusActions(t *testing.T) {
	dir := t.TempDir()
	pool := writeCert(t, dir)
	web := writeWebConfig(t, dir)
	conf := strings.Replace(directorConf, "[director]", "[director]\nstatus_listen = \"127.0.0.1:0\"\nstatus_actions = true\nmetrics_web_config = \""+web+"\"", 1) + statusServices
	ta := newTestDirector(t, conf, nil)
	base := "https://" + statusAddr(t, ta)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	do := func(method, path, user, pass string, form url.Values, header bool) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if header {
			req.Header.Set("X-GVS-Action", "1")
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, p := range []string{"/", "/status.json"} {
		if code, body := do("GET", p, "", "", nil, false); code != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials: %d, want 401 %.100s", p, code, body)
		}
		if code, body := do("GET", p, "admin", "wrong", nil, false); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong password: %d, want 401 %.100s", p, code, body)
		}
	}
	if code, body := do("GET", "/status.json", "admin", "s3cret", nil, false); code != http.StatusOK || !strings.Contains(body, `"actions":true`) {
		t.Errorf("status.json with credentials: %d %.200s", code, body)
	}
	rs := url.Values{"service": {"TCP/198.18.0.100:80"}, "server": {"198.18.0.5:80"}}
	if code, _ := do("POST", "/actions/drain", "admin", "wrong", rs, true); code != http.StatusUnauthorized {
		t.Errorf("drain with a wrong password: %d, want 401", code)
	}
	if code, _ := do("POST", "/actions/drain", "admin", "s3cret", rs, false); code != http.StatusForbidden {
		t.Errorf("drain without the page's header: %d, want 403", code)
	}
	if w := ta.weights("198.18.0.100:80"); w["198.18.0.5:80"] != 3 {
		t.Fatalf("weights before the drain: %v", w)
	}
	if code, body := do("POST", "/actions/drain", "admin", "s3cret", rs, true); code != http.StatusNoContent {
		t.Fatalf("drain: %d %s", code, body)
	}
	if got := lnTuples(ta.ok("-Ln")); !slices.Contains(got, "TCP 198.18.0.100:80 -> 198.18.0.5:80 Route 0 0 0") {
		t.Errorf("gvs adm -Ln after the drain: %q", got)
	}
	if _, body := do("GET", "/status.json", "admin", "s3cret", nil, false); !strings.Contains(body, `"address":"198.18.0.5:80","method":"Route","weight":0`) || !strings.Contains(body, `"state":"drained"`) {
		t.Errorf("status.json after the drain: %.600s", body)
	}
	if code, body := do("POST", "/actions/undrain", "admin", "s3cret", rs, true); code != http.StatusNoContent {
		t.Fatalf("undrain: %d %s", code, body)
	}
	if got := lnTuples(ta.ok("-Ln")); !slices.Contains(got, "TCP 198.18.0.100:80 -> 198.18.0.5:80 Route 3 0 0") {
		t.Errorf("gvs adm -Ln after the undrain: %q", got)
	}
	if code, body := do("POST", "/actions/undrain", "admin", "s3cret", url.Values{"service": {"TCP/198.18.0.100:80"}, "server": {"198.18.0.6:80"}}, true); code != http.StatusConflict || !strings.Contains(body, "gvs adm -e") {
		t.Errorf("undrain of a server never drained: %d %s", code, body)
	}
	if code, _ := do("POST", "/actions/drain", "admin", "s3cret", url.Values{"service": {"TCP/198.18.0.100:80"}, "server": {"198.18.0.99:80"}}, true); code != http.StatusNotFound {
		t.Errorf("drain of an unknown server: %d, want 404", code)
	}
}

// TestStatusWebBad: status_listen with a web config naming a TLS file that does
// not exist, or status_actions with a web config without users, is refused at
// start and by CheckStatusWeb (gvs check), naming the problem.
func TestStatusWebBad(t *testing.T) {
	dir := t.TempDir()
	noCert := filepath.Join(dir, "nocert.yml")
	noUsers := filepath.Join(dir, "nousers.yml")
	writeCert(t, dir)
	if err := os.WriteFile(noCert, []byte("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(noUsers, []byte("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, keys, want string }{
		{"missing TLS certificate", "metrics_web_config = \"" + noCert + "\"", "missing.crt"},
		{"actions without users", "metrics_web_config = \"" + noUsers + "\"\nstatus_actions = true", "has no basic_auth_users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(directorConf, "[director]", "[director]\nstatus_listen = \"127.0.0.1:0\"\n"+tc.keys, 1)
			cfg, err := config.Parse("test.toml", []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			hermetic(cfg, text)
			if err := CheckStatusWeb(cfg); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "metrics_web_config") {
				t.Errorf("CheckStatusWeb: %v, want an error naming metrics_web_config and %q", err, tc.want)
			}
			ta := &testAdmin{t: t, res: &fakeResolver{}, link: &filterLink{Channel: newChannel()}, logs: &logBuffer{}}
			d, err := New(cfg, testDeps(ta))
			if err == nil {
				d.Close()
				t.Fatal("New started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want it to name %q", err, tc.want)
			}
		})
	}
}

// TestStatusVRRP: the snapshot lists each VRRP instance as gvs adm --vrrp does:
// VRID, interface, state, configured and effective priority with the tracked
// objects, master, last transition with its reason.
func TestStatusVRRP(t *testing.T) {
	ta, _, _ := kernelDirector(t, kernelConf+`track_interface = ["gvs9 weight 20"]`+"\n", t.TempDir(), &kaddr.Fake{})
	ta.clock.BlockUntil(2)
	find := func() *status.VRRP {
		for _, v := range ta.a.statusSnapshot().VRRP {
			if v.Name == "VI_1" {
				return &v
			}
		}
		t.Fatal("VI_1 not in the snapshot")
		return nil
	}
	v := find()
	if v.VRID != 51 || v.Interface != "gvs0" || v.State != "BACKUP" || v.Configured != 100 || v.Priority != 120 ||
		!slices.Equal(v.Tracks, []string{"interface gvs9 +20"}) || v.From != "INIT" {
		t.Errorf("VI_1 as backup: %+v", *v)
	}
	becomeMaster(ta)
	testutil.Eventually(t, 10*time.Second, func() bool { return find().State == "MASTER" }, "VI_1 master in the snapshot")
	if v = find(); v.Master != "172.19.0.3" || v.MasterPriority != 0 || v.From != "BACKUP" || !strings.Contains(v.Reason, "master down timer expired") || v.Since.IsZero() {
		t.Errorf("VI_1 as master: %+v", *v)
	}
}

// TestStatusServeBrokenWeb: a web config that broke after the start turns the
// page off with an error in the log, and never stops the director (serve
// returns nil at once, not when the director stops).
func TestStatusServeBrokenWeb(t *testing.T) {
	dir := t.TempDir()
	web := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(web, []byte("basic_auth_users:\n  admin: not-a-bcrypt-hash\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	logs := &logBuffer{}
	s := &statusServer{ln: ln, webFile: web, log: slog.New(slog.NewTextHandler(logs, nil)),
		handler: status.NewHandler(status.Options{Source: func() *status.Snapshot { return &status.Snapshot{} }})}
	if err := s.serve(t.Context()); err != nil {
		t.Fatalf("serve: %v, want nil", err)
	}
	if l := logs.String(); !strings.Contains(l, "status page: off until gvs restarts") || !strings.Contains(l, "level=ERROR") {
		t.Errorf("log %q", l)
	}
}
