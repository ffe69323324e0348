package ipvssync

import (
	"errors"
	"fmt"
	"time"
)

// Rules are the sender's sysctls that decide when a connection is sent (the
// kernel's ip_vs_sync_conn_needed). The zero value (threshold 0, period 0) sends only
// the forced updates — TCP changes to a state other than ESTABLISHED — and templates
// never: packet counts start at 1. DefaultRules are the kernel's defaults.
type Rules struct {
	// Threshold and Period are sync_threshold: a connection is sent when its packet
	// count modulo Period equals Threshold (packets 3, 53, 103 … by default); with
	// Period 0 and no RefreshPeriod, once, at packet Threshold.
	Threshold uint32
	Period    uint32
	// RefreshPeriod is sync_refresh_period: when positive, a send is suppressed while
	// the connection's expiry moved less than min(RefreshPeriod, max(timeout/2, 10 s))
	// since the last one, except for up to Retries (sync_retries, 0–3) repeats spaced
	// RefreshPeriod/8.
	RefreshPeriod time.Duration
	Retries       uint8
	// PersistMode is sync_persist_mode: connections controlled by a persistence
	// template are not sent, only their templates.
	PersistMode bool
}

// DefaultRules returns the kernel's defaults: sync_threshold = 3 50, no refresh
// period, no retries, persist mode off.
func DefaultRules() Rules { return Rules{Threshold: 3, Period: 50} }

// ErrRules is wrapped by Rules.Validate's errors.
var ErrRules = errors.New("invalid sync rules")

// Validate checks the values the kernel's sysctl handlers refuse.
func (r *Rules) Validate() error {
	if r.Period != 0 && r.Threshold >= r.Period {
		return fmt.Errorf("ipvssync: sync_threshold = [%d, %d]: the threshold must be below the period (or the period 0): %w",
			r.Threshold, r.Period, ErrRules)
	}
	if r.Retries > 3 {
		return fmt.Errorf("ipvssync: sync_retries = %d: the kernel allows 0 to 3: %w", r.Retries, ErrRules)
	}
	if r.RefreshPeriod < 0 {
		return fmt.Errorf("ipvssync: sync_refresh_period = %v: must not be negative: %w", r.RefreshPeriod, ErrRules)
	}
	return nil
}

// Conn is what Needed reads of a connection.
type Conn struct {
	Protocol   uint8
	Flags      uint32 // FlagTemplate and FlagOnePkt matter
	State      uint16
	Timeout    time.Duration // the connection's full timeout in its state
	Controlled bool          // controlled by a persistence template
}

// ConnState is the memory Needed keeps per connection (the kernel's old_state and
// sync_endtime). The zero value is a connection never sent. It is not safe for
// concurrent use: the caller serialises the calls for one connection.
type ConnState struct {
	// End is when the receivers' copy expires according to the last send (the send
	// time plus the timeout), in nanoseconds on the caller's clock; 0 before the first.
	End int64
	// OldState is the state of the last send.
	OldState uint16
	// Retries counts the repeats made within one refresh interval.
	Retries uint8
}

// SCTP states the kernel syncs (IP_VS_SCTP_S_*).
const (
	sctpEstablished      = 7
	sctpShutdownSent     = 8
	sctpShutdownReceived = 9
	sctpShutdownAckSent  = 10
	sctpClosed           = 12
)

// Needed reports whether c, seeing its pkts-th inbound packet at now (nanoseconds),
// must be sent, and records the send in s when it must. A TCP connection is sent only
// in ESTABLISHED, FIN_WAIT, CLOSE, CLOSE_WAIT and TIME_WAIT; a change to a state other
// than ESTABLISHED is sent at once. One-packet connections are never sent.
//
// For a template, pkts is its own packet counter; the kernel checks it after each
// connection it controls.
func (r *Rules) Needed(c *Conn, s *ConnState, pkts uint32, now int64) bool {
	if c.Flags&FlagOnePkt != 0 {
		return false
	}
	force := false
	switch {
	case c.Flags&FlagTemplate != 0:
	case r.PersistMode && c.Controlled:
		return false
	case c.Protocol == ProtoTCP:
		switch c.State {
		case TCPEstablished, TCPFinWait, TCPClose, TCPCloseWait, TCPTimeWait:
		default:
			return false
		}
		force = c.State != s.OldState
		if force && c.State != TCPEstablished {
			return r.set(c, s, now, 0)
		}
	case c.Protocol == ProtoSCTP:
		switch c.State {
		case sctpEstablished, sctpShutdownSent, sctpShutdownReceived, sctpShutdownAckSent, sctpClosed:
		default:
			return false
		}
		force = c.State != s.OldState
		if force && c.State != sctpEstablished {
			return r.set(c, s, now, 0)
		}
	}
	retries := uint8(0)
	if r.RefreshPeriod > 0 && s.End != 0 {
		diff := now + int64(c.Timeout) - s.End
		if diff < 0 {
			diff = -diff
		}
		minDiff := max(int64(c.Timeout)/2, int64(10*time.Second))
		if diff < min(int64(r.RefreshPeriod), minDiff) {
			if s.Retries >= r.Retries {
				return false
			}
			// The last send was at End - Timeout; repeats are spaced RefreshPeriod/8.
			if now < s.End-int64(c.Timeout)+int64(r.RefreshPeriod)/8 {
				return false
			}
			retries = s.Retries + 1
		}
	}
	switch {
	case r.Period > 0:
		if c.Flags&FlagTemplate == 0 && pkts%r.Period != r.Threshold {
			return false
		}
	case r.RefreshPeriod == 0 && pkts != r.Threshold:
		return false
	}
	return r.set(c, s, now, retries)
}

func (r *Rules) set(c *Conn, s *ConnState, now int64, retries uint8) bool {
	s.OldState = c.State
	s.End = now + int64(c.Timeout)
	s.Retries = retries
	return true
}
