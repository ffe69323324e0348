package conntrack

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
			prefetch(t.head(h)) // the arrays are made in New and never replaced; head reads the shard's mask atomically
		}
	}
}
