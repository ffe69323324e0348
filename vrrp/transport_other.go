//go:build !linux

package vrrp

// OpenTransport is only implemented on Linux.
func OpenTransport(TransportConfig) (Transport, error) { return nil, ErrUnsupported }
