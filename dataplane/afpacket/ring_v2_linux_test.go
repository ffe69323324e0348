//go:build linux

package afpacket

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/internal/testutil"
	"golang.org/x/sys/unix"
)

// rlEachVersion runs a ring test on a TPACKET_V2 and a TPACKET_V3 ring.
func rlEachVersion(t *testing.T, fn func(t *testing.T, version int)) {
	for _, v := range []int{2, 3} {
		t.Run("v"+strconv.Itoa(v), func(t *testing.T) { fn(t, v) })
	}
}

// rlSlot lays a frame out in a V2 slot the way tpacket_rcv does: tpacket2_hdr with
// TP_STATUS_USER, the frame at tp2MacOff. vlan ≥ 0 marks it received with that
// 802.1Q TCI moved out of the data.
func rlSlot(size int, frame []byte, vlan int) []byte {
	ne := binary.NativeEndian
	s := make([]byte, size)
	status := uint32(unix.TP_STATUS_USER)
	if vlan >= 0 {
		status |= unix.TP_STATUS_VLAN_VALID
		ne.PutUint16(s[tp2VLANTCI:], uint16(vlan))
	}
	ne.PutUint32(s[tp2Status:], status)
	ne.PutUint32(s[tp2Len:], uint32(len(frame)))
	ne.PutUint32(s[tp2Snaplen:], uint32(len(frame)))
	ne.PutUint16(s[tp2Mac:], tp2MacOff)
	copy(s[tp2MacOff:], frame)
	return s
}

// rlFakeRingV2 is a V2 Ring over Go memory holding the given slots (all of one
// size) in one block, for the reader's logic without a kernel.
func rlFakeRingV2(slots ...[]byte) *Ring {
	fs := len(slots[0])
	r := &Ring{isV2: true, blockSize: fs * len(slots), nblocks: 1, mem: make([]byte, 0, fs*len(slots))}
	for _, s := range slots {
		r.mem = append(r.mem, s...)
	}
	r.v2 = v2State{frameSize: fs, perBlock: len(slots), nframes: len(slots)}
	return r
}

func TestParseFrameV2(t *testing.T) {
	ne := binary.NativeEndian
	a := rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, 1, 0, rlUDP(1, 2, nil))))
	tests := []struct {
		name   string
		mutate func(s []byte)
		wantV  frameVerdict
	}{
		{name: "good", wantV: frameOK},
		{name: "truncated", mutate: func(s []byte) { ne.PutUint32(s[tp2Len:], 1500) }, wantV: frameTruncated},
		{name: "copied", mutate: func(s []byte) {
			ne.PutUint32(s[tp2Len:], 1500)
			ne.PutUint32(s[tp2Status:], unix.TP_STATUS_USER|unix.TP_STATUS_COPY)
		}, wantV: frameCopy},
		{name: "copy flag overrides a bad header", mutate: func(s []byte) {
			ne.PutUint32(s[tp2Snaplen:], 1<<31)
			ne.PutUint32(s[tp2Status:], unix.TP_STATUS_USER|unix.TP_STATUS_COPY)
		}, wantV: frameCopy},
		{name: "snaplen past slot", mutate: func(s []byte) { ne.PutUint32(s[tp2Snaplen:], 1<<31) }, wantV: frameBad},
		{name: "snaplen one past slot", mutate: func(s []byte) { ne.PutUint32(s[tp2Snaplen:], uint32(256-tp2MacOff+1)) }, wantV: frameBad},
		{name: "snaplen below header", mutate: func(s []byte) { ne.PutUint32(s[tp2Snaplen:], 13); ne.PutUint32(s[tp2Len:], 13) }, wantV: frameBad},
		{name: "no headroom", mutate: func(s []byte) { ne.PutUint16(s[tp2Mac:], tp2FrameStart+dataplane.Headroom-1) }, wantV: frameBad},
		{name: "no room for the tag", mutate: func(s []byte) {
			ne.PutUint16(s[tp2Mac:], tp2FrameStart+dataplane.Headroom+header.VLANTagLen-1)
			ne.PutUint32(s[tp2Status:], unix.TP_STATUS_USER|unix.TP_STATUS_VLAN_VALID)
		}, wantV: frameBad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := rlSlot(256, a, -1)
			if tt.mutate != nil {
				tt.mutate(s)
			}
			f, v, _ := parseFrameV2(s)
			if v != tt.wantV {
				t.Fatalf("verdict %d, want %d", v, tt.wantV)
			}
			if v == frameOK && (!bytes.Equal(f.Bytes(), a) || f.Off < dataplane.Headroom || cap(f.Buf) != len(f.Buf)) {
				t.Errorf("frame off %d len %d cap %d: % x", f.Off, f.Len, cap(f.Buf), f.Bytes())
			}
		})
	}

	t.Run("vlan", func(t *testing.T) {
		for _, tpid := range []int{-1, 0x88a8} {
			wire := rlPad(rlEth(rlDirMAC, rlGenMAC, 0x2007, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, 1, 0, rlUDP(1, 2, nil))))
			untagged := append(append([]byte(nil), wire[:12]...), wire[16:]...)
			s := rlSlot(256, untagged, 0x2007)
			if tpid >= 0 {
				binary.BigEndian.PutUint16(wire[12:], uint16(tpid))
				ne.PutUint16(s[tp2VLANTPID:], uint16(tpid))
				ne.PutUint32(s[tp2Status:], unix.TP_STATUS_USER|unix.TP_STATUS_VLAN_VALID|unix.TP_STATUS_VLAN_TPID_VALID)
			}
			f, v, _ := parseFrameV2(s)
			if v != frameOK || !bytes.Equal(f.Bytes(), wire) || f.Off < dataplane.Headroom {
				t.Fatalf("tpid %#x: verdict %d off %d:\n got % x\nwant % x", tpid, v, f.Off, f.Bytes(), wire)
			}
		}
	})

	t.Run("short slot", func(t *testing.T) {
		for _, n := range []int{0, 1, tp2HdrLen - 1} {
			if _, v, _ := parseFrameV2(make([]byte, n)); v != frameBad {
				t.Errorf("%d-byte slot: verdict %d, want bad", n, v)
			}
		}
	})
}

func TestRingFillV2(t *testing.T) {
	var fr [][]byte
	for i := range 6 {
		fr = append(fr, rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, uint16(i), 0, nil))))
	}
	var slots [][]byte
	for _, f := range fr {
		slots = append(slots, rlSlot(256, f, -1))
	}
	// One slot the kernel still owns: the reader stops there.
	slots = append(slots, make([]byte, 256), make([]byte, 256))
	// A truncated frame without a copy in the middle: dropped and counted.
	binary.NativeEndian.PutUint32(slots[2][tp2Len:], 9000)
	r := rlFakeRingV2(slots...)
	frames := make([]dataplane.Frame, 2)
	var got [][]byte
	var drops uint64
	for range 5 {
		n, tr, bad, copied := r.fillV2(frames)
		if bad|copied != 0 {
			t.Fatalf("bad %d copied %d", bad, copied)
		}
		drops += tr
		for _, f := range frames[:n] {
			got = append(got, f.Bytes())
		}
		r.returnSlots()
	}
	want := append(append([][]byte(nil), fr[:2]...), fr[3:]...)
	if len(got) != len(want) || drops != 1 {
		t.Fatalf("got %d frames and %d drops, want %d and 1", len(got), drops, len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("frame %d out of order", i)
		}
	}
	for i := range 6 {
		if s := loadStatus(r.slot(i)); s != unix.TP_STATUS_KERNEL {
			t.Errorf("slot %d status %#x after reading, want the kernel's", i, s)
		}
	}
	if r.v2.cur != 6 || r.ready() {
		t.Errorf("reader at slot %d (ready %v), want 6, waiting", r.v2.cur, r.ready())
	}

	// A batch holds at most half the ring, and never wraps onto held slots.
	slots = slots[:0]
	for i := range 4 {
		slots = append(slots, rlSlot(256, fr[i], -1))
	}
	r = rlFakeRingV2(slots...)
	if n, _, _, _ := r.fillV2(make([]dataplane.Frame, 8)); n != 2 || r.v2.pending != 2 {
		t.Fatalf("fill = %d frames, %d pending; want 2, 2", n, r.v2.pending)
	}
	if n, _, _, _ := r.fillV2(make([]dataplane.Frame, 8)); n != 0 {
		t.Fatalf("fill read more than half the ring: %d frames", n)
	}
	r.returnSlots()
	if n, _, _, _ := r.fillV2(make([]dataplane.Frame, 8)); n != 2 {
		t.Fatalf("fill after returning slots = %d frames, want 2", n)
	}
	r.returnSlots()
	if n, _, _, _ := r.fillV2(make([]dataplane.Frame, 8)); n != 0 || r.v2.cur != 0 {
		t.Fatalf("fill re-read returned slots: %d frames, at %d", n, r.v2.cur)
	}
}

// FuzzRingFrameV2 feeds arbitrary slot contents to the V2 reader: whatever the
// headers say, it must not panic, every frame it returns must have its headroom and
// lie inside its own slot, and frames must not overlap (each is filled with its own
// byte, headroom included, and must still hold it afterwards). Every slot the
// kernel handed over is read exactly once and handed back.
func FuzzRingFrameV2(f *testing.F) {
	a := rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, 1, 0, nil)))
	join := func(slots ...[]byte) []byte { return bytes.Join(slots, nil) }
	// Well-formed slots, one of them holding a tagged frame.
	f.Add(join(rlSlot(256, a, -1), rlSlot(256, a[:56], 7), rlSlot(256, a, -1)))
	// A frame as long as its slot allows.
	f.Add(join(rlSlot(256, make([]byte, 256-tp2MacOff), -1)))
	// A copied frame (TP_STATUS_COPY; no socket behind the fake ring).
	s := rlSlot(256, a, -1)
	binary.NativeEndian.PutUint32(s[tp2Status:], unix.TP_STATUS_USER|unix.TP_STATUS_COPY)
	f.Add(join(s, rlSlot(256, a, -1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		const size, nslots = 256, 4
		mem := make([]byte, size*nslots)
		copy(mem, data)
		slots := make([][]byte, nslots)
		user := 0
		for i := range slots {
			slots[i] = mem[i*size : (i+1)*size]
			if loadStatus(slots[i])&unix.TP_STATUS_USER != 0 {
				user++
			}
		}
		r := rlFakeRingV2(slots...)
		frames := make([]dataplane.Frame, 3)
		var all []dataplane.Frame
		seen := 0
		for range 2 * nslots {
			before := r.v2.cur
			n, tr, bad, _ := r.fillV2(frames)
			if want := (r.v2.cur - before + nslots) % nslots; r.v2.pending != want {
				t.Fatalf("pending %d after reading from %d to %d", r.v2.pending, before, r.v2.cur)
			}
			if uint64(n)+tr+bad != uint64(r.v2.pending) {
				t.Fatalf("%d frames + %d + %d drops from %d slots", n, tr, bad, r.v2.pending)
			}
			seen += r.v2.pending
			for _, f := range frames[:n] {
				if f.Off < dataplane.Headroom || f.Len < header.EthernetHeaderLen || f.Off+f.Len != len(f.Buf) || cap(f.Buf) != len(f.Buf) || len(f.Buf) > size {
					t.Fatalf("bad frame: off %d len %d buf %d cap %d", f.Off, f.Len, len(f.Buf), cap(f.Buf))
				}
				all = append(all, f)
			}
			r.returnSlots()
			if n == 0 && tr|bad == 0 {
				break
			}
		}
		if seen > user || (user == nslots && seen != nslots) {
			t.Fatalf("read %d slots, %d were the reader's", seen, user)
		}
		for i, f := range all {
			for j := range f.Buf {
				f.Buf[j] = byte(i + 1)
			}
		}
		for i, f := range all {
			for _, c := range f.Buf {
				if c != byte(i+1) {
					t.Fatalf("frame %d overlaps another", i)
				}
			}
		}
	})
}

// rlFragments splits an IPv4 UDP datagram to the VIP into fragments of at most mtu
// bytes of IP each, in Ethernet frames.
func rlFragments(dgram []byte, id uint16, mtu int) [][]byte {
	var frames [][]byte
	step := (mtu - 20) &^ 7
	for off := 0; off < len(dgram); off += step {
		end := min(off+step, len(dgram))
		flags := uint16(off / 8)
		if end < len(dgram) {
			flags |= 0x2000
		}
		frames = append(frames, rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, id, flags, dgram[off:end])))
	}
	return frames
}

// TestRingV2CopiesLongFrames checks PACKET_COPY_THRESH: a frame longer than a V2
// slot arrives whole, byte for byte (with its 802.1Q tag put back), through the copy
// the kernel queues on the socket; several in a row, so batches with more than
// one copy are split. Then a 60 KB IPv4 datagram sent in fragments arrives
// reassembled (PACKET_FANOUT_FLAG_DEFRAG) and whole through a ring with the
// default slot size.
func TestRingV2CopiesLongFrames(t *testing.T) {
	l, gen, dir := rlPair(t)
	inj := l.raw(gen, "eth0")

	t.Run("frames", func(t *testing.T) {
		r := l.openRing(dir, "eth0", Config{Version: 2, Packets: 64, FrameSize: 256, Filter: rlDirFilter()})
		rlWatchdog(t, r, 10*time.Second)
		var sent [][]byte
		for i, n := range []int{10, 1000, 1400, 100, 1472, 1200} {
			vlan := -1
			if i%2 == 1 {
				vlan = i
			}
			sent = append(sent, rlPad(rlEth(rlDirMAC, rlGenMAC, vlan, header.EtherTypeIPv4,
				rlIPv4(rlClient, rlVIP, 17, uint16(i), 0, rlUDP(40000, 80, bytes.Repeat([]byte{byte(i)}, n))))))
		}
		inj.send(sent...)
		got, err := rlReadN(r, len(sent))
		if err != nil {
			t.Fatalf("after %d of %d frames: %v", len(got), len(sent), err)
		}
		for i := range sent {
			if !bytes.Equal(got[i], sent[i]) {
				t.Errorf("frame %d (%d bytes) arrived as %d bytes", i, len(sent[i]), len(got[i]))
			}
		}
		st, err := r.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.RXCopied != 5 || st.RXFrames != uint64(len(sent)) || st.RXTruncated|st.RXBad|st.Drops != 0 {
			t.Errorf("stats %+v, want 5 of %d frames copied, no drops", st, len(sent))
		}
	})

	for _, alone := range []bool{false, true} {
		t.Run(fmt.Sprintf("reassembled/alone=%v", alone), func(t *testing.T) { rlReassembled(t, l, inj, dir, alone) })
	}
}

// rlReassembled: a 60 KB IPv4 datagram sent in fragments arrives reassembled and
// whole through a ring in a fanout group, steered (CBPF) or alone in it (CPU mode,
// no program run), and the group is of the mode asked.
func rlReassembled(t *testing.T, l *rlLab, inj *rlRaw, dir string, alone bool) {
	r := l.openRing(dir, "eth0", Config{Version: 2, Packets: 256, FanoutID: rlFanoutID(), FanoutAlone: alone, Filter: rlDirFilter()})
	rlWatchdog(t, r, 10*time.Second)
	arg, err := unix.GetsockoptInt(r.fd, unix.SOL_PACKET, unix.PACKET_FANOUT)
	if err != nil {
		t.Fatal(err)
	}
	mode, want := uint32(arg)>>16&0xff, uint32(unix.PACKET_FANOUT_CBPF)
	if alone {
		want = unix.PACKET_FANOUT_CPU
	}
	if mode != want || uint32(arg)>>16&unix.PACKET_FANOUT_FLAG_DEFRAG == 0 {
		t.Errorf("fanout option %#x: mode %d, want %d with DEFRAG", uint32(arg), mode, want)
	}
	if err := r.Steering(); err != nil {
		t.Errorf("Steering: %v, want nil", err)
	}
	dgram := rlUDP(30000, 53, make([]byte, 60000))
	for i := range dgram[8:] {
		dgram[8+i] = byte(i * 7)
	}
	inj.send(rlFragments(dgram, 4343, 1500)...)
	got, err := rlReadN(r, 1)
	if err != nil {
		t.Fatal(err)
	}
	var p header.Parsed
	if d := p.Decode(got[0]); d != header.DropNone {
		t.Fatalf("undecodable frame (%v)", d)
	}
	if p.IsFragment || !bytes.Equal(got[0][p.L4Off:p.End], dgram) {
		t.Fatalf("datagram not whole: fragment %v, %d of %d bytes", p.IsFragment, p.End-p.L4Off, len(dgram))
	}
	if st, _ := r.Stats(); st.RXCopied != 1 || st.RXTruncated != 0 {
		t.Errorf("stats %+v, want the datagram copied", st)
	}
}

// TestRingStatsRingFull fills a small ring nobody reads: the kernel counts every
// frame (Packets) and drops what does not fit (Drops); the reader then gets exactly
// the frames that fit, in order, and the ring works again.
func TestRingStatsRingFull(t *testing.T) {
	l, gen, dir := rlPair(t)
	r := l.openRing(dir, "eth0", Config{Version: 2, Packets: 16, Filter: rlDirFilter()})
	rlWatchdog(t, r, 10*time.Second)
	inj := l.raw(gen, "eth0")
	const sent = 100
	var frames [][]byte
	for i := range sent {
		frames = append(frames, rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, uint16(i), 0, rlUDP(1, 2, []byte(fmt.Sprint(i)))))))
	}
	inj.send(frames...)
	var st Stats
	testutil.Eventually(t, 5*time.Second, func() bool {
		st, _ = r.Stats()
		return st.Packets == sent
	}, "the kernel counted every frame")
	slots := r.v2.nframes
	if st.Drops != uint64(sent-slots) {
		t.Fatalf("kernel dropped %d of %d frames with %d slots, want %d", st.Drops, sent, slots, sent-slots)
	}
	got, err := rlReadN(r, slots)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if !bytes.Equal(got[i], frames[i]) {
			t.Fatalf("frame %d is not the %dth sent", i, i)
		}
	}
	// The ring is empty now: the next frame sent is the next one read.
	inj.send(frames[sent-1])
	if next, err := rlReadN(r, 1); err != nil || !bytes.Equal(next[0], frames[sent-1]) {
		t.Fatalf("after the overrun: %v", err)
	}
	if st, _ := r.Stats(); st.RXFrames != uint64(slots+1) || st.Drops != uint64(sent-slots) {
		t.Errorf("stats %+v, want %d frames read, %d dropped", st, slots+1, sent-slots)
	}
}

// BenchmarkRingRoundTrip measures the latency a ring adds, one frame at a time: a
// plain socket in the generator namespace sends a frame, the director's ring reads
// it and sends it back with its MACs swapped, the generator receives it. ns/op is
// the round trip (two veth crossings, two wake-ups, a ReadBatch and a WriteBatch).
// V3 pays its block retire timer (whole milliseconds); V2 hands each frame over at
// once.
func BenchmarkRingRoundTrip(b *testing.B) {
	for _, v := range []int{2, 3} {
		b.Run("v"+strconv.Itoa(v), func(b *testing.B) {
			l, gen, dir := rlPair(b)
			r := l.openRing(dir, "eth0", Config{Version: v, Packets: 1024, Filter: rlDirFilter()})
			peer := l.raw(gen, "eth0")
			frame := rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, 1, 0, rlUDP(40000, 80, []byte("ping")))))
			// A plain goroutine, as the daemon's workers are: one locked to its thread
			// pays a thread hand-off each time it parks in the poller.
			echoDone := make(chan struct{})
			go func() {
				defer close(echoDone)
				frames := make([]dataplane.Frame, r.BatchSize())
				for {
					n, err := r.ReadBatch(frames)
					if err != nil {
						return
					}
					for i := range frames[:n] {
						e := header.Ethernet(frames[i].Bytes())
						e.SetDestinationAddress(rlGenMAC)
						e.SetSourceAddress(rlDirMAC)
					}
					if _, err := r.WriteBatch(frames[:n]); err != nil {
						return
					}
				}
			}()
			buf := make([]byte, 2048)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := unix.Write(peer.fd, frame); err != nil {
					b.Fatal(err)
				}
				// Read, not Recvfrom: nothing allocates on the generator's side either.
				for {
					_, err := unix.Read(peer.fd, buf)
					if err == nil {
						break
					}
					if err != unix.EINTR {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			r.Close()
			<-echoDone
		})
	}
}

// TestTXBatchBusy checks the transmit path's handling of a full queue on a
// datagram socket pair whose receive side nobody reads: sends that find it full
// are retried txRetries times per batch, then the frames are dropped, and each
// outcome is counted once; once the peer drains, the same batch goes out whole.
func TestTXBatchBusy(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	msg := make([]byte, 1000)
	queued := 0
	for {
		if err := unix.Sendto(fds[0], msg, unix.MSG_DONTWAIT, nil); err != nil {
			if err != unix.EAGAIN {
				t.Fatal(err)
			}
			break
		}
		if queued++; queued > 1<<20 {
			t.Fatal("the socket pair never filled")
		}
	}
	const m = 8
	b := newTXBatch(m)
	prepare := func() {
		for i := range m {
			b.iovs[i].Base = &msg[0]
			b.iovs[i].SetLen(len(msg))
		}
	}
	prepare()
	sent, drops, busy, errno := b.send(fds[0], m)
	if sent != 0 || drops != m || busy != txRetries || errno != 0 {
		t.Fatalf("full queue: sent %d drops %d busy %d errno %v; want 0, %d, %d, 0", sent, drops, busy, errno, m, txRetries)
	}
	if b.iovs[0].Base != nil {
		t.Error("the batch keeps a pointer to the frames")
	}
	buf := make([]byte, 2000)
	for range queued {
		if _, err := unix.Read(fds[1], buf); err != nil {
			t.Fatal(err)
		}
	}
	prepare()
	if sent, drops, busy, errno := b.send(fds[0], m); sent != m || drops|busy != 0 || errno != 0 {
		t.Fatalf("drained queue: sent %d drops %d busy %d errno %v; want %d, 0, 0, 0", sent, drops, busy, errno, m)
	}
}

// rlWaitConn is a syscall.RawConn for a fake ring: it counts the reader's waits in
// the poller and ends each with an error.
type rlWaitConn struct{ waits atomic.Int32 }

var errRLWaited = errors.New("waited in the poller")

func (c *rlWaitConn) Read(func(uintptr) bool) error {
	c.waits.Add(1)
	return errRLWaited
}
func (c *rlWaitConn) Write(func(uintptr) bool) error { return errors.ErrUnsupported }
func (c *rlWaitConn) Control(func(uintptr)) error    { return errors.ErrUnsupported }

// TestRingSpin checks Config.Spin on a fake V2 ring: after a batch, a frame the
// kernel hands over while the reader spins is taken without a wait in the poller;
// with nothing coming the spin ends after its time and the reader waits; a ring
// without spin (and without nap) waits at once; an idle ring's first read does not
// spin.
func TestRingSpin(t *testing.T) {
	a := rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, 1, 0, nil)))
	b := rlPad(rlEth(rlDirMAC, rlGenMAC, -1, header.EtherTypeIPv4, rlIPv4(rlClient, rlVIP, 17, 2, 0, nil)))
	newRing := func(spin time.Duration) (*Ring, *rlWaitConn) {
		r := rlFakeRingV2(rlSlot(256, a, -1), make([]byte, 256), make([]byte, 256), make([]byte, 256))
		c := &rlWaitConn{}
		r.rc, r.v2.spin = c, spin
		return r, c
	}
	frames := make([]dataplane.Frame, 4)

	t.Run("frame during the spin", func(t *testing.T) {
		r, c := newRing(time.Minute) // bounded by the frame, which comes at once
		if n, err := r.ReadBatch(frames); n != 1 || err != nil {
			t.Fatalf("first ReadBatch = %d, %v", n, err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			s := rlSlot(256, b, -1)
			slot := r.slot(1)
			copy(slot[4:], s[4:])
			storeStatus(slot, unix.TP_STATUS_USER) // hands it over, as the kernel does
		}()
		n, err := r.ReadBatch(frames)
		<-done
		if n != 1 || err != nil || !bytes.Equal(frames[0].Bytes(), b) {
			t.Fatalf("second ReadBatch = %d, %v; want the second frame", n, err)
		}
		if w := c.waits.Load(); w != 0 {
			t.Errorf("%d waits in the poller, want none", w)
		}
	})
	t.Run("nothing comes", func(t *testing.T) {
		r, c := newRing(2 * time.Millisecond)
		r.v2.pollDelay = 0
		if n, err := r.ReadBatch(frames); n != 1 || err != nil {
			t.Fatalf("first ReadBatch = %d, %v", n, err)
		}
		start := time.Now()
		if _, err := r.ReadBatch(frames); !errors.Is(err, errRLWaited) {
			t.Fatalf("ReadBatch = %v, want the wait's error", err)
		}
		if d := time.Since(start); d < 2*time.Millisecond {
			t.Errorf("waited after %v, before the spin's 2ms were over", d)
		}
		if w := c.waits.Load(); w != 1 {
			t.Errorf("%d waits, want 1", w)
		}
	})
	t.Run("no spin", func(t *testing.T) {
		r, c := newRing(0)
		if n, err := r.ReadBatch(frames); n != 1 || err != nil {
			t.Fatalf("first ReadBatch = %d, %v", n, err)
		}
		if _, err := r.ReadBatch(frames); !errors.Is(err, errRLWaited) || c.waits.Load() != 1 {
			t.Fatalf("ReadBatch = %v after %d waits, want one wait at once", err, c.waits.Load())
		}
	})
	t.Run("idle ring", func(t *testing.T) {
		r, c := newRing(time.Minute)
		storeStatus(r.slot(0), unix.TP_STATUS_KERNEL)
		if _, err := r.ReadBatch(frames); !errors.Is(err, errRLWaited) || c.waits.Load() != 1 {
			t.Fatalf("ReadBatch = %v after %d waits, want to wait without spinning", err, c.waits.Load())
		}
	})
}
