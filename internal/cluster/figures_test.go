package cluster

import (
	"testing"
	"time"
)

// TestSyncBytesPerConnection measures sync traffic per new TCP connection on the
// wire (IPv4 and UDP headers included) as the kernel's rule sends it: one record when
// a connection reaches packet 3 in ESTABLISHED, one when it enters FIN_WAIT — for a
// steady rate of new connections, with gvs's 100 ms flush and the kernel's 2 s. The
// design's bar is 150 bytes at 200 connections/s.
func TestSyncBytesPerConnection(t *testing.T) {
	for _, tc := range []struct {
		rate  int
		flush time.Duration
		max   float64
	}{
		{200, 100 * time.Millisecond, 150},
		{20, 100 * time.Millisecond, 150},
		{200, 2 * time.Second, 150},
		{2000, 100 * time.Millisecond, 150},
	} {
		w := newFakeNet(t)
		a := w.add("d1", func(c *Config) { c.SyncFlush = tc.flush })
		w.add("d2", func(c *Config) { c.SyncFlush = tc.flush })
		w.start("d1", "d2")
		w.run(1500 * time.Millisecond)
		w.syncMsgs, w.syncLen = 0, 0
		// Each connection lives 1 s: ESTABLISHED at its start, FIN_WAIT at its end.
		const seconds = 10
		perStep := tc.rate / 100 // 10 ms steps
		if perStep == 0 {
			perStep = 1
		}
		n := 0
		var fins [][]int
		for step := 0; step < seconds*100; step++ {
			var started []int
			if tc.rate >= 100 || step%(100/tc.rate) == 0 {
				for range perStep {
					e := conn(n, 5)
					a.n.Enqueue(&e, w.now)
					started = append(started, n)
					n++
				}
			}
			fins = append(fins, started)
			if step >= 100 {
				for _, i := range fins[step-100] {
					e := conn(i, 5)
					e.State = 4 // FIN_WAIT
					a.n.Enqueue(&e, w.now)
				}
			}
			w.run(10 * time.Millisecond)
		}
		w.run(3 * time.Second) // everything flushed
		wire := w.syncLen + w.syncMsgs*28
		perConn := float64(wire) / float64(n)
		t.Logf("%d conn/s, flush %v: %d connections, %d messages, %.1f bytes/connection on the wire",
			tc.rate, tc.flush, n, w.syncMsgs, perConn)
		if perConn > tc.max {
			t.Errorf("%.1f bytes per connection, bar %.0f", perConn, tc.max)
		}
	}
}

// TestBulk100k times a join against a director holding 100,000 connections at the
// default bulk_rate (200,000 records/s): on the fake clock, and the processing it costs.
func TestBulk100k(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 entries")
	}
	w := newFakeNet(t)
	a := w.add("d1", nil)
	w.start("d1")
	w.runUntil(2*time.Second, a.n.Warm)
	for i := range 100000 {
		e := conn(i, byte(5+i%4))
		e.CAddr = e.CAddr.Next()
		a.table.own(e, w.now, w.now)
	}
	c := w.add("d3", nil)
	w.start("d3")
	wall := time.Now()
	full, ok := w.runUntil(30*time.Second, func() bool { return c.table.len() == 100000 })
	if !ok || c.n.Warm() {
		t.Fatalf("all entries %v, ready %v before them", ok, c.n.Warm())
	}
	ready, ok := w.runUntil(30*time.Second, c.n.Warm)
	if !ok {
		t.Fatal("d3 never ready")
	}
	t.Logf("bulk of 100,000 entries: all present %v after joining on the clock, ready %v later (the 1 s discovery window); %v of processing for both directors",
		full, ready, time.Since(wall).Round(time.Millisecond))
	if full > 600*time.Millisecond {
		t.Fatalf("took %v, want about 0.5 s at 200,000 records/s", full)
	}
}

type nopSink struct{}

func (nopSink) Upsert(*Entry, uint8, time.Time) bool { return true }

type nopTable struct{}

func (nopTable) Walk(uint64, int, time.Time, func(*Entry, *EntryMeta) bool) (uint64, bool) {
	return 0, true
}

type nopTransport struct{}

func (nopTransport) SendSync(int, []byte) error    { return nil }
func (nopTransport) SendControl([]byte) error      { return nil }
func (nopTransport) OpenPush() (PushSender, error) { return nopPush{}, nil }

type nopPush struct{}

func (nopPush) SendSync(int, []byte) error { return nil }
func (nopPush) Port() uint16               { return 40001 }
func (nopPush) Close() error               { return nil }

// BenchmarkEnqueue is the sync goroutine's cost per entry: translate, encode, and
// every 40th a message handed to the transport.
func BenchmarkEnqueue(b *testing.B) {
	n, err := NewNode(DefaultConfig("d1"), Deps{Sink: nopSink{}, Table: nopTable{}, Transport: nopTransport{}})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	n.Start(now)
	e := conn(1, 5)
	b.ReportAllocs()
	for b.Loop() {
		n.Enqueue(&e, now)
	}
}

// BenchmarkHandleSync is the receiver's cost per full message (40 IPv4 records)
// up to the Sink: screen, decode, translate.
func BenchmarkHandleSync(b *testing.B) {
	n, err := NewNode(DefaultConfig("d1"), Deps{Sink: nopSink{}, Table: nopTable{}, Transport: nopTransport{}})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	msg := fullMessage(b)
	from := netipAddrPort("198.18.0.22:40000")
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		n.HandleSync(from, msg, now)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*40), "ns/record")
}
