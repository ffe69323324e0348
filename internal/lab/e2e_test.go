package lab

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// End-to-end tests of the live director: the real gvs binary runs `gvs run` inside a
// lab's director namespace and real TCP/UDP clients go through the VIP.

var (
	gvsOnce sync.Once
	gvsBin  string
	gvsErr  error
)

// gvsBinary builds cmd/gvs once per test run.
func gvsBinary(t *testing.T) string {
	t.Helper()
	gvsOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gvs-e2e")
		if err != nil {
			gvsErr = err
			return
		}
		gvsBin = filepath.Join(dir, "gvs")
		out, err := exec.Command("go", "build", "-o", gvsBin, "github.com/gvs-lb/gvs/cmd/gvs").CombinedOutput()
		if err != nil {
			gvsErr = err
			gvsBin = string(out)
		}
	})
	if gvsErr != nil {
		t.Fatalf("building gvs: %v\n%s", gvsErr, gvsBin)
	}
	return gvsBin
}

func e2eSpec(t *testing.T, m Mode) Spec {
	t.Helper()
	needLab(t, m)
	return Spec{Prefix: testPrefix(t), Mode: m, Exe: gvsBinary(t), StateDir: t.TempDir()}
}

func TestDemoShowsRoundRobinAndRewrite(t *testing.T) {
	spec := e2eSpec(t, DR)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := Demo(ctx, &out, spec)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	want := "rs2 rs1 rs2 rs1 rs2 rs1 rs2 rs1 rs2 rs1"
	if got := strings.Join(res.Answers, " "); got != want {
		t.Fatalf("answers through the VIP: got %q, want %q", got, want)
	}
	if len(res.Capture) != 2 {
		t.Fatalf("captured %d SYNs on the director, want 2:\n%s", len(res.Capture), out.String())
	}
	in, fwd := res.Capture[0], res.Capture[1]
	if !strings.Contains(in, "02:00:00:00:00:02 > 02:00:00:00:00:03") || !strings.Contains(fwd, "02:00:00:00:00:03 > 02:00:00:00:00:06") {
		t.Fatalf("the SYN should arrive client→director and leave director→rs2:\n%s\n%s", in, fwd)
	}
	for _, line := range res.Capture {
		if !strings.Contains(line, "198.18.0.2.") || !strings.Contains(line, "> 198.18.0.100.80") {
			t.Fatalf("DR must not change the IP addresses: %s", line)
		}
	}
	if _, err := os.Stat(filepath.Join(spec.StateDir, spec.Prefix+".json")); err == nil {
		t.Fatalf("the demo left its lab state behind")
	}
}

// startDirector starts gvs run in dir1 and waits until the VIP answers on UDP.
func startDirector(t *testing.T, l *Lab) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := l.Start(ctx, "dir1", "director", "run", "-c", l.ConfigPath("dir1"), "--workers", "2"); err != nil {
		t.Fatal(err)
	}
	if err := l.waitServing(ctx); err != nil {
		b, _ := os.ReadFile(filepath.Join(l.RunDir(), "dir1-director.log"))
		t.Fatalf("%v\ndirector log:\n%s", err, b)
	}
}

func TestLiveModes(t *testing.T) {
	for _, m := range []Mode{DR, NAT, TUN} {
		t.Run(m.String(), func(t *testing.T) {
			spec := e2eSpec(t, m)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			l, err := Up(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := l.Down(); err != nil {
					t.Errorf("down: %v", err)
				}
			})
			startDirector(t, l)
			url := "http://" + netip.AddrPortFrom(l.VIP(), l.spec.HTTPPort).String() + "/"
			seen := map[string]int{}
			for i := range 6 {
				body, err := l.HTTPGet("client", url, 3*time.Second)
				if err != nil {
					b, _ := os.ReadFile(filepath.Join(l.RunDir(), "dir1-director.log"))
					t.Fatalf("request %d through the VIP: %v\ndirector log:\n%s", i, err, b)
				}
				seen[strings.TrimSpace(body)]++
			}
			if seen["rs1"] != 3 || seen["rs2"] != 3 {
				t.Fatalf("rr over two real servers answered %v, want 3 each", seen)
			}
			// UDP through the VIP: the echo names the real server, from the VIP.
			for i := range 2 {
				got, err := l.UDPAsk("client", netip.AddrPortFrom(l.VIP(), l.spec.UDPPort), "hello", 2*time.Second)
				if err != nil || !strings.HasSuffix(got, ": hello") {
					t.Fatalf("UDP %d through the VIP: %q, %v", i, got, err)
				}
			}
		})
	}
}

func TestLiveReloadKeepsConnections(t *testing.T) {
	spec := e2eSpec(t, DR)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := Up(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Down() })
	p, err := l.Start(ctx, "dir1", "director", "run", "-c", l.ConfigPath("dir1"), "--workers", "1")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.waitServing(ctx); err != nil {
		t.Fatal(err)
	}
	// Open a connection through the VIP and leave the request unfinished.
	var conn net.Conn
	if err := l.Do("client", func() (err error) {
		conn, err = net.DialTimeout("tcp", netip.AddrPortFrom(l.VIP(), l.spec.HTTPPort).String(), 3*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET / HTTP/1.0\r\n")); err != nil {
		t.Fatal(err)
	}
	// Reload with a changed weight: the connection must survive on its server.
	cfg, err := os.ReadFile(l.ConfigPath("dir1"))
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(cfg), "mac = \"02:00:00:00:00:05\"", "mac = \"02:00:00:00:00:05\"\n  weight = 3", 1)
	if changed == string(cfg) {
		t.Fatalf("the lab config has no weight to change:\n%s", cfg)
	}
	if err := os.WriteFile(l.ConfigPath("dir1"), []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(p.PID, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(p.Log)
		if strings.Contains(string(b), "reloaded") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reload logged:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := conn.Write([]byte("\r\n")); err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	resp, err := io.ReadAll(conn)
	if err != nil || !strings.Contains(string(resp), "200 OK") || !strings.Contains(string(resp), "rs2") {
		t.Fatalf("the connection across the reload: %q, %v", resp, err)
	}
}

// TestRunRefusesForwardingHost: on a host that routes (forwarding on for the data
// interface) gvs refuses to run without the ingress guard, naming both fixes, and runs
// with it (issue 13: a director that also routes), serving the VIP while the guard
// keeps its frames from the kernel.
func TestRunRefusesForwardingHost(t *testing.T) {
	spec := e2eSpec(t, DR)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := Up(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Down() })
	if err := l.Do("dir1", func() error {
		return os.WriteFile("/proc/sys/net/ipv4/conf/eth0/forwarding", []byte("1"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(l.ConfigPath("dir1"))
	if err != nil {
		t.Fatal(err)
	}
	unguarded := strings.Replace(string(b), "ingress_drop = true\n", "", 1)
	unguarded = strings.Replace(unguarded, "[director]\n", "[director]\ningress_drop = false\n", 1)
	path := filepath.Join(l.RunDir(), "dir1-unguarded.toml")
	if err := os.WriteFile(path, []byte(unguarded), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, err := l.Command(ctx, "dir1", spec.Exe, "run", "-c", path)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("gvs run without the ingress guard on a forwarding host: %v\n%s", err, out)
	}
	for _, fix := range []string{"sysctl -w net.ipv4.conf.eth0.forwarding=0", "ingress"} {
		if !strings.Contains(string(out), fix) {
			t.Fatalf("the refusal should name the fix %q:\n%s", fix, out)
		}
	}
	if _, err := exec.LookPath("nft"); err != nil {
		if os.Getenv("GVS_LAB_REQUIRED") == "1" {
			t.Fatal("GVS_LAB_REQUIRED=1 but nft is not installed")
		}
		t.Skip("nft is not installed: the guarded half needs the ingress guard")
	}
	p := runGVS(t, l, l.ConfigPath("dir1"))
	if b, _ := os.ReadFile(p.Log); !strings.Contains(string(b), "IP forwarding is on: the ingress guard keeps the VIP frames from the kernel") {
		t.Errorf("gvs did not say it runs guarded on a routing host:\n%s", b)
	}
	url := "http://" + netip.AddrPortFrom(l.VIP(), l.spec.HTTPPort).String() + "/"
	for i := range 4 {
		if _, err := l.HTTPGet("client", url, 3*time.Second); err != nil {
			t.Fatalf("request %d through the VIP on a routing director: %v", i, err)
		}
	}
	stopGVS(t, l, p)
}
