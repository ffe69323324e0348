//go:build !linux

package lab

import (
	"errors"
	"net/netip"
)

type routeReader struct{}

func openRouteReader(string) (*routeReader, error) {
	return nil, errors.New("lab: reading a namespace's routes needs Linux")
}

func (*routeReader) nextHops(netip.Addr) ([]netip.Addr, error) { return nil, nil }

func (*routeReader) Close() error { return nil }
