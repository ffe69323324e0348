//go:build !linux

package main

import "io"

// isTerminal reports whether w is a terminal; off Linux gvs does not ask, and
// shows no progress.
func isTerminal(io.Writer) bool { return false }
