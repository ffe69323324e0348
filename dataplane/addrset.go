package dataplane

import (
	"encoding/binary"
	"net/netip"
)

// addrSet is a set of IP addresses tuned for the per-packet "is this a VIP?" test:
// a handful of addresses are scanned linearly (a few ns, no hashing); larger sets
// are a paged open-addressing table (ptable.go) with a multiply-shift hash, which a
// new generation shares except for the pages a change wrote, and a small delta
// over it (pdelta.go): the addresses changed since. The zero value is an
// empty set; it is immutable once published in a snapshot. addrSetBuilder makes one.
type addrSet struct {
	small []addrEntry
	big   ptable[addrSlot] // used when small is nil
	d     pdelta[addrSlot] // over big
	// v4 holds the IPv4 addresses of small, each as its 4 bytes read little-endian
	// (inSmall4), made with small by freeze; nil for a large set.
	v4 []uint32
}

type addrEntry struct {
	a  [16]byte
	v6 bool
}

type addrSlot struct {
	addrEntry
	in bool
}

func (s addrSlot) used() bool              { return s.in }
func (s addrSlot) hash() uint64            { return addrHash(&s.a, s.v6) }
func (s addrSlot) sameKey(o addrSlot) bool { return s.addrEntry == o.addrEntry }

// addrHash is the set's hash of a raw address (IPv4 in the first 4 bytes, the rest
// zero). An IPv4 address is read in 4 bytes, as the parser stored it
// (header.Parsed: 4 bytes over the zeroed struct): a wider load spans two stores
// and waits for both to commit (setAddr). Its hash is what the whole 16 bytes give.
func addrHash(a *[16]byte, v6 bool) uint64 {
	if !v6 {
		return uint64(binary.LittleEndian.Uint32(a[:4])) * 0xc2b2ae3d27d4eb4f
	}
	h := binary.LittleEndian.Uint64(a[:8]) ^ binary.LittleEndian.Uint64(a[8:])*0x9e3779b97f4a7c15
	return (h ^ 1) * 0xc2b2ae3d27d4eb4f
}

// is reports whether the set's entry e is the raw address a of family v6: for
// IPv4 its first 4 bytes, loaded as addrHash loads them.
func (e *addrEntry) is(a *[16]byte, v6 bool) bool {
	if !v6 {
		return !e.v6 && binary.LittleEndian.Uint32(e.a[:4]) == binary.LittleEndian.Uint32(a[:4])
	}
	return e.v6 && e.a == *a
}

const addrSetLinear = 16

func entryOf(a netip.Addr) (addrEntry, bool) {
	if !a.IsValid() {
		return addrEntry{}, false
	}
	a = a.Unmap()
	e := addrEntry{v6: a.Is6()}
	if e.v6 {
		e.a = a.As16()
	} else {
		b := a.As4()
		copy(e.a[:4], b[:])
	}
	return e, true
}

// addrSetBuilder keeps the control side's next set with a count of the holders of
// each address (services sharing a VIP, real servers sharing an address): an
// address is in the set while it has a holder. The table's slot stands for the
// first holder; extra counts the others, of the addresses that have more than
// one. The common address (one service's VIP) is then found in the table alone:
// a change adding or removing it probes one table of every address, cold at
// 10,000 services, not a map of every address's count beside it.
type addrSetBuilder struct {
	extra map[addrEntry]int
	b     deltaBuilder[addrSlot]
}

// add adds one holder of a (an invalid address is ignored).
func (s *addrSetBuilder) add(a netip.Addr) {
	e, ok := entryOf(a)
	if !ok {
		return
	}
	if s.b.put(addrSlot{e, true}, false) {
		if s.extra == nil {
			s.extra = map[addrEntry]int{}
		}
		s.extra[e]++
	}
}

// remove drops one holder of a.
func (s *addrSetBuilder) remove(a netip.Addr) {
	e, ok := entryOf(a)
	if !ok {
		return
	}
	if n := s.extra[e]; n > 0 {
		if n == 1 {
			delete(s.extra, e)
		} else {
			s.extra[e] = n - 1
		}
		return
	}
	s.b.del(addrSlot{e, true})
}

// freeze returns the set for a snapshot. A small set is laid out as a list,
// from its table with the delta folded in.
func (s *addrSetBuilder) freeze() addrSet {
	n := s.b.len()
	if n <= addrSetLinear {
		s.b.fold()
	}
	t, d := s.b.freeze()
	if n > addrSetLinear {
		return addrSet{big: t, d: d}
	}
	small := make([]addrEntry, 0, n)
	var v4 []uint32
	if n > 0 {
		t.each(func(x *addrSlot) {
			if !x.in {
				return
			}
			small = append(small, x.addrEntry)
			if !x.v6 {
				v4 = append(v4, binary.LittleEndian.Uint32(x.a[:4]))
			}
		})
	}
	return addrSet{small: small, v4: v4}
}

// newAddrSet returns the set of addrs.
func newAddrSet(addrs []netip.Addr) addrSet {
	var b addrSetBuilder
	for _, a := range addrs {
		if e, ok := entryOf(a); ok {
			b.b.put(addrSlot{e, true}, false)
		}
	}
	b.b.fold()
	return b.freeze()
}

// inSmall4 reports whether the IPv4 address in a's first 4 bytes is among a small
// set's IPv4 addresses (v4), one compare an address; it is false for a large set
// (more than addrSetLinear addresses), whose caller asks contains instead. Small
// enough to inline into the per-packet classification.
func (s *addrSet) inSmall4(a *[16]byte) bool {
	w := binary.LittleEndian.Uint32(a[:4])
	for _, x := range s.v4 {
		if x == w {
			return true
		}
	}
	return false
}

// contains reports whether the raw address (IPv4 in the first 4 bytes, the rest zero)
// is in the set.
func (s *addrSet) contains(a *[16]byte, v6 bool) bool {
	if s.small == nil {
		if s.big.empty() { // and so its delta (deltaBuilder.freeze)
			return false
		}
		h := addrHash(a, v6)
		for i := h >> s.big.shift; ; i = (i + 1) & s.big.mask {
			x := s.big.at(i)
			if !x.in {
				if s.d.mayHold(h) {
					for j := range s.d.ents {
						if s.d.ents[j].is(a, v6) {
							return true
						}
					}
				}
				return false
			}
			if x.is(a, v6) {
				return true
			}
		}
	}
	for i := range s.small {
		e := &s.small[i]
		if e.v6 != v6 {
			continue
		}
		if !v6 {
			if e.a[0] == a[0] && e.a[1] == a[1] && e.a[2] == a[2] && e.a[3] == a[3] {
				return true
			}
			continue
		}
		if e.a == *a {
			return true
		}
	}
	return false
}
