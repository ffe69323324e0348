//go:build !linux

package daemon

// reloading is the sd_notify message that a reload begins; systemd runs only on
// Linux, where the message also carries the monotonic time.
func reloading() string { return "RELOADING=1" }
