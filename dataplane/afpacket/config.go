package afpacket

import "time"

// Config configures an AF_PACKET ring (Open). The zero value is usable: every
// zero field takes the default given.
type Config struct {
	// Version is the TPACKET version of the receive ring: 2 (TPACKET_V2, the
	// default) or 3 (TPACKET_V3). Default DefaultVersion.
	//
	// A V2 ring hands each frame over on its own (a status word per frame) and
	// wakes the reader for it, so a frame reaches the pipeline within microseconds
	// at any load; under load the reader still takes up to BatchSize frames per
	// wake-up. A V3 ring hands over whole blocks, when one is full or its retire
	// timer (BlockTimeout, a periodic timer of whole milliseconds) fires: fewer
	// wake-ups per frame, but request/response traffic waits up to a millisecond
	// per frame (docs/lab.md "Receive ring: V2 or V3"). V3 packs small frames
	// densely (about 224 bytes of ring per 60-byte frame against V2's FrameSize).
	Version int

	// Packets is how many frames the receive ring holds before the kernel drops
	// (Stats.Drops). Size it by time: at least the peak packet rate of one worker
	// times the longest stall the worker must ride out, 50–100 ms (a scheduling
	// hiccup, a reload, a garbage collection on a loaded machine). On the
	// development VM one worker forwards at most about 0.4 Mpps, so the default,
	// 32768, is about 80 ms at that rate; a 64-block V3 ring (about 10 ms) lost up to
	// 8.5% of 300 ms bursts that a 256-block one carried whole. Memory: a V2 ring
	// takes Packets × FrameSize (32768 × 1664 bytes = 52 MiB at MTU 1500), a V3 ring
	// about Packets × 224 bytes in blocks of BlockSize (7 MiB), per worker. At
	// least 8 blocks (V3) or 16 frames (V2).
	Packets int

	// FrameSize (V2 only) is the size of one ring slot: a multiple of 16. Default:
	// enough for a frame of the interface's MTU with an 802.1Q tag and the
	// headroom (1664 bytes at MTU 1500). A longer frame (a reassembled IPv4
	// datagram, jumbo frames with a smaller FrameSize) still arrives whole: the
	// socket's PACKET_COPY_THRESH makes the kernel queue a copy on the socket,
	// which the ring reads (Stats.RXCopied), at most one per batch.
	FrameSize int

	// BlockSize is the size of one ring block: a power of two, at least the page size
	// and large enough for the longest frame the ring must carry whole (V3) or for
	// one FrameSize (V2). Default 128 KiB, which holds a reassembled 64 KiB IPv4
	// datagram.
	BlockSize int

	// BlockTimeout (V3 only) is how long the kernel keeps filling a partly full
	// block before handing it over (tp_retire_blk_tov, whole milliseconds).
	// Default 1 ms, the kernel's smallest: it bounds the latency a lightly loaded
	// ring adds.
	BlockTimeout time.Duration

	// PollDelay (V2 only) is how long the reader sleeps, when it finds the ring
	// empty right after a batch, before it waits for the socket: under moderate load
	// frames gather meanwhile and the next wake-up carries several, which saves a
	// wake-up and a sendmmsg(2) per one or two frames; an idle ring is still waited
	// for in the poller, so a lone frame adds no delay. It adds at most PollDelay to a
	// frame that arrives during the sleep. The sleep is a nanosleep(2) of its own
	// (the runtime's timers would round it up to a millisecond when the process is
	// idle), with the thread's timer slack lowered to 1 µs (PR_SET_TIMERSLACK; the
	// default 50 µs would stretch every sleep), that keeps the worker's P: other
	// goroutines of that P wait for it, so keep it to tens of microseconds. Default
	// DefaultPollDelay; negative: no sleep.
	PollDelay time.Duration

	// Spin (V2 only) is how long the reader keeps polling the status word of the
	// ring's next slot, when it finds the ring empty right after a batch, before it
	// naps (PollDelay) or waits for the socket. A frame that arrives meanwhile is
	// taken at once, without a wake-up: on a virtual machine waking a thread on
	// another vCPU costs an inter-processor interrupt, 20–40 µs on the development
	// VM, most of the latency a userspace hop adds there (docs/lab.md "Receive
	// ring: V2 or V3"). The price is CPU: a reader that sees a frame at least every
	// Spin never sleeps and keeps its CPU busy. It yields that CPU to any other
	// thread ready to run there as it spins (sched_yield(2)), so what shares the
	// CPU still runs, but the time shows as the worker's. The spin starts only
	// after a batch, so an idle ring costs nothing. Default 0 (no spin); negative:
	// no spin.
	Spin time.Duration

	// BatchSize is the number of frames one ReadBatch returns at most and one
	// sendmmsg(2) carries. Default 64.
	BatchSize int

	// FanoutID, when non-zero, joins the socket to the PACKET_FANOUT group of that id
	// on the interface with PACKET_FANOUT_FLAG_DEFRAG: the kernel reassembles IPv4
	// fragments, then spreads frames over the group's sockets by the client's side of
	// each flow (PACKET_FANOUT_CBPF with SteerProgram for the Filter's NAT real
	// servers), so a flow and its NAT replies land on one worker; where the kernel
	// refuses that, by its own flow hash (PACKET_FANOUT_HASH), one flow still on one
	// worker (Ring.Steering says which). Ids are shared by every process in the
	// network namespace: pick one no one else uses.
	FanoutID uint16

	// FanoutAlone, with FanoutID, says the ring is the only one its group will have
	// (a director with one worker). The group is then PACKET_FANOUT_CPU: with one
	// socket there is nothing to choose, so no steering program runs on every frame
	// (in gvs bench live's 64-byte flood it cost the sender's CPU ≈ 0.2 µs a frame,
	// docs/lab.md); IPv4 fragments are still reassembled, and Ring.Steering is nil:
	// every frame, NAT replies included, lands on the one worker. A ring opened
	// without it cannot join that group (the kernel refuses a member of another mode).
	FanoutAlone bool

	// Filter selects the frames the ring receives (a classic BPF program attached to
	// the socket). nil receives every frame.
	Filter *Filter

	// QdiscBypass sends with PACKET_QDISC_BYPASS, straight to the driver. It helps on
	// real NICs with a deep qdisc; on veth it changes nothing (docs/lab.md).
	QdiscBypass bool
}

// Ring defaults.
const (
	DefaultVersion      = 2
	DefaultPollDelay    = 25 * time.Microsecond
	DefaultSpin         = 0
	DefaultPackets      = 32768
	DefaultBlockSize    = 128 << 10
	DefaultBlockTimeout = time.Millisecond
	DefaultBatchSize    = 64
)

// Stats are a ring's counters since it was opened: where every frame went, and
// where it was lost. The kernel's are read with PACKET_STATISTICS (packet(7)),
// which resets them on every read, so the ring sums them up.
type Stats struct {
	// Kernel counters (struct tpacket_stats, tpacket_stats_v3).
	Packets     uint64 // frames that passed the filter, including the dropped ones
	Drops       uint64 // frames dropped because the ring was full (tp_drops): the reader fell behind
	FreezeQueue uint64 // V3: times the kernel found the ring full (tp_freeze_q_cnt)

	// Receive side, counted by the ring.
	RXFrames    uint64 // frames handed to ReadBatch callers
	RXCopied    uint64 // V2: frames longer than a ring slot, received whole through PACKET_COPY_THRESH (among RXFrames)
	RXTruncated uint64 // dropped: longer than the ring could hold and no copy came (socket receive buffer full)
	RXBad       uint64 // dropped: a frame header that fails the bounds checks (never expected)
	LinkErrors  uint64 // errors the kernel reported on the socket (SO_ERROR), e.g. ENETDOWN

	// Transmit side.
	TXFrames uint64 // frames the kernel accepted
	TXBusy   uint64 // sends retried because the device queue or socket buffer was full (ENOBUFS, ENOMEM)
	TXDrops  uint64 // frames dropped: too long, still no buffer space after the retries, link down, empty
}
