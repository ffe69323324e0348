package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// progress shows how far long work has got on one terminal line, rewritten in
// place (\r) at most every progressEvery, and erased by finish. On anything but a
// terminal — a pipe, a file, a test's buffer — it prints nothing, so output that
// is read by programs never holds it. A nil *progress does nothing.
type progress struct {
	w     io.Writer
	label string
	total int // 0: unknown
	unit  string
	now   func() time.Time
	start time.Time
	last  time.Time
	drawn bool
}

const progressEvery = 200 * time.Millisecond

// newProgress returns the progress of work on total units (0: unknown) shown on
// w, or nil when w is not a terminal.
func newProgress(w io.Writer, label string, total int, unit string) *progress {
	if !isTerminal(w) {
		return nil
	}
	return startProgress(w, label, total, unit, time.Now)
}

func startProgress(w io.Writer, label string, total int, unit string, now func() time.Time) *progress {
	t := now()
	return &progress{w: w, label: label, total: total, unit: unit, now: now, start: t}
}

// update shows done units, unless the line was drawn less than progressEvery ago.
func (p *progress) update(done int) {
	if p == nil {
		return
	}
	t := p.now()
	if p.drawn && t.Sub(p.last) < progressEvery {
		return
	}
	p.last, p.drawn = t, true
	rate := ""
	if el := t.Sub(p.start).Seconds(); el > 0 {
		rate = fmt.Sprintf(", %s %s/s", siCount(float64(done)/el), p.unit)
	}
	if p.total > 0 {
		pct := 100 * float64(done) / float64(p.total)
		if pct > 100 {
			pct = 100
		}
		fmt.Fprintf(p.w, "\r\x1b[K%s: %5.1f%% (%d/%d %s%s)", p.label, pct, done, p.total, p.unit, rate)
		return
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s: %d %s%s", p.label, done, p.unit, rate)
}

// finish erases the line, so what is printed next starts clean.
func (p *progress) finish() {
	if p == nil || !p.drawn {
		return
	}
	fmt.Fprint(p.w, "\r\x1b[K")
	p.drawn = false
}

// siCount is n with a k/M/G suffix.
func siCount(n float64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fG", n/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", n/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fk", n/1e3)
	}
	return fmt.Sprintf("%.0f", n)
}

// countingReader counts the bytes read through it and reports them.
type countingReader struct {
	r      io.Reader
	n      int
	report func(n int)
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += n
	c.report(c.n)
	return n, err
}

// pcapCounter passes a pcap stream through to w and counts its packet records as
// they are written: the 24-byte file header, then per packet a 16-byte record
// header whose third word is the captured length, then that many bytes.
type pcapCounter struct {
	w       io.Writer
	packets int
	report  func(packets int)

	hdr    [16]byte
	inHdr  int   // bytes of the current record header (or file header) seen
	skip   int64 // bytes of the current record's data still to pass
	header bool  // the file header is behind us
}

func (c *pcapCounter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.scan(b[:n])
	return n, err
}

// scan follows the record structure over b.
func (c *pcapCounter) scan(b []byte) {
	for len(b) > 0 {
		if !c.header {
			k := min(24-c.inHdr, len(b))
			c.inHdr += k
			b = b[k:]
			if c.inHdr == 24 {
				c.header, c.inHdr = true, 0
			}
			continue
		}
		if c.skip > 0 {
			k := int(min(c.skip, int64(len(b))))
			c.skip -= int64(k)
			b = b[k:]
			continue
		}
		k := copy(c.hdr[c.inHdr:], b)
		c.inHdr += k
		b = b[k:]
		if c.inHdr == len(c.hdr) {
			// pcapgo writes little-endian headers.
			c.skip = int64(binary.LittleEndian.Uint32(c.hdr[8:12]))
			c.inHdr = 0
			c.packets++
			c.report(c.packets)
		}
	}
}
