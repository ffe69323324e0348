// Package testutil holds the helpers gvs's tests share: a goroutine-leak check
// (CheckLeaks, RunMain), a fake clock whose Advance waits for the goroutine that
// consumes each fired timer (Clock), and Eventually, the one accepted way to wait for
// a condition that no event announces.
//
// Tests must never sleep to synchronise: wait for a channel, a readiness signal, the
// fake clock (Advance, BlockUntil, BlockUntilCreated) or, when nothing announces the
// change, Eventually. Deadlines in this package only turn a hang into a failure with
// a message; no helper asserts how long anything took.
//
// Production code never imports testutil. It takes time through the small interface
// declared where it is used (vrrp.Clock, health's Options.Now), which *Clock
// satisfies.
package testutil
