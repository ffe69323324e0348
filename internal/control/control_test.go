package control

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"
)

// echo answers with its arguments on stdout and its stdin on stderr, and exits
// with the number of arguments.
var echo = HandlerFunc(func(_ context.Context, req Request) Response {
	return Response{Stdout: strings.Join(req.Args, " ") + "\n", Stderr: req.Stdin, Status: len(req.Args)}
})

// serve runs Serve on a socket in a fresh directory until the test ends, and
// checks that it returned nil.
func serve(t *testing.T, h Handler) (path string, stop func()) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "gvs.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve = %v, want nil", err)
			}
		})
	}
	t.Cleanup(stop)
	return path, stop
}

func TestRoundTrip(t *testing.T) {
	testutil.CheckLeaks(t)
	path, stop := serve(t, echo)

	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		t.Errorf("%s: mode %v, want a socket", path, fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket permissions %#o, want 0600", perm)
	}
	// Nothing but the socket is left in the directory (the private bind
	// directory is gone).
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the socket", len(ents))
	}

	resp, err := Call(path, Request{Args: []string{"-R"}, Stdin: "-A -t 198.18.0.100:80 -s rr\n"})
	if err != nil {
		t.Fatal(err)
	}
	want := Response{Version: Version, Stdout: "-R\n", Stderr: "-A -t 198.18.0.100:80 -s rr\n", Status: 1}
	if resp != want {
		t.Errorf("Call = %+v, want %+v", resp, want)
	}

	stop()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket still there after Serve returned: %v", err)
	}
	if _, err := Call(path, Request{Args: []string{"-L"}}); err == nil {
		t.Error("Call after stop succeeded")
	}
}

func TestConcurrentCalls(t *testing.T) {
	testutil.CheckLeaks(t)
	path, _ := serve(t, echo)
	var wg sync.WaitGroup
	errs := make(chan error, 3*MaxConns)
	for i := range 3 * MaxConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := []string{"-L", strings.Repeat("x", i)}
			resp, err := Call(path, Request{Args: args})
			if err == nil && resp.Stdout != strings.Join(args, " ")+"\n" {
				err = errors.New("wrong answer " + resp.Stdout)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	testutil.CheckLeaks(t)
	path := filepath.Join(t.TempDir(), "gvs.sock")
	// A director that crashed leaves its socket file with nobody listening.
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left behind: %v", err)
	}
	_, err = Call(path, Request{Args: []string{"-L"}})
	var de *DialError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Call to a stale socket = %v, want a DialError saying connection refused", err)
	}

	l, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Serve(ctx, echo) }()
	defer func() { cancel(); <-done }()
	if resp, err := Call(path, Request{Args: []string{"-Ln"}}); err != nil || resp.Stdout != "-Ln\n" {
		t.Errorf("Call = %+v, %v", resp, err)
	}
}

func TestSecondServerRefused(t *testing.T) {
	testutil.CheckLeaks(t)
	path, _ := serve(t, echo)
	l, err := Listen(path)
	if !errors.Is(err, ErrInUse) {
		if l != nil {
			l.Close()
		}
		t.Fatalf("second Listen = %v, want ErrInUse", err)
	}
	// The first director is untouched.
	if resp, err := Call(path, Request{Args: []string{"-L"}}); err != nil || resp.Stdout != "-L\n" {
		t.Errorf("first server after a refused second one: %+v, %v", resp, err)
	}
	// And the refused one left no debris.
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the socket", len(ents))
	}
}

func TestNotASocketIsLeftAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gvs.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if l, err := Listen(path); err == nil {
		l.Close()
		t.Fatal("Listen over a regular file succeeded")
	} else if !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen = %v, want a 'not a socket' error", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Errorf("file at the socket path changed: %q", b)
	}
}

func TestListenCreatesDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "gvs", "gvs.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Error(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
}

// rawCall writes b on a fresh connection (closing the write side), in the
// background, and decodes the response.
func rawCall(t *testing.T, path string, b []byte) Response {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		c.Write(b) // may fail once the server stops reading
		c.(*net.UnixConn).CloseWrite()
	}()
	var resp Response
	err = json.NewDecoder(c).Decode(&resp)
	c.Close()
	<-wrote
	if err != nil {
		t.Fatalf("decoding the response: %v", err)
	}
	return resp
}

func TestOversizedRequestRejected(t *testing.T) {
	testutil.CheckLeaks(t)
	called := make(chan struct{}, 1)
	path, _ := serve(t, HandlerFunc(func(context.Context, Request) Response {
		called <- struct{}{}
		return Response{}
	}))
	big := `{"version":1,"args":["-R"],"stdin":"` + strings.Repeat("a", MaxRequestSize) + `"}`
	resp := rawCall(t, path, []byte(big))
	if resp.Status == 0 || !strings.Contains(resp.Stderr, "larger than") {
		t.Errorf("oversized request: %+v, want a refusal", resp)
	}
	select {
	case <-called:
		t.Error("the handler ran for an oversized request")
	default:
	}
	// The client refuses to send one in the first place.
	if _, err := Call(path, Request{Args: []string{"-R"}, Stdin: strings.Repeat("a", MaxRequestSize)}); err == nil || !strings.Contains(err.Error(), "larger than the limit") {
		t.Errorf("Call with an oversized request = %v", err)
	}
}

func TestBadRequests(t *testing.T) {
	testutil.CheckLeaks(t)
	path, _ := serve(t, echo)
	for _, tc := range []struct {
		name, req, want string
	}{
		{"version", `{"version":99,"args":["-L"]}`, "protocol version 99"},
		{"no version", `{"args":["-L"]}`, "protocol version 0"},
		{"not json", `-Ln`, "bad request"},
		{"truncated", `{"version":1,"args":["-L"`, "bad request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := rawCall(t, path, []byte(tc.req))
			if resp.Status != 1 || !strings.Contains(resp.Stderr, tc.want) || resp.Version != Version {
				t.Errorf("got %+v, want status 1 and %q", resp, tc.want)
			}
		})
	}
}

func TestCallErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gvs.sock")
	_, err := Call(path, Request{Args: []string{"-Ln"}})
	var de *DialError
	if !errors.As(err, &de) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Call with nothing listening = %v (%T), want a DialError wrapping ErrNotExist", err, err)
	}
	want := "cannot reach the director at " + path + ": is gvs run running? (connect: no such file or directory)"
	if err.Error() != want {
		t.Errorf("error text\n got %q\nwant %q", err, want)
	}

	// A server that answers garbage is a receive error, not a crash.
	lpath := filepath.Join(t.TempDir(), "bad.sock")
	ln, err := net.Listen("unix", lpath)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(io.Discard, c)
		c.Write([]byte("not json"))
		c.Close()
	}()
	var oe *OpError
	if _, err := Call(lpath, Request{Args: []string{"-L"}}); !errors.As(err, &oe) || oe.Op != "receive" {
		t.Errorf("Call to a garbage server = %v, want a receive OpError", err)
	}
}

func TestShutdownWaitsForHandlers(t *testing.T) {
	testutil.CheckLeaks(t)
	started := make(chan struct{})
	path, stop := serve(t, HandlerFunc(func(ctx context.Context, _ Request) Response {
		close(started)
		<-ctx.Done() // the handler sees the shutdown
		return Response{Stdout: "cancelled\n", Status: 3}
	}))
	got := make(chan Response, 1)
	go func() {
		resp, err := Call(path, Request{Args: []string{"-L"}})
		if err != nil {
			t.Error(err)
		}
		got <- resp
	}()
	<-started
	stop() // returns only after the handler did
	if r := <-got; r.Status != 3 {
		t.Errorf("response of a request in flight at shutdown: %+v", r)
	}
}

// TestCloseLeavesNewerSocket: a director that stops after a newer one took over
// the path (its listener closed first, so the newer one replaced the socket as
// stale) leaves the newer one's socket in place; the newer one removes its own.
func TestCloseLeavesNewerSocket(t *testing.T) {
	testutil.CheckLeaks(t)
	path := filepath.Join(t.TempDir(), "gvs.sock")
	older, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	// The older director stops accepting; before it unlinks, a newer one starts.
	older.ln.Close()
	newer, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen after the older director stopped accepting: %v", err)
	}
	if err := older.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil || !os.SameFile(fi, newer.fi) {
		t.Fatalf("the older director's Close removed or replaced the newer one's socket: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- newer.Serve(ctx, echo) }()
	if resp, err := Call(path, Request{Args: []string{"-L"}}); err != nil || resp.Stdout != "-L\n" {
		t.Errorf("the newer director after the older one stopped: %+v, %v", resp, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the newer director left its socket behind: %v", err)
	}
}
