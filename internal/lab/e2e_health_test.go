package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// healthConfig is a DR director config for lab l with an HTTP check on the :80
// service (interval 1 s, retries 1), real servers rs1 and rs2, and optionally
// inhibit_on_failure and rs3 as the sorry server. A UDP service on :53 without
// checks lets the test see when the director is up.
func healthConfig(l *Lab, inhibit, sorry bool) string {
	dir1, _ := l.Host("dir1")
	var b strings.Builder
	fmt.Fprintf(&b, "[director]\ninterface = \"eth0\"\nmac = %q\naddress = %q\n\n", dir1.MAC(), dir1.Addr())
	fmt.Fprintf(&b, "[[service]]\naddress = %q\nscheduler = \"rr\"\ninhibit_on_failure = %v\n", netip.AddrPortFrom(l.VIP(), 80), inhibit)
	if sorry {
		rs3, _ := l.Host("rs3")
		fmt.Fprintf(&b, "sorry_server = %q\nsorry_server_mac = %q\n", rs3.Addr().String(), rs3.MAC())
	}
	b.WriteString("  [service.check]\n  type = \"http\"\n  path = \"/\"\n  interval = \"1s\"\n  timeout = \"1s\"\n  retries = 1\n  retry_delay = \"200ms\"\n")
	for _, n := range []string{"rs1", "rs2"} {
		h, _ := l.Host(n)
		fmt.Fprintf(&b, "  [[service.real_server]]\n  address = %q\n  mac = %q\n", h.Addr().String(), h.MAC())
	}
	fmt.Fprintf(&b, "\n[[service]]\naddress = %q\nprotocol = \"udp\"\nscheduler = \"rr\"\n", netip.AddrPortFrom(l.VIP(), 53))
	h, _ := l.Host("rs1")
	fmt.Fprintf(&b, "  [[service.real_server]]\n  address = %q\n  mac = %q\n", h.Addr().String(), h.MAC())
	return b.String()
}

// serverProc returns the HTTP/UDP server process of real server host.
func serverProc(t *testing.T, l *Lab, host string) Proc {
	t.Helper()
	for _, p := range l.Procs() {
		if p.Host == host && p.Name == "serve" {
			return p
		}
	}
	t.Fatalf("no server process for %s", host)
	return Proc{}
}

func stopProc(t *testing.T, p Proc) {
	t.Helper()
	if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50 && syscall.Kill(p.PID, 0) == nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
}

// answers makes requests through the VIP every 100 ms until the last `stable`
// consecutive answers all satisfy ok, or the deadline passes; it returns how long
// that took (until the first of those answers).
func answersUntil(t *testing.T, l *Lab, deadline time.Duration, stable int, ok func(string) bool) time.Duration {
	t.Helper()
	start := time.Now()
	url := "http://" + netip.AddrPortFrom(l.VIP(), 80).String() + "/"
	run, since := 0, time.Duration(0)
	var last []string
	for time.Since(start) < deadline {
		body, err := l.HTTPGet("client", url, 800*time.Millisecond)
		a := strings.TrimSpace(body)
		if err != nil {
			a = "error"
		}
		last = append(last, a)
		if ok(a) {
			if run == 0 {
				since = time.Since(start)
			}
			if run++; run >= stable {
				return since
			}
		} else {
			run = 0
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("answers never settled within %v; last answers: %v", deadline, last[max(0, len(last)-20):])
	return 0
}

func TestLiveHealthChecks(t *testing.T) {
	// Detection bound of issue 5: interval × (retries+1) plus one interval.
	// Plus a margin for the request loop itself (a request in flight when the
	// transition happens) and a loaded machine.
	const bound = 3*time.Second + 1500*time.Millisecond
	for _, c := range []struct {
		name           string
		inhibit, sorry bool
	}{{"remove", false, false}, {"inhibit_on_failure", true, false}, {"sorry_server", false, true}} {
		t.Run(c.name, func(t *testing.T) {
			spec := e2eSpec(t, DR)
			spec.RealServers = 3
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			l, err := Up(ctx, spec)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Down() })
			path := filepath.Join(l.RunDir(), "health.toml")
			if err := os.WriteFile(path, []byte(healthConfig(l, c.inhibit, c.sorry)), 0o644); err != nil {
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
			both := func(a string) bool { return a == "rs1" || a == "rs2" }
			answersUntil(t, l, 10*time.Second, 4, both)

			rs2 := serverProc(t, l, "rs2")
			stopProc(t, rs2)
			if !c.sorry {
				took := answersUntil(t, l, 10*time.Second, 10, func(a string) bool { return a == "rs1" })
				if took > bound {
					t.Errorf("rs1 alone answered only after %v, bound %v", took, bound)
				}
				// Back up: rs2 receives requests again within the same bound.
				var args []string // the server's own arguments, without the readiness pipe
				for i := 1; i < len(rs2.Argv); i++ {
					if rs2.Argv[i] == "--ready-fd" {
						i++
						continue
					}
					args = append(args, rs2.Argv[i])
				}
				if _, err := l.Start(ctx, "rs2", "serve", args...); err != nil {
					t.Fatal(err)
				}
				took = answersUntil(t, l, 10*time.Second, 1, func(a string) bool { return a == "rs2" })
				if took > bound {
					t.Errorf("rs2 answered again only after %v, bound %v", took, bound)
				}
			} else {
				stopProc(t, serverProc(t, l, "rs1"))
				took := answersUntil(t, l, 10*time.Second, 5, func(a string) bool { return a == "rs3" })
				if took > bound {
					t.Errorf("the sorry server answered only %v after the last real server stopped, bound %v", took, bound)
				}
			}
			b, _ := os.ReadFile(dir.Log)
			if !strings.Contains(string(b), "rs2") && !strings.Contains(string(b), "198.18.0.6") {
				t.Errorf("the director logged no transition for rs2:\n%s", b)
			}
		})
	}
}
