package lab

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeLoopback runs the real-server helper in-process on loopback: HTTP
// answers the name, and the UDP echo answers from the address it was asked on —
// 127.0.0.2 here, standing in for the VIP — or a connected client would never see
// the reply.
func TestServeLoopback(t *testing.T) {
	hl, uc, err := listenServe("127.0.0.1:0", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, slog.New(slog.DiscardHandler), "rs7", hl, uc, func() { close(ready) })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("serve did not stop")
		}
	})
	<-ready

	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + hl.Addr().String() + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "rs7\n" {
		t.Errorf("HTTP body %q, want %q", body, "rs7\n")
	}

	// /whoami names the peer as the server sees it; /bytes streams the pattern.
	resp, err = c.Get("http://" + hl.Addr().String() + "/whoami")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if f := strings.Fields(string(body)); len(f) != 2 || f[0] != "rs7" || !strings.HasPrefix(f[1], "127.0.0.1:") {
		t.Errorf("/whoami: %q, want \"rs7 127.0.0.1:PORT\"", body)
	}
	const n = 300_001
	resp, err = c.Get("http://" + hl.Addr().String() + "/bytes?n=300001")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	want := make([]byte, n)
	PatternBytes(want, 0)
	if !bytes.Equal(body, want) {
		t.Errorf("/bytes?n=%d: %d bytes, equal to the pattern: %v", n, len(body), bytes.Equal(body, want))
	}
	for _, bad := range []string{"/bytes", "/bytes?n=-1", "/bytes?n=16777217", "/bytes?n=x"} {
		resp, err := c.Get("http://" + hl.Addr().String() + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %s, want 400", bad, resp.Status)
		}
	}

	port := uc.LocalAddr().(*net.UDPAddr).Port
	for _, to := range []string{"127.0.0.1", "127.0.0.2"} {
		got, err := udpAsk(to, port, "ping")
		if err != nil {
			t.Errorf("UDP echo via %s: %v", to, err)
		} else if got != "rs7: ping" {
			t.Errorf("UDP echo via %s: %q, want %q", to, got, "rs7: ping")
		}
	}
}

// udpAsk sends msg from a connected socket (which accepts replies only from
// addr) and returns the answer.
func udpAsk(addr string, port int, msg string) (string, error) {
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(addr), Port: port})
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, 1500)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func TestRunHelperUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"bogus"},
		{"serve"},                          // no --name
		{"serve", "--name", "rs1", "more"}, // stray argument
		{"rs-tun", "--nope"},
	} {
		err := RunHelper(context.Background(), args, io.Discard)
		if !errors.Is(err, ErrUsage) {
			t.Errorf("RunHelper(%q) = %v, want ErrUsage", strings.Join(args, " "), err)
		}
	}
}

// TestPatternBytes: the stream is the same cut anywhere, and not short-periodic.
func TestPatternBytes(t *testing.T) {
	all := make([]byte, 1<<16)
	PatternBytes(all, 0)
	part := make([]byte, 1000)
	PatternBytes(part, 12345)
	if !bytes.Equal(part, all[12345:13345]) {
		t.Fatal("PatternBytes depends on where the stream is cut")
	}
	for _, period := range []int{1, 2, 251, 256, 1024, 1448, 4096} {
		if bytes.Equal(all[:8192], all[period:period+8192]) {
			t.Errorf("the pattern repeats with period %d", period)
		}
	}
}
