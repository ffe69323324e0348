package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/bench"
	"github.com/gvs-lb/gvs/internal/config"
)

const plotConf = `[director]
mac = "02:00:00:00:00:03"
control_socket = ""

[[service]]
address = "198.18.0.100:80"
scheduler = "rr"
method = "dr"
  [[service.real_server]]
  address = "198.18.0.5:80"
  mac = "02:00:00:00:00:05"
  [[service.real_server]]
  address = "198.18.0.6:80"
  mac = "02:00:00:00:00:06"
`

// TestReplayPlot: gvs bench replay --plot writes a self-contained SVG with a
// share line per real server and the ns/packet of every batch.
func TestReplayPlot(t *testing.T) {
	dir := t.TempDir()
	cfg, trace, svg := filepath.Join(dir, "gvs.toml"), filepath.Join(dir, "trace.pcap"), filepath.Join(dir, "replay.svg")
	if err := os.WriteFile(cfg, []byte(plotConf), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"bench", "synth", "--out", trace, "--flows", "500", "--packets-per-flow", "4"}, &out, &errOut); code != 0 {
		t.Fatalf("synth: %d\n%s", code, errOut.String())
	}
	if code := run([]string{"bench", "replay", "-c", cfg, "--in", trace, "--plot", svg, "--batch", "32"}, &out, &errOut); code != 0 {
		t.Fatalf("replay: %d\n%s", code, errOut.String())
	}
	if strings.Contains(errOut.String(), "\r") {
		t.Errorf("progress written to a buffer:\n%q", errOut.String())
	}
	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Charts []struct {
			Title  string `xml:"data-title,attr"`
			Series []struct {
				Name   string `xml:"data-series,attr"`
				Points string `xml:"points,attr"`
			} `xml:"polyline"`
		} `xml:"g"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	for _, bad := range []string{"<script", "href=", "<image", "url("} {
		if bytes.Contains(b, []byte(bad)) {
			t.Errorf("the SVG holds %q: it must be self-contained", bad)
		}
	}
	if len(doc.Charts) != 2 {
		t.Fatalf("%d charts, want share and ns/packet", len(doc.Charts))
	}
	share, ns := doc.Charts[0], doc.Charts[1]
	if len(share.Series) != 2 || share.Series[0].Name != "198.18.0.5" || share.Series[1].Name != "198.18.0.6" {
		t.Fatalf("share series %+v, want one per real server", share.Series)
	}
	for _, s := range share.Series {
		if n := len(strings.Fields(s.Points)); n < 10 {
			t.Errorf("share of %s has %d points, want a line over the trace", s.Name, n)
		}
	}
	// 2000 frames in batches of 32: 63 batches, one point each.
	if len(ns.Series) == 0 || ns.Series[0].Name != "ns/packet" || len(strings.Fields(ns.Series[0].Points)) != 63 {
		t.Errorf("ns/packet series %+v, want 63 points", ns.Series)
	}
}

// TestReplayPlotShares: the shares the plot collects are the real servers' parts
// of the frames sent to them, summing to 1 in every window (rr over two equal
// servers: a half each).
func TestReplayPlotShares(t *testing.T) {
	dir := t.TempDir()
	cfgPath, trace := filepath.Join(dir, "gvs.toml"), filepath.Join(dir, "trace.pcap")
	if err := os.WriteFile(cfgPath, []byte(plotConf), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"bench", "synth", "--out", trace, "--flows", "400", "--packets-per-flow", "5"}, &out, &errOut); code != 0 {
		t.Fatalf("synth: %s", errOut.String())
	}
	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := bench.LoadTrace(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	d, err := loadDirector(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	p := newReplayPlot(c, tr, 64)
	if _, err := bench.Replay(d, tr, bench.ReplayOptions{Batch: 64, AfterBatch: p.batch}); err != nil {
		t.Fatal(err)
	}
	if len(p.share[0][1]) == 0 || len(p.share[0][1]) != len(p.share[1][1]) {
		t.Fatalf("share points: %d and %d", len(p.share[0][1]), len(p.share[1][1]))
	}
	for i := range p.share[0][1] {
		a, b := p.share[0][1][i], p.share[1][1][i]
		if d := a + b - 1; d > 1e-9 || d < -1e-9 {
			t.Errorf("window %d: shares %v + %v != 1", i, a, b)
		}
		if a < 0.25 || a > 0.75 {
			t.Errorf("window %d: rr over two servers gave %v to the first", i, a)
		}
	}
	if len(p.nsY) != (len(tr.Frames)+63)/64 {
		t.Errorf("%d ns/packet points for %d frames in batches of 64", len(p.nsY), len(tr.Frames))
	}
}

// TestProgressNotATerminal: piped, synth and replay print no progress — only
// their results, on stdout.
func TestProgressNotATerminal(t *testing.T) {
	dir := t.TempDir()
	cfg, trace := filepath.Join(dir, "gvs.toml"), filepath.Join(dir, "trace.pcap")
	if err := os.WriteFile(cfg, []byte(plotConf), 0o600); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if isTerminal(w) {
		t.Fatal("a pipe taken for a terminal")
	}
	var out bytes.Buffer
	code1 := run([]string{"bench", "synth", "--out", trace}, &out, w)
	code2 := run([]string{"bench", "replay", "-c", cfg, "--in", trace}, &out, w)
	w.Close()
	piped, _ := io.ReadAll(r)
	if code1 != 0 || code2 != 0 {
		t.Fatalf("exit %d, %d:\n%s", code1, code2, piped)
	}
	if len(piped) > 0 {
		t.Errorf("stderr, a pipe, got %q", piped)
	}
	if !strings.Contains(out.String(), "wrote 10000 packets") || !strings.Contains(out.String(), "replayed 10000 packets") {
		t.Errorf("results missing from stdout:\n%s", out.String())
	}
}

// TestProgressLine: on a terminal the line is redrawn in place at most every
// progressEvery, with the percentage, and erased at the end.
func TestProgressLine(t *testing.T) {
	var b bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := startProgress(&b, "synth x.pcap", 1000, "packets", func() time.Time { return now })
	now = now.Add(time.Second)
	p.update(100)
	if got := b.String(); got != "\r\x1b[Ksynth x.pcap:  10.0% (100/1000 packets, 100 packets/s)" {
		t.Errorf("first line %q", got)
	}
	b.Reset()
	now = now.Add(progressEvery / 2)
	p.update(200)
	if b.Len() != 0 {
		t.Errorf("redrawn within progressEvery: %q", b.String())
	}
	now = now.Add(progressEvery)
	p.update(1000)
	if !strings.Contains(b.String(), "100.0% (1000/1000 packets, 769 packets/s)") {
		t.Errorf("second line %q", b.String())
	}
	b.Reset()
	p.finish()
	if b.String() != "\r\x1b[K" {
		t.Errorf("finish wrote %q, want the line erased", b.String())
	}
	var nilp *progress
	nilp.update(1)
	nilp.finish()
}

// TestPcapCounter counts the records of a pcap however its bytes are split
// between writes.
func TestPcapCounter(t *testing.T) {
	var pcap bytes.Buffer
	o := bench.DefaultSynth()
	o.Flows, o.PacketsPerFlow = 37, 3
	n, err := bench.Synth(&pcap, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []int{1, 7, 16, 24, 100, 1 << 20} {
		t.Run(strconv.Itoa(chunk), func(t *testing.T) {
			last := 0
			c := &pcapCounter{w: io.Discard, report: func(k int) {
				if k != last+1 {
					t.Fatalf("count went from %d to %d", last, k)
				}
				last = k
			}}
			b := pcap.Bytes()
			for len(b) > 0 {
				k := min(chunk, len(b))
				if _, err := c.Write(b[:k]); err != nil {
					t.Fatal(err)
				}
				b = b[k:]
			}
			if c.packets != n || last != n {
				t.Errorf("counted %d (reported %d), Synth wrote %d", c.packets, last, n)
			}
		})
	}
}
