package health

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestTCP(t *testing.T) {
	forEachFamily(t, func(t *testing.T, fam family) {
		open := tcpServer(t, fam, nil)
		closed := closedPort(t, fam)
		tests := []struct {
			name   string
			spec   Spec
			up     bool
			reason string
		}{
			{"up", Spec{Type: TCP, Target: open}, true, "connected"},
			{"refused", Spec{Type: TCP, Target: closed}, false, "connect refused"},
			{"connect_port overrides the service port", Spec{Type: TCP, Target: closed, ConnectPort: open.Port()}, true, "connected"},
			{"connect_port to a closed port", Spec{Type: TCP, Target: open, ConnectPort: closed.Port()}, false, "connect refused"},
			{"connect_ip overrides the address", Spec{Type: TCP, Target: netip.MustParseAddrPort("198.18.0.5:1"),
				ConnectIP: open.Addr(), ConnectPort: open.Port()}, true, "connected"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := mustCheck(t, tt.spec)
				if r.Up != tt.up || r.Reason != tt.reason || r.Weight != WeightUnchanged {
					t.Errorf("got %+v, want up=%v reason %q", r, tt.up, tt.reason)
				}
			})
		}
	})
}

func TestTCPConnectNameLocalhost(t *testing.T) {
	fam := families[0]
	open := tcpServer(t, fam, nil)
	r := mustCheck(t, Spec{Type: TCP, ID: "x", ConnectName: "localhost", ConnectPort: open.Port()})
	// localhost may resolve to ::1 first, where nothing listens on this port.
	if !r.Up && r.Reason != "connect refused" {
		t.Errorf("got %+v", r)
	}
}

func TestTCPUnresolvableName(t *testing.T) {
	start := time.Now()
	// .invalid never resolves (RFC 6761 §6.4).
	r := mustCheck(t, Spec{Type: TCP, ID: "x", ConnectName: "no-such-host.invalid", ConnectPort: 80,
		Timeout: 300 * time.Millisecond})
	if r.Up || (!strings.HasPrefix(r.Reason, "resolve no-such-host.invalid") && r.Reason != "timeout after 300ms") {
		t.Errorf("got %+v, want a resolve failure or the timeout", r)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v, not bounded by the timeout", d)
	}
}

func TestCanceledContext(t *testing.T) {
	fam := families[0]
	c, err := New(Spec{Type: TCP, Target: tcpServer(t, fam, nil), Interval: time.Second, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	wantDown(t, c.Check(ctx), "canceled")
}

func TestCallerDeadlineShorterThanTimeout(t *testing.T) {
	fam := families[0]
	hang := tcpServer(t, fam, blockUntilClosed)
	c, err := New(Spec{Type: HTTP, Target: hang, Interval: time.Second, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r := c.Check(ctx)
	if r.Up || !strings.HasPrefix(r.Reason, "timeout after ") {
		t.Errorf("got %+v, want a timeout", r)
	}
}
