//go:build !linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

func decapsulate(ctx context.Context, log *slog.Logger, dev string, ready func()) error {
	return fmt.Errorf("rs-tun: %w", errors.ErrUnsupported)
}
