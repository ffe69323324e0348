//go:build !linux

package cluster

import "net"

// dontFragment is Linux-only; elsewhere the system default applies.
func dontFragment(*net.UDPConn) error { return nil }

// sockNetns is Linux-only: elsewhere sockets open where the caller is.
type sockNetns struct{}

func callerNetns() (*sockNetns, error) { return nil, nil }

func (*sockNetns) do(open func() error) error { return open() }

func (*sockNetns) close() error { return nil }
