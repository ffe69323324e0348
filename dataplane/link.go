package dataplane

import (
	"context"
	"errors"
	"net"
)

// A Link moves batches of Ethernet frames (no FCS) between the Director and an
// interface: an AF_PACKET ring live (afpacket.Ring), in-memory links in tests
// (package linktest). It has the shape of wireguard-go's tun.Device: batches in both
// directions, the batch size part of the contract, headroom in front of every frame.
//
// Buffer ownership: ReadBatch fills frames with buffers that belong to the link and
// stay valid until the next ReadBatch call (which hands them back to the link first)
// or, for a link closed in the meantime, until that next call returns net.ErrClosed.
// The caller may rewrite a frame in place and may write into its headroom, Buf[:Off]
// (TUN encapsulation), but never past Buf[:Off+Len]'s capacity, and must not keep a
// frame after the next ReadBatch.
//
// Concurrency: ReadBatch and WriteBatch may run concurrently with each other and with
// Close, but each is called by one goroutine at a time (a worker). Close may be called
// from any goroutine, any number of times.
type Link interface {
	// ReadBatch waits for at least one frame and fills frames[:n] with up to
	// len(frames) received frames. Every frame has at least Headroom bytes before
	// Off. With an empty frames slice it only hands the previous batch back and
	// returns at once. After Close (also one that interrupts a waiting call) it
	// returns an error satisfying errors.Is(err, net.ErrClosed).
	ReadBatch(frames []Frame) (n int, err error)

	// WriteBatch sends frames in order. They may point anywhere: into the link's own
	// receive buffers (forwarding in place), into another link's, or into the
	// caller's memory. n counts the frames the link accepted; frames it could not
	// send for a reason that concerns only that frame or the moment (too long for
	// the link, queue full, link down) are dropped and counted by the link, not
	// reported, as a NIC drops them. err is non-nil only when the link cannot send
	// at all (closed, interface gone).
	WriteBatch(frames []Frame) (n int, err error)

	// BatchSize is the largest useful len(frames) for ReadBatch and WriteBatch: the
	// number of frames one system call moves.
	BatchSize() int

	// Close stops the link and wakes a waiting ReadBatch. It is idempotent.
	Close() error
}

// OpError is the error of a link operation: Op is "open", "read", "write", "filter",
// "stats"; Link the interface name.
type OpError struct {
	Op   string
	Link string
	Err  error
}

func (e *OpError) Error() string {
	return "dataplane: " + e.Op + " " + e.Link + ": " + e.Err.Error()
}

func (e *OpError) Unwrap() error { return e.Err }

// Headroom is the number of bytes every frame buffer reserves in front of the frame,
// so that tunnelling can prepend headers in place instead of copying the packet (the
// way wireguard-go's offset works). A link reads frame i into buf[Headroom:] and hands
// the Director buf together with the offset Headroom; header.Encapsulate then returns a
// frame that starts inside the headroom.
//
// 64 bytes cover the worst growth: a new Ethernet header with an 802.1Q tag (18) plus
// an outer IPv6 header (40) in place of an untagged Ethernet header (14) is 44 bytes;
// GUE would add 12 more (UDP 8 + GUE 4), still 56. It also keeps the original frame
// cache-line aligned when buffers are.
const Headroom = 64

// Pump runs a worker on a link until ctx is done or the link is closed:
// ReadBatch → w.Process → WriteBatch, allocating nothing per iteration. When ctx is
// done it closes l, which wakes a waiting ReadBatch. w must have been created with a
// batch of at least l.BatchSize() (Director.NewWorker); now returns the time handed to
// Process (monotonic nanoseconds live).
//
// Pump returns nil after a clean stop (ctx done, or l closed by anyone), and the
// error otherwise. It hands the last batch back to the link before returning, so an
// afpacket.Ring closed afterwards releases its memory at once.
func Pump(ctx context.Context, l Link, w *Worker, now func() int64) error {
	n := l.BatchSize()
	in := make([]Frame, n)
	// Forwarded frames plus at most one generated ICMP error per input frame.
	out := make([]Frame, 0, 2*n)
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	for {
		k, err := l.ReadBatch(in)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		out = w.Process(in[:k], now(), out[:0])
		if _, err := l.WriteBatch(out); err != nil {
			_, _ = l.ReadBatch(nil) // hand the batch back; the error is the write's
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		// Drop references to the batch's buffers (ICMP errors, frames): the next
		// ReadBatch invalidates them anyway.
		clear(out)
	}
}
