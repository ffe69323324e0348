package conntrack

// Prefetch asks the CPU to start loading the bucket head that a lookup or insert of
// this client tuple will read, so that the cache miss of a big table overlaps with
// other work (the caller prefetches a whole batch before processing it). It is a
// hint: it reads nothing, takes no lock, and correctness never depends on it. caddr
// holds an IPv4 address in its first four bytes and zeros after, as in Key.
func (t *Table) Prefetch(proto uint8, ipv6 bool, caddr *[16]byte, cport uint16) {
	h := t.hash(proto, ipv6, caddr, cport)
	s := &t.shards[t.shardOf(h)]
	prefetch(&s.buckets[h&t.bucketMask]) // buckets is allocated in New, never resized
}
