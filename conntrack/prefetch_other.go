//go:build !amd64

package conntrack

// prefetch is a no-op where gvs has no prefetch instruction wired up.
func prefetch(*uint32) {}
