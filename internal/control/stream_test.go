package control

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"
)

// streamer streams size bytes of a fixed pattern for "-Lc" (after waiting for gate,
// when set) and answers everything else with echo.
type streamer struct {
	size    int
	gate    chan struct{}
	started chan struct{}
}

func (s *streamer) Handle(ctx context.Context, req Request) Response { return echo(ctx, req) }

func (s *streamer) Streams(req Request) bool { return len(req.Args) == 1 && req.Args[0] == "-Lc" }

func (s *streamer) HandleStream(ctx context.Context, req Request, stdout io.Writer) Response {
	if s.started != nil {
		s.started <- struct{}{}
	}
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return Response{Stderr: "cancelled\n", Status: 1}
		}
	}
	buf := pattern(4096)
	for n := 0; n < s.size; n += len(buf) {
		if _, err := stdout.Write(buf[:min(len(buf), s.size-n)]); err != nil {
			return Response{Status: 1}
		}
	}
	return Response{Stderr: "done\n", Status: 3}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// sumWriter hashes what it is given, keeping nothing.
type sumWriter struct {
	h interface {
		io.Writer
		Sum([]byte) []byte
	}
	n int
}

func (w *sumWriter) Write(p []byte) (int, error) { w.n += len(p); return w.h.Write(p) }

// TestStreamRoundTrip: a streamed response arrives whole and in order through
// CallStream (written as it comes) and Call (gathered), with the final status and
// standard error; other requests are not streamed.
func TestStreamRoundTrip(t *testing.T) {
	testutil.CheckLeaks(t)
	const size = 5<<20 + 123 // several chunks and a partial one
	path, _ := serve(t, &streamer{size: size})
	want := sha256.New()
	for n := 0; n < size; n += 4096 {
		want.Write(pattern(4096)[:min(4096, size-n)])
	}
	sw := &sumWriter{h: sha256.New()}
	resp, err := CallStream(path, Request{Args: []string{"-Lc"}}, sw)
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Stream || resp.Status != 3 || resp.Stderr != "done\n" || resp.Stdout != "" {
		t.Errorf("CallStream response %+v", resp)
	}
	if sw.n != size || !bytes.Equal(sw.h.Sum(nil), want.Sum(nil)) {
		t.Errorf("CallStream wrote %d bytes (sum matches: %v), want %d", sw.n, bytes.Equal(sw.h.Sum(nil), want.Sum(nil)), size)
	}
	resp, err = Call(path, Request{Args: []string{"-Lc"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Stream || len(resp.Stdout) != size || fmt.Sprintf("%x", sha256.Sum256([]byte(resp.Stdout))) != fmt.Sprintf("%x", want.Sum(nil)) || resp.Status != 3 {
		t.Errorf("Call: %d bytes, stream %v, status %d", len(resp.Stdout), resp.Stream, resp.Status)
	}
	var out strings.Builder
	resp, err = CallStream(path, Request{Args: []string{"-Ln"}}, &out)
	if err != nil || resp.Stream || resp.Stdout != "-Ln\n" || out.Len() != 0 {
		t.Errorf("a request that is not streamed: %+v, %v, wrote %q", resp, err, out.String())
	}
}

// TestStreamLimit: while MaxStreams listings run, one more is refused at once with a
// message that says why and what to do; once one ends, listings are served again,
// and other requests are served throughout.
func TestStreamLimit(t *testing.T) {
	testutil.CheckLeaks(t)
	s := &streamer{size: 100, gate: make(chan struct{}), started: make(chan struct{}, MaxStreams)}
	path, _ := serve(t, s)
	var wg sync.WaitGroup
	for range MaxStreams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r, err := Call(path, Request{Args: []string{"-Lc"}}); err != nil || r.Status != 3 || len(r.Stdout) != 100 {
				t.Errorf("listing: %+v, %v", r, err)
			}
		}()
	}
	for range MaxStreams {
		<-s.started
	}
	r, err := Call(path, Request{Args: []string{"-Lc"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 1 || !strings.Contains(r.Stderr, "connection listings are running already") || !strings.Contains(r.Stderr, "try again") {
		t.Errorf("listing over the limit: %+v", r)
	}
	if r, err := Call(path, Request{Args: []string{"-Ln"}}); err != nil || r.Stdout != "-Ln\n" {
		t.Errorf("other request during listings: %+v, %v", r, err)
	}
	close(s.gate)
	wg.Wait()
	s.started = nil
	if r, err := Call(path, Request{Args: []string{"-Lc"}}); err != nil || r.Status != 3 {
		t.Errorf("listing after the others ended: %+v, %v", r, err)
	}
}

// TestStreamClientGone: a client that stops reading mid-stream does not keep the
// handler or the slot: the director's next write fails, the handler ends, and
// listings are served again.
func TestStreamClientGone(t *testing.T) {
	testutil.CheckLeaks(t)
	path, _ := serve(t, &streamer{size: 16 << 20})
	errStop := fmt.Errorf("enough")
	for range MaxStreams + 1 {
		resp, err := CallStream(path, Request{Args: []string{"-Lc"}}, failAfter{n: new(int), limit: 1 << 20, err: errStop})
		// Refused as busy while an abandoned listing still holds its slot.
		if err == nil && !strings.Contains(resp.Stderr, "running already") {
			t.Fatalf("CallStream succeeded although its writer failed: %+v", resp)
		}
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		r, err := CallStream(path, Request{Args: []string{"-Lc"}}, io.Discard)
		return err == nil && r.Status == 3
	}, "a listing served after abandoned ones")
}

type failAfter struct {
	n     *int
	limit int
	err   error
}

func (f failAfter) Write(p []byte) (int, error) {
	if *f.n += len(p); *f.n > f.limit {
		return 0, f.err
	}
	return len(p), nil
}

// FuzzReadStream: whatever bytes follow the announcement, readStream never panics,
// never writes more than it was sent, and accepts only well-formed streams.
func FuzzReadStream(f *testing.F) {
	var ok bytes.Buffer
	cw := &chunkWriter{w: newBufWriter(&ok)}
	cw.Write([]byte("IPVS connection entries\n"))
	cw.w.Write([]byte{0, 0, 0, 0})
	cw.w.WriteString(`{"version":1,"status":0}` + "\n")
	cw.w.Flush()
	f.Add(ok.Bytes())
	f.Add([]byte{0, 0, 0, 5, 'a', 'b'})                     // cut short
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})                   // a chunk too large
	f.Add([]byte{0, 0, 0, 0, '{', '"', 'v', '"', ':', '2'}) // bad end
	f.Fuzz(func(t *testing.T, b []byte) {
		var out bytes.Buffer
		resp, err := readStream(bytes.NewReader(b), &out)
		if out.Len() > len(b) {
			t.Fatalf("wrote %d bytes from %d", out.Len(), len(b))
		}
		if err == nil && resp.Version != Version {
			t.Fatalf("accepted version %d", resp.Version)
		}
	})
}
