package conntrack

// prefetch hints the CPU to bring *p's cache line into all cache levels
// (PREFETCHT0). It never faults and nothing waits for it.
//
//go:noescape
func prefetch(p *uint32)
