//go:build linux

package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// nanosleep sleeps d with nanosleep(2) on the calling thread: the latency client's
// gaps and the paced sender's quanta. time.Sleep would wait in the runtime's
// netpoller, which rounds waits under a millisecond up to one.
func nanosleep(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
}

// PaceUDP sends o.Count frames on o.Dev at o.Rate frames per second through an
// AF_PACKET socket (PACKET_QDISC_BYPASS, as trafgen) and returns how many it sent
// and how long that took. Needs CAP_NET_RAW in the namespace of the interface.
func PaceUDP(ctx context.Context, o PaceOptions) (PaceResult, error) {
	var res PaceResult
	if o.Rate <= 0 || o.Count == 0 {
		return res, fmt.Errorf("bench: pace: rate and count must be positive")
	}
	frames, err := paceFrames(o)
	if err != nil {
		return res, err
	}
	ifi, err := net.InterfaceByName(o.Dev)
	if err != nil {
		return res, fmt.Errorf("bench: pace: %w", err)
	}
	// Protocol 0: the socket receives nothing, it only sends.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return res, os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
		return res, os.NewSyscallError("bind", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
		return res, os.NewSyscallError("setsockopt PACKET_QDISC_BYPASS", err)
	}
	// The sender owns its thread, with 1 µs of timer slack (50 µs by default) so that
	// a quantum's sleep ends close to when it should.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, 1000, 0, 0, 0); err != nil {
		return res, os.NewSyscallError("prctl PR_SET_TIMERSLACK", err)
	}
	iovs := make([]unix.Iovec, paceBatch)
	msgs := make([]unix.Mmsghdr, paceBatch)
	for i := range msgs {
		msgs[i].Hdr.Iov = &iovs[i]
		msgs[i].Hdr.SetIovlen(1)
	}
	t0 := time.Now()
	start, last := t0, t0 // start moves on when the sender falls behind; t0 stays
	for res.Sent < o.Count {
		if err := ctx.Err(); err != nil {
			return res, context.Cause(ctx)
		}
		now := time.Now()
		if behind := now.Sub(start) - time.Duration(float64(res.Sent)/o.Rate*float64(time.Second)); behind > paceMaxBehind {
			start = start.Add(behind - paceMaxBehind)
			res.Behind += behind - paceMaxBehind
		}
		due := paceDue(o.Rate, now.Sub(start), o.Count)
		if due <= res.Sent {
			nanosleep(paceQuantum)
			continue
		}
		n := int(min(due-res.Sent, paceBatch))
		for i := range n {
			f := frames[(res.Sent+uint64(i))%uint64(len(frames))]
			iovs[i].Base = &f[0]
			iovs[i].SetLen(len(f))
		}
		k, errno := sendmmsg(fd, msgs[:n])
		switch {
		case errno == unix.ENOBUFS || errno == unix.EAGAIN || errno == unix.EINTR:
			// The device refused for now: what was not sent is still due.
		case errno != 0:
			return res, os.NewSyscallError("sendmmsg", errno)
		}
		if k > 0 {
			res.Sent += uint64(k)
			last = time.Now()
		}
	}
	res.Elapsed = last.Sub(t0)
	return res, nil
}
