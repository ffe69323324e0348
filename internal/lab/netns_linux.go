package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// netnsDir is where iproute2 keeps the names of network namespaces (NETNS_RUN_DIR).
const netnsDir = "/run/netns"

// InNetns runs fn on an OS thread that has entered the network namespace ns (a
// name from `ip netns list`), then returns the thread to its own namespace.
// Sockets fn creates belong to ns for their whole life, wherever they are used
// afterwards, and /proc/sys/net reads and writes in fn act on ns. fn must not
// start goroutines that expect to be in ns: only its own goroutine is.
//
// Why a thread: setns(2) changes the calling thread only. The goroutine is locked
// to its thread while inside; if the thread cannot go back, it is not unlocked, so
// the Go runtime ends it instead of reusing it in the wrong namespace.
func InNetns(ns string, fn func() error) error {
	target, err := os.Open(filepath.Join(netnsDir, ns))
	if err != nil {
		return fmt.Errorf("lab: netns %s: %w", ns, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("lab: netns %s: %w", ns, err)
			return
		}
		defer self.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("lab: enter netns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread exits with this goroutine.
			errc <- fmt.Errorf("lab: leave netns %s: %w", ns, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// netnsUsable reports why network namespaces cannot be made here, or nil. It
// unshares a fresh namespace on a locked thread and returns the thread to its own
// namespace, so it names and leaves nothing (the fresh namespace dies with its last
// reference).
func netnsUsable() error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("lab: network namespaces: %w", err)
			return
		}
		defer self.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("lab: cannot create a network namespace: %w", err)
			return
		}
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("lab: leave probe namespace: %w", err) // stays locked: the thread ends
			return
		}
		runtime.UnlockOSThread()
		errc <- nil
	}()
	return <-errc
}
