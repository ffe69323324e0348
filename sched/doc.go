// Package sched holds the real servers of a virtual service as IPVS's schedulers see
// them and the schedulers themselves: rr wrr lc wlc sed nq sh dh lblc lblcr fo ovf
// twos and mh, each picking exactly the real server Linux IPVS would pick in the same
// situation (see SEMANTICS.md §2–4 beside the repository).
//
// A Pool is one service's destination list in kernel order (new servers at the head)
// together with its scheduler; it serialises scheduling decisions with one mutex that
// only new connections take. Dest counters (active, inactive, persistent) and flags are
// atomics so the connection table can bind and unbind connections without that lock.
//
// Performance contract: Schedule allocates nothing. Scheduler state changes only through
// the Pool, which calls the scheduler's hooks exactly where the kernel calls its
// add_dest, del_dest and upd_dest hooks.
package sched
