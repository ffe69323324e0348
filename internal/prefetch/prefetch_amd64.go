package prefetch

import "unsafe"

// Line hints the CPU to bring the cache line holding p into every cache level
// (PREFETCHT0). An address it cannot load is ignored, as the instruction does.
//
//go:noescape
func Line(p unsafe.Pointer)
