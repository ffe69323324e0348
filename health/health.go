package health

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Checker probes one real server once.
//
// Check returns when the probe has finished, or when ctx is done or the checker's own
// Timeout has elapsed, whichever comes first; it leaves no goroutine, connection or
// process behind. Implementations in this package are safe for concurrent use.
type Checker interface {
	Check(ctx context.Context) Result
}

// WeightUnchanged is the Result and Transition weight meaning "keep the weight the
// daemon already applies" (the configured one unless a dynamic check changed it).
const WeightUnchanged = -1

// Result is the outcome of one probe.
//
// The zero value is a failed probe with weight 0; checkers always set Weight, to
// WeightUnchanged unless a dynamic exec check reported one.
type Result struct {
	Up bool
	// Reason says why, in a few words: "HTTP 200", "connect refused",
	// "timeout after 3s", "exit 1".
	Reason string
	// Weight is the weight a dynamic exec check asks for (0–253), or WeightUnchanged.
	Weight int
	// Duration is how long the probe took.
	Duration time.Duration
}

// Type is a checker kind. The zero value is invalid.
type Type uint8

const (
	_ Type = iota
	TCP
	HTTP
	HTTPS
	UDP
	Exec
)

var typeNames = [...]string{TCP: "tcp", HTTP: "http", HTTPS: "https", UDP: "udp", Exec: "exec"}

// String returns the config name of t ("tcp", "http", "https", "udp", "exec").
func (t Type) String() string {
	if t > 0 && int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// ParseType returns the Type named s, as spelt in the config's check type key.
func ParseType(s string) (Type, error) {
	for t, name := range typeNames {
		if name != "" && name == s {
			return Type(t), nil
		}
	}
	return 0, fmt.Errorf("health: unknown check type %q: %w", s, ErrInvalidSpec)
}

var (
	// ErrInvalidSpec is wrapped by every validation error of a Spec.
	ErrInvalidSpec = errors.New("invalid check spec")
	// ErrRunning is returned by Run when the Monitor is already running.
	ErrRunning = errors.New("health: monitor already running")
	// ErrStopped is returned by Run and Update once Run has returned.
	ErrStopped = errors.New("health: monitor stopped")
)
