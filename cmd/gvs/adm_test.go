package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afpacket"
	"github.com/gvs-lb/gvs/dataplane/linktest"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/control"
	"github.com/gvs-lb/gvs/internal/daemon"
)

// fakeDirector serves the control socket at a fresh path with h, recording the
// requests, until the test ends.
func fakeDirector(t *testing.T, h control.HandlerFunc) (path string, reqs func() []control.Request) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "gvs.sock")
	l, err := control.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []control.Request
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Serve(ctx, control.HandlerFunc(func(ctx context.Context, r control.Request) control.Response {
			mu.Lock()
			seen = append(seen, r)
			mu.Unlock()
			return h(ctx, r)
		}))
	}()
	t.Cleanup(func() { cancel(); <-done })
	return path, func() []control.Request {
		mu.Lock()
		defer mu.Unlock()
		return append([]control.Request(nil), seen...)
	}
}

func noEnv(string) string { return "" }

func runAdm(args []string, stdin string, env func(string) string) (stdout, stderr string, status int) {
	var out, errOut bytes.Buffer
	st := admMain(args, strings.NewReader(stdin), &out, &errOut, env)
	return out.String(), errOut.String(), st
}

func TestAdmPassesThrough(t *testing.T) {
	path, reqs := fakeDirector(t, func(_ context.Context, r control.Request) control.Response {
		switch r.Args[0] {
		case "-A":
			return control.Response{Stderr: "Service already exists\n", Status: 255}
		case "-Z":
			return control.Response{Stderr: "Zero port specified for non-persistent service\n", Status: 2}
		}
		return control.Response{Stdout: "listing of " + strings.Join(r.Args, " ") + "\n"}
	})
	for _, tc := range []struct {
		name           string
		args           []string
		stdout, stderr string
		status         int
	}{
		{"listing", []string{"--socket", path, "-Ln"}, "listing of -Ln\n", "", 0},
		{"socket after the command", []string{"-L", "-n", "--socket=" + path, "--stats"}, "listing of -L -n --stats\n", "", 0},
		{"kernel error", []string{"-A", "-t", "198.18.0.100:80", "--socket", path}, "", "Service already exists\n", 255},
		{"ipvsadm error", []string{"--socket", path, "-Z"}, "", "Zero port specified for non-persistent service\n", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, st := runAdm(tc.args, "must not be read", noEnv)
			if out != tc.stdout || errOut != tc.stderr || st != tc.status {
				t.Errorf("gvs adm %s = %q, %q, %d; want %q, %q, %d", strings.Join(tc.args, " "), out, errOut, st, tc.stdout, tc.stderr, tc.status)
			}
		})
	}
	for _, r := range reqs() {
		if r.Stdin != "" {
			t.Errorf("%v sent standard input %q", r.Args, r.Stdin)
		}
		for _, a := range r.Args {
			if strings.Contains(a, "socket") {
				t.Errorf("gvs option passed to the director: %v", r.Args)
			}
		}
	}

	// cmdAdm turns a status into the error main exits with.
	var out, errOut bytes.Buffer
	err := cmdAdm([]string{"--socket", path, "-A", "-t", "198.18.0.100:80"}, &out, &errOut)
	var es exitStatus
	if !errors.As(err, &es) || es != 255 || errOut.String() != "Service already exists\n" {
		t.Errorf("cmdAdm = %v, stderr %q; want exit status 255", err, errOut.String())
	}
	if err := cmdAdm([]string{"--socket", path, "-Ln"}, &out, &errOut); err != nil {
		t.Errorf("cmdAdm -Ln = %v", err)
	}
}

func TestAdmRestoreSendsStdin(t *testing.T) {
	path, reqs := fakeDirector(t, func(context.Context, control.Request) control.Response { return control.Response{} })
	rules := "-A -t 198.18.0.100:80 -s rr\n-a -t 198.18.0.100:80 -r 198.18.0.5:80 -g -w 1\n"
	sent := [][]string{{"-R"}, {"--restore"}, {"-R", "--atomic"}, {"--atomic", "--restore"}}
	for _, args := range sent {
		if _, errOut, st := runAdm(append(slices.Clone(args), "--socket", path), rules, noEnv); st != 0 {
			t.Fatalf("%v: %q %d", args, errOut, st)
		}
	}
	got := reqs()
	if len(got) != len(sent) {
		t.Fatalf("%d requests, want %d", len(got), len(sent))
	}
	for i, r := range got {
		if r.Stdin != rules {
			t.Errorf("%v sent %q, want the rules", r.Args, r.Stdin)
		}
		// --atomic goes to the director, which applies it.
		if !slices.Equal(r.Args, sent[i]) {
			t.Errorf("sent arguments %q, want %q", r.Args, sent[i])
		}
	}
}

func TestAdmSocketChoice(t *testing.T) {
	path, _ := fakeDirector(t, func(_ context.Context, r control.Request) control.Response {
		return control.Response{Stdout: "ok\n"}
	})
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gvs.toml")
	if err := os.WriteFile(cfg, []byte("[director]\ncontrol_socket = \""+path+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noSock := filepath.Join(dir, "none.sock")
	env := func(k string) string {
		if k == "GVS_SOCKET" {
			return path
		}
		return ""
	}
	badEnv := func(k string) string {
		if k == "GVS_SOCKET" {
			return noSock
		}
		return ""
	}
	for _, tc := range []struct {
		name string
		args []string
		env  func(string) string
		ok   bool
	}{
		{"GVS_SOCKET", []string{"-Ln"}, env, true},
		{"-c first", []string{"-c", cfg, "-Ln"}, badEnv, true},
		{"--config anywhere", []string{"-Ln", "--config", cfg}, badEnv, true},
		{"--socket beats config", []string{"--socket", noSock, "-c", cfg, "-Ln"}, noEnv, false},
		{"--socket beats GVS_SOCKET", []string{"--socket=" + path, "-Ln"}, badEnv, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, st := runAdm(tc.args, "", tc.env)
			if tc.ok != (st == 0 && out == "ok\n") {
				t.Errorf("gvs adm %s: %q, %q, %d", strings.Join(tc.args, " "), out, errOut, st)
			}
		})
	}
	// -c after the command is ipvsadm's -c, passed on.
	var got []string
	p2, reqs := fakeDirector(t, func(_ context.Context, r control.Request) control.Response { return control.Response{} })
	runAdm([]string{"--socket", p2, "-L", "-n", "-c"}, "", noEnv)
	if rs := reqs(); len(rs) == 1 {
		got = rs[0].Args
	}
	if strings.Join(got, " ") != "-L -n -c" {
		t.Errorf("-L -n -c sent as %q", got)
	}
	for _, args := range [][]string{{"--socket"}, {"-c"}, {"-Ln", "--config="}} {
		if _, errOut, st := runAdm(args, "", noEnv); st != 2 || !strings.Contains(errOut, "needs") {
			t.Errorf("gvs adm %v: %q %d, want a usage error", args, errOut, st)
		}
	}
	if _, errOut, st := runAdm([]string{"-c", filepath.Join(dir, "missing.toml"), "-Ln"}, "", noEnv); st != 1 || errOut == "" {
		t.Errorf("missing config: %q %d", errOut, st)
	}
}

func TestAdmNoDirector(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "gvs.sock")
	out, errOut, st := runAdm([]string{"--socket", sock, "-Ln"}, "", noEnv)
	want := "gvs adm: cannot reach the director at " + sock + ": is gvs run running? (connect: no such file or directory)\n"
	if out != "" || errOut != want || st != 1 {
		t.Errorf("no director: %q, %q, %d\nwant stderr %q, status 1", out, errOut, st, want)
	}
}

func TestAdmHelpNeedsNoDirector(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}} {
		out, errOut, st := runAdm(append(args, "--socket", "/nonexistent/gvs.sock"), "", noEnv)
		if st != 0 || errOut != "" {
			t.Errorf("%v: %q %d", args, errOut, st)
		}
		for _, want := range []string{"Usage:\n  gvs adm -A|E virtual-service", "--socket PATH", "Examples:", "gvs adm -Ln"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v lacks %q:\n%s", args, want, out)
			}
		}
	}
}

// admHost is a host with one interface, up, for a director run in-process.
type admHost struct{}

func (admHost) Check(name string) (daemon.Interface, error) { return admHost{}.Interface(name) }
func (admHost) Interface(name string) (daemon.Interface, error) {
	return daemon.Interface{Name: name, MAC: []byte{2, 0, 0, 0, 0, 3}, MTU: 1500, Up: true}, nil
}
func (admHost) DefaultGateway(string) netip.Addr { return netip.Addr{} }

// TestAdmEndToEnd runs gvs adm against a whole director run in-process over an
// in-memory link.
func TestAdmEndToEnd(t *testing.T) {
	cfg, err := config.Parse("adm.toml", []byte("[director]\ninterface = \"gvs0\"\nconn_max = 4096\nconn_shards = 16\n"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(cfg, daemon.Deps{
		Logger: slog.New(slog.DiscardHandler),
		Host:   admHost{},
		OpenLinks: func(daemon.Interface, *afpacket.Filter, daemon.PacketOptions) ([]dataplane.Link, error) {
			return []dataplane.Link{linktest.NewChannel(16)}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	path, _ := fakeDirector(t, d.Handle)
	adm := func(stdin string, args ...string) (string, string, int) {
		return runAdm(append([]string{"--socket", path}, args...), stdin, noEnv)
	}
	for _, line := range []string{"-A -t 172.19.0.100:80 -s rr", "-a -t 172.19.0.100:80 -r 172.19.0.5 -g", "-a -t 172.19.0.100:80 -r 172.19.0.6 -g -w 2"} {
		if _, errOut, st := adm("", strings.Fields(line)...); st != 0 {
			t.Fatalf("%s: %q", line, errOut)
		}
	}
	const list = "IP Virtual Server version 1.2.1 (size=4096)\n" +
		"Prot LocalAddress:Port Scheduler Flags\n" +
		"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
		"TCP  172.19.0.100:80 rr\n" +
		"  -> 172.19.0.5:80                Route   1      0          0         \n" +
		"  -> 172.19.0.6:80                Route   2      0          0         \n"
	if out, _, _ := adm("", "-Ln"); out != list {
		t.Errorf("gvs adm -Ln:\n%s\nwant:\n%s", out, list)
	}
	saved, _, _ := adm("", "-S", "-n")
	if _, errOut, st := adm("", "-a", "-t", "172.19.0.100:80", "-r", "172.19.0.5"); st != 255 || errOut != "Destination already exists\n" {
		t.Errorf("duplicate real server: %q %d", errOut, st)
	}
	if _, _, st := adm("", "-C"); st != 0 {
		t.Fatal("-C failed")
	}
	if _, errOut, st := adm(saved, "-R"); st != 0 {
		t.Fatalf("-R: %q", errOut)
	}
	if out, _, _ := adm("", "-Ln"); out != list {
		t.Errorf("gvs adm -Ln after save, clear, restore:\n%s", out)
	}
}
