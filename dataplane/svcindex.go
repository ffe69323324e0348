package dataplane

import (
	"encoding/binary"
)

// svcIndex maps service keys to services for the new-connection path: a paged
// open-addressing table (ptable.go) with a multiply-shift hash of the key's words —
// cheaper per lookup than a Go map, which hashes all 24 bytes of the key with its
// seeded hash and probes generically. A generation shares the pages a change did
// not write with the one before, and carries a small delta over them (pdelta.go):
// the services changed since the pages were last written.
type svcIndex struct {
	ptable[svcSlot]
	d pdelta[svcSlot]
}

// svcSlot is a slot of the index: the key's hash and the service, which keeps
// its key (service.key). 16 bytes, so that a page of 16 slots is 4 cache lines,
// which each change copies (it was 32 bytes with the key in the slot: 8 lines).
// A reader compares the hash and, when it matches, the service's key: the
// service it returns is the line it reads next anyway.
type svcSlot struct {
	h   uint64
	svc *service // nil: empty
}

func (s svcSlot) used() bool             { return s.svc != nil }
func (s svcSlot) hash() uint64           { return s.h }
func (s svcSlot) sameKey(o svcSlot) bool { return s.h == o.h && s.svc.key == o.svc.key }

func svcHash(k *svcKey) uint64 {
	h := binary.LittleEndian.Uint64(k.addr[:8]) ^ binary.LittleEndian.Uint64(k.addr[8:])*0x9e3779b97f4a7c15
	h ^= uint64(k.mark)<<32 | uint64(k.port)<<16 | uint64(k.proto)<<8
	if k.v6 {
		h ^= 1
	}
	return h * 0xc2b2ae3d27d4eb4f
}

// svcIndexBuilder is the control side's next index (deltaBuilder).
type svcIndexBuilder struct{ b deltaBuilder[svcSlot] }

// put stores svc under its key, replacing the service stored there if any.
func (x *svcIndexBuilder) put(svc *service) { x.b.put(svcSlot{h: svcHash(&svc.key), svc: svc}, true) }

// del removes the service with key k, if any.
func (x *svcIndexBuilder) del(k svcKey) {
	if svc := x.get(k); svc != nil {
		x.b.del(svcSlot{h: svcHash(&k), svc: svc})
	}
}

func (x *svcIndexBuilder) freeze() svcIndex {
	t, d := x.b.freeze()
	return svcIndex{t, d}
}

// get returns the next index's service with key k, or nil: the Director's running
// services are found here, not in a map of their own beside it (a second
// 10,000-entry table to probe, cold, on each change).
func (x *svcIndexBuilder) get(k svcKey) *service {
	if h := svcHash(&k); x.b.bloom.has(h) {
		if i := deltaIndex(x.b.ents, h, &k); i >= 0 {
			return x.b.ents[i].svc
		}
	}
	idx := svcIndex{ptable: x.b.base.t}
	return idx.get(&k)
}

// deltaIndex returns the position in ents of the service with key k (hash h),
// or -1.
func deltaIndex(ents []svcSlot, h uint64, k *svcKey) int {
	for i := range ents {
		if e := &ents[i]; e.h == h && e.svc.key == *k {
			return i
		}
	}
	return -1
}

// len returns the number of services in the next index.
func (x *svcIndexBuilder) len() int { return x.b.len() }

// each calls f for every service of the next index, in no particular order.
func (x *svcIndexBuilder) each(f func(svcKey, *service)) {
	x.b.each(func(s *svcSlot) { f(s.svc.key, s.svc) })
}

// newSvcIndex returns an index of m (tests; the Director keeps a builder),
// each service's key set to its key in m.
func newSvcIndex(m map[svcKey]*service) svcIndex {
	var x svcIndexBuilder
	for k, svc := range m {
		svc.key = k
		x.put(svc)
	}
	x.b.fold()
	return x.freeze()
}

// get returns the service with key k, or nil.
func (x *svcIndex) get(k *svcKey) *service {
	if x.empty() { // and so its delta (deltaBuilder.freeze)
		return nil
	}
	h := svcHash(k)
	for i := h >> x.shift; ; i = (i + 1) & x.mask {
		s := x.at(i)
		if s.svc == nil {
			if x.d.mayHold(h) {
				for j := range x.d.ents {
					if e := &x.d.ents[j]; e.h == h && e.svc.key == *k {
						return e.svc
					}
				}
			}
			return nil
		}
		if s.h == h && s.svc.key == *k {
			return s.svc
		}
	}
}

// each calls f for every service of the index, in no particular order.
func (x *svcIndex) each(f func(*service)) {
	x.ptable.each(func(s *svcSlot) {
		if s.svc != nil {
			f(s.svc)
		}
	})
	for _, e := range x.d.ents {
		f(e.svc)
	}
}
