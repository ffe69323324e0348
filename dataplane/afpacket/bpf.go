package afpacket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/gvs-lb/gvs/dataplane/header"
	"golang.org/x/net/bpf"
)

// Filter describes the frames a director's receive ring needs; Program compiles it to
// a classic BPF socket filter (SO_ATTACH_FILTER, Documentation/networking/filter.rst)
// so the kernel drops everything else before copying it into the ring. It passes,
// untagged or with one IEEE 802.1Q tag:
//
//   - IPv4 and IPv6 packets to a VIP (every protocol, fragments included: a
//     fragment carries the addresses);
//   - IPv4 and IPv6 packets from a NAT real server (the replies NAT rewrites);
//   - ARP, when ARP is set (VIP resolution, real-server MACs);
//   - ICMPv6 neighbour discovery (RFC 4861 types 133–137), when NDP is set;
//   - VRRP (IP protocol 112, RFC 5798), when VRRP is set.
//
// That exact filter tests every address in turn, so it grows with the VIPs and is run
// on every frame. Beyond ExactMaxInstructions (a hundred or so IPv4 VIPs, a few dozen
// IPv6 ones) Program compiles a coarser filter of constant size instead, which any
// number of VIPs fits: every IPv4, IPv6 and ARP frame sent to one of MACs (the
// director's own addresses: clients and routers send VIP traffic there, since gvs
// answers ARP and NDP for its VIPs with them, and NAT real servers route their replies
// through the director), and of the broadcast and multicast frames only ARP, VRRP and
// neighbour discovery as above. The Director decides the rest in userspace, counting
// what is not its own as not_ours. Without MACs the coarse filter passes every unicast
// IPv4, IPv6 and ARP frame.
//
// The zero Filter passes nothing. A Filter is a description, not shared state: reading
// it concurrently is safe.
type Filter struct {
	VIPs           []netip.Addr // destination addresses that pass (IPv4 or IPv6)
	NATRealServers []netip.Addr // source addresses that pass
	// Local are the host's own addresses. Frames to them are the kernel's even from
	// a NAT real server (its neighbour solicitations, health-check replies): the XDP
	// program passes them; a ring only sees copies, so its filter ignores them.
	Local          []netip.Addr
	MACs           [][6]byte // the director's unicast MACs, for the coarse filter
	ARP, NDP, VRRP bool
}

// ErrFilterTooLong is returned by Program when the filter needs more instructions
// than the kernel accepts (BPF_MAXINSNS). The exact filter never does: beyond
// ExactMaxInstructions Program compiles the coarse filter, whose size depends only on
// the number of MACs.
var ErrFilterTooLong = errors.New("afpacket: filter too long")

// bpfMaxInstructions is the kernel's BPF_MAXINSNS for classic BPF.
const bpfMaxInstructions = 4096

// ExactMaxInstructions is the largest exact filter Program compiles; a longer one is
// replaced by the coarse MAC filter.
//
// Why this size, measured on the development VM (veth, TPACKET_V2 ring, 3 rounds of
// 100,000 frames, CPU time of the sending thread, where veth runs the receive path,
// and of the ring's reader): the JIT-compiled filter costs about 0.5 ns per
// instruction it runs — a frame the exact filter refuses runs all of it (29
// instructions: 1.2 µs per frame in all; 227: 1.3–1.4 µs; 4,027, 2,000 VIPs: 3.3 µs)
// and a VIP frame on average half. The coarse filter (44 instructions) instead lets
// the director's own unicast traffic that is not VIP or NAT traffic (its SSH,
// health-check replies) into the ring: about 0.8 µs more in the kernel and 0.4–0.8 µs
// in the reader per such frame, plus the Director's decode. At 256 instructions the
// exact filter costs at most ≈ 130 ns per frame, which pays while the director's own
// traffic is more than about 5–10% of what it receives; past that the coarse filter is
// cheaper for VIP traffic and has no limit. The exact filter is kept for small
// directors because it also keeps a flood to the director's own address out of the
// ring.
const ExactMaxInstructions = 256

// MaxVIPs is the number of VIPs (IPv4 and IPv6 together) an AF_PACKET ring can
// receive, for the checks of gvs check, gvs adm and reload; 0 means any number, which
// is the case here: the filter turns coarse rather than refuse (see Filter).
func MaxVIPs() int { return 0 }

// MaxSolicitedGroups is how many solicited-node groups of IPv6 VIPs MulticastMACs
// lists one by one; beyond, it asks for all multicast (the zero address).
const MaxSolicitedGroups = 256

// Filter verdicts: the kernel keeps min(verdict, frame length) bytes, so accepting
// returns the largest value.
const (
	bpfAccept = 0xffffffff
	bpfReject = 0
)

// Offsets the program reads. The link-layer header is 14 bytes, or 18 with an 802.1Q
// tag still in the data; the kernel usually moves the tag to skb metadata before
// packet taps run (__netif_receive_skb_core → skb_vlan_untag), so the program sees most
// tagged frames untagged, and handles both layouts.
const (
	bpfDstMAC         = 0                                            // destination MAC: 4 + 2 bytes
	bpfDstMACLow      = 4                                            //
	bpfEtherType      = 12                                           // EtherType or 802.1Q TPID
	bpfInnerEtherType = 16                                           // EtherType after a tag
	bpfL3Untagged     = header.EthernetHeaderLen                     // 14
	bpfL3Tagged       = header.EthernetHeaderLen + header.VLANTagLen // 18
	bpfIPv4Proto      = 9                                            // offsets from the IPv4 header
	bpfIPv4Src        = 12
	bpfIPv4Dst        = 16
	bpfIPv6NextHeader = 6 // offsets from the IPv6 header
	bpfIPv6Src        = 8
	bpfIPv6Dst        = 24
	bpfICMPv6Type     = header.IPv6HeaderLen // first byte after a bare IPv6 header
	bpfProtoVRRP      = 112                  // IANA protocol numbers
	bpfNDFirst        = 133                  // router solicitation (RFC 4861 §4)
	bpfNDLast         = 137                  // redirect
	bpfGroupBit       = 0x01                 // I/G bit of the first MAC byte (IEEE 802)
)

// Labels of the programs' sections.
const (
	labelV4 = iota
	labelV6
	labelOurs
	labelGroup
	numLabels
)

// Program compiles the filter: the exact one when it takes at most
// ExactMaxInstructions, the coarse one otherwise (see Filter). Address tests are
// linear (a few instructions per address, run in the kernel per frame). Duplicate
// addresses are tested once.
//
// Layout of the exact filter (A is the accumulator, X the offset of the IP header):
//
//	      ldh [12]; jeq #0x8100 → tagged
//	      ldx #14; ja dispatch
//	tagged: ldh [16]; ldx #18
//	dispatch: jeq #0x0800 → v4; jeq #0x86dd → v6; [jeq #0x0806 → accept]; reject
//	v4:   [ld [x+16]; jeq VIP → accept …] [ld [x+12]; jeq RS → accept …]
//	      [ldb [x+9]; jeq #112 → accept]; reject
//	v6:   [VIP word by word → accept …] [RS …]
//	      [ldb [x+6]; jeq #112 → accept] [jeq #58; ldb [x+40]; 133 ≤ A ≤ 137 → accept]
//	      reject
//
// The coarse filter puts a test of the destination MAC in front of the same program
// without addresses:
//
//	      ldb [0]; jset #1 → group
//	      [ld [0]; jeq MAC[0:4]; ldh [4]; jeq MAC[4:6] → ours …]; reject
//	ours: ldh [12]; [jeq #0x8100: ldh [16]]
//	      jeq #0x0800 → accept; jeq #0x86dd → accept; [jeq #0x0806 → accept]; reject
//	group: the exact layout above, with no addresses
//
// Conditional jumps only skip a few instructions (their offsets are 8 bits); the
// branches to the sections use unconditional jumps, which reach anywhere.
// The address tests come before the VRRP and ND tests so that a frame too short for
// one of the later loads (which rejects it) has already been accepted if it is VIP
// traffic.
func (f *Filter) Program() ([]bpf.Instruction, error) {
	v4dst, v6dst, err := splitAddrs(f.VIPs)
	if err != nil {
		return nil, err
	}
	v4src, v6src, err := splitAddrs(f.NATRealServers)
	if err != nil {
		return nil, err
	}
	if f.exactLen(v4dst, v6dst, v4src, v6src) <= ExactMaxInstructions {
		var p bpfProgram
		f.emitExact(&p, v4dst, v6dst, v4src, v6src)
		return p.resolve()
	}
	return f.coarseProgram()
}

// Exact reports whether Program compiles the exact filter (false: the coarse one).
// Every distinct address takes at least 2 instructions, so with more than
// ExactMaxInstructions/2 of them it is false without reading the rest of the
// lists (the daemon asks at every change of a table of thousands of VIPs).
func (f *Filter) Exact() bool {
	seen := map[netip.Addr]struct{}{}
	for _, l := range [][]netip.Addr{f.VIPs, f.NATRealServers} {
		for _, a := range l {
			seen[a.Unmap()] = struct{}{}
			if len(seen) > ExactMaxInstructions/2 {
				return false
			}
		}
	}
	v4dst, v6dst, err1 := splitAddrs(f.VIPs)
	v4src, v6src, err2 := splitAddrs(f.NATRealServers)
	return err1 == nil && err2 == nil && f.exactLen(v4dst, v6dst, v4src, v6src) <= ExactMaxInstructions
}

// exactLen is the length of the exact program for these lists (emitExact): its
// fixed part, 1 + 2 per address for an IPv4 list, 9 per IPv6 address.
func (f *Filter) exactLen(v4dst, v6dst, v4src, v6src [][]byte) int {
	n := 11 + 1 + 1 // dispatch, reject; v4 reject; v6 reject
	if f.ARP {
		n += 2
	}
	if f.VRRP {
		n += 3 + 2
	}
	if f.VRRP || f.NDP {
		n++
	}
	if f.NDP {
		n += 5
	}
	for _, l := range [][][]byte{v4dst, v4src} {
		if len(l) > 0 {
			n += 1 + 2*len(l)
		}
	}
	return n + 9*(len(v6dst)+len(v6src))
}

func (f *Filter) emitExact(p *bpfProgram, v4dst, v6dst, v4src, v6src [][]byte) {
	p.emit(bpf.LoadAbsolute{Off: bpfEtherType, Size: 2})
	p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: header.EtherTypeVLAN, SkipTrue: 2})
	p.emit(bpf.LoadConstant{Dst: bpf.RegX, Val: bpfL3Untagged})
	p.emit(bpf.Jump{Skip: 2})
	p.emit(bpf.LoadAbsolute{Off: bpfInnerEtherType, Size: 2})
	p.emit(bpf.LoadConstant{Dst: bpf.RegX, Val: bpfL3Tagged})

	p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: header.EtherTypeIPv4, SkipFalse: 1})
	p.jump(labelV4)
	p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: header.EtherTypeIPv6, SkipFalse: 1})
	p.jump(labelV6)
	if f.ARP {
		p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: header.EtherTypeARP, SkipFalse: 1})
		p.accept()
	}
	p.reject()

	p.label(labelV4)
	p.words(bpfIPv4Dst, v4dst)
	p.words(bpfIPv4Src, v4src)
	if f.VRRP {
		p.emit(bpf.LoadIndirect{Off: bpfIPv4Proto, Size: 1})
		p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: bpfProtoVRRP, SkipFalse: 1})
		p.accept()
	}
	p.reject()

	p.label(labelV6)
	p.words(bpfIPv6Dst, v6dst)
	p.words(bpfIPv6Src, v6src)
	if f.VRRP || f.NDP {
		p.emit(bpf.LoadIndirect{Off: bpfIPv6NextHeader, Size: 1})
	}
	if f.VRRP {
		p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: bpfProtoVRRP, SkipFalse: 1})
		p.accept()
	}
	if f.NDP {
		// Neighbour discovery messages carry no extension headers in practice (and
		// RFC 4861 §6.1 has receivers check hop limit 255, not the chain), so the ICMPv6
		// type follows the fixed header.
		p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: header.IPProtoICMPv6, SkipFalse: 4})
		p.emit(bpf.LoadIndirect{Off: bpfICMPv6Type, Size: 1})
		p.emit(bpf.JumpIf{Cond: bpf.JumpGreaterOrEqual, Val: bpfNDFirst, SkipFalse: 2})
		p.emit(bpf.JumpIf{Cond: bpf.JumpGreaterThan, Val: bpfNDLast, SkipTrue: 1})
		p.accept()
	}
	p.reject()
}

// coarseProgram compiles the coarse filter (see Program); its length is 5 per MAC
// plus at most 40, whatever the addresses.
func (f *Filter) coarseProgram() ([]bpf.Instruction, error) {
	var p bpfProgram
	p.emit(bpf.LoadAbsolute{Off: bpfDstMAC, Size: 1})
	p.emit(bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: bpfGroupBit, SkipFalse: 1})
	p.jump(labelGroup)
	macs := uniqueMACs(f.MACs)
	if len(macs) == 0 {
		p.jump(labelOurs)
	}
	for _, m := range macs {
		p.emit(bpf.LoadAbsolute{Off: bpfDstMAC, Size: 4})
		p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: binary.BigEndian.Uint32(m[:4]), SkipFalse: 3})
		p.emit(bpf.LoadAbsolute{Off: bpfDstMACLow, Size: 2})
		p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(binary.BigEndian.Uint16(m[4:])), SkipFalse: 1})
		p.jump(labelOurs)
	}
	p.reject()

	p.label(labelOurs)
	p.emit(bpf.LoadAbsolute{Off: bpfEtherType, Size: 2})
	p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: header.EtherTypeVLAN, SkipFalse: 1})
	p.emit(bpf.LoadAbsolute{Off: bpfInnerEtherType, Size: 2})
	p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: header.EtherTypeIPv4, SkipTrue: 1})
	p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: header.EtherTypeIPv6, SkipFalse: 1})
	p.accept()
	if f.ARP {
		p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: header.EtherTypeARP, SkipFalse: 1})
		p.accept()
	}
	p.reject()

	p.label(labelGroup)
	f.emitExact(&p, nil, nil, nil, nil)
	return p.resolve()
}

// Assemble compiles the filter to raw instructions, as SO_ATTACH_FILTER takes them.
func (f *Filter) Assemble() ([]bpf.RawInstruction, error) {
	prog, err := f.Program()
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("afpacket: assemble filter: %w", err)
	}
	return raw, nil
}

// splitAddrs returns the addresses of list as 4- and 16-byte slices, each address
// once, in list order (IPv4-mapped IPv6 addresses count as IPv4).
func splitAddrs(list []netip.Addr) (v4, v6 [][]byte, err error) {
	seen := make(map[netip.Addr]struct{}, len(list))
	for _, a := range list {
		if !a.IsValid() {
			return nil, nil, errors.New("afpacket: filter: invalid address")
		}
		a = a.Unmap()
		if _, dup := seen[a]; dup {
			continue
		}
		seen[a] = struct{}{}
		if a.Is4() {
			v4 = append(v4, a.AsSlice())
		} else {
			v6 = append(v6, a.AsSlice())
		}
	}
	return v4, v6, nil
}

// uniqueMACs returns the unicast MACs of list, each once, in list order: a group
// address is never a director's own.
func uniqueMACs(list [][6]byte) [][6]byte {
	var out [][6]byte
	for _, m := range list {
		if m[0]&bpfGroupBit == 0 && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// bpfProgram is a tiny assembler: instructions plus labels for the unconditional
// jumps, resolved once the program is complete.
type bpfProgram struct {
	ins    []bpf.Instruction
	labels [numLabels]int
	fixups []bpfFixup
}

type bpfFixup struct{ at, label int }

func (p *bpfProgram) emit(i bpf.Instruction) { p.ins = append(p.ins, i) }
func (p *bpfProgram) accept()                { p.emit(bpf.RetConstant{Val: bpfAccept}) }
func (p *bpfProgram) reject()                { p.emit(bpf.RetConstant{Val: bpfReject}) }

func (p *bpfProgram) jump(label int) {
	p.fixups = append(p.fixups, bpfFixup{at: len(p.ins), label: label})
	p.emit(bpf.Jump{})
}

func (p *bpfProgram) label(label int) { p.labels[label] = len(p.ins) }

// words emits the tests of the addresses in list against the field at off (from the
// IP header): accept on the first address that matches all its 32-bit words. An IPv4
// list loads its field once (a jump leaves A alone): 2 instructions per address; an
// IPv6 address takes 4 × (load, compare) + accept = 9.
func (p *bpfProgram) words(off uint32, list [][]byte) {
	if len(list) > 0 && len(list[0]) == 4 {
		p.emit(bpf.LoadIndirect{Off: off, Size: 4})
		for _, a := range list {
			p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: binary.BigEndian.Uint32(a), SkipFalse: 1})
			p.accept()
		}
		return
	}
	for _, a := range list {
		n := len(a) / 4
		for w := range n {
			p.emit(bpf.LoadIndirect{Off: off + uint32(4*w), Size: 4})
			// On a mismatch skip the rest of this address: 2 instructions per
			// remaining word, plus the accept.
			p.emit(bpf.JumpIf{Cond: bpf.JumpEqual, Val: binary.BigEndian.Uint32(a[4*w:]), SkipFalse: uint8(2*(n-1-w) + 1)})
		}
		p.accept()
	}
}

func (p *bpfProgram) resolve() ([]bpf.Instruction, error) {
	if len(p.ins) > bpfMaxInstructions {
		return nil, ErrFilterTooLong
	}
	for _, fx := range p.fixups {
		p.ins[fx.at] = bpf.Jump{Skip: uint32(p.labels[fx.label] - fx.at - 1)}
	}
	return p.ins, nil
}

// MulticastMACs returns the link-layer multicast groups that traffic the filter passes
// is sent to, which a NIC delivers only to subscribed hosts: VRRP's (RFC 5798
// §5.1.1.2 and §5.1.2.2: 224.0.0.18 is 01:00:5e:00:00:12, ff02::12 is
// 33:33:00:00:00:12) when VRRP is set, and with NDP the solicited-node group of every
// IPv6 VIP (RFC 4291 §2.7.1, ff02::1:ffXX:XXXX, mapped by RFC 2464 §7 to
// 33:33:ff:XX:XX:XX), since the VIP is on no kernel interface that would join it.
// Duplicates are listed once.
//
// More than MaxSolicitedGroups solicited-node groups are not listed one by one:
// joining a group costs time linear in the groups already joined, in the kernel
// (packet_mc_add) and in the ring, so tens of thousands take seconds per ring and per
// reload. The list then holds the zero address instead, which no group has and
// which stands for every group: the ring subscribes to all multicast
// (PACKET_MR_ALLMULTI), of which the filter still passes only ARP, VRRP and neighbour
// discovery.
func (f *Filter) MulticastMACs() [][6]byte {
	var macs [][6]byte
	seen := map[[6]byte]bool{}
	add := func(m [6]byte) {
		if !seen[m] {
			seen[m] = true
			macs = append(macs, m)
		}
	}
	if f.VRRP {
		add([6]byte{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12})
		add([6]byte{0x33, 0x33, 0x00, 0x00, 0x00, 0x12})
	}
	if f.NDP {
		vrrp := len(macs)
		for _, a := range f.VIPs {
			if a = a.Unmap(); a.Is6() {
				b := a.As16()
				add([6]byte{0x33, 0x33, 0xff, b[13], b[14], b[15]})
			}
			if len(macs)-vrrp > MaxSolicitedGroups {
				return append(macs[:vrrp], [6]byte{}) // all multicast
			}
		}
	}
	return macs
}
