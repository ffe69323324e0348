//go:build linux

package afpacket

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// steerState is how a ring's fanout group spreads frames (see fanout.go).
type steerState struct {
	cbpf bool  // the group is PACKET_FANOUT_CBPF, steered by SteerProgram
	why  error // nil: NAT replies are steered to their flow's worker; else why not
}

// ErrNotSteered wraps the reason a fanout group spreads frames by the kernel's flow
// hash, or steers requests but not NAT replies (Ring.Steering).
var ErrNotSteered = errors.New("afpacket: NAT replies are not steered to their flow's worker")

// joinFanout adds the socket to fanout group id, IPv4 fragments reassembled first
// (PACKET_FANOUT_FLAG_DEFRAG) so every fragment of a datagram lands on one socket
// (packet(7), PACKET_FANOUT), steered by SteerProgram for f's NAT real servers
// (PACKET_FANOUT_CBPF). Where the kernel refuses CBPF fanout it joins in
// PACKET_FANOUT_HASH mode and Steering says why. The socket must be bound already.
// Every ring of a group must be opened alike: the kernel refuses a member whose mode
// differs. A ring alone in its group (Config.FanoutAlone) joins in
// PACKET_FANOUT_CPU mode, which picks the one socket with no program run.
// Precondition: r is not shared yet (open).
func (r *Ring) joinFanout(id uint16, f *Filter, alone bool) error {
	if alone {
		return setFanout(r.fd, id, unix.PACKET_FANOUT_CPU)
	}
	err := setFanout(r.fd, id, unix.PACKET_FANOUT_CBPF)
	if err != nil {
		if !errors.Is(err, unix.EINVAL) {
			return err
		}
		if herr := setFanout(r.fd, id, unix.PACKET_FANOUT_HASH); herr != nil {
			return herr
		}
		r.steer = steerState{why: fmt.Errorf("%w: the kernel refused PACKET_FANOUT_CBPF (%v); frames are spread by its flow hash", ErrNotSteered, err)}
		return nil
	}
	r.steer.cbpf = true
	return r.steerLocked(f)
}

func setFanout(fd int, id uint16, mode int) error {
	// The option is a 32-bit int: the id in the low half, mode and flags in the high
	// half (DEFRAG sets bit 31, so build it unsigned).
	arg := uint32(id) | uint32(mode|unix.PACKET_FANOUT_FLAG_DEFRAG)<<16
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, int(int32(arg))); err != nil {
		return os.NewSyscallError("setsockopt PACKET_FANOUT", err)
	}
	return nil
}

// steerLocked installs the group's steering program for f's NAT real servers
// (PACKET_FANOUT_DATA; the program is the group's, so the last ring to set it wins,
// and all set the same). When they are too many to test on every frame, the program
// steers requests by client but replies by their source, as the kernel's hash would,
// and Steering says why.
// Precondition: r.filterMu is held, or r is not shared yet (open).
func (r *Ring) steerLocked(f *Filter) error {
	if !r.steer.cbpf {
		return nil
	}
	var natRS []netip.Addr
	if f != nil {
		natRS = f.NATRealServers
	}
	var why error
	prog, err := SteerProgram(natRS)
	if errors.Is(err, ErrSteerTooLong) {
		why = fmt.Errorf("%w: %s", ErrNotSteered, strings.TrimPrefix(err.Error(), "afpacket: "))
		prog, err = SteerProgram(nil)
	}
	if err != nil {
		return err
	}
	if err := setFanoutProgram(r.fd, prog); err != nil {
		return err
	}
	r.steer.why = why
	return nil
}

func setFanoutProgram(fd int, prog []bpf.Instruction) error {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return fmt.Errorf("assemble the steering program: %w", err)
	}
	ins := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		ins[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(ins)), Filter: &ins[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_PACKET, unix.PACKET_FANOUT_DATA, &fprog); err != nil {
		return os.NewSyscallError("setsockopt PACKET_FANOUT_DATA", err)
	}
	return nil
}

// Steering reports how the ring's fanout group spreads frames: nil when a NAT reply
// lands on the worker of its flow (SteerProgram), an error wrapping ErrNotSteered
// that says why otherwise (the kernel refused CBPF fanout, or too many NAT real
// servers), and nil too for a ring in no group.
func (r *Ring) Steering() error {
	r.filterMu.Lock()
	defer r.filterMu.Unlock()
	return r.steer.why
}
