package lab

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// DemoResult is what the demo observed, for its tests.
type DemoResult struct {
	Answers []string // the body of each request through the VIP, in order
	Capture []string // the first SYN arriving at and leaving the director, tcpdump -e -n style
}

// Demo runs the seed-000 experiment end to end in a fresh DR lab: a director runs
// `gvs run`, the client makes ten HTTP requests through the VIP (rr over rs1 and
// rs2 answers rs2 rs1 rs2 rs1 …: the server added last is first in the kernel's list),
// and the director's wire shows the MAC rewrite of the first SYN, before and after.
// The lab is torn down at the end, also on error or cancellation.
func Demo(ctx context.Context, w io.Writer, spec Spec) (*DemoResult, error) {
	if spec.Prefix == "" {
		var b [2]byte
		_, _ = rand.Read(b[:])
		spec.Prefix = "gvd" + hex.EncodeToString(b[:])
	}
	spec.Mode = DR
	if spec.RealServers == 0 {
		spec.RealServers = 2
	}
	fmt.Fprintf(w, "== gvs lab demo: the LVS-DR experiment of the seed article, in network namespaces\n")
	l, err := Up(ctx, spec)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := l.Down(); err != nil {
			fmt.Fprintf(w, "teardown: %v\n", err)
		}
	}()
	for _, h := range l.Hosts() {
		addr, mac := "", ""
		if len(h.Links) > 0 {
			addr, mac = h.Links[0].Addr.Addr().String(), h.Links[0].MAC.String()
		}
		fmt.Fprintf(w, "   %-16s %-13s %-17s %s\n", h.NS, addr, mac, l.describe(h))
	}
	fmt.Fprintf(w, "\n== %s-dir1: gvs run -c %s (the VIP %s is on no kernel interface: gvs answers ARP for it)\n", l.Prefix(), l.ConfigPath("dir1"), l.VIP())
	if _, err := l.Start(ctx, "dir1", "director", "run", "-c", l.ConfigPath("dir1"), "--workers", "1"); err != nil {
		return nil, err
	}
	if err := l.waitServing(ctx); err != nil {
		return nil, err
	}

	capture, stopCapture, err := l.captureSYNs(ctx, "dir1", 2)
	if err != nil {
		return nil, err
	}
	res := &DemoResult{}
	fmt.Fprintf(w, "\n== %s-client: for a in {1..10}; do curl %s; done\n", l.Prefix(), l.VIP())
	url := "http://" + netip.AddrPortFrom(l.VIP(), l.spec.HTTPPort).String() + "/"
	for range 10 {
		body, err := l.HTTPGet("client", url, 3*time.Second)
		if err != nil {
			stopCapture()
			return res, fmt.Errorf("lab demo: request through the VIP: %w", err)
		}
		body = strings.TrimSpace(body)
		res.Answers = append(res.Answers, body)
		fmt.Fprintln(w, body)
	}
	res.Capture = stopCapture()
	fmt.Fprintf(w, "\n== %s-dir1: %s\n", l.Prefix(), capture)
	fmt.Fprintf(w, "   the first SYN arrives from the client's MAC for the director's, and leaves\n")
	fmt.Fprintf(w, "   with only the MACs changed (and the TTL one lower): IP addresses stay, the real\n")
	fmt.Fprintf(w, "   server accepts it because the VIP is on its lo, and answers the client directly.\n")
	for _, line := range res.Capture {
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "\n== tearing the lab down (gvs lab up keeps one for you to explore)\n")
	return res, nil
}

// waitServing waits until the director answers for the VIP, probing the UDP service
// (its scheduler is separate from the HTTP service's, so the demo's rr sequence
// starts fresh).
func (l *Lab) waitServing(ctx context.Context) error {
	addr := netip.AddrPortFrom(l.VIP(), l.spec.UDPPort)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := l.UDPAsk("client", addr, "ping", 300*time.Millisecond); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lab demo: the director did not start serving %s within 15s (see %s)", addr, l.RunDir())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// captureSYNs records the first n TCP SYNs (without ACK) on host's eth0 with tcpdump
// when it is installed. It returns a description of the capture and a stop function
// that returns the captured lines. Without tcpdump it captures with gvs's own AF_PACKET
// tap (the same view tcpdump has).
func (l *Lab) captureSYNs(ctx context.Context, host string, n int) (string, func() []string, error) {
	if path, err := exec.LookPath("tcpdump"); err == nil {
		cmd, err := l.Command(ctx, host, path, "-e", "-n", "-l", "-i", "eth0", "-c", fmt.Sprint(n), "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn")
		if err != nil {
			return "", nil, err
		}
		var out bytes.Buffer
		stderr, err := cmd.StderrPipe()
		if err != nil {
			return "", nil, err
		}
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			return "", nil, fmt.Errorf("lab demo: tcpdump: %w", err)
		}
		// tcpdump prints "listening on …" once its filter is attached.
		ready := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(stderr)
			once := sync.Once{}
			for sc.Scan() {
				if strings.Contains(sc.Text(), "listening on") {
					once.Do(func() { close(ready) })
				}
			}
			once.Do(func() { close(ready) })
		}()
		select {
		case <-ready:
		case <-time.After(5 * time.Second):
		}
		stop := func() []string {
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(3 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			return nonEmptyLines(out.String())
		}
		return "tcpdump -e -n -i eth0 (TCP SYNs)", stop, nil
	}
	stop, err := l.tapSYNs(host, n)
	if err != nil {
		return "", nil, err
	}
	return "gvs's own capture of eth0 (install tcpdump to see tcpdump -e -n itself)", stop, nil
}

func nonEmptyLines(s string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) != "" {
			out = append(out, line)
		}
	}
	return out
}
