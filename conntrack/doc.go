// Package conntrack is the IPVS connection table: connections and persistence
// templates, the TCP/UDP state machines and timeouts, and the per-dest active,
// inactive and persistent connection counters, behaving as Linux IPVS does
// (docs/ipvs-semantics.md §5.2, §5.5, §5.9, §6, §7).
//
// The caller (the Director) drives it per packet: In for a client packet, Out for a
// NAT reply, and on a miss Template/InsertTemplate and Insert after scheduling. Time
// is always passed in (ns on the caller's clock, monotonic or capture time), so a
// replay is reproducible; nothing here reads a clock. Expire, called regularly,
// removes due entries and unbinds them from their dests.
//
// Performance contract: In and Out on an existing entry allocate nothing and take
// exactly one shard lock (a second one, once per connection, to mark a persistence
// template ASSURED); Insert allocates only when a shard's slab grows by a chunk.
// Entries are 88-byte pointer-free records in slabs, linked by uint32 indices, so a
// table of millions of connections costs the garbage collector nothing to scan; the
// table uses under 100 bytes per connection. Expire works in bounded steps (a budget,
// and at most 64 entries per shard lock hold), so expiry never stops the world.
//
// Under a flood, connections that have not proven a client live in their own
// budget and the oldest is evicted to make room (unconfirmed.go, docs/defense.md
// §7); confirmed connections are never evicted.
//
// Concurrency contract: a Table is safe for concurrent use by any number of
// goroutines; flows are spread over lock shards by a hash of (protocol, client
// address, client port), so goroutines handling different flows rarely contend.
//
// Where IPVS relies on things gvs does not have, the table documents its choice: no
// netfilter conntrack ("old_ct" is always false), no secure_tcp state tables (its
// secure_tcp shortens timeouts, docs/defense.md §8), no FTP/SIP helpers (NO_CPORT
// lookups are supported, filling in the port later is not).
package conntrack
