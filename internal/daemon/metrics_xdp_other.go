//go:build !linux

package daemon

import "github.com/gvs-lb/gvs/dataplane"

// xdpCounters: AF_XDP is Linux only.
func xdpCounters([]dataplane.Link, func(uint64, string, string)) {}
