//go:build !linux

package dataplane

import "time"

// threadCPU falls back to the wall clock where no per-thread CPU clock is wired up.
func threadCPU() int64 { return time.Now().UnixNano() }

func lockThread() func() { return func() {} }
