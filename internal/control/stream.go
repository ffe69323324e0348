package control

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// A StreamHandler is a Handler whose output can be too large to hold in memory
// (a connection listing of millions of entries): for the requests Streams
// accepts, Serve calls HandleStream, which writes standard output to stdout as it
// produces it; the Response it returns gives Stderr and Status (its Stdout is not
// sent). At most MaxStreams run at once.
type StreamHandler interface {
	Handler
	Streams(req Request) bool
	HandleStream(ctx context.Context, req Request, stdout io.Writer) Response
}

// ErrBusy is the refusal of a streamed request while MaxStreams are running.
var ErrBusy = errors.New(strconv.Itoa(MaxStreams) + " connection listings are running already, the most the director writes at once: try again when one has finished")

// A streamed response on the wire, after the request:
//
//	{"version":1,"stream":true}\n        the announcement, a Response and a newline
//	len uint32 (big endian) | len bytes  standard output, a chunk at a time
//	…
//	0 uint32                             end of standard output
//	{"version":1,"stderr":…,"status":…}  the final Response
//
// A chunk is at most maxChunk bytes.
const (
	chunkHeaderLen = 4
	maxChunk       = 1 << 20
	streamBufSize  = 64 << 10
)

// serveStream answers req with a streamed response.
func serveStream(ctx context.Context, c *net.UnixConn, h StreamHandler, req Request) {
	c.SetWriteDeadline(time.Now().Add(HandleTimeout))
	bw := newBufWriter(c)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(Response{Version: Version, Stream: true}); err != nil {
		return
	}
	cw := &chunkWriter{w: bw}
	resp := h.HandleStream(ctx, req, cw)
	if cw.err != nil {
		return // the client went away: nobody to tell
	}
	var end [chunkHeaderLen]byte
	if _, err := bw.Write(end[:]); err != nil {
		return
	}
	resp.Version, resp.Stdout, resp.Stream = Version, "", false
	if err := enc.Encode(resp); err != nil {
		return
	}
	_ = bw.Flush()
}

// chunkWriter frames what it is given as chunks.
type chunkWriter struct {
	w   *bufio.Writer
	err error
}

func (cw *chunkWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 && cw.err == nil {
		k := min(len(p), maxChunk)
		var h [chunkHeaderLen]byte
		binary.BigEndian.PutUint32(h[:], uint32(k))
		if _, cw.err = cw.w.Write(h[:]); cw.err != nil {
			break
		}
		if _, cw.err = cw.w.Write(p[:k]); cw.err != nil {
			break
		}
		n += k
		p = p[k:]
	}
	return n, cw.err
}

// readStream copies the chunks of a streamed response from r to stdout and returns
// the final Response.
func readStream(r io.Reader, stdout io.Writer) (Response, error) {
	br := bufio.NewReaderSize(r, streamBufSize)
	// The announcement's line ends in a newline the JSON decoder left unread.
	if b, err := br.Peek(1); err == nil && b[0] == '\n' {
		br.Discard(1)
	}
	var h [chunkHeaderLen]byte
	for {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return Response{}, fmt.Errorf("stream cut short: %w", err)
		}
		n := binary.BigEndian.Uint32(h[:])
		if n == 0 {
			break
		}
		if n > maxChunk {
			return Response{}, fmt.Errorf("stream chunk of %d bytes is larger than %d", n, maxChunk)
		}
		if _, err := io.CopyN(stdout, br, int64(n)); err != nil {
			return Response{}, fmt.Errorf("stream: %w", err)
		}
	}
	var resp Response
	if err := json.NewDecoder(io.LimitReader(br, MaxRequestSize)).Decode(&resp); err != nil {
		return Response{}, fmt.Errorf("stream end: %w", err)
	}
	if resp.Version != Version {
		return Response{}, fmt.Errorf("protocol version %d, want %d: use the gvs binary of the running director", resp.Version, Version)
	}
	return resp, nil
}

// limitedBuffer gathers a streamed response for Call, up to MaxResponseSize.
type limitedBuffer struct{ b strings.Builder }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.b.Len()+len(p) > MaxResponseSize {
		return 0, fmt.Errorf("response larger than %d bytes (use CallStream)", MaxResponseSize)
	}
	return l.b.Write(p)
}

func newBufWriter(w io.Writer) *bufio.Writer { return bufio.NewWriterSize(w, streamBufSize) }
