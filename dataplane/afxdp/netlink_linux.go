//go:build linux

package afxdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// What rtnetlink (RTM_GETLINK / RTM_SETLINK, IFLA_XDP) says and does about an
// interface's XDP program. It sees programs attached either way — through a BPF
// link or the older netlink attach (ip link set dev X xdp …) — whereas the bpf(2)
// link iterator sees only the former.

// Values of IFLA_XDP_ATTACHED (linux/if_link.h).
const (
	xdpAttachedNone  = 0
	xdpAttachedDrv   = 1
	xdpAttachedSKB   = 2
	xdpAttachedHW    = 3
	xdpAttachedMulti = 4
)

// xdpState is an interface's XDP attachment.
type xdpState struct {
	attached uint8  // xdpAttached*
	progID   uint32 // the program (the driver-mode one when several)
	skbID    uint32 // with xdpAttachedMulti, each mode's program
	drvID    uint32
	hwID     uint32
}

// ids returns the IDs of every attached program with its attach flag.
func (s xdpState) ids() map[uint32]uint32 {
	m := map[uint32]uint32{}
	switch s.attached {
	case xdpAttachedDrv:
		m[s.progID] = unix.XDP_FLAGS_DRV_MODE
	case xdpAttachedSKB:
		m[s.progID] = unix.XDP_FLAGS_SKB_MODE
	case xdpAttachedHW:
		m[s.progID] = unix.XDP_FLAGS_HW_MODE
	case xdpAttachedMulti:
		for id, f := range map[uint32]uint32{s.skbID: unix.XDP_FLAGS_SKB_MODE, s.drvID: unix.XDP_FLAGS_DRV_MODE, s.hwID: unix.XDP_FLAGS_HW_MODE} {
			if id != 0 {
				m[id] = f
			}
		}
	}
	return m
}

// rtnl runs one request and returns the replies' messages; an NLMSG_ERROR with a
// non-zero code is returned as that errno.
func rtnl(req []byte) ([]syscall.NetlinkMessage, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, os.NewSyscallError("socket NETLINK_ROUTE", err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, os.NewSyscallError("sendto netlink", err)
	}
	buf := make([]byte, 1<<16)
	var out []syscall.NetlinkMessage
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, os.NewSyscallError("recvfrom netlink", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("netlink: %w", err)
		}
		for _, m := range msgs {
			switch m.Header.Type {
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return nil, errors.New("netlink: short error message")
				}
				if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
					return nil, syscall.Errno(-code)
				}
				return out, nil // an ACK
			case unix.NLMSG_DONE:
				return out, nil
			default:
				out = append(out, m)
				if m.Header.Flags&unix.NLM_F_MULTI == 0 {
					return out, nil
				}
			}
		}
	}
}

// linkMsg builds an rtnetlink link message for ifindex with attrs appended.
func linkMsg(typ uint16, flags uint16, ifindex int, attrs []byte) []byte {
	b := make([]byte, unix.SizeofNlMsghdr+unix.SizeofIfInfomsg, unix.SizeofNlMsghdr+unix.SizeofIfInfomsg+len(attrs))
	b = append(b, attrs...)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], typ)
	ne.PutUint16(b[6:], flags|unix.NLM_F_REQUEST)
	ne.PutUint32(b[8:], 1) // sequence
	// struct ifinfomsg: family, pad, type, index, flags, change.
	b[unix.SizeofNlMsghdr] = unix.AF_UNSPEC
	ne.PutUint32(b[unix.SizeofNlMsghdr+4:], uint32(int32(ifindex)))
	return b
}

// attr appends a netlink attribute.
func attr(b []byte, typ uint16, data []byte) []byte {
	l := 4 + len(data)
	b = binary.NativeEndian.AppendUint16(b, uint16(l))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// queryXDP returns ifindex's XDP attachment.
func queryXDP(ifindex int) (xdpState, error) {
	var st xdpState
	msgs, err := rtnl(linkMsg(unix.RTM_GETLINK, 0, ifindex, nil))
	if err != nil {
		return st, fmt.Errorf("RTM_GETLINK: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Type != unix.RTM_NEWLINK {
			continue
		}
		attrs, err := syscall.ParseNetlinkRouteAttr(&m)
		if err != nil {
			return st, fmt.Errorf("RTM_GETLINK: %w", err)
		}
		for _, a := range attrs {
			if a.Attr.Type&^unix.NLA_F_NESTED != unix.IFLA_XDP {
				continue
			}
			for b := a.Value; len(b) >= 4; {
				l := int(binary.NativeEndian.Uint16(b))
				t := binary.NativeEndian.Uint16(b[2:])
				if l < 4 || l > len(b) {
					break
				}
				v := b[4:l]
				u32 := func() uint32 {
					if len(v) >= 4 {
						return binary.NativeEndian.Uint32(v)
					}
					return 0
				}
				switch t {
				case unix.IFLA_XDP_ATTACHED:
					if len(v) >= 1 {
						st.attached = v[0]
					}
				case unix.IFLA_XDP_PROG_ID:
					st.progID = u32()
				case unix.IFLA_XDP_SKB_PROG_ID:
					st.skbID = u32()
				case unix.IFLA_XDP_DRV_PROG_ID:
					st.drvID = u32()
				case unix.IFLA_XDP_HW_PROG_ID:
					st.hwID = u32()
				}
				b = b[min((l+3)&^3, len(b)):]
			}
		}
	}
	return st, nil
}

// setXDP attaches the program fd to ifindex through netlink in the mode of flags,
// or detaches the program of that mode with fd -1.
func setXDP(ifindex, fd int, flags uint32) error {
	var nested []byte
	nested = attr(nested, unix.IFLA_XDP_FD, binary.NativeEndian.AppendUint32(nil, uint32(int32(fd))))
	nested = attr(nested, unix.IFLA_XDP_FLAGS, binary.NativeEndian.AppendUint32(nil, flags))
	req := linkMsg(unix.RTM_SETLINK, unix.NLM_F_ACK, ifindex, attr(nil, unix.IFLA_XDP|unix.NLA_F_NESTED, nested))
	if _, err := rtnl(req); err != nil {
		return fmt.Errorf("RTM_SETLINK IFLA_XDP: %w", err)
	}
	return nil
}
