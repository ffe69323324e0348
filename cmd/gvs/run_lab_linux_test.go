package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunOwnsItsHostState runs two real `gvs run` processes, one after the other,
// on the same interface of a namespace of the test's own, each with its own
// systemd notification socket: each says READY=1 once it serves; the newer one's
// nftables guard replaces the older one's; when the older one stops it leaves the
// newer one's guard (and control socket) in place; when the newer one stops, its
// guard goes. Needs root, ip and nft (skipped without, a failure with
// GVS_LAB_REQUIRED=1).
func TestRunOwnsItsHostState(t *testing.T) {
	n := newRunNS(t, "gvsm1", "198.18.0.3/24", "nft")
	dir, bin, ns := n.dir, n.bin, n.ns

	type director struct {
		cmd    *exec.Cmd
		notify *net.UnixConn
		sock   string
		log    *bytes.Buffer
	}
	start := func(name string) *director {
		t.Helper()
		sock := filepath.Join(dir, name+".sock")
		conf := filepath.Join(dir, name+".toml")
		text := fmt.Sprintf(`[director]
interface = "v0"
io = "afpacket"
ingress_drop = true
control_socket = %q

[[service]]
address = "198.18.0.100:80"
  [[service.real_server]]
  address = "198.18.0.5:80"
  mac = "02:00:00:00:00:05"
`, sock)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		np := filepath.Join(dir, name+".notify")
		nc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: np, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		d := &director{notify: nc, sock: sock, log: &bytes.Buffer{}}
		d.cmd = exec.Command("ip", "netns", "exec", ns, bin, "run", "-c", conf, "--workers", "1")
		d.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+np)
		d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
		d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := d.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if d.cmd.ProcessState == nil {
				d.cmd.Process.Kill() // ours, by its PID
				d.cmd.Wait()
			}
		})
		return d
	}
	next := func(d *director) string {
		t.Helper()
		d.notify.SetReadDeadline(time.Now().Add(30 * time.Second))
		b := make([]byte, 4096)
		n, _, err := d.notify.ReadFrom(b)
		if err != nil {
			t.Fatalf("no sd_notify message from gvs (pid %d): %v\n%s", d.cmd.Process.Pid, err, d.log)
		}
		return string(b[:n])
	}
	stop := func(d *director) {
		t.Helper()
		d.cmd.Process.Signal(syscall.SIGTERM)
		if m := next(d); m != "STOPPING=1" {
			t.Errorf("on SIGTERM: %q, want STOPPING=1", m)
		}
		if err := d.cmd.Wait(); err != nil {
			t.Fatalf("gvs run: %v\n%s", err, d.log)
		}
	}
	guard := func() string {
		out, err := exec.Command("ip", "netns", "exec", ns, "nft", "-a", "list", "table", "netdev", "gvs_v0").CombinedOutput()
		if err != nil {
			return ""
		}
		return string(out)
	}
	ownedBy := func(d *director) string { return "gvs pid=" + strconv.Itoa(d.cmd.Process.Pid) + " start=" }

	older := start("older")
	if m := next(older); m != "READY=1" {
		t.Fatalf("older: %q, want READY=1\n%s", m, older.log)
	}
	if g := guard(); !strings.Contains(g, ownedBy(older)) || !strings.Contains(g, "198.18.0.100") {
		t.Fatalf("the older director's guard:\n%s\n%s", g, older.log)
	}
	newer := start("newer")
	if m := next(newer); m != "READY=1" {
		t.Fatalf("newer: %q, want READY=1\n%s", m, newer.log)
	}
	if g := guard(); !strings.Contains(g, ownedBy(newer)) {
		t.Fatalf("the newer director did not take the guard over:\n%s", g)
	}

	stop(older)
	if g := guard(); !strings.Contains(g, ownedBy(newer)) || !strings.Contains(g, "198.18.0.100") {
		t.Fatalf("the older director's stop removed the newer one's guard:\n%s\nolder's log:\n%s", g, older.log)
	}
	if !strings.Contains(older.log.String(), "ingress guard left in place") {
		t.Errorf("the older director did not say it left the guard:\n%s", older.log)
	}
	if _, err := os.Lstat(newer.sock); err != nil {
		t.Errorf("the newer director's control socket: %v", err)
	}
	if _, err := os.Lstat(older.sock); err == nil {
		t.Errorf("the older director left its control socket %s", older.sock)
	}

	stop(newer)
	if g := guard(); g != "" {
		t.Errorf("the newer director's stop left its guard:\n%s\n%s", g, newer.log)
	}
}
