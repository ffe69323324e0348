package health

import (
	"bytes"
	"testing"
	"time"
)

func TestUDP(t *testing.T) {
	forEachFamily(t, func(t *testing.T, fam family) {
		const timeout = 200 * time.Millisecond
		echo := udpServer(t, fam, func(b []byte) []byte { return append([]byte("pong "), b...) })
		silent := udpServer(t, fam, func([]byte) []byte { return nil })
		closed := closedUDPPort(t, fam)
		tests := []struct {
			name   string
			spec   Spec
			up     bool
			reason string
		}{
			{"reply required and received", Spec{Target: echo, Payload: []byte("ping"), ExpectReply: true}, true, "reply"},
			{"reply matches", Spec{Target: echo, Payload: []byte("ping"), ExpectReply: true, Expect: "pong ping"}, true, "reply"},
			{"reply contains", Spec{Target: echo, Payload: []byte("ping"), Expect: "ping"}, true, "reply"},
			{"expect requires a reply", Spec{Target: silent, Expect: "pong"}, false, "timeout after 200ms"},
			{"reply does not match", Spec{Target: echo, Payload: []byte("ping"), ExpectReply: true, Expect: "PONG"}, false, "unexpected reply"},
			{"empty payload", Spec{Target: echo, ExpectReply: true, Expect: "pong"}, true, "reply"},
			{"reply required, none comes", Spec{Target: silent, ExpectReply: true}, false, "timeout after 200ms"},
			{"no reply required, none comes", Spec{Target: silent}, true, "no ICMP error"},
			{"no reply required, one comes", Spec{Target: echo}, true, "reply"},
			{"port unreachable", Spec{Target: closed}, false, "port unreachable"},
			{"port unreachable, reply required", Spec{Target: closed, ExpectReply: true}, false, "port unreachable"},
			{"connect_port to the echo server", Spec{Target: closed, ConnectPort: echo.Port(), ExpectReply: true}, true, "reply"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := tt.spec
				s.Type, s.Timeout = UDP, 5*time.Second // generous: not a speed test
				if s.Target == silent {
					s.Timeout = timeout // the cases about silence
				}
				wantResult(t, mustCheck(t, s), tt.up, tt.reason)
			})
		}
		t.Run("payload sent as configured", func(t *testing.T) {
			got := make(chan []byte, 1)
			srv := udpServer(t, fam, func(b []byte) []byte {
				got <- bytes.Clone(b)
				return []byte{}
			})
			wantUp(t, mustCheck(t, Spec{Type: UDP, Target: srv, Payload: []byte{0, 1, 0xff}, ExpectReply: true, Timeout: 5 * time.Second}), "reply")
			if b := <-got; !bytes.Equal(b, []byte{0, 1, 0xff}) {
				t.Errorf("server got %x", b)
			}
		})
	})
}

func wantResult(t *testing.T, r Result, up bool, reason string) {
	t.Helper()
	if r.Up != up || r.Reason != reason {
		t.Errorf("got %+v, want up=%v reason %q", r, up, reason)
	}
}
