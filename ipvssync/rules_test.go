package ipvssync

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// sends drives Needed with one packet per step; state(i) gives the state at packet
// i (1-based) and at(i) its time. It returns the packets that were sent.
func sends(r Rules, c Conn, n int, state func(int) uint16, at func(int) time.Duration) []int {
	var s ConnState
	var got []int
	for i := 1; i <= n; i++ {
		if state != nil {
			c.State = state(i)
		}
		now := int64(time.Hour)
		if at != nil {
			now += int64(at(i))
		}
		if r.Needed(&c, &s, uint32(i), now) {
			got = append(got, i)
		}
	}
	return got
}

func TestNeeded(t *testing.T) {
	def := DefaultRules()
	tcp := Conn{Protocol: ProtoTCP, State: TCPEstablished, Timeout: 900 * time.Second}
	udp := Conn{Protocol: ProtoUDP, Timeout: 300 * time.Second}
	tests := []struct {
		name  string
		rules Rules
		conn  Conn
		n     int
		state func(int) uint16
		at    func(int) time.Duration
		want  []int
	}{
		{name: "established every 50 from 3", rules: def, conn: tcp, n: 160, want: []int{3, 53, 103, 153}},
		{name: "udp like established", rules: def, conn: udp, n: 110, want: []int{3, 53, 103}},
		{name: "syn states never", rules: def, conn: tcp, n: 60, state: func(int) uint16 { return TCPSynRecv }},
		{name: "changes other than to established are sent at once", rules: def, conn: tcp, n: 60,
			state: func(i int) uint16 {
				switch {
				case i < 2:
					return TCPSynRecv
				case i < 10:
					return TCPEstablished
				case i < 20:
					return TCPFinWait
				case i < 30:
					return TCPCloseWait
				}
				return TCPTimeWait
			},
			// ESTABLISHED at 2 is not forced: it waits for packet 3.
			want: []int{3, 10, 20, 30, 53}},
		{name: "one-packet never", rules: def, conn: Conn{Protocol: ProtoUDP, Flags: FlagOnePkt}, n: 60},
		{name: "persist mode skips controlled", rules: Rules{Threshold: 3, Period: 50, PersistMode: true},
			conn: Conn{Protocol: ProtoTCP, State: TCPEstablished, Controlled: true}, n: 60},
		{name: "persist mode off sends controlled", rules: def,
			conn: Conn{Protocol: ProtoTCP, State: TCPEstablished, Controlled: true}, n: 60, want: []int{3, 53}},
		{name: "templates ignore the period", rules: def,
			conn: Conn{Protocol: ProtoTCP, Flags: FlagTemplate, Timeout: 360 * time.Second}, n: 3, want: []int{1, 2, 3}},
		{name: "period 0: once at the threshold", rules: Rules{Threshold: 3}, conn: tcp, n: 200, want: []int{3}},
		{name: "zero rules: forced changes only", rules: Rules{}, conn: tcp, n: 60,
			state: func(i int) uint16 {
				if i < 40 {
					return TCPEstablished
				}
				return TCPFinWait
			},
			want: []int{40}},
		{name: "refresh: once per period of expiry movement",
			rules: Rules{Threshold: 3, RefreshPeriod: 60 * time.Second}, conn: tcp, n: 200,
			at:   func(i int) time.Duration { return time.Duration(i) * time.Second },
			want: []int{1, 61, 121, 181}},
		{name: "refresh with retries spaced period/8",
			rules: Rules{Threshold: 3, RefreshPeriod: 80 * time.Second, Retries: 2}, conn: tcp, n: 100,
			at: func(i int) time.Duration { return time.Duration(i) * time.Second },
			// 1, then repeats 10 s (80/8) apart: 11, 21; then suppressed until the
			// expiry moved 80 s past the last send.
			want: []int{1, 11, 21}},
		{name: "refresh bounded by half the timeout",
			rules: Rules{Threshold: 3, RefreshPeriod: time.Hour},
			conn:  Conn{Protocol: ProtoTCP, State: TCPEstablished, Timeout: 40 * time.Second}, n: 100,
			at:   func(i int) time.Duration { return time.Duration(i) * time.Second },
			want: []int{1, 21, 41, 61, 81}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sends(tt.rules, tt.conn, tt.n, tt.state, tt.at)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("sent at packets %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRulesValidate(t *testing.T) {
	for _, r := range []Rules{{Threshold: 50, Period: 50}, {Threshold: 3, Period: 50, Retries: 4}, {RefreshPeriod: -1}} {
		if err := r.Validate(); !errors.Is(err, ErrRules) {
			t.Errorf("%+v: %v, want ErrRules", r, err)
		}
	}
	for _, r := range []Rules{DefaultRules(), {Threshold: 70}, {Threshold: 3, Period: 50, Retries: 3}} {
		if err := r.Validate(); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
}

func TestNeededAllocs(t *testing.T) {
	r := DefaultRules()
	c := Conn{Protocol: ProtoTCP, State: TCPEstablished, Timeout: time.Minute}
	var s ConnState
	p := uint32(0)
	if n := testing.AllocsPerRun(1000, func() { p++; r.Needed(&c, &s, p, int64(p)) }); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

// BenchmarkNeeded is the rule's cost per packet of an established connection (the
// common case: not sent), the part of the sync decision the worker pays per packet.
func BenchmarkNeeded(b *testing.B) {
	r := DefaultRules()
	c := Conn{Protocol: ProtoTCP, State: TCPEstablished, Timeout: 900 * time.Second}
	var s ConnState
	pkts, now := uint32(0), int64(time.Hour)
	sent := 0
	b.ReportAllocs()
	for b.Loop() {
		pkts++
		now += 1000
		if r.Needed(&c, &s, pkts, now) {
			sent++
		}
	}
	b.ReportMetric(float64(sent)/float64(b.N), "sends/op")
}
