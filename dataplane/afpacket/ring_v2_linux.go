//go:build linux

package afpacket

import (
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/header"
	"golang.org/x/sys/unix"
)

// The TPACKET_V2 receive ring (packet(7); Documentation/networking/packet_mmap.rst):
// nframes slots of frameSize bytes, perBlock of them in each block of blockSize
// bytes (a slot never crosses a block). The kernel writes each frame into the next
// slot, sets TP_STATUS_USER in the slot's status word and wakes the reader at once;
// the reader hands the slot back by storing TP_STATUS_KERNEL. A slot the reader
// still holds stops the kernel (it drops, tp_drops) instead of being overwritten.
// Frames are given to the caller where the kernel wrote them, never copied out.

// tpacket2_hdr (linux/if_packet.h), at the start of every slot, in host byte
// order, followed by the struct sockaddr_ll of the frame (20 bytes), padding,
// PACKET_RESERVE bytes and, tp_mac bytes from the slot's start, the frame itself:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          tp_status (TP_STATUS_KERNEL / _USER …; atomic)       |  0
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          tp_len (bytes on the wire)                           |  4
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          tp_snaplen (bytes in the slot)                       |  8
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            tp_mac             |            tp_net             | 12
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     tp_sec, tp_nsec                           | 16, 20
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          tp_vlan_tci          |          tp_vlan_tpid         | 24
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          padding (4 bytes)                                    | 28
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	tp2Status   = 0
	tp2Len      = 4
	tp2Snaplen  = 8
	tp2Mac      = 12
	tp2VLANTCI  = 24
	tp2VLANTPID = 26
	tp2HdrLen   = 32 // TPACKET_ALIGN(sizeof(struct tpacket2_hdr))

	// tp2FrameStart is where a Frame's buffer starts in a slot: after the header
	// and the sockaddr_ll (TPACKET2_HDRLEN). Everything from there up to tp_mac is
	// padding and PACKET_RESERVE, the frame's headroom.
	tp2FrameStart = tp2HdrLen + unix.SizeofSockaddrLinklayer

	// tp2MacOff is where the kernel puts an Ethernet frame in a slot:
	// TPACKET_ALIGN(TPACKET2_HDRLEN + 16) + reserve − 14 (tpacket_rcv).
	tp2MacOff = (tp2FrameStart+16+15)&^15 + ringReserve - header.EthernetHeaderLen

	// v2MinFrameSize is the smallest slot: a minimum-size frame at tp2MacOff.
	v2MinFrameSize = (tp2MacOff + header.EthernetMinFrame + 15) &^ 15

	// v2MaxFrame is the longest frame the copy path takes: an IPv4 or IPv6 datagram
	// of 64 KiB behind an Ethernet header and an 802.1Q tag.
	v2MaxFrame = header.EthernetHeaderLen + header.VLANTagLen + 1<<16
)

type tpacket2Hdr []byte

func (h tpacket2Hdr) len() uint32      { return binary.NativeEndian.Uint32(h[tp2Len:]) }
func (h tpacket2Hdr) snaplen() uint32  { return binary.NativeEndian.Uint32(h[tp2Snaplen:]) }
func (h tpacket2Hdr) status() uint32   { return binary.NativeEndian.Uint32(h[tp2Status:]) }
func (h tpacket2Hdr) mac() uint16      { return binary.NativeEndian.Uint16(h[tp2Mac:]) }
func (h tpacket2Hdr) vlanTCI() uint16  { return binary.NativeEndian.Uint16(h[tp2VLANTCI:]) }
func (h tpacket2Hdr) vlanTPID() uint16 { return binary.NativeEndian.Uint16(h[tp2VLANTPID:]) }

// frameCopy is parseFrameV2's verdict for a frame longer than its slot of which the
// kernel queued a whole copy on the socket (TP_STATUS_COPY): the caller must read
// that copy (one per such slot, in ring order) and use it instead.
const frameCopy frameVerdict = frameBad + 1

// parseFrameV2 reads the frame in slot, a whole ring slot starting with its
// tpacket2_hdr. Nothing in the header is trusted: tp_mac and tp_snaplen are checked
// against the slot, so a corrupt header makes a drop, never an out-of-range slice. A
// good frame f has f.Buf = slot[tp2FrameStart : end of frame : end of frame], f.Off
// ≥ Headroom and f.Len ≥ EthernetHeaderLen, with an 802.1Q tag the kernel moved to
// the header put back (restoreVLAN). status is the slot's status word, for
// TP_STATUS_CSUMNOTREADY (see parseFrame) and the tag of a frameCopy.
func parseFrameV2(slot []byte) (f dataplane.Frame, v frameVerdict, status uint32) {
	if len(slot) < tp2HdrLen {
		return dataplane.Frame{}, frameBad, 0
	}
	h := tpacket2Hdr(slot[:tp2HdrLen])
	status = h.status()
	if status&unix.TP_STATUS_COPY != 0 {
		// Whatever the slot holds, a copy was queued and must be consumed.
		return dataplane.Frame{}, frameCopy, status
	}
	mac, snap := uint64(h.mac()), uint64(h.snaplen())
	end := mac + snap // no overflow: each term < 2^32
	room := uint64(tp2FrameStart + dataplane.Headroom)
	if status&unix.TP_STATUS_VLAN_VALID != 0 {
		room += header.VLANTagLen
	}
	switch {
	case end > uint64(len(slot)) || mac < room || snap < header.EthernetHeaderLen:
		return dataplane.Frame{}, frameBad, status
	case uint64(h.len()) > snap:
		return dataplane.Frame{}, frameTruncated, status
	}
	f = dataplane.Frame{Buf: slot[tp2FrameStart:end:end], Off: int(mac) - tp2FrameStart, Len: int(snap)}
	if status&unix.TP_STATUS_VLAN_VALID != 0 {
		restoreVLAN(&f, status, h.vlanTPID(), h.vlanTCI())
	}
	return f, frameOK, status
}

// restoreVLAN puts the 802.1Q tag the kernel took off a frame (TP_STATUS_VLAN_VALID)
// back in front of its EtherType, as it was on the wire, moving the MAC addresses
// into the headroom. f must have VLANTagLen bytes of headroom beyond Headroom.
func restoreVLAN(f *dataplane.Frame, status uint32, tpid, tci uint16) {
	if status&unix.TP_STATUS_VLAN_TPID_VALID == 0 {
		tpid = header.EtherTypeVLAN
	}
	f.Off -= header.VLANTagLen
	f.Len += header.VLANTagLen
	b := f.Buf[f.Off:]
	copy(b[:2*6], b[header.VLANTagLen:header.VLANTagLen+2*6])
	e := header.Ethernet(b)
	e.SetType(tpid)
	e.SetTCI(tci)
}

// v2State is the V2 reader's state: ReadBatch's goroutine only.
type v2State struct {
	frameSize int
	perBlock  int // slots per block
	nframes   int
	cur       int // next slot to read
	pending   int // slots before cur that were read but not handed back yet

	// copyBuf receives the whole copy of one frame longer than a slot per batch:
	// Headroom, room for a restored 802.1Q tag, then the frame.
	copyBuf []byte

	pollDelay time.Duration
	napTS     unix.Timespec
	spin      time.Duration
}

// slot returns slot i of a V2 ring.
func (r *Ring) slot(i int) []byte {
	x := &r.v2
	o := (i/x.perBlock)*r.blockSize + (i%x.perBlock)*x.frameSize
	return r.mem[o : o+x.frameSize : o+x.frameSize]
}

// fillV2 puts up to len(frames) frames from the slots the kernel handed over into
// frames, in ring order. A batch holds at most half the ring, so the kernel always
// has the other half to fill, and at most one copied frame (copyBuf). Slots read
// become pending; returnSlots hands them back.
func (r *Ring) fillV2(frames []dataplane.Frame) (n int, truncated, bad, copied uint64) {
	x := &r.v2
	copyUsed := false
	for n < len(frames) && x.pending < max(x.nframes/2, 1) {
		s := r.slot(x.cur)
		if loadStatus(s)&unix.TP_STATUS_USER == 0 {
			break
		}
		f, v, status := parseFrameV2(s)
		if v == frameCopy {
			if copyUsed {
				break // next batch
			}
			copyUsed = true
			f, v = r.recvCopy(s, status)
			if v == frameOK {
				copied++
			}
		}
		switch v {
		case frameOK:
			f.CsumPartial = status&unix.TP_STATUS_CSUMNOTREADY != 0
			frames[n] = f
			n++
		case frameTruncated:
			truncated++
		default:
			bad++
		}
		x.pending++
		if x.cur++; x.cur == x.nframes {
			x.cur = 0
		}
	}
	return n, truncated, bad, copied
}

// recvCopy reads the whole copy of the frame in slot that the kernel queued on the
// socket (PACKET_COPY_THRESH) into copyBuf. The copy has no 802.1Q tag either when
// the kernel took it off: the slot's header has it.
func (r *Ring) recvCopy(slot []byte, status uint32) (dataplane.Frame, frameVerdict) {
	x := &r.v2
	if x.copyBuf == nil {
		return dataplane.Frame{}, frameTruncated // a fake ring in tests: no socket
	}
	off := dataplane.Headroom + header.VLANTagLen
	n, errno := recvDontWait(r.fd, x.copyBuf[off:])
	h := tpacket2Hdr(slot[:tp2HdrLen])
	switch {
	case errno != 0 || n > len(x.copyBuf)-off:
		// Nothing queued, or longer than any datagram: the ring and the queue
		// disagree, never expected.
		return dataplane.Frame{}, frameTruncated
	case n < header.EthernetHeaderLen || uint32(n) != h.len():
		return dataplane.Frame{}, frameBad
	}
	f := dataplane.Frame{Buf: x.copyBuf[: off+n : off+n], Off: off, Len: n}
	if status&unix.TP_STATUS_VLAN_VALID != 0 {
		restoreVLAN(&f, status, h.vlanTPID(), h.vlanTCI())
	}
	return f, frameOK
}

// returnSlots hands the pending slots back to the kernel, oldest first.
func (r *Ring) returnSlots() {
	x := &r.v2
	for ; x.pending > 0; x.pending-- {
		i := x.cur - x.pending
		if i < 0 {
			i += x.nframes
		}
		storeStatus(r.slot(i), unix.TP_STATUS_KERNEL)
	}
}

// nap sleeps PollDelay on the reader's thread, with 1 µs of timer slack (the
// default 50 µs would stretch a 25 µs nap to 75). Timer slack is per thread and
// the goroutine may have moved since the last nap, so it is set every time (a
// system call of a fraction of a microsecond); it stays on the threads the
// reader used, which only makes their other sleeps more punctual. The goroutine
// is not locked to its thread: a locked goroutine that parks in the poller costs a
// thread hand-off per wake-up (runtime.stoplockedm), more than the nap saves.
func (r *Ring) nap() {
	rawTimerSlack(napTimerSlack)
	rawNanosleep(&r.v2.napTS)
}

// spin polls the status word of the reader's next slot for up to Spin and reports
// whether it became the reader's (or the ring was closed) meanwhile. The clock is
// read every spinCheck polls (a vDSO call, tens of nanoseconds), the status word
// is one atomic load. At each clock read the spinner also yields its CPU to any
// other thread that is ready to run there (sched_yield(2)): a real server or a
// client sharing the CPU, which would otherwise wait for the spinner's time slice
// to end while it has nothing to do. With nothing else ready the call returns at
// once (a fraction of a microsecond) and the spin goes on.
func (r *Ring) spin() bool {
	start := time.Now()
	for i := 1; ; i++ {
		if r.ready() || r.state.Load()&refClosed != 0 {
			return true
		}
		if i%spinCheck == 0 {
			if time.Since(start) >= r.v2.spin {
				return false
			}
			// Other goroutines of the worker's P (health checks, VRRP, the
			// control socket) go first; alone, this costs a fraction of a µs.
			runtime.Gosched()
			unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
		}
	}
}

// spinCheck is how many polls of the status word spin makes between two clock
// reads.
const spinCheck = 32

// napTimerSlack is the timer slack of a napping reader's thread, in nanoseconds.
const napTimerSlack = 1000

// setupV2 sizes and requests the V2 ring of r (after PACKET_VERSION and
// PACKET_RESERVE, before mmap): frameSize 0 takes the MTU's, packets slots at least
// 16. It also sets up the copy path for frames longer than a slot.
func (r *Ring) setupV2(frameSize, packets int, pollDelay, spin time.Duration) error {
	if frameSize == 0 {
		// The kernel takes an 802.1Q tag off before the ring, but a second (QinQ)
		// one stays in the frame.
		frameSize = (tp2MacOff + header.EthernetHeaderLen + header.VLANTagLen + r.mtu + 15) &^ 15
		frameSize = max(frameSize, v2MinFrameSize)
		if frameSize > r.blockSize {
			// A jumbo MTU beyond the block: the copy path carries the longest frames.
			frameSize = r.blockSize
		}
	}
	perBlock := r.blockSize / frameSize
	nblocks := (max(packets, 16) + perBlock - 1) / perBlock
	if uint64(nblocks)*uint64(r.blockSize) > 1<<40 {
		return errors.New("ring too large")
	}
	// A frame longer than its slot is truncated in the ring; with PACKET_COPY_THRESH
	// set the kernel also queues a whole copy on the socket (TP_STATUS_COPY), as long
	// as the socket's receive buffer has room: give it room for a few 64 KiB
	// datagrams (SO_RCVBUFFORCE needs CAP_NET_ADMIN, which opening a ring on an
	// interface of the director needs anyway; without it the default stays).
	if err := unix.SetsockoptInt(r.fd, unix.SOL_PACKET, unix.PACKET_COPY_THRESH, 1); err != nil {
		return os.NewSyscallError("setsockopt PACKET_COPY_THRESH", err)
	}
	_ = unix.SetsockoptInt(r.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	req := unix.TpacketReq{
		Block_size: uint32(r.blockSize),
		Block_nr:   uint32(nblocks),
		Frame_size: uint32(frameSize),
		Frame_nr:   uint32(perBlock * nblocks),
	}
	if err := unix.SetsockoptTpacketReq(r.fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return os.NewSyscallError("setsockopt PACKET_RX_RING", err)
	}
	r.nblocks = nblocks
	r.v2 = v2State{
		frameSize: frameSize,
		perBlock:  perBlock,
		nframes:   perBlock * nblocks,
		copyBuf:   make([]byte, dataplane.Headroom+header.VLANTagLen+v2MaxFrame),
	}
	r.v2.spin = max(spin, 0)
	if pollDelay > 0 {
		r.v2.pollDelay = pollDelay
		r.v2.napTS = unix.NsecToTimespec(pollDelay.Nanoseconds())
	}
	return nil
}
