//go:build !linux

package cluster

import "net"

// dontFragment is Linux-only; elsewhere the system default applies.
func dontFragment(*net.UDPConn) error { return nil }
