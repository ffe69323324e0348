// Package linktest provides in-memory dataplane.Links for tests that need no kernel,
// in the manner of wireguard-go's tun/tuntest and conn/bindtest: NewPair returns two
// links wired back to back, NewChannel a link a test feeds and drains through
// channels.
//
// Both keep the dataplane.Link contract: received frames sit in link-owned buffers
// with dataplane.Headroom bytes in front, valid until the next ReadBatch; Close is
// idempotent and wakes a blocked ReadBatch, which returns net.ErrClosed. A Pair
// endpoint allocates nothing per frame in steady state, so it can carry allocation
// tests of code driving a Link (dataplane.Pump).
package linktest

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/gvs-lb/gvs/dataplane"
)

// defaultBatchSize is the batch size of links whose Config leaves it zero: that of an
// AF_PACKET ring (afpacket.DefaultBatchSize), so tests batch as live traffic does.
const defaultBatchSize = 64

// Config sizes a Pair. The zero value takes the defaults given.
type Config struct {
	BatchSize int // frames per ReadBatch at most; default 64
	Capacity  int // frames queued toward an endpoint before more are dropped; default 1024
	MaxFrame  int // longest frame carried; default 9216 (a jumbo frame)
}

// Endpoint is one end of a Pair: frames written to it come out of its peer, and the
// other way round. Its methods follow the dataplane.Link contract.
type Endpoint struct {
	batch    int
	maxFrame int
	peer     *Endpoint

	bufs  [][]byte // Capacity receive buffers of Headroom+MaxFrame bytes
	lens  []int
	queue chan int // filled buffers, in arrival order
	free  chan int // empty buffers
	held  []int    // buffers of the last ReadBatch, freed by the next

	closed    chan struct{}
	closeOnce sync.Once
	drops     atomic.Uint64
}

var _ dataplane.Link = (*Endpoint)(nil)

// NewPair returns two connected endpoints with the default Config.
func NewPair() (a, b *Endpoint) { return NewPairConfig(Config{}) }

// NewPairConfig returns two connected endpoints.
func NewPairConfig(cfg Config) (a, b *Endpoint) {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = defaultBatchSize
	}
	if cfg.Capacity <= 0 {
		cfg.Capacity = 1024
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = 9216
	}
	a, b = newEndpoint(cfg), newEndpoint(cfg)
	a.peer, b.peer = b, a
	return a, b
}

func newEndpoint(cfg Config) *Endpoint {
	e := &Endpoint{
		batch:    cfg.BatchSize,
		maxFrame: cfg.MaxFrame,
		bufs:     make([][]byte, cfg.Capacity),
		lens:     make([]int, cfg.Capacity),
		queue:    make(chan int, cfg.Capacity),
		free:     make(chan int, cfg.Capacity),
		held:     make([]int, 0, cfg.BatchSize),
		closed:   make(chan struct{}),
	}
	for i := range e.bufs {
		e.bufs[i] = make([]byte, dataplane.Headroom+cfg.MaxFrame)
		e.free <- i
	}
	return e
}

// BatchSize implements dataplane.Link.
func (e *Endpoint) BatchSize() int { return e.batch }

// Drops returns how many frames written toward this endpoint were dropped: its
// queue was full, it was closed, or the frame was longer than MaxFrame.
func (e *Endpoint) Drops() uint64 { return e.drops.Load() }

// ReadBatch implements dataplane.Link: each frame is Buf[Headroom:Headroom+Len] of
// a buffer whose capacity ends with the frame.
func (e *Endpoint) ReadBatch(frames []dataplane.Frame) (int, error) {
	for _, i := range e.held {
		e.free <- i // never blocks: free has room for every buffer
	}
	e.held = e.held[:0]
	select {
	case <-e.closed:
		return 0, e.errClosed("read")
	default:
	}
	if len(frames) == 0 {
		return 0, nil
	}
	frames = frames[:min(len(frames), e.batch)]
	var i int
	select {
	case i = <-e.queue:
	case <-e.closed:
		return 0, e.errClosed("read")
	}
	n := 0
	for {
		end := dataplane.Headroom + e.lens[i]
		frames[n] = dataplane.Frame{Buf: e.bufs[i][:end:end], Off: dataplane.Headroom, Len: e.lens[i]}
		e.held = append(e.held, i)
		if n++; n == len(frames) {
			return n, nil
		}
		select {
		case i = <-e.queue:
		default:
			return n, nil
		}
	}
}

// WriteBatch implements dataplane.Link: it copies each frame into a buffer of the
// peer, or counts it in the peer's Drops.
func (e *Endpoint) WriteBatch(frames []dataplane.Frame) (int, error) {
	select {
	case <-e.closed:
		return 0, e.errClosed("write")
	default:
	}
	p := e.peer
	sent := 0
	for k := range frames {
		f := &frames[k]
		if f.Len <= 0 || f.Len > p.maxFrame {
			p.drops.Add(1)
			continue
		}
		select {
		case <-p.closed:
			p.drops.Add(1)
			continue
		default:
		}
		select {
		case i := <-p.free:
			p.lens[i] = copy(p.bufs[i][dataplane.Headroom:], f.Bytes())
			p.queue <- i // never blocks: queue has room for every buffer
			sent++
		default:
			p.drops.Add(1)
		}
	}
	return sent, nil
}

// Close implements dataplane.Link. The peer stays open; what it writes afterwards is
// dropped.
func (e *Endpoint) Close() error {
	e.closeOnce.Do(func() { close(e.closed) })
	return nil
}

func (e *Endpoint) errClosed(op string) error {
	return &dataplane.OpError{Op: op, Link: "linktest", Err: net.ErrClosed}
}

// Channel is a single link driven by a test: frames sent on Inbound come out of
// ReadBatch (copied behind Headroom bytes of fresh memory), frames passed to
// WriteBatch are copied to Outbound. It allocates per frame; it is for tests only.
type Channel struct {
	// Inbound carries frames into the link. Closing it makes the next ReadBatch
	// that finds it empty return net.ErrClosed.
	Inbound chan []byte
	// Outbound receives a copy of every frame written. WriteBatch blocks while it
	// is full, until the link is closed.
	Outbound chan []byte

	batch     int
	closed    chan struct{}
	closeOnce sync.Once
}

var _ dataplane.Link = (*Channel)(nil)

// NewChannel returns a Channel whose channels hold capacity frames each.
func NewChannel(capacity int) *Channel {
	return &Channel{
		Inbound:  make(chan []byte, capacity),
		Outbound: make(chan []byte, capacity),
		batch:    defaultBatchSize,
		closed:   make(chan struct{}),
	}
}

// BatchSize implements dataplane.Link.
func (c *Channel) BatchSize() int { return c.batch }

// ReadBatch implements dataplane.Link.
func (c *Channel) ReadBatch(frames []dataplane.Frame) (int, error) {
	select {
	case <-c.closed:
		return 0, &dataplane.OpError{Op: "read", Link: "linktest", Err: net.ErrClosed}
	default:
	}
	if len(frames) == 0 {
		return 0, nil
	}
	var b []byte
	var ok bool
	select {
	case b, ok = <-c.Inbound:
	case <-c.closed:
	}
	n := 0
	for ok {
		buf := make([]byte, dataplane.Headroom+len(b))
		copy(buf[dataplane.Headroom:], b)
		frames[n] = dataplane.Frame{Buf: buf, Off: dataplane.Headroom, Len: len(b)}
		if n++; n == min(len(frames), c.batch) {
			break
		}
		select {
		case b, ok = <-c.Inbound:
		default:
			ok = false
		}
	}
	if n == 0 {
		return 0, &dataplane.OpError{Op: "read", Link: "linktest", Err: net.ErrClosed}
	}
	return n, nil
}

// WriteBatch implements dataplane.Link.
func (c *Channel) WriteBatch(frames []dataplane.Frame) (int, error) {
	for i := range frames {
		b := append([]byte(nil), frames[i].Bytes()...)
		select {
		case c.Outbound <- b:
		case <-c.closed:
			return i, &dataplane.OpError{Op: "write", Link: "linktest", Err: net.ErrClosed}
		}
	}
	return len(frames), nil
}

// Close implements dataplane.Link.
func (c *Channel) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return nil
}
