package dataplane

import (
	"context"
	"errors"
	"net"
	"time"
)

// A Link moves batches of Ethernet frames (no FCS) between the Director and an
// interface: an AF_PACKET ring live (Ring), in-memory links in tests (package
// linktest). It has the shape of wireguard-go's tun.Device: batches in both
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

// RingConfig configures an AF_PACKET ring (OpenRing). The zero value is usable: every
// zero field takes the default given.
type RingConfig struct {
	// Packets is how many minimum-size (60-byte) frames the receive ring holds when
	// its blocks fill. Default 32768 (57 blocks of 128 KiB, 7 MiB); at least 8 blocks.
	// The ring is sized in packets, not bytes, because small packets are what
	// overflow it (docs/lab.md): the kernel hands a block over when it is full or when
	// BlockTimeout expires, so blocks are kept small enough to fill before the
	// timeout under load, and Packets decides how many there are.
	Packets int

	// BlockSize is the size of one ring block: a power of two, at least the page size
	// and large enough for the longest frame the ring must carry whole. Default
	// 128 KiB, which holds a reassembled 64 KiB IPv4 datagram.
	BlockSize int

	// BlockTimeout is how long the kernel keeps filling a partly full block before
	// handing it over (tp_retire_blk_tov, whole milliseconds). Default 1 ms, the
	// kernel's smallest: it bounds the latency a lightly loaded ring adds.
	BlockTimeout time.Duration

	// BatchSize is the number of frames one ReadBatch returns at most and one
	// sendmmsg(2) carries. Default 64.
	BatchSize int

	// FanoutID, when non-zero, joins the socket to the PACKET_FANOUT group of that id
	// on the interface in mode PACKET_FANOUT_HASH with PACKET_FANOUT_FLAG_DEFRAG: the
	// kernel reassembles IPv4 fragments, then spreads frames over the group's
	// sockets by a symmetric flow hash, so one flow always lands on one worker. Ids are
	// shared by every process in the network namespace: pick one no one else uses.
	FanoutID uint16

	// Filter selects the frames the ring receives (a classic BPF program attached to
	// the socket). nil receives every frame.
	Filter *Filter

	// QdiscBypass sends with PACKET_QDISC_BYPASS, straight to the driver. It helps on
	// real NICs with a deep qdisc; on veth it changes nothing (docs/lab.md).
	QdiscBypass bool
}

// Ring defaults.
const (
	DefaultRingPackets   = 32768
	DefaultRingBlockSize = 128 << 10
	DefaultBlockTimeout  = time.Millisecond
	DefaultBatchSize     = 64
)

// RingStats are a ring's counters since it was opened. The kernel's are read with
// PACKET_STATISTICS (packet(7)), which resets them on every read, so the ring sums
// them up.
type RingStats struct {
	// Kernel counters (struct tpacket_stats_v3).
	Packets     uint64 // frames that passed the filter, including the dropped ones
	Drops       uint64 // frames dropped because the ring was full
	FreezeQueue uint64 // times the kernel found the ring full (tp_freeze_q_cnt)

	// Receive side, counted by the ring.
	RXFrames    uint64 // frames handed to ReadBatch callers
	RXTruncated uint64 // dropped: longer than a ring block can hold (tp_len > tp_snaplen)
	RXBad       uint64 // dropped: a frame header that fails the bounds checks (never expected)
	LinkErrors  uint64 // errors the kernel reported on the socket (SO_ERROR), e.g. ENETDOWN

	// Transmit side.
	TXFrames uint64 // frames the kernel accepted
	TXDrops  uint64 // frames dropped: too long, no buffer space, link down, empty
}

// Pump runs a worker on a link until ctx is done or the link is closed:
// ReadBatch → w.Process → WriteBatch, allocating nothing per iteration. When ctx is
// done it closes l, which wakes a waiting ReadBatch. w must have been created with a
// batch of at least l.BatchSize() (Director.NewWorker); now returns the time handed to
// Process (monotonic nanoseconds live).
//
// Pump returns nil after a clean stop (ctx done, or l closed by anyone), and the
// error otherwise. It hands the last batch back to the link before returning, so a
// Ring closed afterwards releases its memory at once.
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
