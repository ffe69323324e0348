package sched

// dhBits and dhSize are the kernel's default CONFIG_IP_VS_DH_TAB_BITS table (§4.11).
const (
	dhBits = 8
	dhSize = 1 << dhBits
)

// dh is destination hashing (docs/ipvs-semantics.md §4.11): bucket i holds list element
// i mod n (weights ignored), indexed by hash_32 of the packet's destination address.
// No fallback.
//
// The zero value is not usable (use newDH); it is used under its Pool's lock.
type dh struct {
	buckets [dhSize]*Dest
}

func newDH() *dh { return &dh{} }

func (*dh) Name() string { return "dh" }

func (s *dh) Init(dests []*Dest)                    { s.build(dests) }
func (s *dh) AddDest(dests []*Dest, _ *Dest)        { s.build(dests) }
func (s *dh) DelDest(dests []*Dest, _ *Dest, _ int) { s.build(dests) }

// UpdDest does nothing: dh has no upd_dest hook, and its table does not depend on
// weights, so an edit leaves it as it is.
func (s *dh) UpdDest([]*Dest, *Dest) {}

func (s *dh) build(dests []*Dest) {
	if len(dests) == 0 {
		s.buckets = [dhSize]*Dest{}
		return
	}
	for i := range s.buckets {
		s.buckets[i] = dests[i%len(dests)]
	}
}

func (s *dh) Schedule(_ []*Dest, p *Packet) *Dest {
	d := s.buckets[hash32(p.DstFold(), dhBits)]
	// Unlike sh, dh also tests AVAILABLE (§4.11).
	if d == nil || d.flags.Load()&(FlagAvailable|FlagOverload) != FlagAvailable || d.weight.Load() <= 0 {
		return nil
	}
	return d
}
