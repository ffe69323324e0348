//go:build !linux

package bench

import (
	"context"
	"errors"
	"io"
)

// RunLive needs Linux network namespaces.
func RunLive(ctx context.Context, l LiveLab, o LiveOptions, progress io.Writer) (*LiveResult, error) {
	return nil, errors.New("bench live: needs Linux (network namespaces, AF_PACKET, trafgen)")
}
