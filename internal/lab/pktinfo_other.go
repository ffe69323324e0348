//go:build !linux

package lab

import (
	"net"
	"net/netip"
)

func enablePktinfo(c *net.UDPConn) error { return nil }

func pktinfoDst(oob []byte) (netip.Addr, bool) { return netip.Addr{}, false }

func pktinfoSrc(src netip.Addr) []byte { return nil }
