package conntrack

import (
	"unsafe"

	"github.com/gvs-lb/gvs/internal/prefetch"
)

// Hash is the flow hash of a client tuple (proto, family, client address and port),
// as a lookup or insert of that tuple computes it: what Prefetch and InOrInsertAt
// take. caddr holds an IPv4 address in its first four bytes and zeros after, as in
// Key.
func (t *Table) Hash(proto uint8, ipv6 bool, caddr *[16]byte, cport uint16) uint64 {
	return t.hash(proto, ipv6, caddr, cport)
}

// Prefetch asks the CPU to start loading the bucket heads that lookups or inserts
// of the client tuples of hashes hs (Hash) will read, so that the cache misses of a
// big table overlap with other work (the caller prefetches a whole batch before
// processing it). A hash of 0 is skipped: the caller's mark for a frame it did not
// hash. It is a hint: it reads nothing, takes no lock, and correctness never
// depends on it. It takes the batch's hashes at once, not one call a frame: the
// bucket's address is too much work for the compiler to inline a call per frame.
func (t *Table) Prefetch(hs []uint64) {
	for _, h := range hs {
		if h != 0 {
			prefetch.Line(unsafe.Pointer(t.head(h))) // the arrays are made in New and never replaced; head reads the shard's mask atomically
		}
	}
}

// PrefetchRef asks the CPU to start loading the entry r names, for a step at r
// (StepRef, InRef) the caller will make soon: the first ACK and the FIN of a flow
// whose worker remembers its Ref read the entry's key and state, a line or two no
// other packet of the flow touched since its SYN. Only entries in a shard's first
// chunk are prefetched (most of a table's, up to an eighth of Max): the chunk is made
// in New and never replaced, so it is read without the shard's lock; a later chunk's
// address is the shard's to change. A Ref that cannot be valid is ignored. A hint
// like Prefetch.
func (t *Table) PrefetchRef(r Ref) {
	si, i, ok := t.split(r)
	if !ok {
		return
	}
	if s := &t.shards[si]; i < uint32(len(s.first)) {
		prefetchEntry(&s.first[i])
	}
}

// prefetchEntry asks for both lines entry e may lie on (88 bytes: e starts at any
// multiple of 8 within its line): its first word and its last.
func prefetchEntry(e *entry) {
	prefetch.Line(unsafe.Pointer(e))
	prefetch.Line(unsafe.Add(unsafe.Pointer(e), unsafe.Sizeof(entry{})-1))
}
