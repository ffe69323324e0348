package bench

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/gvs-lb/gvs/dataplane"
)

// A Trace is a pcap loaded into memory, each frame with dataplane.Headroom bytes in
// front of it so the Director can encapsulate in place.
type Trace struct {
	Frames []dataplane.Frame
	Times  []int64 // pcap timestamps, ns since the Unix epoch
	Bytes  int     // frame bytes (without headroom)
	Load   time.Duration
}

const arenaChunk = 64 << 20

// ErrLinkType reports a pcap whose frames are not Ethernet.
var ErrLinkType = errors.New("bench: pcap is not Ethernet (linktype 1)")

// LoadTrace reads a whole pcap into memory.
func LoadTrace(r io.Reader) (*Trace, error) {
	start := time.Now()
	pr, err := pcapgo.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("bench: read pcap: %w", err)
	}
	if pr.LinkType() != layers.LinkTypeEthernet {
		return nil, fmt.Errorf("%w, got %v", ErrLinkType, pr.LinkType())
	}
	t := &Trace{}
	var arena []byte
	for {
		data, ci, err := pr.ZeroCopyReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bench: read pcap: frame %d: %w", len(t.Frames)+1, err)
		}
		need := dataplane.Headroom + len(data)
		if cap(arena)-len(arena) < need {
			arena = make([]byte, 0, max(arenaChunk, need))
		}
		base := len(arena)
		arena = arena[:base+need]
		copy(arena[base+dataplane.Headroom:], data)
		t.Frames = append(t.Frames, dataplane.Frame{Buf: arena[base : base+need : base+need], Off: dataplane.Headroom, Len: len(data)})
		t.Times = append(t.Times, ci.Timestamp.UnixNano())
		t.Bytes += len(data)
	}
	t.Load = time.Since(start)
	return t, nil
}

// Result is what a replay measured and counted.
type Result struct {
	Packets         int
	Batch           int
	Process         time.Duration // time inside Worker.Process only
	NsPerPacket     float64
	Mpps            float64
	AllocsPerPacket float64
	Load            time.Duration // pcap reading and decoding, measured separately
	Counters        dataplane.Counters
	Services        []ServiceResult
	Conns           int // connection entries left in the table at the end
}

// ServiceResult is one service's share of the replay.
type ServiceResult struct {
	Service     string
	Scheduler   string
	Stats       dataplane.Stats
	RealServers []RealServerResult
}

// RealServerResult is one real server's share.
type RealServerResult struct {
	Addr                string
	Method              string
	Weight              int32
	Stats               dataplane.Stats
	Active, Inactive    int32
	PersistConns        int32
	ConnShare, PktShare float64
}

// ReplayOptions tune a replay.
type ReplayOptions struct {
	Batch int                                // frames per Process call; 0 = 64
	Out   func(frame []byte, ts int64) error // receives every frame to send, in order; nil = discard
	// AfterBatch, when not nil, is called after each batch, outside the timed
	// part, with the number of frames replayed so far, the batch's Process time
	// and the frames it sends (valid until it returns): for progress and plots.
	AfterBatch func(done int, took time.Duration, out []dataplane.Frame)
}

// Replay runs the trace through d with one worker, batch by batch, with the time of
// each batch taken from its first frame's timestamp (so expiry and lblc timing follow
// the trace, and a replay is reproducible bit for bit).
func Replay(d *dataplane.Director, t *Trace, o ReplayOptions) (*Result, error) {
	batch := o.Batch
	if batch <= 0 {
		batch = 64
	}
	w := d.NewWorker(batch)
	out := make([]dataplane.Frame, 0, 2*batch)
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	var spent time.Duration
	for i := 0; i < len(t.Frames); i += batch {
		j := min(i+batch, len(t.Frames))
		// Frames of one batch share the time of the batch's first frame, as frames
		// read from one ring block share its poll.
		now := t.Times[i]
		start := time.Now()
		out = w.Process(t.Frames[i:j], now, out[:0])
		took := time.Since(start)
		spent += took
		if o.Out != nil {
			for k := range out {
				if err := o.Out(out[k].Bytes(), now); err != nil {
					return nil, err
				}
			}
		}
		if o.AfterBatch != nil {
			o.AfterBatch(j, took, out)
		}
	}
	runtime.ReadMemStats(&ms1)
	r := &Result{Packets: len(t.Frames), Batch: batch, Process: spent, Load: t.Load, Counters: w.C, Conns: d.Table().Len()}
	if r.Packets > 0 {
		r.NsPerPacket = float64(spent.Nanoseconds()) / float64(r.Packets)
		r.AllocsPerPacket = float64(ms1.Mallocs-ms0.Mallocs) / float64(r.Packets)
	}
	if spent > 0 {
		r.Mpps = float64(r.Packets) / spent.Seconds() / 1e6
	}
	for _, sv := range d.Services() {
		sr := ServiceResult{Service: sv.Spec.String(), Scheduler: sv.Sched, Stats: w.ServiceStats(sv.ID)}
		for _, dv := range sv.Dests {
			rr := RealServerResult{
				Addr: fmt.Sprintf("%s:%d", dv.Addr, dv.Port), Method: dv.Method.String(), Weight: dv.Weight,
				Stats: w.DestStats(dv.ID), Active: dv.ActiveConns, Inactive: dv.InactConns, PersistConns: dv.PersistConns,
			}
			if sr.Stats.Conns > 0 {
				rr.ConnShare = float64(rr.Stats.Conns) / float64(sr.Stats.Conns)
			}
			if sr.Stats.InPkts > 0 {
				rr.PktShare = float64(rr.Stats.InPkts) / float64(sr.Stats.InPkts)
			}
			sr.RealServers = append(sr.RealServers, rr)
		}
		r.Services = append(r.Services, sr)
	}
	return r, nil
}

// PcapWriter returns an Out function writing Ethernet frames to w as a pcap with
// nanosecond timestamps; call the returned flush at the end.
func PcapWriter(w io.Writer) (func(frame []byte, ts int64) error, error) {
	pw := pcapgo.NewWriterNanos(w)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return nil, fmt.Errorf("bench: write pcap: %w", err)
	}
	return func(frame []byte, ts int64) error {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, ts).UTC(), CaptureLength: len(frame), Length: len(frame)}
		if err := pw.WritePacket(ci, frame); err != nil {
			return fmt.Errorf("bench: write pcap: %w", err)
		}
		return nil
	}, nil
}
