package afpacket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"
)

// The fanout group of a director's rings is steered by a classic BPF program
// (PACKET_FANOUT_CBPF, packet(7)) that returns a worker index computed from the
// client's side of a flow only: the source address and port of traffic to a VIP, the
// destination address and port of a reply from a NAT real server. A NAT reply then
// lands on the worker of its flow, whose flow cache holds the connection and whose
// connection-table shard it already touches; the kernel's own flow hash
// (PACKET_FANOUT_HASH) hashes the reply's real-server side, which differs from the
// request's VIP side, and sends it to a worker chosen independently.
//
// Replies are recognised by their source address being a NAT real server's (a short
// list, tested in turn like the filter's addresses). A real server that is itself a
// client of a VIP through the director is then taken for a replier and its requests
// are steered by their destination: still a consistent choice for the flow, only not
// the worker of the replies the real server gets back. Everything else that is not
// IPv4 or IPv6 (ARP) goes to the first worker; neighbour discovery and VRRP are
// hashed like any IP traffic.
//
// The kernel runs the program on every frame the interface receives, before any
// socket filter, with the packet starting at the network header (the link-layer
// header is already pulled and an 802.1Q tag already taken off), and sends the frame
// to ring index mod the group's size. With PACKET_FANOUT_FLAG_DEFRAG the kernel has
// reassembled IPv4 fragments first, so their ports are there; a fragment the program
// still sees (IPv6, or an IPv4 non-first fragment) is hashed without ports.

// SteerMaxInstructions bounds the steering program: it runs on every frame of the
// interface, so its list of NAT real servers (2 instructions per IPv4 address, 9 per
// IPv6 one) is kept short. A longer list is not steered (ErrSteerTooLong).
const SteerMaxInstructions = 512

// ErrSteerTooLong is returned by SteerProgram when the NAT real servers do not fit in
// SteerMaxInstructions.
var ErrSteerTooLong = errors.New("afpacket: too many NAT real servers to steer their replies")

// Offsets from the network header and constants of the steering program.
const (
	steerIPv4FragOff  = 6      // flags and fragment offset
	steerIPv4FragMask = 0x1fff // fragment offset: non-zero past the first fragment
	steerIPv6Ports    = 40     // after a bare IPv6 header
	steerSrcPort      = 0      // from the transport header
	steerDstPort      = 2
	steerProtoTCP     = 6
	steerProtoUDP     = 17
	steerProtoSCTP    = 132

	// Multiplicative hashing (Knuth, TAOCP vol. 3 §6.4): odd constants near 2^32/φ
	// and a second one to mix again after folding the high half down, since
	// ring index = hash mod n takes the low bits.
	steerMul1 = 0x9e3779b1
	steerMul2 = 0x85ebca6b

	scratchAddr = 0 // M[0]: the hash of the client's address
	scratchPort = 1 // M[1]: the offset of the client's port in the transport header (IPv4)
)

// Labels of the steering program.
const (
	steerV4 = iota
	steerV6
	steerV4Reply
	steerV6Reply
	steerV4Ports
	steerV6Ports
	steerNoPorts
	steerMix
	numSteerLabels
)

// SteerProgram compiles the steering program for replies from natRS (duplicates are
// tested once, IPv4-mapped addresses count as IPv4). Layout (A, X the registers, M[0]
// scratch):
//
//	      ldb [0]; rsh #4; jeq #4 → v4; jeq #6 → v6; ret #0
//	v4:   ld [12]; [jeq RS → v4reply …]; st M[0]; M[1] = 0 (source port); ja v4ports
//	v4reply: ld [16]; st M[0]; M[1] = 2 (destination port)
//	v4ports: ldh [6]; jset #0x1fff → noports; ldb [9]; TCP, UDP or SCTP, else → noports
//	      ldx 4*([0]&0xf); X += M[1]; ldh [x]; ja mix
//	v6:   [ld [8+4i]; jeq RS[i] … → v6reply]; hash [8..24) into M[0]; X = #0; ja v6ports
//	v6reply: hash [24..40) into M[0]; X = #2
//	v6ports: ldb [6]; TCP, UDP or SCTP, else → noports; ldh [40 + X]; ja mix
//	noports: ld #0
//	mix:  A = ((M[0] + port) × K1), folded, × K2, folded; ret A
func SteerProgram(natRS []netip.Addr) ([]bpf.Instruction, error) {
	v4, v6, err := splitAddrs(natRS)
	if err != nil {
		return nil, err
	}
	if n := steerFixedLen + 2*len(v4) + 9*len(v6); n > SteerMaxInstructions {
		return nil, fmt.Errorf("%w: %d IPv4 and %d IPv6 addresses need %d instructions, at most %d are run on every frame",
			ErrSteerTooLong, len(v4), len(v6), n, SteerMaxInstructions)
	}
	var p steerProgram
	p.emit(bpf.LoadAbsolute{Off: 0, Size: 1})
	p.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4})
	p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: 4, SkipFalse: 1})
	p.jump(steerV4)
	p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipFalse: 1})
	p.jump(steerV6)
	p.emit(bpf.RetConstant{Val: 0})

	// IPv4: the client's address into M[0], the offset of its port in the transport
	// header into X (the port is loaded once the header's length is known).
	p.label(steerV4)
	p.emit(bpf.LoadAbsolute{Off: bpfIPv4Src, Size: 4})
	for _, a := range v4 {
		p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: binary.BigEndian.Uint32(a), SkipFalse: 1})
		p.jump(steerV4Reply)
	}
	p.emit(bpf.StoreScratch{Src: bpf.RegA, N: scratchAddr})
	p.emit(bpf.LoadConstant{Dst: bpf.RegA, Val: steerSrcPort})
	p.emit(bpf.StoreScratch{Src: bpf.RegA, N: scratchPort})
	p.jump(steerV4Ports)
	p.label(steerV4Reply)
	p.emit(bpf.LoadAbsolute{Off: bpfIPv4Dst, Size: 4})
	p.emit(bpf.StoreScratch{Src: bpf.RegA, N: scratchAddr})
	p.emit(bpf.LoadConstant{Dst: bpf.RegA, Val: steerDstPort})
	p.emit(bpf.StoreScratch{Src: bpf.RegA, N: scratchPort})
	p.label(steerV4Ports)
	p.emit(bpf.LoadAbsolute{Off: steerIPv4FragOff, Size: 2})
	p.emit(bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: steerIPv4FragMask, SkipFalse: 1})
	p.jump(steerNoPorts)
	p.emit(bpf.LoadAbsolute{Off: bpfIPv4Proto, Size: 1})
	p.ports()
	// X = the header's length (IHL × 4) + the port's offset in the transport header.
	p.emit(bpf.LoadMemShift{Off: 0})
	p.emit(bpf.LoadScratch{Dst: bpf.RegA, N: scratchPort})
	p.emit(bpf.ALUOpX{Op: bpf.ALUOpAdd})
	p.emit(bpf.TAX{})
	p.emit(bpf.LoadIndirect{Off: 0, Size: 2})
	p.jump(steerMix)

	// IPv6: fixed offsets; the ports follow a bare header.
	p.label(steerV6)
	for _, a := range v6 {
		for w := range 4 {
			p.emit(bpf.LoadAbsolute{Off: bpfIPv6Src + uint32(4*w), Size: 4})
			p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: binary.BigEndian.Uint32(a[4*w:]), SkipFalse: uint8(2*(3-w) + 1)})
		}
		p.jump(steerV6Reply)
	}
	p.hash6(bpfIPv6Src)
	p.emit(bpf.LoadConstant{Dst: bpf.RegX, Val: steerSrcPort})
	p.jump(steerV6Ports)
	p.label(steerV6Reply)
	p.hash6(bpfIPv6Dst)
	p.emit(bpf.LoadConstant{Dst: bpf.RegX, Val: steerDstPort})
	p.label(steerV6Ports)
	p.emit(bpf.LoadAbsolute{Off: bpfIPv6NextHeader, Size: 1})
	p.ports()
	p.emit(bpf.LoadIndirect{Off: steerIPv6Ports, Size: 2})
	p.jump(steerMix)

	p.label(steerNoPorts)
	p.emit(bpf.LoadConstant{Dst: bpf.RegA, Val: 0})
	p.label(steerMix)
	p.emit(bpf.TAX{})
	p.emit(bpf.LoadScratch{Dst: bpf.RegA, N: scratchAddr})
	p.emit(bpf.ALUOpX{Op: bpf.ALUOpAdd})
	p.fold(steerMul1)
	p.fold(steerMul2)
	p.emit(bpf.RetA{})
	return p.resolve()
}

// steerFixedLen is the length of the steering program without addresses.
const steerFixedLen = 81

// steerProgram is bpfProgram with the steering program's labels.
type steerProgram struct {
	ins    []bpf.Instruction
	labels [numSteerLabels]int
	fixups []bpfFixup
}

func (p *steerProgram) emit(i bpf.Instruction) { p.ins = append(p.ins, i) }
func (p *steerProgram) label(label int)        { p.labels[label] = len(p.ins) }

func (p *steerProgram) jump(label int) {
	p.fixups = append(p.fixups, bpfFixup{at: len(p.ins), label: label})
	p.emit(bpf.Jump{})
}

// ports goes on with the next instruction if A, the IP protocol, has ports where
// TCP's are, and to noports otherwise.
func (p *steerProgram) ports() {
	p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: steerProtoTCP, SkipTrue: 3})
	p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: steerProtoUDP, SkipTrue: 2})
	p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: steerProtoSCTP, SkipTrue: 1})
	p.jump(steerNoPorts)
}

// hash6 stores into M[0] a hash of the 128-bit address at off:
// h = (((w0·K + w1)·K + w2)·K + w3).
func (p *steerProgram) hash6(off uint32) {
	p.emit(bpf.LoadAbsolute{Off: off, Size: 4})
	for w := uint32(1); w < 4; w++ {
		p.emit(bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: steerMul1})
		p.emit(bpf.TAX{})
		p.emit(bpf.LoadAbsolute{Off: off + 4*w, Size: 4})
		p.emit(bpf.ALUOpX{Op: bpf.ALUOpAdd})
	}
	p.emit(bpf.StoreScratch{Src: bpf.RegA, N: scratchAddr})
}

// fold multiplies A by k and folds its high half onto the low one: A = h ^ h>>16.
func (p *steerProgram) fold(k uint32) {
	p.emit(bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: k})
	p.emit(bpf.TAX{})
	p.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 16})
	p.emit(bpf.ALUOpX{Op: bpf.ALUOpXor})
}

func (p *steerProgram) resolve() ([]bpf.Instruction, error) {
	if len(p.ins) > bpfMaxInstructions {
		return nil, ErrSteerTooLong
	}
	for _, fx := range p.fixups {
		p.ins[fx.at] = bpf.Jump{Skip: uint32(p.labels[fx.label] - fx.at - 1)}
	}
	return p.ins, nil
}
