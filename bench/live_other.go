//go:build !linux

package bench

import (
	"context"
	"errors"
	"io"
	"time"
)

// nanosleep is time.Sleep where nanosleep(2) is not used.
func nanosleep(d time.Duration) { time.Sleep(d) }

// RunLive needs Linux network namespaces.
func RunLive(ctx context.Context, l LiveLab, o LiveOptions, progress io.Writer) (*LiveResult, error) {
	return nil, errors.New("bench live: needs Linux (network namespaces, AF_PACKET, trafgen)")
}

// PaceUDP needs Linux (AF_PACKET).
func PaceUDP(ctx context.Context, o PaceOptions) (PaceResult, error) {
	return PaceResult{}, errors.New("bench: pace: needs Linux (AF_PACKET)")
}
