//go:build !linux

package lab

import "errors"

func offloadsOff(string) error { return errors.New("ethtool: only on Linux") }

func offloadState(string) (map[string]bool, error) { return nil, errors.New("ethtool: only on Linux") }
