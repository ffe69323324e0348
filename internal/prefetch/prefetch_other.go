//go:build !amd64

package prefetch

import "unsafe"

// Line does nothing where gvs has no prefetch instruction wired up.
func Line(unsafe.Pointer) {}
