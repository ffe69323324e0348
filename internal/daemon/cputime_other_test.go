//go:build !linux

package daemon

// processCPU is unknown off Linux: benchmarks report no CPU time.
func processCPU() int64 { return 0 }
