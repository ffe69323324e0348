package afpacket

import "time"

// Config configures an AF_PACKET ring (Open). The zero value is usable: every
// zero field takes the default given.
type Config struct {
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
	DefaultPackets      = 32768
	DefaultBlockSize    = 128 << 10
	DefaultBlockTimeout = time.Millisecond
	DefaultBatchSize    = 64
)

// Stats are a ring's counters since it was opened. The kernel's are read with
// PACKET_STATISTICS (packet(7)), which resets them on every read, so the ring sums
// them up.
type Stats struct {
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
