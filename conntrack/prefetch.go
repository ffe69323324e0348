package conntrack

// Hash is the flow hash of a client tuple (proto, family, client address and port),
// as a lookup or insert of that tuple computes it: what Prefetch and InOrInsertAt
// take. caddr holds an IPv4 address in its first four bytes and zeros after, as in
// Key.
func (t *Table) Hash(proto uint8, ipv6 bool, caddr *[16]byte, cport uint16) uint64 {
	return t.hash(proto, ipv6, caddr, cport)
}

// Prefetch asks the CPU to start loading the bucket head that a lookup or insert of
// the client tuple of hash h (Hash) will read, so that the cache miss of a big table
// overlaps with other work (the caller prefetches a whole batch before processing
// it). It is a hint: it reads nothing, takes no lock, and correctness never depends
// on it.
func (t *Table) Prefetch(h uint64) {
	prefetch(t.head(h)) // the arrays are made in New and never replaced; head reads the shard's mask atomically
}
