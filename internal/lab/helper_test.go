package lab

import (
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
