package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/status"
)

// chromiumPath is Debian's chromium, or the test skips (fails with
// GVS_LAB_REQUIRED=1).
func chromiumPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("GVS_LAB_REQUIRED") == "1" {
			t.Fatal("GVS_LAB_REQUIRED=1 but chromium is not installed (apt-get install chromium)")
		}
		t.Skip("skipping the status page's browser test: chromium is not installed (apt-get install chromium)")
	}
	return p
}

// rowRE reads a real server's row of the page as the browser built it.
var rowRE = regexp.MustCompile(`<tr class="rs" data-service="([^"]+)" data-server="([^"]+)" data-state="([^"]+)">`)

// TestLiveStatusPage runs gvs with status_listen in the director's namespace and
// loads the page in headless Chromium there: the DOM the page's script built
// shows the lab's services and real servers, up; /status.json agrees with gvs
// adm -Ln; a phone-sized screenshot is a PNG; a real server set to weight 0 by
// gvs adm shows drained; once rs2's web server stops, its health check fails and
// the page shows it down.
func TestLiveStatusPage(t *testing.T) {
	chromium := chromiumPath(t)
	spec := e2eSpec(t, DR)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	l, err := Up(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Down() })
	dir1, _ := l.Host("dir1")
	listen := netip.AddrPortFrom(dir1.Addr(), 9200).String()
	sock := filepath.Join(l.RunDir(), "dir1-status.sock")
	conf := strings.Replace(healthConfig(l, false, false), "[director]\n",
		fmt.Sprintf("[director]\nstatus_listen = %q\ncontrol_socket = %q\n", listen, sock), 1)
	path := filepath.Join(l.RunDir(), "status.toml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := l.Start(ctx, "dir1", "director", "run", "-c", path, "--workers", "1")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.waitServing(ctx); err != nil {
		b, _ := os.ReadFile(dir.Log)
		t.Fatalf("%v\n%s", err, b)
	}
	answersUntil(t, l, 15*time.Second, 4, func(a string) bool { return a == "rs1" || a == "rs2" })

	profile := t.TempDir()
	url := "http://" + listen + "/"
	browse := func(extra ...string) []byte {
		t.Helper()
		bctx, bcancel := context.WithTimeout(ctx, 40*time.Second)
		defer bcancel()
		argv := append([]string{chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
			"--user-data-dir=" + profile, "--virtual-time-budget=4000"}, extra...)
		cmd, err := l.Command(bctx, "dir1", append(argv, url)...)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Env = append(os.Environ(), "HOME="+profile)
		// Chromium starts helpers of its own: they go with it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 5 * time.Second
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", extra, err, tail(stderr.String(), 2000))
		}
		return out.Bytes()
	}
	var dom string
	rows := func() map[string]string {
		dom = string(browse("--dump-dom"))
		got := map[string]string{}
		for _, m := range rowRE.FindAllStringSubmatch(dom, -1) {
			got[m[1]+" "+m[2]] = m[3]
		}
		return got
	}
	web, dns := "TCP/"+netip.AddrPortFrom(l.VIP(), 80).String(), "UDP/"+netip.AddrPortFrom(l.VIP(), 53).String()
	rs1, _ := l.Host("rs1")
	rs2, _ := l.Host("rs2")
	rs1web, rs2web := netip.AddrPortFrom(rs1.Addr(), 80).String(), netip.AddrPortFrom(rs2.Addr(), 80).String()
	want := map[string]string{web + " " + rs1web: "up", web + " " + rs2web: "up", dns + " " + netip.AddrPortFrom(rs1.Addr(), 53).String(): "up"}
	// Poll with a deadline: the page shows what the browser fetched.
	var got map[string]string
	waitRows := func(what string, ok func(map[string]string) bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; {
			if got = rows(); ok(got) {
				return
			}
			if time.Now().After(deadline) {
				b, _ := os.ReadFile(dir.Log)
				t.Fatalf("%s: the page shows %v\ndirector log:\n%s", what, got, tail(string(b), 3000))
			}
		}
	}
	waitRows("the lab's services and real servers, up", func(g map[string]string) bool { return fmt.Sprint(g) == fmt.Sprint(want) })

	// The JSON agrees with gvs adm -Ln.
	body, err := l.HTTPGet("dir1", url+"status.json", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var snap status.Snapshot
	if err := json.Unmarshal([]byte(body), &snap); err != nil {
		t.Fatalf("status.json: %v\n%s", err, body)
	}
	ln, err := exec.CommandContext(ctx, spec.Exe, "adm", "--socket", sock, "-Ln").CombinedOutput()
	if err != nil {
		t.Fatalf("gvs adm -Ln: %v\n%s", err, ln)
	}
	if a, b := snapshotLines(&snap), admLines(string(ln)); !slices.Equal(a, b) || len(a) != 5 {
		t.Errorf("status.json %q\ngvs adm -Ln %q", a, b)
	}

	shot := filepath.Join(t.TempDir(), "status.png")
	browse("--screenshot="+shot, "--window-size=412,900", "--hide-scrollbars")
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if len(png) < 1000 || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot %s: %d bytes, not a PNG", shot, len(png))
	}

	// Weight 0 through gvs adm: drained on the page.
	rs1dns := netip.AddrPortFrom(rs1.Addr(), 53).String()
	if out, err := exec.CommandContext(ctx, spec.Exe, "adm", "--socket", sock, "-e", "-u", netip.AddrPortFrom(l.VIP(), 53).String(), "-r", rs1dns, "-g", "-w", "0").CombinedOutput(); err != nil {
		t.Fatalf("gvs adm -e … -w 0: %v\n%s", err, out)
	}
	waitRows("the UDP real server drained after gvs adm set its weight to 0", func(g map[string]string) bool { return g[dns+" "+rs1dns] == "drained" })

	stopProc(t, serverProc(t, l, "rs2"))
	waitRows("rs2 down after its web server stopped", func(g map[string]string) bool {
		return g[web+" "+rs2web] == "down" && g[web+" "+rs1web] == "up"
	})
	// Its row says why: the failing check's reason.
	row := dom[strings.Index(dom, `data-server="`+rs2web+`"`):]
	row = row[:strings.Index(row, "</tr>")]
	if !strings.Contains(row, "failing — ") || !strings.Contains(row, "checked ") {
		t.Errorf("rs2's row does not show the failing check and its reason: %s", row)
	}
	if testing.Verbose() {
		t.Logf("rs2's row: %s", row)
	}
}

// admLines reduces gvs adm -Ln to one line per service and real server
// ("TCP 198.18.0.100:80 rr", "TCP 198.18.0.100:80 -> 198.18.0.5:80 Route 1 0 0").
func admLines(out string) []string {
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

// snapshotLines is admLines of a snapshot (its servers in the data path). The
// connection counts compare too: the test's requests ended before both looks,
// and their entries (inactive, FIN_WAIT) outlive the test.
func snapshotLines(s *status.Snapshot) []string {
	var got []string
	for _, v := range s.Services {
		svc := strings.Replace(v.Name, "/", " ", 1)
		got = append(got, svc+" "+v.Scheduler)
		for _, r := range v.Servers {
			if r.InTable {
				got = append(got, fmt.Sprintf("%s -> %s %s %d %d %d", svc, r.Address, r.Method, r.Weight, r.Active, r.Inactive))
			}
		}
	}
	slices.Sort(got)
	return got
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
