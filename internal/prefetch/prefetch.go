// Package prefetch asks the CPU to start loading a cache line the caller will read or
// write soon, so that the misses of a batch of packets overlap instead of being paid
// one after another. It is a hint: it reads nothing a caller can observe, never
// faults, takes no lock, and nothing waits for it; correctness never depends on it.
// Its users: the data path's batch prefetch (dataplane/prefetch.go) and the
// connection table's (conntrack/prefetch.go).
package prefetch
