package vrrp

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"
)

func TestDropLogOncePerChange(t *testing.T) {
	d := newDropLog(10 * time.Second)
	m := &Member{Name: "VI_1"}
	t0 := time.Unix(1_700_000_000, 0)
	a, b := mustAddr("198.18.0.4"), mustAddr("198.18.0.5")
	step := func(at time.Duration, r Reason, src interface{ String() string }, wantLog bool, wantSupp uint64) {
		t.Helper()
		ok, n := d.note(m, r, mustAddr(src.String()), t0.Add(at))
		if ok != wantLog || n != wantSupp {
			t.Fatalf("at %v %v from %v: log=%v suppressed=%d, want %v %d", at, r, src, ok, n, wantLog, wantSupp)
		}
	}
	step(0, ErrTTL, a, true, 0)
	for i := 1; i <= 100; i++ { // a flood, every 100 ms: counted, not logged
		step(time.Duration(i)*100*time.Millisecond, ErrTTL, a, false, 0)
	}
	step(10100*time.Millisecond, ErrAuthData, a, true, 0) // another reason: its own line
	step(10200*time.Millisecond, ErrTTL, b, true, 100)    // sender changed
	step(10300*time.Millisecond, ErrTTL, b, false, 0)
	step(25*time.Second, ErrTTL, b, true, 1) // quiet for ≥ 10 s
	// Decode drops are keyed by transport, separately from members.
	tr := newFakeTransport()
	if ok, _ := d.note(tr, ErrTTL, b, t0.Add(25*time.Second)); !ok {
		t.Fatal("transport drop not logged the first time")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunnerDropFloodLogsOnce(t *testing.T) {
	testutil.CheckLeaks(t)
	c := testutil.NewClock(t)
	rec := newRecorder()
	var buf syncBuffer
	in, _ := NewInstance(runnerConfig(100))
	tr := newFakeTransport()
	opts := rec.opts(c)
	opts.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := NewRunner([]Member{{Name: "VI_1", Instance: in, Transport: tr}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitState(t, rec, StateBackup)
	const flood = 200
	// The Runner arms a new timer after each packet it handles: once flood+1 more
	// timers exist, every drop is counted and logged.
	c.BlockUntil(1)
	n := c.Created()
	for range flood {
		bad := advertFrom(runnerPeer, 150)
		bad.HopLimit = 64
		tr.in <- bad
	}
	other := advertFrom(mustAddr("198.18.0.9"), 150) // a second sender with the same fault
	other.HopLimit = 64
	tr.in <- other
	c.BlockUntilCreated(n + flood + 1)
	if got := r.Drops()[ErrTTL]; got != flood+1 {
		t.Fatalf("%d TTL drops, want %d", got, flood+1)
	}
	out := buf.String()
	if n := strings.Count(out, "(VI_1) advert from 198.18.0.4 dropped: TTL/hop limit is not 255"); n != 1 {
		t.Fatalf("%d log lines for the flood from 198.18.0.4, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "dropped:"); n != 2 {
		t.Fatalf("%d drop lines, want 2 (one per sender):\n%s", n, out)
	}
	if !strings.Contains(out, "suppressed="+strconv.Itoa(flood-1)) {
		t.Fatalf("the sender change does not report the %d suppressed drops:\n%s", flood-1, out)
	}
}
