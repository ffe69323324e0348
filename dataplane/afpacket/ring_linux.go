//go:build linux

package afpacket

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/header"
	"golang.org/x/sys/unix"
)

// The receive ring is a TPACKET_V3 ring (packet(7); Documentation/networking/
// packet_mmap.rst): nblocks blocks of blockSize bytes, mapped into this process. The
// kernel fills a block with frames and hands it over by setting TP_STATUS_USER in the
// block's status word, when the block is full or its retire timeout expires; the
// reader hands it back by storing TP_STATUS_KERNEL. Frames are given to the caller
// where the kernel wrote them, never copied out.

// tpacket_block_desc with the tpacket_hdr_v1 that TPACKET_V3 uses (linux/if_packet.h),
// at the start of every block, in host byte order:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                            version                            |  0
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        offset_to_priv                         |  4
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          block_status (TP_STATUS_KERNEL / _USER; atomic)      |  8
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           num_pkts                            | 12
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                      offset_to_first_pkt                      | 16
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                            blk_len                            | 20
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                      seq_num (64 bits)                        | 24
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        ts_first_pkt, ts_last_pkt (2 × sec, nsec)              | 32..47
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	bdBlockStatus    = 8
	bdNumPkts        = 12
	bdOffsetFirstPkt = 16
	bdLen            = 48 // where the kernel puts the first frame (no private area)
)

// blockDesc is a view of a block descriptor; check len(b) >= bdLen first.
type blockDesc []byte

func (b blockDesc) status() uint32         { return loadStatus(b[bdBlockStatus:]) }
func (b blockDesc) setStatus(v uint32)     { storeStatus(b[bdBlockStatus:], v) }
func (b blockDesc) numPkts() uint32        { return binary.NativeEndian.Uint32(b[bdNumPkts:]) }
func (b blockDesc) offsetFirstPkt() uint32 { return binary.NativeEndian.Uint32(b[bdOffsetFirstPkt:]) }

// tpacket3_hdr, in front of every frame of a block, in host byte order, followed by
// the struct sockaddr_ll of the frame (20 bytes), padding, PACKET_RESERVE bytes and,
// tp_mac bytes from the header's start, the frame itself:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          tp_next_offset (0 for the block's last frame)        |  0
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     tp_sec, tp_nsec                           |  4, 8
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          tp_snaplen (bytes in the ring)                       | 12
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          tp_len (bytes on the wire)                           | 16
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          tp_status                                            | 20
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            tp_mac             |            tp_net             | 24
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          tp_rxhash                                            | 28
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          tp_vlan_tci                                          | 32
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          tp_vlan_tpid         |          padding              | 36
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          padding (8 bytes)                                    | 40
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	tpNextOffset = 0
	tpSnaplen    = 12
	tpLen        = 16
	tpStatus     = 20
	tpMac        = 24
	tpVLANTCI    = 32
	tpVLANTPID   = 36
	tpHdrLen     = 48 // TPACKET_ALIGN(sizeof(struct tpacket3_hdr))

	// tpFrameStart is where a Frame's buffer starts, from the header: after the
	// header and the sockaddr_ll (TPACKET3_HDRLEN). Everything from there up to
	// tp_mac is padding and PACKET_RESERVE, the frame's own headroom.
	tpFrameStart = tpHdrLen + unix.SizeofSockaddrLinklayer

	// ringReserve is the PACKET_RESERVE the ring asks for: Headroom, plus room to put
	// back an 802.1Q tag the kernel took off, rounded up so the IP header stays
	// 16-byte aligned. The kernel puts tp_mac at
	// TPACKET_ALIGN(TPACKET3_HDRLEN + 16) + reserve − 14 (tpacket_rcv), so the
	// headroom of every Ethernet frame is 96 − 14 − 68 + reserve = 14 + reserve.
	ringReserve = (dataplane.Headroom + header.VLANTagLen + 15) &^ 15

	// ringMinSlot is the ring space of a 60-byte frame: the kernel starts the next
	// frame TPACKET_ALIGN(tp_mac + snaplen) after a frame's header.
	ringMinSlot = (96 - header.EthernetHeaderLen + ringReserve + header.EthernetMinFrame + 15) &^ 15

	// ringFrameSize is the tp_frame_size the ring is declared with. TPACKET_V3 places
	// frames of any size up to a block, so it only has to satisfy the kernel's checks
	// (a multiple of 16, at least TPACKET3_HDRLEN + reserve, a divisor of the block
	// size).
	ringFrameSize = 2048
)

type tpacket3Hdr []byte

func (h tpacket3Hdr) nextOffset() uint32 { return binary.NativeEndian.Uint32(h[tpNextOffset:]) }
func (h tpacket3Hdr) snaplen() uint32    { return binary.NativeEndian.Uint32(h[tpSnaplen:]) }
func (h tpacket3Hdr) len() uint32        { return binary.NativeEndian.Uint32(h[tpLen:]) }
func (h tpacket3Hdr) status() uint32     { return binary.NativeEndian.Uint32(h[tpStatus:]) }
func (h tpacket3Hdr) mac() uint16        { return binary.NativeEndian.Uint16(h[tpMac:]) }
func (h tpacket3Hdr) vlanTCI() uint16    { return uint16(binary.NativeEndian.Uint32(h[tpVLANTCI:])) }
func (h tpacket3Hdr) vlanTPID() uint16   { return binary.NativeEndian.Uint16(h[tpVLANTPID:]) }

// frameVerdict is what parseFrame made of a frame header.
type frameVerdict uint8

const (
	_              frameVerdict = iota
	frameOK                     // a frame for the caller
	frameTruncated              // longer than the ring could hold: dropped
	frameBad                    // a header that fails a bounds check: dropped
)

// parseFrame reads the frame whose tpacket3_hdr is at blk[off:]. Nothing in the
// header is trusted: tp_mac, tp_snaplen and tp_next_offset are checked against the
// block, so a corrupt header makes a drop, never an out-of-range slice. A good frame
// f has f.Buf = blk[off+tpFrameStart : end of frame : end of frame] (capacity capped,
// so nothing written through it reaches the next frame), f.Off ≥ Headroom and
// f.Len ≥ EthernetHeaderLen. A frame whose 802.1Q tag the kernel moved to the header
// (TP_STATUS_VLAN_VALID) gets it back in front of its EtherType, as it was on the
// wire.
//
// next is the offset of the following header when more is set (the block holds more
// frames) and it is plausible: after this header, after this frame's bytes when the
// frame is good, with room for a header before the block ends. Otherwise next is 0
// and the rest of the block must be skipped. Frames of one block therefore occupy
// disjoint, increasing ranges.
//
// partial reports TP_STATUS_CSUMNOTREADY: the frame's L4 checksum field holds only the
// pseudo-header sum, as the sender's stack left it for checksum offload (local or
// veth traffic, virtio-net guests); the Director completes it
// (header.CompleteChecksum).
func parseFrame(blk []byte, off int, more bool) (f dataplane.Frame, next int, v frameVerdict, partial bool) {
	if off < bdLen || off > len(blk)-tpHdrLen {
		return dataplane.Frame{}, 0, frameBad, false
	}
	h := tpacket3Hdr(blk[off : off+tpHdrLen])
	mac, snap := uint64(h.mac()), uint64(h.snaplen())
	end := uint64(off) + mac + snap // no overflow: each term < 2^32
	status := h.status()
	tagged := status&unix.TP_STATUS_VLAN_VALID != 0
	room := uint64(tpFrameStart + dataplane.Headroom)
	if tagged {
		room += header.VLANTagLen
	}
	switch {
	case end > uint64(len(blk)) || mac < room || snap < header.EthernetHeaderLen:
		v = frameBad
	case uint64(h.len()) > snap:
		v = frameTruncated
	default:
		v = frameOK
	}
	if more {
		lo := uint64(off) + tpHdrLen
		if v != frameBad && end > lo {
			lo = end
		}
		n := uint64(off) + uint64(h.nextOffset())
		if n >= lo && n <= uint64(len(blk)-tpHdrLen) {
			next = int(n)
		}
	}
	if v != frameOK {
		return dataplane.Frame{}, next, v, false
	}
	start := off + tpFrameStart
	f = dataplane.Frame{Buf: blk[start:end:end], Off: int(mac) - tpFrameStart, Len: int(snap)}
	if tagged {
		tpid := uint16(header.EtherTypeVLAN)
		if status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
			tpid = h.vlanTPID()
		}
		f.Off -= header.VLANTagLen
		f.Len += header.VLANTagLen
		b := f.Buf[f.Off:]
		copy(b[:2*6], b[header.VLANTagLen:header.VLANTagLen+2*6])
		e := header.Ethernet(b)
		e.SetType(tpid)
		e.SetTCI(h.vlanTCI())
	}
	return f, next, frameOK, status&unix.TP_STATUS_CSUMNOTREADY != 0
}

// Ring is a Link on one network interface through an AF_PACKET socket: a TPACKET_V2
// or TPACKET_V3 memory-mapped receive ring (Config.Version), and sendmmsg(2) on the
// same socket to send. Get one from Open; the zero Ring is not usable.
//
// ReadBatch hands out frames inside the ring, never copies (but for a V2 frame longer
// than a slot, see Config.FrameSize). A slot (V2) or block (V3) goes back to the
// kernel when the ReadBatch after the one that delivered its last frame starts, so
// the frames of one batch stay valid (and writable in place, headroom included) until
// the next ReadBatch. A batch holds at most half the ring, so the kernel always has
// the other half to fill; a reader that falls further behind makes the kernel drop
// frames (Stats.Drops), never overwrite them.
//
// Received frames are as they were on the wire: the 802.1Q tag the kernel strips
// before packet taps see a frame is put back, and a TCP or UDP checksum a local or
// virtual sender left to offload (TP_STATUS_CSUMNOTREADY) is completed. Frames the
// ring drops are counted in Stats.
//
// ReadBatch, WriteBatch and the other methods are safe to call concurrently with each
// other and with Close, but ReadBatch and WriteBatch each by one goroutine at a time.
// Close releases the socket and unmaps the ring once no call is running and the last
// batch was handed back (by the next ReadBatch, which then reports the close, or by
// ReadBatch(nil)); until then the memory behind the last batch stays valid, so a
// worker still processing it when another goroutine closes the ring does not fault.
//
// Zero allocations per frame and per batch: the batch arrays are preallocated, the
// reader waits in the runtime's poller through a callback made once, and sendmmsg
// goes through a non-allocating wrapper.
type Ring struct {
	name string
	fd   int
	// file is fd in the Go runtime's network poller: the reader waits for the
	// socket there (parked, no thread blocked in a system call), and Close wakes it
	// with a read deadline in the past. It owns fd and closes it.
	file    *os.File
	rc      syscall.RawConn
	ifindex int
	mtu     int
	batch   int

	// filterMu serialises SetFilter; groups are the multicast groups joined for the
	// current filter.
	filterMu sync.Mutex
	groups   [][6]byte
	steer    steerState // fanout_linux.go; under filterMu

	mem       []byte // nblocks × blockSize, mmapped
	blockSize int
	nblocks   int

	// isV2 selects the TPACKET_V2 ring (v2, ring_v2_linux.go); otherwise the
	// ring is TPACKET_V3 (rx).
	isV2 bool

	// Reader state: ReadBatch's goroutine only.
	rx rxState
	v2 v2State
	// waitFn is the RawConn.Read callback of wait, made once (no allocation per
	// wait); woken is set once it has been called after a wake-up.
	waitFn func(fd uintptr) bool
	woken  bool
	held   bool // the last batch is out: it holds a reference

	// Writer state: WriteBatch's goroutine only.
	tx txBatch

	// state counts the references keeping fd and mem alive (running calls, the
	// batch held by the reader, Close while it wakes the reader) and carries the
	// closed and destroyed flags.
	state atomic.Uint64

	rxFrames, rxCopied, rxTruncated, rxBad, linkErrors atomic.Uint64
	txFrames, txBusy, txDrops                          atomic.Uint64

	statsMu sync.Mutex
	kstats  Stats // kernel counters summed up (PACKET_STATISTICS resets them)

	errReadClosed, errWriteClosed error
}

const (
	refClosed    = 1 << 63
	refDestroyed = 1 << 62
)

// rxState is where the reader is in the ring.
type rxState struct {
	cur     int    // block being read, or next to be read
	open    bool   // cur is the reader's (TP_STATUS_USER) and partly read
	next    int    // offset in cur of the next frame header
	left    uint32 // frames of cur not read yet
	pending int    // blocks before cur that are fully read but not handed back yet
}

var _ dataplane.Link = (*Ring)(nil)

// Open opens a receive ring and a sender on the Ethernet interface ifname, in the
// network namespace of the calling thread. The daemon must also keep the kernel off
// the traffic the ring takes (docs/design.md "Live I/O and the kernel").
//
// Setup order matters (packet(7)): the socket is created with protocol 0 so it
// receives nothing while the filter, the ring and the options are set up; binding it
// to ETH_P_ALL on the interface starts reception, already filtered; a fanout group can
// only be joined once bound, so a ring of a group may receive a few frames of other
// workers' flows in the microseconds between the two — open the rings before the
// traffic arrives.
func Open(ifname string, cfg Config) (*Ring, error) {
	r, err := open(ifname, cfg)
	if err != nil {
		return nil, &dataplane.OpError{Op: "open", Link: ifname, Err: err}
	}
	return r, nil
}

func open(ifname string, cfg Config) (r *Ring, err error) {
	packets := cmp.Or(cfg.Packets, DefaultPackets)
	blockSize := cmp.Or(cfg.BlockSize, DefaultBlockSize)
	timeout := cmp.Or(cfg.BlockTimeout, DefaultBlockTimeout)
	batch := cmp.Or(cfg.BatchSize, DefaultBatchSize)
	version := cmp.Or(cfg.Version, DefaultVersion)
	pollDelay := cmp.Or(cfg.PollDelay, DefaultPollDelay)
	spin := cmp.Or(cfg.Spin, DefaultSpin)
	page := os.Getpagesize()
	switch {
	case version != 2 && version != 3:
		return nil, fmt.Errorf("TPACKET version %d: want 2 or 3", version)
	case packets < 0 || batch < 0 || timeout < 0 || cfg.FrameSize < 0:
		return nil, errors.New("negative ring size, frame size, batch size or timeout")
	case cfg.FrameSize != 0 && (cfg.FrameSize < v2MinFrameSize || cfg.FrameSize%16 != 0 || cfg.FrameSize > blockSize):
		return nil, fmt.Errorf("frame size must be a multiple of 16 from %d to the block size", v2MinFrameSize)
	case blockSize < page || blockSize&(blockSize-1) != 0 || blockSize > 1<<30:
		return nil, errors.New("block size must be a power of two of at least a page")
	case blockSize < bdLen+ringMinSlot:
		return nil, errors.New("block size too small")
	}
	perBlock := (blockSize - bdLen) / ringMinSlot
	// At least 8 blocks: a batch may hold half of them (see fill).
	nblocks := max((packets+perBlock-1)/perBlock, 8)
	if uint64(nblocks)*uint64(blockSize) > min(1<<40, math.MaxInt) {
		return nil, errors.New("ring too large")
	}
	// tp_retire_blk_tov is in whole milliseconds; round up, the kernel's minimum is 1.
	tov := max((timeout+time.Millisecond-1)/time.Millisecond, 1)
	filter, err := assembleFilter(cfg.Filter)
	if err != nil {
		return nil, err
	}

	r = &Ring{name: ifname, fd: -1, batch: batch, blockSize: blockSize, nblocks: nblocks, isV2: version == 2}
	r.errReadClosed = &dataplane.OpError{Op: "read", Link: ifname, Err: net.ErrClosed}
	r.errWriteClosed = &dataplane.OpError{Op: "write", Link: ifname, Err: net.ErrClosed}
	defer func() {
		if err != nil {
			r.release()
		}
	}()
	r.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	ifindex, mtu, err := ifaceInfo(r.fd, ifname)
	if err != nil {
		return nil, err
	}
	r.ifindex, r.mtu = ifindex, mtu
	tpVersion := unix.TPACKET_V3
	if r.isV2 {
		tpVersion = unix.TPACKET_V2
	}
	if err := setPacketOptions(r.fd, tpVersion, ringReserve, cfg.QdiscBypass); err != nil {
		return nil, err
	}
	if err := attachFilter(r.fd, filter); err != nil {
		return nil, err
	}
	if r.isV2 {
		if err := r.setupV2(cfg.FrameSize, packets, pollDelay, spin); err != nil {
			return nil, err
		}
	} else {
		req := unix.TpacketReq3{
			Block_size:     uint32(blockSize),
			Block_nr:       uint32(nblocks),
			Frame_size:     ringFrameSize,
			Frame_nr:       uint32(blockSize / ringFrameSize * nblocks),
			Retire_blk_tov: uint32(tov),
		}
		if err := unix.SetsockoptTpacketReq3(r.fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
			return nil, os.NewSyscallError("setsockopt PACKET_RX_RING", err)
		}
	}
	// MAP_POPULATE maps every page now instead of faulting them in on the data path.
	r.mem, err = unix.Mmap(r.fd, 0, r.nblocks*blockSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	// The reader waits in the runtime's poller (epoll), not in a system call of its
	// own: a goroutine blocked in ppoll holds a thread in a system call, which the
	// scheduler's monitor notices every 20 µs and answers by handing the P to
	// another thread and back — two futex wake-ups and context switches per frame
	// at low rates, which measured more than the ring itself (docs/lab.md).
	if err := unix.SetNonblock(r.fd, true); err != nil {
		return nil, os.NewSyscallError("fcntl O_NONBLOCK", err)
	}
	r.file = os.NewFile(uintptr(r.fd), "packet:"+ifname)
	if r.rc, err = r.file.SyscallConn(); err != nil {
		return nil, err
	}
	r.waitFn = r.waitReady
	sa := unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(r.fd, &sa); err != nil {
		return nil, os.NewSyscallError("bind", err)
	}
	if cfg.FanoutID != 0 {
		if err := r.joinFanout(cfg.FanoutID, cfg.Filter, cfg.FanoutAlone); err != nil {
			return nil, err
		}
	}
	if cfg.Filter != nil {
		if err := r.setGroupsLocked(cfg.Filter.MulticastMACs()); err != nil {
			return nil, err
		}
	}
	r.tx = newTXBatch(batch)
	return r, nil
}

// Name returns the interface name.
func (r *Ring) Name() string { return r.name }

// MTU returns the interface MTU when the ring was opened. Frames longer than the MTU
// plus the link header are dropped on sending (Stats.TXDrops).
func (r *Ring) MTU() int { return r.mtu }

// BatchSize implements Link.
func (r *Ring) BatchSize() int { return r.batch }

// incref takes a reference unless the ring is closed.
func (r *Ring) incref() bool {
	if r.state.Add(1)&refClosed != 0 {
		r.decref()
		return false
	}
	return true
}

// decref drops a reference; the last one of a closed ring releases it, once.
func (r *Ring) decref() {
	if r.state.Add(^uint64(0)) == refClosed && r.state.CompareAndSwap(refClosed, refClosed|refDestroyed) {
		r.release()
	}
}

// Close implements Link. It marks the ring closed, wakes a blocked ReadBatch and
// releases the socket and the ring memory as soon as nothing uses them (see Ring).
// Counters stay readable with Stats.
func (r *Ring) Close() error {
	for {
		old := r.state.Load()
		if old&refClosed != 0 {
			return nil
		}
		// Take a reference while closing: the socket must stay open until the
		// reader is woken.
		if r.state.CompareAndSwap(old, (old+1)|refClosed) {
			break
		}
	}
	// A deadline in the past wakes a reader waiting in the poller, and every later
	// wait returns at once (the gVisor stopfd pattern, with the runtime's poller).
	err := r.file.SetReadDeadline(time.Unix(1, 0))
	r.decref()
	if err != nil {
		return &dataplane.OpError{Op: "close", Link: r.name, Err: err}
	}
	return nil
}

// release frees the kernel resources: after the last reference of a closed ring, or
// when Open fails halfway.
func (r *Ring) release() {
	if r.fd >= 0 {
		_ = r.readKernelStats() // the last counters, before the socket goes
		if r.file != nil {
			r.file.Close()
		} else {
			unix.Close(r.fd)
		}
		r.fd = -1
	}
	if r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
}

// ReadBatch implements Link: it waits until frames arrive, the ring is closed or the
// socket reports an error (counted in LinkErrors; the kernel re-attaches the socket
// when a downed link comes back up, so the wait goes on).
func (r *Ring) ReadBatch(frames []dataplane.Frame) (int, error) {
	// The last call delivered frames: traffic flows, so a V2 reader that finds the
	// ring empty spins (Config.Spin), then naps (Config.PollDelay) before it waits.
	busy := r.held && (r.v2.pollDelay > 0 || r.v2.spin > 0)
	if r.held {
		// The reference held for the batch keeps the ring mapped while its blocks go
		// back.
		r.held = false
		r.returnBlocks()
		r.decref()
	}
	if !r.incref() {
		return 0, r.errReadClosed
	}
	defer r.decref()
	if len(frames) == 0 {
		return 0, nil
	}
	for {
		if r.state.Load()&refClosed != 0 {
			return 0, r.errReadClosed
		}
		var n int
		var truncated, bad uint64
		if r.isV2 {
			var copied uint64
			n, truncated, bad, copied = r.fillV2(frames)
			if copied != 0 {
				r.rxCopied.Add(copied)
			}
		} else {
			n, truncated, bad = r.fill(frames)
		}
		if truncated|bad != 0 {
			r.rxTruncated.Add(truncated)
			r.rxBad.Add(bad)
		}
		if n > 0 {
			r.rxFrames.Add(uint64(n))
			r.held = true
			r.state.Add(1)
			return n, nil
		}
		// Nothing for the caller: slots or blocks consumed by dropped frames go back
		// now, and the reader waits only when the next one is still the kernel's.
		r.returnBlocks()
		if r.ready() {
			continue
		}
		if busy {
			busy = false
			if r.v2.spin > 0 && r.spin() {
				continue
			}
			if r.v2.pollDelay > 0 {
				r.nap()
				continue
			}
		}
		if err := r.wait(); err != nil {
			return 0, err
		}
	}
}

// block returns block i of the ring.
func (r *Ring) block(i int) []byte {
	o := i * r.blockSize
	return r.mem[o : o+r.blockSize : o+r.blockSize]
}

// fill walks the ring from where the reader stopped and puts up to len(frames)
// frames into frames. Blocks whose frames have all been taken become pending; they
// are handed back by returnBlocks.
func (r *Ring) fill(frames []dataplane.Frame) (n int, truncated, bad uint64) {
	rx := &r.rx
	for n < len(frames) {
		blk := r.block(rx.cur)
		if !rx.open {
			// A batch holds at most half the ring (its blocks go back only with the
			// next ReadBatch): the kernel keeps the other half to fill meanwhile,
			// however few frames each block holds. This also keeps cur from wrapping
			// onto a pending block.
			if rx.pending >= max(r.nblocks/2, 1) || blockDesc(blk).status()&unix.TP_STATUS_USER == 0 {
				break
			}
			rx.open = true
			rx.left = blockDesc(blk).numPkts()
			rx.next = int(min(blockDesc(blk).offsetFirstPkt(), uint32(len(blk))))
		}
		for rx.left > 0 && n < len(frames) {
			rx.left--
			f, next, v, partial := parseFrame(blk, rx.next, rx.left > 0)
			switch v {
			case frameOK:
				// The Director completes the checksum after its own decode
				// (header.CompleteChecksum): no second parse here.
				f.CsumPartial = partial
				frames[n] = f
				n++
			case frameTruncated:
				truncated++
			default:
				bad++
			}
			if next == 0 && rx.left > 0 {
				bad += uint64(rx.left) // the rest of the block cannot be found
				rx.left = 0
			}
			rx.next = next
		}
		if rx.left == 0 {
			rx.open = false
			rx.pending++
			if rx.cur++; rx.cur == r.nblocks {
				rx.cur = 0
			}
		}
	}
	return n, truncated, bad
}

// ready reports whether the reader's next slot (V2) or block (V3) is its own.
func (r *Ring) ready() bool {
	if r.isV2 {
		return loadStatus(r.slot(r.v2.cur))&unix.TP_STATUS_USER != 0
	}
	return blockDesc(r.block(r.rx.cur)).status()&unix.TP_STATUS_USER != 0
}

// returnBlocks hands the pending blocks (V3) or slots (V2) back to the kernel,
// oldest first.
func (r *Ring) returnBlocks() {
	if r.isV2 {
		r.returnSlots()
		return
	}
	for ; r.rx.pending > 0; r.rx.pending-- {
		i := r.rx.cur - r.rx.pending
		if i < 0 {
			i += r.nblocks
		}
		blockDesc(r.block(i)).setStatus(unix.TP_STATUS_KERNEL)
	}
}

// wait parks the reader in the runtime's poller until the ring has something for
// it (V2: a frame; V3: a retired block), the socket reports an error, or Close sets
// the deadline. The poller is edge-triggered and remembers an edge that comes while
// waitReady runs, so a frame that arrives between the check and the wait is not
// missed.
func (r *Ring) wait() error {
	r.woken = false
	err := r.rc.Read(r.waitFn)
	if err != nil {
		if r.state.Load()&refClosed != 0 || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, os.ErrClosed) {
			return r.errReadClosed
		}
		return &dataplane.OpError{Op: "read", Link: r.name, Err: err}
	}
	return nil
}

// waitReady is wait's RawConn.Read callback: true ends the wait. A wake-up that
// finds nothing in the ring is an error the socket reports (EPOLLERR), read with
// SO_ERROR, which clears it (ENETDOWN when the link went down); the kernel
// re-attaches the socket when the link comes back, so the wait goes on.
func (r *Ring) waitReady(fd uintptr) bool {
	if r.ready() || r.state.Load()&refClosed != 0 {
		return true
	}
	if r.woken {
		if e, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR); err == nil && e != 0 {
			r.linkErrors.Add(1)
		}
	}
	r.woken = true
	return false
}

// WriteBatch implements Link with one sendmmsg(2) per BatchSize frames; frames the
// kernel refuses for a transient reason are dropped and counted (TXDrops). Empty
// frames are dropped too.
func (r *Ring) WriteBatch(frames []dataplane.Frame) (int, error) {
	if !r.incref() {
		return 0, r.errWriteClosed
	}
	defer r.decref()
	sent, drops, busy := 0, 0, 0
	var errno unix.Errno
	for len(frames) > 0 && errno == 0 {
		k := min(len(frames), len(r.tx.msgs))
		m := 0
		for i := range frames[:k] {
			f := &frames[i]
			if f.Len <= 0 {
				drops++
				continue
			}
			b := f.Buf[f.Off : f.Off+f.Len]
			r.tx.iovs[m].Base = &b[0]
			r.tx.iovs[m].SetLen(len(b))
			m++
		}
		frames = frames[k:]
		s, d, b, e := r.tx.send(r.fd, m)
		sent, drops, busy, errno = sent+s, drops+d, busy+b, e
	}
	r.txFrames.Add(uint64(sent))
	if busy != 0 {
		r.txBusy.Add(uint64(busy))
	}
	if drops != 0 {
		r.txDrops.Add(uint64(drops))
	}
	if errno != 0 {
		return sent, &dataplane.OpError{Op: "write", Link: r.name, Err: os.NewSyscallError("sendmmsg", errno)}
	}
	return sent, nil
}

// SetFilter replaces the ring's filter; nil removes it (every frame passes). The
// kernel swaps programs atomically, so a reload never lets a frame through unfiltered
// nor drops everything in between; frames already in the ring are delivered. The
// multicast groups the new filter needs (Filter.MulticastMACs) are joined before the
// program changes and the ones it no longer needs left after.
func (r *Ring) SetFilter(f *Filter) error {
	raw, err := assembleFilter(f)
	if err != nil {
		return &dataplane.OpError{Op: "filter", Link: r.name, Err: err}
	}
	var groups [][6]byte
	if f != nil {
		groups = f.MulticastMACs()
	}
	if !r.incref() {
		return &dataplane.OpError{Op: "filter", Link: r.name, Err: net.ErrClosed}
	}
	defer r.decref()
	r.filterMu.Lock()
	defer r.filterMu.Unlock()
	old := slices.Clone(r.groups)
	if err := r.setGroupsLocked(append(slices.Clone(old), groups...)); err != nil {
		return &dataplane.OpError{Op: "filter", Link: r.name, Err: err}
	}
	if err := attachFilter(r.fd, raw); err != nil {
		r.setGroupsLocked(old)
		return &dataplane.OpError{Op: "filter", Link: r.name, Err: err}
	}
	if err := r.steerLocked(f); err != nil {
		return &dataplane.OpError{Op: "filter", Link: r.name, Err: err}
	}
	if err := r.setGroupsLocked(groups); err != nil {
		return &dataplane.OpError{Op: "filter", Link: r.name, Err: err}
	}
	return nil
}

// setGroupsLocked makes the socket's multicast memberships those of want, joining
// before leaving; r.groups records what is joined, without duplicates. If a join fails,
// nothing is left.
// Precondition: r.filterMu is held, or r is not shared yet (open).
func (r *Ring) setGroupsLocked(want [][6]byte) error {
	var err error
	for _, m := range want {
		if slices.Contains(r.groups, m) {
			continue
		}
		if e := setMembership(r.fd, r.ifindex, m, true); e != nil {
			err = e
			continue
		}
		r.groups = append(r.groups, m)
	}
	if err != nil {
		return err
	}
	kept := make([][6]byte, 0, len(r.groups))
	for _, m := range r.groups {
		if slices.Contains(want, m) || setMembership(r.fd, r.ifindex, m, false) != nil {
			kept = append(kept, m)
		}
	}
	r.groups = kept
	return nil
}

// Stats returns the ring's counters since it was opened. After Close they keep their
// final values.
func (r *Ring) Stats() (Stats, error) {
	var err error
	if r.incref() {
		err = r.readKernelStats()
		r.decref()
	}
	r.statsMu.Lock()
	s := r.kstats
	r.statsMu.Unlock()
	s.RXFrames = r.rxFrames.Load()
	s.RXCopied = r.rxCopied.Load()
	s.RXTruncated = r.rxTruncated.Load()
	s.RXBad = r.rxBad.Load()
	s.LinkErrors = r.linkErrors.Load()
	s.TXFrames = r.txFrames.Load()
	s.TXBusy = r.txBusy.Load()
	s.TXDrops = r.txDrops.Load()
	if err != nil {
		return s, &dataplane.OpError{Op: "stats", Link: r.name, Err: err}
	}
	return s, nil
}

// readKernelStats adds the kernel's counters since the last read to r.kstats. The
// caller holds a reference (or is releasing the ring).
func (r *Ring) readKernelStats() error {
	if r.isV2 {
		st, err := unix.GetsockoptTpacketStats(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
		if err != nil {
			return os.NewSyscallError("getsockopt PACKET_STATISTICS", err)
		}
		r.statsMu.Lock()
		r.kstats.Packets += uint64(st.Packets)
		r.kstats.Drops += uint64(st.Drops)
		r.statsMu.Unlock()
		return nil
	}
	st, err := unix.GetsockoptTpacketStatsV3(r.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return os.NewSyscallError("getsockopt PACKET_STATISTICS", err)
	}
	r.statsMu.Lock()
	r.kstats.Packets += uint64(st.Packets)
	r.kstats.Drops += uint64(st.Drops)
	r.kstats.FreezeQueue += uint64(st.Freeze_q_cnt)
	r.statsMu.Unlock()
	return nil
}
