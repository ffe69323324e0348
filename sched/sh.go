package sched

// shBits and shSize are the kernel's default CONFIG_IP_VS_SH_TAB_BITS table (§4.10).
const (
	shBits = 8
	shSize = 1 << shBits
)

// sh is source hashing (docs/ipvs-semantics.md §4.10): a 256-bucket table filled by walking the
// list, each dest taking weight consecutive buckets (at least one), indexed by
// hash_32 of the client address (plus its port with sh-port). With sh-fallback an
// unusable bucket is followed by probes from twice the hash onwards.
//
// The zero value is not usable (use newSH); it is used under its Pool's lock.
type sh struct {
	flags   Flags
	buckets [shSize]*Dest
}

func newSH(f Flags) *sh { return &sh{flags: f} }

func (*sh) Name() string { return "sh" }

// The table is rebuilt from the current list on every change, weights included.
func (s *sh) Init(dests []*Dest)                    { s.build(dests) }
func (s *sh) AddDest(dests []*Dest, _ *Dest)        { s.build(dests) }
func (s *sh) DelDest(dests []*Dest, _ *Dest, _ int) { s.build(dests) }
func (s *sh) UpdDest(dests []*Dest, _ *Dest)        { s.build(dests) }

func (s *sh) build(dests []*Dest) {
	if len(dests) == 0 {
		s.buckets = [shSize]*Dest{}
		return
	}
	j, n := 0, int32(0) // current dest, buckets it has taken in this visit
	for i := range s.buckets {
		d := dests[j]
		s.buckets[i] = d
		// A weight of 0 or 1 takes one bucket; the list wraps round.
		if n++; n >= d.weight.Load() {
			j, n = j+1, 0
			if j == len(dests) {
				j = 0
			}
		}
	}
}

func (s *sh) Schedule(_ []*Dest, p *Packet) *Dest {
	v := hashInput(p, s.flags&FlagSched2 != 0)
	ih := hash32(v, shBits)
	d := s.buckets[ih]
	if d == nil || usable(d) {
		return d
	}
	if s.flags&FlagSched1 == 0 {
		return nil
	}
	// sh-fallback: probe offset o at (ih + o) mod N, which the kernel hashes once
	// more with that offset added, so probes run from 2·ih: (2·ih + o) mod N.
	for o := range uint32(shSize) {
		d = s.buckets[(2*ih+o)&(shSize-1)]
		if d == nil {
			return nil
		}
		if usable(d) {
			return d
		}
	}
	return nil
}

// usable is the hashing schedulers' availability test: a positive weight and no
// OVERLOAD (the AVAILABLE flag is not tested; deleting rebuilds the table anyway).
func usable(d *Dest) bool { return d.weight.Load() > 0 && d.flags.Load()&FlagOverload == 0 }

// hashInput is what sh and mh hash for a packet (§4.10): the client address folded
// to 32 bits plus, with withPort (sh-port, mh-port), the client's port for TCP, UDP
// and SCTP. The client is the source, or the destination of an ICMP error's inner
// header ("inverse").
func hashInput(p *Packet, withPort bool) uint32 {
	addr, port := &p.Src, p.SrcPort
	if p.Inverse {
		addr, port = &p.Dst, p.DstPort
	}
	v := foldRaw(addr, p.IPv6)
	if withPort {
		switch p.Protocol {
		case protoTCP, protoUDP, protoSCTP:
			v += uint32(port)
		}
	}
	return v
}

// IP protocol numbers whose first four bytes are the two ports.
const (
	protoTCP  = 6
	protoUDP  = 17
	protoSCTP = 132
)

// hash32 is the kernel's generic hash_32 (include/linux/hash.h, since 4.7): the top
// bits of the product with 0x61C88647 mod 2^32.
func hash32(v uint32, bits uint) uint32 { return v * 0x61C88647 >> (32 - bits) }
