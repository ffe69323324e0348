package daemon

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/internal/control"
	"github.com/gvs-lb/gvs/internal/ipvsadm"
)

// fillConns opens n connections to 198.18.0.100:80 through the test worker: SYNs
// from 198.19.x.y, a distinct client address and port per connection, 64 a batch.
func fillConns(ta *testAdmin, n int) {
	ta.t.Helper()
	tmpl := tcpPkt{client: ap("198.19.0.1:1024"), vip: ap("198.18.0.100:80"), syn: true}.frame(ta.t)
	b := tmpl.Bytes()
	batch := make([]dataplane.Frame, 64)
	for i := range batch {
		batch[i] = dataplane.Frame{Buf: make([]byte, len(tmpl.Buf)), Off: tmpl.Off, Len: tmpl.Len}
	}
	out := make([]dataplane.Frame, 0, 128)
	now := ta.d.now()
	l3 := header.EthernetHeaderLen
	for i := 0; i < n; i += len(batch) {
		k := min(len(batch), n-i)
		for j := range k {
			f := &batch[j]
			fb := f.Buf[f.Off : f.Off+f.Len]
			copy(fb, b)
			c := i + j
			ip := header.IPv4(fb[l3:])
			copy(fb[l3+12:l3+16], []byte{198, 19, byte(c >> 16), byte(c >> 8)})
			binary.BigEndian.PutUint16(fb[l3+20:], uint16(1024+c&0xff))
			ip.SetChecksum(0)
			ip.SetChecksum(^header.Checksum(fb[l3:l3+header.IPv4MinHeaderLen], 0))
		}
		out = ta.w.Process(batch[:k], now, out[:0])
	}
}

// listingConf is the test director with a table for a million connections and a
// control socket at path.
func listingConf(path string, connMax int) string {
	c := strings.Replace(directorConf, "conn_max = 4096", "conn_max = "+itoa(connMax), 1)
	c = strings.Replace(c, "conn_shards = 16", "conn_shards = 256", 1)
	// fillConns's connections are SYNs that are never confirmed: without the
	// unconfirmed budget (docs/defense.md §7) they all stay, as in IPVS.
	return c + "control_socket = \"" + path + "\"\nconn_unconfirmed_max = -1\n"
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestConnListingSameOverTheSocket: the streamed -Lnc over the control socket,
// the buffered one of the in-process handler, and ipvsadm.FormatConns of the same
// walk are byte for byte the same listing (the ipvsadm layout, docs/ipvsadm-format.md).
func TestConnListingSameOverTheSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gvs.sock")
	ta := newTestDirector(t, listingConf(path, 1<<16), nil)
	ta.ok("-A -t 198.18.0.100:80 -s rr")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.5 -g")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.6 -g")
	ta.settle()
	fillConns(ta, 5000)

	inProcess := ta.ok("-Lnc")
	var streamed bytes.Buffer
	resp, err := control.CallStream(path, control.Request{Args: []string{"-Lnc"}}, &streamed)
	if err != nil || resp.Status != 0 || !resp.Stream {
		t.Fatalf("CallStream -Lnc: %+v, %v", resp, err)
	}
	var ref []ipvsadm.Conn
	now := ta.d.now()
	addrs := ta.a.destAddrs()
	ta.d.Director().Table().Each(func(c *conntrack.Conn) bool {
		if c.Expires > now {
			ref = append(ref, connModel(c, now, addrs))
		}
		return true
	})
	var want bytes.Buffer
	if err := ipvsadm.FormatConns(&want, ref, ipvsadm.Format{Numeric: true}, nil); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(want.String(), "\n"); n != 5002 {
		t.Fatalf("reference listing has %d lines, want 5002", n)
	}
	if streamed.String() != want.String() {
		t.Errorf("streamed listing differs from FormatConns:\n%s", firstDiff(want.String(), streamed.String()))
	}
	if inProcess != want.String() {
		t.Errorf("in-process listing differs from FormatConns:\n%s", firstDiff(want.String(), inProcess))
	}
	if got, err := control.Call(path, control.Request{Args: []string{"-Lnc"}}); err != nil || got.Stdout != want.String() {
		t.Errorf("Call -Lnc: %d bytes, %v", len(got.Stdout), err)
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return "line " + itoa(i+1) + ":\nwant " + al[i] + "\n got " + bl[i]
		}
	}
	return "lengths " + itoa(len(al)) + " and " + itoa(len(bl)) + " lines"
}

// heapProbe takes a listing, keeping nothing but its size and line count, and
// every probeEvery bytes collects garbage and reads the live heap, keeping the
// largest.
type heapProbe struct {
	n, lines, next int
	peak           uint64
}

const probeEvery = 4 << 20

func (h *heapProbe) Write(p []byte) (int, error) {
	h.n += len(p)
	h.lines += bytes.Count(p, []byte{'\n'})
	if h.n >= h.next {
		h.next = h.n + probeEvery
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h.peak = max(h.peak, ms.HeapAlloc)
	}
	return len(p), nil
}

// TestConnListingMillionBounded lists a table of a million connections over the
// control socket: the live heap of the process (director and client) never grows
// by more than a few MiB while more than 100 MB of listing go through, where
// building the listing first took about 700 MB (issue 12).
func TestConnListingMillionBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("a million connections: not in -short")
	}
	const conns = 1_000_000
	path := filepath.Join(t.TempDir(), "gvs.sock")
	ta := newTestDirector(t, listingConf(path, 1<<20), nil)
	ta.ok("-A -t 198.18.0.100:80 -s rr")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.5 -g")
	ta.settle()
	fillConns(ta, conns)
	if n := ta.d.Director().Table().Len(); n != conns {
		t.Fatalf("%d connections in the table, want %d", n, conns)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	probe := &heapProbe{}
	resp, err := control.CallStream(path, control.Request{Args: []string{"-Lnc"}}, probe)
	if err != nil || resp.Status != 0 {
		t.Fatalf("-Lnc: %+v, %v", resp, err)
	}
	if probe.lines != conns+2 {
		t.Errorf("%d lines listed, want %d", probe.lines, conns+2)
	}
	growth := int64(probe.peak) - int64(before.HeapAlloc)
	t.Logf("listing of %d bytes; live heap %d MiB before, at most %+d KiB during", probe.n, before.HeapAlloc>>20, growth>>10)
	// A shard's copy (≈ 4,000 entries), the lister's and the socket's buffers, and
	// the listing's garbage between collections: a few MiB. 32 MiB is generous and
	// still a fraction of the output.
	const bound = 32 << 20
	if probe.n < 60<<20 || growth > bound {
		t.Errorf("listing of %d MB grew the live heap by %d MiB, want at most %d MiB", probe.n>>20, growth>>20, bound>>20)
	}
}
