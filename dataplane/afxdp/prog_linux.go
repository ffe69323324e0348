package afxdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/gvs-lb/gvs/dataplane/header"
)

// ProgramName is the name gvs gives its XDP program (the kernel keeps 15 bytes).
// An attached program of this name is gvs's own and is replaced, never refused.
const ProgramName = "gvs_xdp"

// Address flags: the value of an address in the address maps.
const (
	addrVIP   = 1 << 0 // frames to it are redirected
	addrNATRS = 1 << 1 // frames from it are redirected, unless to the host itself
	addrLocal = 1 << 2 // the host's own: frames to it are the kernel's whoever sent them
)

// Reason is why the program redirected a frame: the index of its counter.
type Reason uint32

// Reasons, in the order of the program's counter array.
const (
	ReasonVIP4     Reason = iota // IPv4 destination is a VIP
	ReasonVIP6                   // IPv6 destination is a VIP
	ReasonNAT4                   // IPv4 source is a NAT real server
	ReasonNAT6                   // IPv6 source is a NAT real server
	ReasonARP                    // ARP request for a VIP
	ReasonNS                     // neighbour solicitation for a VIP
	ReasonVRRP                   // VRRP, with Config.RedirectVRRP
	ReasonNoSocket               // due to a queue without a socket: passed instead
	numReasons
)

var reasonNames = [numReasons]string{"vip4", "vip6", "nat4", "nat6", "arp", "ns", "vrrp", "no_socket"}

func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint32(r))
}

// XDP verdicts (enum xdp_action).
const (
	xdpAborted  = 0
	xdpPass     = 2
	xdpRedirect = 4
)

// struct xdp_md field offsets.
const (
	xdpMDData    = 0
	xdpMDDataEnd = 4
	xdpMDRxQueue = 16
)

// Offsets the program reads, from the start of the L3 header (after the Ethernet
// header and the optional 802.1Q tag).
const (
	ipv4Proto     = 9
	ipv4Src       = 12
	ipv4Dst       = 16
	ipv4MinLen    = 20
	ipv6Next      = 6
	ipv6Src       = 8
	ipv6Dst       = 24
	ipv6Len       = header.IPv6HeaderLen // 40
	icmp6Type     = ipv6Len
	nsTarget      = ipv6Len + 8 // type, code, checksum, reserved (RFC 4861 §4.3)
	nsMinLen      = nsTarget + 16
	arpPType      = 2 // ARP for Ethernet/IPv4 (RFC 826)
	arpOp         = 6
	arpTPA        = 24
	arpLen        = 28
	vlanTagLen    = header.VLANTagLen
	vlanInnerType = 2 // TCI, then the EtherType
	ethLen        = header.EthernetHeaderLen
	ethType       = 12
	protoVRRP     = 112
	protoICMPv6   = 58
	icmp6NS       = 135
	arpRequest    = 1
)

// progMaps are the maps the program uses.
type progMaps struct {
	xsks     *ebpf.Map // XSKMAP: queue → socket
	addr4    *ebpf.Map // hash: IPv4 address → flags
	addr6    *ebpf.Map // hash: IPv6 address → flags
	counters *ebpf.Map // per-CPU array of uint64, by Reason
	maxAddrs int       // VIPs and NAT real servers each address map takes
}

// maxLocalAddrs is the room each address map keeps beyond its maxAddrs for the host's
// own addresses (Filter.Local), so that they never take a VIP's place.
const maxLocalAddrs = 256

func (m *progMaps) close() {
	for _, x := range []*ebpf.Map{m.xsks, m.addr4, m.addr6, m.counters} {
		if x != nil {
			x.Close()
		}
	}
}

// newMaps creates the maps: queues entries in the XSKMAP, maxAddrs VIPs and NAT real
// servers and maxLocalAddrs host addresses per address map.
func newMaps(queues, maxAddrs int) (*progMaps, error) {
	m := &progMaps{maxAddrs: maxAddrs}
	var err error
	specs := []struct {
		dst  **ebpf.Map
		spec ebpf.MapSpec
	}{
		{&m.xsks, ebpf.MapSpec{Name: "gvs_xsks", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(queues)}},
		{&m.addr4, ebpf.MapSpec{Name: "gvs_addr4", Type: ebpf.Hash, KeySize: 4, ValueSize: 1, MaxEntries: uint32(maxAddrs + maxLocalAddrs)}},
		{&m.addr6, ebpf.MapSpec{Name: "gvs_addr6", Type: ebpf.Hash, KeySize: 16, ValueSize: 1, MaxEntries: uint32(maxAddrs + maxLocalAddrs)}},
		{&m.counters, ebpf.MapSpec{Name: "gvs_counters", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: uint32(numReasons)}},
	}
	for _, s := range specs {
		if *s.dst, err = ebpf.NewMap(&s.spec); err != nil {
			m.close()
			return nil, fmt.Errorf("map %s: %w", s.spec.Name, err)
		}
	}
	return m, nil
}

// be16 returns the value a 16-bit load of the big-endian v reads on this host.
func be16(v uint16) int32 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return int32(binary.NativeEndian.Uint16(b[:]))
}

// progOptions are the build-time choices of the program.
type progOptions struct {
	redirectVRRP bool
}

// Registers the program keeps across helper calls (R6–R9 are callee-saved).
const (
	rCtx    = asm.R6 // struct xdp_md *
	rL3     = asm.R7 // packet pointer to the L3 header
	rEnd    = asm.R8 // data_end
	rReason = asm.R9 // Reason of a redirect
)

// instructions assembles the program. Layout:
//
//	r6 = ctx; r7 = data; r8 = data_end
//	need 14 → EtherType; r7 += 14; [0x8100: need 4 → inner EtherType; r7 += 4]
//	IPv4: need 20; dst in addr4 with VIP → vip4; dst Local or multicast → skip;
//	      src with NATRS → nat4; [proto 112 → vrrp]
//	IPv6: need 40; dst in addr6 with VIP → vip6; dst Local or multicast → skip;
//	      src with NATRS → nat6; [112 → vrrp]
//	      next header 58, need 64, type 135, target in addr6 with VIP → ns
//	ARP:  need 28, ptype IPv4, op request, target in addr4 with VIP → arp
//	pass: return XDP_PASS
//	redirect: counters[r9]++; bpf_redirect_map(xsks, rx_queue_index, 0)
//	          == XDP_REDIRECT → return it; else counters[no_socket]++, XDP_PASS
//
// Every packet load is preceded by a bounds check against data_end on the same
// packet pointer, which is what the verifier accepts; map keys point into the packet.
func instructions(m *progMaps, o progOptions) asm.Instructions {
	var p asm.Instructions
	emit := func(ins ...asm.Instruction) { p = append(p, ins...) }
	// need n bytes from rL3 (plus off) or pass.
	need := func(n int32) {
		emit(asm.Mov.Reg(asm.R2, rL3), asm.Add.Imm(asm.R2, n), asm.JGT.Reg(asm.R2, rEnd, "pass"))
	}
	// lookup jumps to label "redirect" with reason when the address at rL3+off is in
	// m with flag; falls through otherwise.
	lookup := func(mp *ebpf.Map, off int32, flag int32, reason Reason, next string) {
		emit(
			asm.LoadMapPtr(asm.R1, mp.FD()),
			asm.Mov.Reg(asm.R2, rL3),
			asm.Add.Imm(asm.R2, off),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, next),
			asm.LoadMem(asm.R1, asm.R0, 0, asm.Byte),
			asm.And.Imm(asm.R1, flag),
			asm.JEq.Imm(asm.R1, 0, next),
			asm.Mov.Imm(rReason, int32(reason)),
			asm.Ja.Label("redirect"),
		)
	}
	label := func(name string, ins asm.Instruction) { emit(ins.WithSymbol(name)) }
	// dst looks the destination at rL3+off up in mp: a VIP is redirected with reason;
	// the host's own address skips the NAT check (to label local): a real server's
	// neighbour solicitations and health-check replies are the kernel's. Anything else
	// goes on to label other.
	dst := func(mp *ebpf.Map, off int32, reason Reason, other, local string) {
		emit(
			asm.LoadMapPtr(asm.R1, mp.FD()),
			asm.Mov.Reg(asm.R2, rL3),
			asm.Add.Imm(asm.R2, off),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, other),
			asm.LoadMem(asm.R1, asm.R0, 0, asm.Byte),
			asm.Mov.Reg(asm.R2, asm.R1),
			asm.And.Imm(asm.R2, addrVIP),
			asm.Mov.Imm(rReason, int32(reason)),
			asm.JNE.Imm(asm.R2, 0, "redirect"),
			asm.And.Imm(asm.R1, addrLocal),
			asm.JNE.Imm(asm.R1, 0, local),
			asm.Ja.Label(other),
		)
	}

	emit(
		asm.Mov.Reg(rCtx, asm.R1),
		asm.LoadMem(rL3, rCtx, xdpMDData, asm.Word),
		asm.LoadMem(rEnd, rCtx, xdpMDDataEnd, asm.Word),
	)
	need(ethLen)
	emit(
		asm.LoadMem(asm.R3, rL3, ethType, asm.Half),
		asm.Add.Imm(rL3, ethLen),
		asm.JNE.Imm(asm.R3, be16(header.EtherTypeVLAN), "dispatch"),
	)
	need(vlanTagLen)
	emit(
		asm.LoadMem(asm.R3, rL3, vlanInnerType, asm.Half),
		asm.Add.Imm(rL3, vlanTagLen),
	)
	label("dispatch", asm.JEq.Imm(asm.R3, be16(header.EtherTypeIPv4), "v4"))
	emit(
		asm.JEq.Imm(asm.R3, be16(header.EtherTypeIPv6), "v6"),
		asm.JEq.Imm(asm.R3, be16(header.EtherTypeARP), "arp"),
		asm.Ja.Label("pass"),
	)

	// IPv4.
	label("v4", asm.Mov.Reg(asm.R2, rL3))
	emit(asm.Add.Imm(asm.R2, ipv4MinLen), asm.JGT.Reg(asm.R2, rEnd, "pass"))
	dst(m.addr4, ipv4Dst, ReasonVIP4, "v4mc", "v4proto")
	// Multicast (224/4) and class E with the broadcast address (240/4): never a reply.
	label("v4mc", asm.LoadMem(asm.R1, rL3, ipv4Dst, asm.Byte))
	emit(asm.And.Imm(asm.R1, 0xe0), asm.JEq.Imm(asm.R1, 0xe0, "v4proto"))
	lookup(m.addr4, ipv4Src, addrNATRS, ReasonNAT4, "v4proto")
	label("v4proto", asm.LoadMem(asm.R1, rL3, ipv4Proto, asm.Byte))
	if o.redirectVRRP {
		emit(asm.Mov.Imm(rReason, int32(ReasonVRRP)), asm.JEq.Imm(asm.R1, protoVRRP, "redirect"))
	}
	emit(asm.Ja.Label("pass"))

	// IPv6.
	label("v6", asm.Mov.Reg(asm.R2, rL3))
	emit(asm.Add.Imm(asm.R2, ipv6Len), asm.JGT.Reg(asm.R2, rEnd, "pass"))
	dst(m.addr6, ipv6Dst, ReasonVIP6, "v6mc", "v6next")
	// Multicast (ff00::/8), where neighbour solicitations go: never a reply.
	label("v6mc", asm.LoadMem(asm.R1, rL3, ipv6Dst, asm.Byte))
	emit(asm.JEq.Imm(asm.R1, 0xff, "v6next"))
	lookup(m.addr6, ipv6Src, addrNATRS, ReasonNAT6, "v6next")
	label("v6next", asm.LoadMem(asm.R1, rL3, ipv6Next, asm.Byte))
	if o.redirectVRRP {
		emit(asm.Mov.Imm(rReason, int32(ReasonVRRP)), asm.JEq.Imm(asm.R1, protoVRRP, "redirect"))
	}
	emit(asm.JNE.Imm(asm.R1, protoICMPv6, "pass"))
	need(nsMinLen)
	emit(
		asm.LoadMem(asm.R1, rL3, icmp6Type, asm.Byte),
		asm.JNE.Imm(asm.R1, icmp6NS, "pass"),
	)
	lookup(m.addr6, nsTarget, addrVIP, ReasonNS, "pass")

	// ARP.
	label("arp", asm.Mov.Reg(asm.R2, rL3))
	emit(
		asm.Add.Imm(asm.R2, arpLen),
		asm.JGT.Reg(asm.R2, rEnd, "pass"),
		asm.LoadMem(asm.R1, rL3, arpPType, asm.Half),
		asm.JNE.Imm(asm.R1, be16(header.EtherTypeIPv4), "pass"),
		asm.LoadMem(asm.R1, rL3, arpOp, asm.Half),
		asm.JNE.Imm(asm.R1, be16(arpRequest), "pass"),
	)
	lookup(m.addr4, arpTPA, addrVIP, ReasonARP, "pass")

	label("pass", asm.Mov.Imm(asm.R0, xdpPass))
	emit(asm.Return())

	// redirect: count, then redirect to the queue's socket.
	count := func(after string) {
		emit(
			asm.StoreMem(asm.RFP, -4, rReason, asm.Word),
			asm.LoadMapPtr(asm.R1, m.counters.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, after),
			asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
			asm.Add.Imm(asm.R1, 1),
			asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		)
	}
	label("redirect", asm.Mov.Imm(asm.R0, 0))
	count("send")
	label("send", asm.LoadMapPtr(asm.R1, m.xsks.FD()))
	emit(
		asm.LoadMem(asm.R2, rCtx, xdpMDRxQueue, asm.Word),
		asm.Mov.Imm(asm.R3, xdpAborted), // the verdict when the queue has no socket
		asm.FnRedirectMap.Call(),
		asm.JEq.Imm(asm.R0, xdpRedirect, "out"),
		asm.Mov.Imm(rReason, int32(ReasonNoSocket)),
	)
	count("nosock")
	label("nosock", asm.Mov.Imm(asm.R0, xdpPass))
	label("out", asm.Return())
	return p
}

// newProgram loads the program using m.
func newProgram(m *progMaps, o progOptions) (*ebpf.Program, error) {
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Name:         ProgramName,
		Type:         ebpf.XDP,
		License:      "Apache-2.0",
		Instructions: instructions(m, o),
	}, ebpf.ProgramOptions{LogDisabled: false})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load XDP program: %+v", ve)
		}
		return nil, fmt.Errorf("load XDP program: %w", err)
	}
	return prog, nil
}

// setAddrs makes the address maps hold exactly vips (flag VIP), natRS (flag NAT
// real server) and local, the host's own addresses (flag Local). Stale entries are
// removed before new ones are added, so that any two sets that each fit the maps can
// replace one another; an address in both the old and the new set stays in the map
// throughout (its flags are updated in place), so its frames are never passed in
// between.
func (m *progMaps) setAddrs(vips, natRS, local []netip.Addr) error {
	want4 := map[[4]byte]uint8{}
	want6 := map[[16]byte]uint8{}
	add := func(list []netip.Addr, flag uint8) {
		for _, a := range list {
			a = a.Unmap()
			if a.Is4() {
				want4[a.As4()] |= flag
			} else if a.Is6() {
				want6[a.As16()] |= flag
			}
		}
	}
	add(vips, addrVIP)
	add(natRS, addrNATRS)
	add(local, addrLocal)
	// Both sizes are checked before either map changes.
	if err := checkRoom("IPv4", want4, m.maxAddrs); err != nil {
		return err
	}
	if err := checkRoom("IPv6", want6, m.maxAddrs); err != nil {
		return err
	}
	if err := syncMap(m.addr4, want4); err != nil {
		return fmt.Errorf("IPv4 addresses: %w", err)
	}
	if err := syncMap(m.addr6, want6); err != nil {
		return fmt.Errorf("IPv6 addresses: %w", err)
	}
	return nil
}

// checkRoom refuses more than max VIPs and NAT real servers, or more than
// maxLocalAddrs host addresses, in one family's map.
func checkRoom[K comparable](family string, want map[K]uint8, max int) error {
	svc, local := 0, 0
	for _, f := range want {
		if f&(addrVIP|addrNATRS) != 0 {
			svc++
		} else {
			local++
		}
	}
	if svc > max {
		return fmt.Errorf("%d %s VIPs and NAT real servers, the map holds %d: %w", svc, family, max, ErrTooManyAddrs)
	}
	if local > maxLocalAddrs {
		return fmt.Errorf("%d %s addresses of the host's own on the interface, the map keeps room for %d: %w", local, family, maxLocalAddrs, ErrTooManyAddrs)
	}
	return nil
}

func syncMap[K comparable](m *ebpf.Map, want map[K]uint8) error {
	var stale []K
	var k K
	var v uint8
	it := m.Iterate()
	for it.Next(&k, &v) {
		if w, ok := want[k]; !ok {
			stale = append(stale, k)
		} else if w == v {
			delete(want, k)
		}
	}
	if err := it.Err(); err != nil {
		return err
	}
	for _, k := range stale {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return err
		}
	}
	for k, v := range want {
		if err := m.Put(k, v); err != nil {
			return err
		}
	}
	return nil
}

// ErrTooManyAddrs is returned when a filter has more addresses than the maps hold
// (Config.MaxAddrs).
var ErrTooManyAddrs = errors.New("afxdp: more addresses than the XDP maps hold")

// counts returns the per-Reason counters summed over CPUs.
func (m *progMaps) counts() ([numReasons]uint64, error) {
	var out [numReasons]uint64
	var per []uint64
	for r := Reason(0); r < numReasons; r++ {
		if err := m.counters.Lookup(uint32(r), &per); err != nil {
			return out, err
		}
		for _, v := range per {
			out[r] += v
		}
	}
	return out, nil
}
