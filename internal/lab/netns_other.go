//go:build !linux

package lab

import (
	"errors"
	"fmt"
)

// InNetns needs Linux network namespaces.
func InNetns(ns string, fn func() error) error {
	return fmt.Errorf("lab: netns %s: %w", ns, errors.ErrUnsupported)
}

func netnsUsable() error {
	return fmt.Errorf("lab: network namespaces: %w", errors.ErrUnsupported)
}
