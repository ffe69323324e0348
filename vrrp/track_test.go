package vrrp

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"
)

// TestWeightedTrack: keepalived's weight rules, with and without reverse.
func TestWeightedTrack(t *testing.T) {
	for _, c := range []struct {
		weight  int
		reverse bool
		up      bool
		want    TrackState
	}{
		{0, false, true, TrackState{}},
		{0, false, false, TrackState{Fault: true}},
		{0, true, true, TrackState{Fault: true}},
		{0, true, false, TrackState{}},
		{-20, false, true, TrackState{}},
		{-20, false, false, TrackState{Delta: -20}},
		{-20, true, true, TrackState{Delta: -20}},
		{-20, true, false, TrackState{}},
		{15, false, true, TrackState{Delta: 15}},
		{15, false, false, TrackState{}},
		{15, true, true, TrackState{}},
		{15, true, false, TrackState{Delta: 15}},
	} {
		up := c.up
		if got := WeightedTrack("x", c.weight, c.reverse, func() bool { return up }).State(); got != c.want {
			t.Errorf("weight %d reverse %v up %v: %+v, want %+v", c.weight, c.reverse, c.up, got, c.want)
		}
	}
}

// TestRunnerReassess: a track's new state takes effect when Reassess is called,
// without waiting for the next poll (the fake clock never moves); deltas add up and
// clamp at 1–254; a fault names the track.
func TestRunnerReassess(t *testing.T) {
	testutil.CheckLeaks(t)
	c := testutil.NewClock(t)
	rec := newRecorder()
	in, _ := NewInstance(runnerConfig(100))
	tr := newFakeTransport()
	var delta atomic.Int64
	var fault atomic.Bool
	r, err := NewRunner([]Member{{Name: "VI_1", Instance: in, Transport: tr, Tracks: []Track{
		{Name: "file /run/prio", State: func() TrackState { return TrackState{Delta: int(delta.Load())} }},
		{Name: "script chk", State: func() TrackState { return TrackState{Fault: fault.Load()} }},
	}}}, rec.opts(c))
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, r)
	waitState(t, rec, StateBackup)
	for _, d := range []struct {
		delta int64
		want  uint8
	}{{30, 130}, {200, 254}, {-150, 1}, {0, 100}} {
		delta.Store(d.delta)
		r.Reassess()
		testutil.Eventually(t, 5*time.Second, func() bool { return r.Status()[0].Priority == d.want }, "priority with delta", d.delta)
	}
	fault.Store(true)
	r.Reassess()
	if x := waitState(t, rec, StateFault); x.Reason != "script chk down" {
		t.Fatalf("reason %q", x.Reason)
	}
	fault.Store(false)
	r.Reassess()
	waitState(t, rec, StateBackup)
}

// runUntilCleanup runs r until the test ends.
func runUntilCleanup(t *testing.T, r *Runner) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}
