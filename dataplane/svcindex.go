package dataplane

import (
	"encoding/binary"
	"math/bits"
)

// svcIndex maps service keys to services for the new-connection path: an
// open-addressing table built once per snapshot and only read afterwards, with a
// multiply-shift hash of the key's words — cheaper per lookup than a Go map, which
// hashes all 24 bytes of the key with its seeded hash and probes generically.
type svcIndex struct {
	shift uint8
	slots []svcSlot // len is a power of two, at least twice the number of services
}

type svcSlot struct {
	key svcKey
	svc *service // nil: empty
}

func svcHash(k *svcKey) uint64 {
	h := binary.LittleEndian.Uint64(k.addr[:8]) ^ binary.LittleEndian.Uint64(k.addr[8:])*0x9e3779b97f4a7c15
	h ^= uint64(k.mark)<<32 | uint64(k.port)<<16 | uint64(k.proto)<<8
	if k.v6 {
		h ^= 1
	}
	return h * 0xc2b2ae3d27d4eb4f
}

func newSvcIndex(m map[svcKey]*service) svcIndex {
	n := 8
	for n < 2*len(m) {
		n *= 2
	}
	x := svcIndex{shift: uint8(64 - bits.TrailingZeros(uint(n))), slots: make([]svcSlot, n)}
	mask := uint64(n - 1)
	for k, svc := range m {
		i := svcHash(&k) >> x.shift
		for x.slots[i].svc != nil {
			i = (i + 1) & mask
		}
		x.slots[i] = svcSlot{key: k, svc: svc}
	}
	return x
}

// get returns the service with key k, or nil.
func (x *svcIndex) get(k *svcKey) *service {
	if len(x.slots) == 0 {
		return nil
	}
	mask := uint64(len(x.slots) - 1)
	for i := svcHash(k) >> x.shift; ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.svc == nil || s.key == *k {
			return s.svc
		}
	}
}
