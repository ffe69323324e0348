//go:build linux

package afxdp

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afpacket"
	"github.com/gvs-lb/gvs/dataplane/header"
	"golang.org/x/sys/unix"
)

// An XDP socket (Documentation/networking/af_xdp.rst) is bound to one queue of an
// interface and shares four rings with the kernel, each a power-of-two array of
// entries with a producer and a consumer index that only ever grow (mod 2^32):
//
//	fill       user → kernel   UMEM addresses the kernel may receive into
//	RX         kernel → user   received frames: {addr, len, options}
//	TX         user → kernel   frames to send:  {addr, len, options}
//	completion kernel → user   addresses of sent frames, free again
//
// The UMEM is one anonymous mapping cut into frameSize chunks. A chunk is always in
// exactly one place: free (on the socket's free list), with the kernel (fill ring or
// TX until completed), or held by the caller (handed out by ReadBatch until the next
// ReadBatch). Received frames are handed to the caller where the kernel wrote them:
// the kernel leaves XDP_PACKET_HEADROOM (256) bytes in front of each, more than
// dataplane.Headroom, so encapsulation prepends in place; a received frame sent back
// in place goes to TX without a copy.

// ring is one of the four rings.
type ring struct {
	mem        []byte
	prod, cons *atomic.Uint32
	flags      *atomic.Uint32
	mask       uint32
	addrs      []uint64       // fill, completion
	descs      []unix.XDPDesc // RX, TX
}

func (r *ring) unmap() {
	if r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
}

func mapRing(fd int, off unix.XDPRingOffset, pgoff int64, n uint32, desc bool) (ring, error) {
	entry := uint64(8)
	if desc {
		entry = 16
	}
	mem, err := unix.Mmap(fd, pgoff, int(off.Desc+uint64(n)*entry), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return ring{}, os.NewSyscallError("mmap ring", err)
	}
	r := ring{mem: mem, prod: word(mem, off.Producer), cons: word(mem, off.Consumer), flags: word(mem, off.Flags), mask: n - 1}
	if desc {
		r.descs = descs(mem, off.Desc, n)
	} else {
		r.addrs = addrs(mem, off.Desc, n)
	}
	return r, nil
}

// chunk states.
const (
	chunkFree   = iota // on the free list
	chunkKernel        // in the fill ring, or received and not yet read
	chunkHeld          // handed out by ReadBatch
	chunkTX            // in the TX ring until completed
)

// Stats are a socket's counters. The kernel's (XDP_STATISTICS) say where frames
// were lost before the socket saw them.
type Stats struct {
	RXFrames uint64 // frames handed out by ReadBatch
	// RXCsumPartial counts received frames whose TCP/UDP checksum was left partial
	// (marked Frame.CsumPartial).
	RXCsumPartial uint64
	// RXBad counts descriptors the socket could not use (outside the UMEM, or less
	// headroom than dataplane.Headroom): dropped.
	RXBad        uint64
	TXFrames     uint64 // frames put in the TX ring
	TXCopied     uint64 // of which copied into the UMEM (they came from elsewhere)
	TXNoChunk    uint64 // dropped: no free UMEM chunk to copy into
	TXTooLong    uint64 // dropped: longer than a UMEM chunk (or empty)
	TXRingFull   uint64 // dropped: the TX ring was full
	TXKickErrors uint64 // sendto(2) failures other than EAGAIN/EBUSY/ENOBUFS

	// The kernel's, since the socket opened.
	KernelRXDropped     uint64 // frames the socket could not take (e.g. longer than a chunk)
	KernelRXInvalid     uint64 // invalid fill descriptors
	KernelTXInvalid     uint64 // invalid TX descriptors
	KernelRXRingFull    uint64 // RX ring full: the reader was too slow
	KernelFillRingEmpty uint64 // no buffer in the fill ring when a frame came
	KernelTXRingEmpty   uint64 // TX ring empty when the kernel looked
}

// Socket is the dataplane.Link of one receive queue: an XDP socket with its own
// UMEM. Sockets are made by Open, one per queue; the XDP program stays attached
// until the last socket of an Open is closed.
type Socket struct {
	dev        *Device
	name       string
	queue      int
	fd         int
	efd        int // eventfd: Close wakes a waiting ReadBatch
	zerocopy   bool
	needWakeup bool
	checksums  bool

	frameSize          uint64
	umem               []byte
	fill, comp, rx, tx ring
	batch              int
	pfds               [2]unix.PollFd

	mu       sync.Mutex // guards everything below, and the fill, TX and completion rings
	state    []uint8    // per chunk
	free     []uint64   // free chunks' addresses (a stack)
	held     []uint32   // chunks handed out by the last ReadBatch
	users    int        // ReadBatch/WriteBatch calls under way
	closed   bool
	released bool
	p        header.Parsed // ReadBatch's scratch (checksum check)

	stats struct {
		rxFrames, rxPartial, rxBad                               atomic.Uint64
		txFrames, txCopied, txNoChunk, txTooLong, txFull, txKick atomic.Uint64
	}
	kmu    sync.Mutex
	kstats unix.XDPStatistics
}

var _ dataplane.Link = (*Socket)(nil)

// openSocket creates the socket of queue q with its UMEM and rings and binds it.
// zerocopy: XDP_ZEROCOPY is asked for; otherwise XDP_COPY.
func openSocket(d *Device, ifindex, q int, c *Config, zerocopy bool) (*Socket, error) {
	s := &Socket{dev: d, name: d.name, queue: q, fd: -1, efd: -1, frameSize: uint64(c.FrameSize),
		batch: c.BatchSize, checksums: d.checksums, zerocopy: zerocopy}
	ok := false
	defer func() {
		if !ok {
			s.dev = nil // not counted by the device yet
			s.release()
		}
	}()
	var err error
	if s.fd, err = unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
		return nil, os.NewSyscallError("socket AF_XDP", err)
	}
	if s.efd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, os.NewSyscallError("eventfd", err)
	}
	n := c.Frames
	if s.umem, err = unix.Mmap(-1, 0, n*c.FrameSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE); err != nil {
		return nil, os.NewSyscallError("mmap UMEM", err)
	}
	if err := umemReg(s.fd, s.umem, uint32(c.FrameSize)); err != nil {
		return nil, os.NewSyscallError("setsockopt XDP_UMEM_REG", err)
	}
	rs := uint32(c.RingSize)
	for _, o := range []struct {
		name string
		opt  int
	}{{"XDP_UMEM_FILL_RING", unix.XDP_UMEM_FILL_RING}, {"XDP_UMEM_COMPLETION_RING", unix.XDP_UMEM_COMPLETION_RING},
		{"XDP_RX_RING", unix.XDP_RX_RING}, {"XDP_TX_RING", unix.XDP_TX_RING}} {
		if err := unix.SetsockoptInt(s.fd, unix.SOL_XDP, o.opt, int(rs)); err != nil {
			return nil, os.NewSyscallError("setsockopt "+o.name, err)
		}
	}
	var off unix.XDPMmapOffsets
	if err := getsockoptInto(s.fd, unix.SOL_XDP, unix.XDP_MMAP_OFFSETS, &off); err != nil {
		return nil, os.NewSyscallError("getsockopt XDP_MMAP_OFFSETS", err)
	}
	if s.fill, err = mapRing(s.fd, off.Fr, unix.XDP_UMEM_PGOFF_FILL_RING, rs, false); err != nil {
		return nil, err
	}
	if s.comp, err = mapRing(s.fd, off.Cr, unix.XDP_UMEM_PGOFF_COMPLETION_RING, rs, false); err != nil {
		return nil, err
	}
	if s.rx, err = mapRing(s.fd, off.Rx, unix.XDP_PGOFF_RX_RING, rs, true); err != nil {
		return nil, err
	}
	if s.tx, err = mapRing(s.fd, off.Tx, unix.XDP_PGOFF_TX_RING, rs, true); err != nil {
		return nil, err
	}
	s.state = make([]uint8, n)
	s.free = make([]uint64, 0, n)
	for i := n - 1; i >= 0; i-- {
		s.free = append(s.free, uint64(i)*s.frameSize)
	}
	s.held = make([]uint32, 0, c.BatchSize)
	s.refillLocked()
	flags := uint16(unix.XDP_USE_NEED_WAKEUP)
	if zerocopy {
		flags |= unix.XDP_ZEROCOPY
	} else {
		flags |= unix.XDP_COPY
	}
	// The kernel unbinds a closed socket from its queue in deferred work, so a
	// socket closed a moment ago (a failed attempt, a restart) keeps the queue busy
	// briefly: retry EBUSY for up to a second before blaming another user.
	for try := 0; ; try++ {
		err = unix.Bind(s.fd, &unix.SockaddrXDP{Flags: flags, Ifindex: uint32(ifindex), QueueID: uint32(q)})
		if err == nil {
			break
		}
		if err != unix.EBUSY || try == 100 {
			if err == unix.EBUSY {
				return nil, fmt.Errorf("bind: queue %d is in use by another AF_XDP socket: %w", q, err)
			}
			return nil, os.NewSyscallError("bind", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Copy mode: let one sendto(2) send a whole batch (Linux 6.17+; older kernels
	// keep their 32, which kickLocked loops over).
	if !zerocopy {
		_ = unix.SetsockoptInt(s.fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, c.BatchSize)
	}
	s.needWakeup = true
	s.pfds = [2]unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLIN}, {Fd: int32(s.efd), Events: unix.POLLIN}}
	ok = true
	return s, nil
}

// refillLocked moves free chunks to the fill ring while it has room, keeping a
// quarter of the UMEM free for frames WriteBatch must copy.
// Precondition: s.mu is held.
func (s *Socket) refillLocked() {
	prod := s.fill.prod.Load()
	room := int(uint32(len(s.fill.addrs)) - (prod - s.fill.cons.Load()))
	k := min(room, len(s.free)-len(s.state)/4)
	for i := 0; i < k; i++ {
		a := s.free[len(s.free)-1]
		s.free = s.free[:len(s.free)-1]
		s.state[a/s.frameSize] = chunkKernel
		s.fill.addrs[prod&s.fill.mask] = a
		prod++
	}
	if k > 0 {
		s.fill.prod.Store(prod)
	}
}

// reapLocked takes completed TX chunks back.
// Precondition: s.mu is held.
func (s *Socket) reapLocked() {
	prod := s.comp.prod.Load()
	cons := s.comp.cons.Load()
	if prod == cons {
		return
	}
	for ; cons != prod; cons++ {
		a := s.comp.addrs[cons&s.comp.mask]
		c := a / s.frameSize
		if c < uint64(len(s.state)) && s.state[c] == chunkTX {
			s.state[c] = chunkFree
			s.free = append(s.free, c*s.frameSize)
		}
	}
	s.comp.cons.Store(cons)
}

// handBackLocked frees the chunks of the last batch that were not sent in place.
// Precondition: s.mu is held.
func (s *Socket) handBackLocked() {
	for _, c := range s.held {
		if s.state[c] == chunkHeld {
			s.state[c] = chunkFree
			s.free = append(s.free, uint64(c)*s.frameSize)
		}
	}
	s.held = s.held[:0]
}

// enter registers a ReadBatch or WriteBatch call; false when the socket is closed.
func (s *Socket) enter() bool {
	s.mu.Lock()
	if s.closed {
		s.handBackLocked()
		s.releaseIfIdleLocked()
		s.mu.Unlock()
		return false
	}
	s.users++
	return true // s.mu stays held
}

// leaveLocked ends a call; the socket is released if it was closed meanwhile.
// Precondition: s.mu is held; it is released.
func (s *Socket) leaveLocked() {
	s.users--
	s.releaseIfIdleLocked()
	s.mu.Unlock()
}

// releaseIfIdleLocked releases a closed socket nobody uses and whose frames are all
// handed back.
// Precondition: s.mu is held.
func (s *Socket) releaseIfIdleLocked() {
	if s.closed && !s.released && s.users == 0 && len(s.held) == 0 {
		s.released = true
		s.release()
	}
}

func (s *Socket) closedErr(op string) error {
	return &dataplane.OpError{Op: op, Link: s.name, Err: net.ErrClosed}
}

// ReadBatch implements dataplane.Link.
func (s *Socket) ReadBatch(frames []dataplane.Frame) (int, error) {
	if !s.enter() {
		return 0, s.closedErr("read")
	}
	s.handBackLocked()
	s.reapLocked()
	s.refillLocked()
	if len(frames) == 0 {
		s.leaveLocked()
		return 0, nil
	}
	for {
		prod := s.rx.prod.Load()
		cons := s.rx.cons.Load()
		if avail := int(prod - cons); avail > 0 {
			n := 0
			for ; cons != prod && n < len(frames); cons++ {
				d := &s.rx.descs[cons&s.rx.mask]
				c := d.Addr / s.frameSize
				off := d.Addr - c*s.frameSize
				if c >= uint64(len(s.state)) || off < dataplane.Headroom || off+uint64(d.Len) > s.frameSize {
					s.stats.rxBad.Add(1)
					if c < uint64(len(s.state)) {
						s.state[c] = chunkFree
						s.free = append(s.free, c*s.frameSize)
					}
					continue
				}
				s.state[c] = chunkHeld
				s.held = append(s.held, uint32(c))
				f := &frames[n]
				base := c * s.frameSize
				f.Buf = s.umem[base : base+s.frameSize : base+s.frameSize]
				f.Off, f.Len = int(off), int(d.Len)
				f.CsumPartial = s.checksums && s.partial(f.Bytes())
				n++
			}
			s.rx.cons.Store(cons)
			s.stats.rxFrames.Add(uint64(n))
			if n > 0 {
				s.leaveLocked()
				if s.dev != nil {
					s.dev.watchQueues()
				}
				return n, nil
			}
			continue
		}
		// Nothing to read: make sure the kernel has buffers, and wait.
		if s.needWakeup && s.fill.flags.Load()&unix.XDP_RING_NEED_WAKEUP != 0 {
			wakeRX(s.fd)
		}
		s.mu.Unlock()
		_, err := unix.Poll(s.pfds[:], -1)
		s.mu.Lock()
		if s.closed {
			s.leaveLocked()
			return 0, s.closedErr("read")
		}
		if err != nil && err != unix.EINTR {
			s.leaveLocked()
			return 0, &dataplane.OpError{Op: "read", Link: s.name, Err: os.NewSyscallError("poll", err)}
		}
		if s.pfds[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
			s.leaveLocked()
			return 0, &dataplane.OpError{Op: "read", Link: s.name, Err: fmt.Errorf("socket of queue %d: poll revents %#x", s.queue, s.pfds[0].Revents)}
		}
		s.reapLocked()
		s.refillLocked()
	}
}

// partial reports whether frame's TCP/UDP checksum was left partial by a local
// sender: the field holds exactly the pseudo-header sum (what Linux stores for
// CHECKSUM_PARTIAL, the device to add the rest) and the whole does not verify. A
// complete checksum equals the pseudo-header sum by chance once in 65536, and then
// verifies, so a complete checksum is never marked.
func (s *Socket) partial(frame []byte) bool {
	p := &s.p
	if p.Decode(frame) != header.DropNone || p.IPVersion == 0 || p.IsFragment ||
		(p.Proto != header.IPProtoTCP && p.Proto != header.IPProtoUDP) {
		return false
	}
	l4 := frame[p.L4Off:p.End]
	csumOff := 16 // TCP (RFC 9293 §3.1)
	if p.Proto == header.IPProtoUDP {
		csumOff = 6 // RFC 768
	}
	if len(l4) < csumOff+2 {
		return false
	}
	var src, dst []byte
	if p.IPv6 {
		src, dst = frame[p.L3Off+ipv6Src:p.L3Off+ipv6Src+16], frame[p.L3Off+ipv6Dst:p.L3Off+ipv6Dst+16]
	} else {
		src, dst = frame[p.L3Off+ipv4Src:p.L3Off+ipv4Src+4], frame[p.L3Off+ipv4Dst:p.L3Off+ipv4Dst+4]
	}
	ps := header.PseudoHeaderSum(src, dst, p.Proto, uint32(len(l4)))
	field := binary.BigEndian.Uint16(l4[csumOff:])
	if field != ps && !(field^ps == 0xffff && (field == 0 || ps == 0)) {
		return false
	}
	if header.Checksum(l4, ps) == 0xffff {
		return false // complete after all
	}
	s.stats.rxPartial.Add(1)
	return true
}

// WriteBatch implements dataplane.Link. A frame that is a chunk the last ReadBatch
// handed out is sent in place; any other is copied into a free chunk.
func (s *Socket) WriteBatch(frames []dataplane.Frame) (int, error) {
	if !s.enter() {
		return 0, s.closedErr("write")
	}
	s.reapLocked()
	prod := s.tx.prod.Load()
	cons := s.tx.cons.Load()
	room := uint32(len(s.tx.descs)) - (prod - cons)
	sent := 0
	for i := range frames {
		f := &frames[i]
		if f.Len <= 0 || uint64(f.Len) > s.frameSize {
			s.stats.txTooLong.Add(1)
			continue
		}
		if room == 0 {
			s.stats.txFull.Add(uint64(len(frames) - i))
			break
		}
		b := f.Buf[f.Off : f.Off+f.Len]
		var addr uint64
		if o, ok := umemOffset(s.umem, b, f.Len); ok && s.state[o/s.frameSize] == chunkHeld &&
			o/s.frameSize == (o+uint64(f.Len)-1)/s.frameSize {
			addr = o
			s.state[o/s.frameSize] = chunkTX
		} else {
			if len(s.free) == 0 {
				s.reapLocked()
				if len(s.free) == 0 {
					s.stats.txNoChunk.Add(1)
					continue
				}
			}
			addr = s.free[len(s.free)-1]
			s.free = s.free[:len(s.free)-1]
			s.state[addr/s.frameSize] = chunkTX
			copy(s.umem[addr:addr+s.frameSize], b)
			s.stats.txCopied.Add(1)
		}
		s.tx.descs[prod&s.tx.mask] = unix.XDPDesc{Addr: addr, Len: uint32(f.Len)}
		prod++
		room--
		sent++
	}
	if sent > 0 {
		s.tx.prod.Store(prod)
		s.stats.txFrames.Add(uint64(sent))
		// Copy mode sends in sendto(2); zero-copy drivers only need a kick when the
		// ring says so.
		if !s.zerocopy || s.tx.flags.Load()&unix.XDP_RING_NEED_WAKEUP != 0 {
			if e := s.kickLocked(prod); e == unix.ENETDOWN || e == unix.ENXIO {
				s.leaveLocked()
				return sent, &dataplane.OpError{Op: "write", Link: s.name, Err: os.NewSyscallError("sendto", e)}
			}
		}
		s.reapLocked()
	}
	s.leaveLocked()
	return sent, nil
}

// kickLocked has the kernel send the TX ring up to prod. In copy mode one sendto(2)
// sends at most the socket's TX budget (32 frames unless XDP_MAX_TX_SKB_BUDGET
// raised it) and answers EAGAIN while more remain, so it is repeated, a bounded
// number of times, until the kernel consumed the ring or stops making progress
// (EBUSY, ENOBUFS: the device queue is full; what is left goes with the next
// batch). It returns the error that ended it, 0 when the ring was drained.
// Precondition: s.mu is held.
func (s *Socket) kickLocked(prod uint32) unix.Errno {
	for try := 0; try < len(s.tx.descs)/32+1; try++ {
		e := kick(s.fd)
		switch e {
		case 0, unix.EAGAIN:
		case unix.EBUSY, unix.ENOBUFS, unix.ENETDOWN, unix.ENXIO:
			return e
		default:
			s.stats.txKick.Add(1)
			return e
		}
		if s.zerocopy || s.tx.cons.Load() == prod {
			return 0
		}
	}
	return unix.EAGAIN
}

// BatchSize implements dataplane.Link.
func (s *Socket) BatchSize() int { return s.batch }

// Queue is the receive queue the socket is bound to.
func (s *Socket) Queue() int { return s.queue }

// ZeroCopy reports whether the socket is bound in zero-copy mode.
func (s *Socket) ZeroCopy() bool { return s.zerocopy }

// Device is the Open the socket belongs to.
func (s *Socket) Device() *Device { return s.dev }

// SetFilter sets the addresses the XDP program redirects (f's VIPs and NAT real
// servers; see the package doc for ARP, NDP and VRRP) for every socket of the
// Open; it implements the daemon's FilterSetter.
func (s *Socket) SetFilter(f *afpacket.Filter) error { return s.dev.SetFilter(f) }

// Close implements dataplane.Link. The socket's memory is released once no call
// uses it and its last batch is handed back.
func (s *Socket) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, err := unix.Write(s.efd, one[:])
	s.releaseIfIdleLocked()
	s.mu.Unlock()
	if err != nil {
		return &dataplane.OpError{Op: "close", Link: s.name, Err: os.NewSyscallError("write eventfd", err)}
	}
	return nil
}

// release frees the socket's kernel resources and lets the device go.
func (s *Socket) release() {
	if s.fd >= 0 {
		_ = s.readKernelStats()
	}
	for _, r := range []*ring{&s.fill, &s.comp, &s.rx, &s.tx} {
		r.unmap()
	}
	if s.fd >= 0 {
		unix.Close(s.fd)
		s.fd = -1
	}
	if s.umem != nil {
		unix.Munmap(s.umem)
		s.umem = nil
	}
	if s.efd >= 0 {
		unix.Close(s.efd)
		s.efd = -1
	}
	if s.dev != nil {
		s.dev.socketGone()
	}
}

func (s *Socket) readKernelStats() error {
	var st unix.XDPStatistics
	if err := getsockoptInto(s.fd, unix.SOL_XDP, unix.XDP_STATISTICS, &st); err != nil {
		return os.NewSyscallError("getsockopt XDP_STATISTICS", err)
	}
	s.kmu.Lock()
	s.kstats = st
	s.kmu.Unlock()
	return nil
}

// Name is the interface's name (the daemon's link metrics label).
func (s *Socket) Name() string { return s.name }

// Stats returns the socket's counters in the shape of an AF_PACKET ring's, so that
// the daemon's per-link metrics and statistics read both backends alike:
// Drops (ring_full) are the frames the kernel could not hand to the socket — RX ring
// full, or no buffer in the fill ring, or (rarely) longer than a UMEM chunk, which
// the kernel counts together —, TXDrops the frames WriteBatch dropped (no chunk, too
// long, TX ring full), LinkErrors the failed sendto kicks. SocketStats has the
// details.
func (s *Socket) Stats() (afpacket.Stats, error) {
	st, err := s.SocketStats()
	drops := st.KernelRXRingFull + st.KernelRXDropped
	return afpacket.Stats{
		Packets:    st.RXFrames + drops,
		Drops:      drops,
		RXFrames:   st.RXFrames,
		RXBad:      st.RXBad + st.KernelRXInvalid,
		LinkErrors: st.TXKickErrors,
		TXFrames:   st.TXFrames,
		TXDrops:    st.TXNoChunk + st.TXTooLong + st.TXRingFull + st.KernelTXInvalid,
	}, err
}

// SocketStats returns the socket's counters.
func (s *Socket) SocketStats() (Stats, error) {
	var err error
	s.mu.Lock()
	if !s.released && s.fd >= 0 {
		err = s.readKernelStats()
	}
	s.mu.Unlock()
	s.kmu.Lock()
	k := s.kstats
	s.kmu.Unlock()
	st := Stats{
		RXFrames: s.stats.rxFrames.Load(), RXCsumPartial: s.stats.rxPartial.Load(), RXBad: s.stats.rxBad.Load(),
		TXFrames: s.stats.txFrames.Load(), TXCopied: s.stats.txCopied.Load(), TXNoChunk: s.stats.txNoChunk.Load(),
		TXTooLong: s.stats.txTooLong.Load(), TXRingFull: s.stats.txFull.Load(), TXKickErrors: s.stats.txKick.Load(),
		KernelRXDropped: k.Rx_dropped, KernelRXInvalid: k.Rx_invalid_descs, KernelTXInvalid: k.Tx_invalid_descs,
		KernelRXRingFull: k.Rx_ring_full, KernelFillRingEmpty: k.Rx_fill_ring_empty_descs, KernelTXRingEmpty: k.Tx_ring_empty_descs,
	}
	if err != nil {
		return st, &dataplane.OpError{Op: "stats", Link: s.name, Err: err}
	}
	return st, nil
}
