// Package sched holds the real servers of a virtual service as IPVS's schedulers see
// them and the schedulers themselves: rr wrr lc wlc sed nq sh dh lblc lblcr fo ovf
// twos and mh, each picking exactly the real server Linux IPVS would pick in the same
// situation (see docs/ipvs-semantics.md §2–4).
//
// A Pool is one service's destination list in kernel order (new servers at the head)
// together with its scheduler; it serialises scheduling decisions with one mutex that
// only new connections take. Dest counters (active, inactive, persistent) and flags are
// atomics so the connection table can bind and unbind connections without that lock.
//
// New builds a scheduler by its ipvsadm name with Options (scheduler flags as ParseFlags
// reads them, mh's table size, twos's random source, the lblc/lblcr sysctls). Nothing
// in the package reads a clock or a global random generator: lblc and lblcr run the
// kernel's 60-second garbage collector lazily from Packet.Now, twos draws from
// Options.Rand.
//
// Performance contract: Schedule allocates nothing (lblc and lblcr grow their entry
// slabs only up to a new high-water mark). Scheduler state changes only through the
// Pool, which calls the scheduler's hooks exactly where the kernel calls its
// init_service, add_dest, del_dest and upd_dest hooks.
package sched
