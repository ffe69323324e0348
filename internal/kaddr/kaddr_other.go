//go:build !linux

package kaddr

import (
	"errors"
	"fmt"
)

// Open fails outside Linux: kernel addresses are managed over rtnetlink.
func Open() (Handle, error) {
	return nil, fmt.Errorf("kaddr: %w", errors.ErrUnsupported)
}
