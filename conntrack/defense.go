package conntrack

import (
	"fmt"
	"time"
)

// IPVS's defense modes (docs/defense.md §8): drop_entry and secure_tcp, with the
// kernel's sysctl values — 0 never, 1 automatic and off now, 2 automatic and on now,
// 3 always on — switched by Defend between 1 and 2 as the table fills and drains.
// The kernel compares free memory with amemthresh; the table compares its free
// entries (Max − Len) with AMemThresh, since conn_max, not memory, is what a flood
// exhausts here.

// Defense mode values.
const (
	ModeOff    = 0 // never
	ModeAuto   = 1 // automatic, not engaged
	ModeOn     = 2 // automatic, engaged
	ModeAlways = 3 // always engaged
)

// defenseTimeouts are the shorter timeouts secure_tcp applies while engaged, each
// state's the smaller of this and the configured one: the defense table Linux 2.4
// switched to under attack (ESTABLISHED 8 min, SYN_RECV 10 s, SYNACK 100 s, UDP 3
// min, the closing states halved).
func defenseTimeouts() Timeouts {
	s := time.Second
	return Timeouts{
		TCP: [NumStates]time.Duration{
			StateNone:        2 * s,
			StateEstablished: 480 * s,
			StateSynSent:     60 * s,
			StateSynRecv:     10 * s,
			StateFinWait:     60 * s,
			StateTimeWait:    60 * s,
			StateClose:       10 * s,
			StateCloseWait:   60 * s,
			StateLastAck:     30 * s,
			StateListen:      120 * s,
			StateSynAck:      100 * s,
		},
		UDP: 180 * s,
	}
}

// checkDefense validates Settings' defense fields.
func checkDefense(s *Settings) error {
	for _, m := range []struct {
		name string
		v    int
	}{{"DropEntry", s.DropEntry}, {"SecureTCP", s.SecureTCP}} {
		if m.v < ModeOff || m.v > ModeAlways {
			return fmt.Errorf("%w: %s %d is not a defense mode 0..3", ErrConfig, m.name, m.v)
		}
	}
	if s.AMemThresh < 0 || s.AMemThresh > s.Max {
		return fmt.Errorf("%w: AMemThresh %d not in 0..Max (%d)", ErrConfig, s.AMemThresh, s.Max)
	}
	return nil
}

// applyDefense takes Settings' defense fields. A mode whose configured value
// changed starts from that value; an unchanged one keeps its engaged state.
func (t *Table) applyDefense(s *Settings) {
	th := s.AMemThresh
	if th == 0 {
		th = max(1, s.Max/2)
	}
	t.defMu.Lock()
	defer t.defMu.Unlock()
	t.amemthresh.Store(int64(th))
	if int32(s.DropEntry) != t.dropEntryCfg || !t.defInit {
		t.dropEntryCfg = int32(s.DropEntry)
		t.dropEntry.Store(int32(s.DropEntry))
	}
	if int32(s.SecureTCP) != t.secureTCPCfg || !t.defInit {
		t.secureTCPCfg = int32(s.SecureTCP)
		t.secureTCP.Store(int32(s.SecureTCP))
	}
	t.defInit = true
	t.effectiveTimeoutsLocked()
}

// setBaseTimeouts stores the configured timeouts and the effective ones.
func (t *Table) setBaseTimeouts(to Timeouts) {
	t.defMu.Lock()
	defer t.defMu.Unlock()
	t.baseTimeouts = to
	t.effectiveTimeoutsLocked()
}

// effectiveTimeoutsLocked publishes the timeouts transitions use: the configured
// ones, or while secure_tcp is engaged each state's smaller of those and the
// defense table. Timeouts() always reports the configured ones.
//
// Precondition: t.defMu is held.
func (t *Table) effectiveTimeoutsLocked() {
	to := t.baseTimeouts
	if to == (Timeouts{}) {
		return // New has not set them yet
	}
	ms := newTimeoutsMs(to)
	if t.secureTCP.Load() >= ModeOn {
		d := newTimeoutsMs(defenseTimeouts())
		for i := range ms.tcp {
			ms.tcp[i] = min(ms.tcp[i], d.tcp[i])
		}
		ms.udp = min(ms.udp, d.udp)
	}
	t.timeouts.Store(ms)
}

// Modes are the defense modes' current values (0..3).
type Modes struct {
	DropEntry, SecureTCP int
}

// Modes returns the defense modes in force.
func (t *Table) Modes() Modes {
	return Modes{DropEntry: int(t.dropEntry.Load()), SecureTCP: int(t.secureTCP.Load())}
}

// DefenseReport is what one Defend call saw and did.
type DefenseReport struct {
	Before, After Modes
	Free          int // Max − Len when it ran
	AMemThresh    int // the threshold in force
	Dropped       int // unconfirmed entries drop_entry removed
}

// nextMode is update_defense_level's step for one mode, with hysteresis: an
// automatic mode engages when fewer than thresh entries are free and disengages
// once at least thresh + thresh/8 are.
func nextMode(m int32, free, thresh int64) int32 {
	switch {
	case m == ModeAuto && free < thresh:
		return ModeOn
	case m == ModeOn && free >= thresh+max(1, thresh/8):
		return ModeAuto
	}
	return m
}

// Defend is the kernel's once-a-second defense work: it moves the automatic modes
// between 1 and 2 by the table's free entries, counts each change, applies
// secure_tcp's timeouts while it is engaged, and while drop_entry is engaged drops
// every unconfirmed entry of 1/32 of the shards (at least one), starting at the
// shard rnd picks. Confirmed entries are never dropped. Call it about once a second;
// it takes one shard lock at a time.
func (t *Table) Defend(rnd uint32) DefenseReport {
	free := t.max.Load() - t.liveCount()
	t.defMu.Lock()
	th := t.amemthresh.Load()
	r := DefenseReport{Before: t.Modes(), Free: int(free), AMemThresh: int(th)}
	if de := nextMode(t.dropEntry.Load(), free, th); de != t.dropEntry.Load() {
		t.dropEntry.Store(de)
		t.dropEntryChanges.Add(1)
	}
	if st := nextMode(t.secureTCP.Load(), free, th); st != t.secureTCP.Load() {
		t.secureTCP.Store(st)
		t.secureTCPChanges.Add(1)
		t.effectiveTimeoutsLocked()
	}
	r.After = t.Modes()
	t.defMu.Unlock()
	if r.After.DropEntry >= ModeOn {
		r.Dropped = t.dropEntries(rnd)
	}
	return r
}

// dropEntries removes the unconfirmed entries of 1/32 of the shards from the one
// rnd picks, at most sweepChunk per lock hold and no more than were unconfirmed
// when it started.
func (t *Table) dropEntries(rnd uint32) int {
	n := len(t.shards)
	left := t.liveUnconf()
	total := 0
	var ctls [sweepChunk]Ref
	for j := range max(1, n/32) {
		s := &t.shards[(int(rnd)+j)&(n-1)]
		for left > 0 {
			m := 0
			s.mu.Lock()
			for m < len(ctls) && s.uhead != 0 && left > 0 {
				i := s.uhead
				ctls[m] = t.evictLocked(s, i, s.at(i))
				m++
				left--
			}
			s.mu.Unlock()
			for _, c := range ctls[:m] {
				t.finishEvict(c)
			}
			total += m
			if m < len(ctls) {
				break
			}
		}
	}
	t.dropEntryDrops.Add(uint64(total))
	return total
}
