package lab

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLiveResolvesRealServerMACs runs a director whose config pins no real-server
// MAC: gvs must find them itself, by ARP for IPv4 and neighbour solicitation for
// IPv6, and serve both VIPs.
func TestLiveResolvesRealServerMACs(t *testing.T) {
	spec := e2eSpec(t, DR)
	spec.IPv6 = true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := Up(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Down() })
	cfg, err := os.ReadFile(l.ConfigPath("dir1"))
	if err != nil {
		t.Fatal(err)
	}
	// Keep the director's own mac (in [director]); drop the real servers' pins.
	var out []string
	inDirector := false
	for _, line := range strings.Split(string(cfg), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "[") {
			inDirector = trimmed == "[director]"
		}
		if !inDirector && strings.HasPrefix(trimmed, "mac =") {
			continue
		}
		out = append(out, line)
	}
	path := filepath.Join(l.RunDir(), "nomac.toml")
	if err := os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644); err != nil {
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
	for _, vip := range []netip.Addr{l.VIP(), VIP6} {
		seen := map[string]bool{}
		for range 4 {
			body, err := l.HTTPGet("client", "http://"+netip.AddrPortFrom(vip, 80).String()+"/", 3*time.Second)
			if err != nil {
				b, _ := os.ReadFile(dir.Log)
				t.Fatalf("through %v: %v\n%s", vip, err, b)
			}
			seen[strings.TrimSpace(body)] = true
		}
		if !seen["rs1"] || !seen["rs2"] {
			t.Fatalf("through %v: %v", vip, seen)
		}
	}
	if b, _ := os.ReadFile(dir.Log); strings.Contains(string(b), "no MAC address for real server") {
		t.Fatalf("a real server was not resolved:\n%s", b)
	}
}

// TestLiveNATFindsGateway: a NAT director without gateway_mac sends replies to the
// MAC of its default gateway, found through ARP.
func TestLiveNATFindsGateway(t *testing.T) {
	spec := e2eSpec(t, NAT)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l, err := Up(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Down() })
	gw, _ := l.Host("gw")
	cmd, err := l.Command(ctx, "dir1", "ip", "route", "replace", "default", "via", gw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	cfg, err := os.ReadFile(l.ConfigPath("dir1"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(cfg), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "gateway_mac") {
			out = append(out, line)
		}
	}
	path := filepath.Join(l.RunDir(), "nogw.toml")
	if err := os.WriteFile(path, []byte(strings.Join(out, "\n")), 0o644); err != nil {
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
	body, err := l.HTTPGet("client", "http://"+netip.AddrPortFrom(l.VIP(), 80).String()+"/", 3*time.Second)
	if err != nil || !strings.HasPrefix(body, "rs") {
		b, _ := os.ReadFile(dir.Log)
		t.Fatalf("NAT through the found gateway: %q %v\n%s", body, err, b)
	}
}
