package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Version is the protocol version this package speaks. It changes only when an
// existing field changes meaning; new optional fields keep it.
const Version = 1

// Limits of one exchange.
const (
	// MaxRequestSize bounds a request on the wire, -R's standard input included:
	// an ipvsadm-save of tens of thousands of services fits.
	MaxRequestSize = 8 << 20
	// MaxResponseSize bounds what Call reads back; -Lnc of a full table of a
	// million connections is about 100 MB.
	MaxResponseSize = 512 << 20
	// ReadTimeout is how long Serve waits for a connection's request.
	ReadTimeout = 10 * time.Second
	// HandleTimeout bounds a request's handling (its context's deadline) and the
	// writing of the response; Call waits as long plus ReadTimeout.
	HandleTimeout = 2 * time.Minute
	// MaxConns is how many connections Serve handles at once; more wait in the
	// listen backlog.
	MaxConns = 16
	// MaxStreams is how many streamed responses (connection listings) Serve
	// writes at once; a request for one more is refused at once with ErrBusy's
	// message, so listings cannot pile up on a table of millions.
	MaxStreams = 2
)

// Request is one command for the director. The zero value is not a valid request:
// Call fills in Version.
type Request struct {
	Version int      `json:"version"`
	Args    []string `json:"args"`            // an ipvsadm command line without the program name
	Stdin   string   `json:"stdin,omitempty"` // what -R reads
}

// Response is the outcome of a Request, as ipvsadm would have printed it and exited.
type Response struct {
	Version int    `json:"version"`
	Stdout  string `json:"stdout,omitempty"`
	Stderr  string `json:"stderr,omitempty"`
	Status  int    `json:"status"` // exit status: 0 success, else ipvsadm's (1, 2, 255)
	// Stream announces a streamed response (StreamHandler): standard output
	// follows in chunks, then the Response with Stderr and Status (stream.go).
	Stream bool `json:"stream,omitempty"`
}

// Handler executes requests. Handle is called from several goroutines at once (one
// per connection) and must honour ctx's deadline where it blocks.
type Handler interface {
	Handle(ctx context.Context, req Request) Response
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req Request) Response

// Handle calls f(ctx, req).
func (f HandlerFunc) Handle(ctx context.Context, req Request) Response { return f(ctx, req) }

var _ Handler = HandlerFunc(nil)

// ErrInUse reports that another process listens on the control socket: another
// director is running with the same control_socket.
var ErrInUse = errors.New("another process is listening on the control socket")

// OpError is an I/O error of the control socket: Op is "listen", "accept",
// "send" or "receive"; Path is the socket's path.
type OpError struct {
	Op   string
	Path string
	Err  error
}

func (e *OpError) Error() string { return "control: " + e.Op + " " + e.Path + ": " + e.Err.Error() }

func (e *OpError) Unwrap() error { return e.Err }

// DialError is Call's error when no director answers at Path. Its text tells the
// user what to check.
type DialError struct {
	Path string
	Err  error
}

func (e *DialError) Error() string {
	hint := "is gvs run running?"
	if errors.Is(e.Err, fs.ErrPermission) {
		hint = "the socket is for its owner only (mode 0600): run as root"
	}
	cause := e.Err.Error()
	var op *net.OpError
	if errors.As(e.Err, &op) {
		cause = op.Err.Error() // "connect: no such file or directory", without the address
	}
	return "cannot reach the director at " + e.Path + ": " + hint + " (" + cause + ")"
}

func (e *DialError) Unwrap() error { return e.Err }

// A Listener is a bound control socket. Create it with Listen early (so a second
// director fails before it touches the network), then Serve. Close may be called
// any number of times, from any goroutine.
type Listener struct {
	path string
	ln   *net.UnixListener
	fi   fs.FileInfo // the socket file we linked into place, to remove only our own

	closeOnce sync.Once
	closeErr  error
}

// Listen creates the control socket at path with mode 0600, creating path's
// directory (mode 0755) if needed. A socket file nobody listens on (left by a
// crashed director) is replaced; if a process listens on it, Listen fails with an
// error wrapping ErrInUse; any other file at path is left alone and reported.
//
// The socket is bound in a private (0700) directory next to path, made 0600, and
// then hard-linked to path, so it is never reachable with a looser mode, whatever
// the umask, and two directors starting at once cannot both take path.
func Listen(path string) (*Listener, error) {
	if path == "" {
		return nil, &OpError{Op: "listen", Path: path, Err: errors.New("no socket path")}
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, &OpError{Op: "listen", Path: path, Err: err}
	}
	tmpDir, err := os.MkdirTemp(dir, ".gvs-sock-")
	if err != nil {
		return nil, &OpError{Op: "listen", Path: path, Err: err}
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, &OpError{Op: "listen", Path: path, Err: err}
	}
	// We remove path ourselves (Close), and only if it is still our socket.
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*Listener, error) {
		ln.Close()
		return nil, &OpError{Op: "listen", Path: path, Err: err}
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	for attempt := 0; ; attempt++ {
		err := os.Link(tmp, path)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || attempt > 0 {
			return fail(err)
		}
		if err := removeStale(path); err != nil {
			return fail(err)
		}
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	return &Listener{path: path, ln: ln, fi: fi}, nil
}

// removeStale removes the socket file at path if nothing listens on it.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket: remove it or set another control_socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w (is another gvs run using %s?)", ErrInUse, path)
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		// A socket file without a listener: a director that did not clean up.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case errors.Is(err, syscall.EAGAIN):
		// The backlog of a live listener is full.
		return fmt.Errorf("%w (is another gvs run using %s?)", ErrInUse, path)
	}
	return err
}

// Path returns the socket's path.
func (l *Listener) Path() string { return l.path }

// Close stops accepting and removes the socket file if it is still the one Listen
// created. Connections being served are not interrupted; Serve waits for them.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.closeErr = l.ln.Close()
		if fi, err := os.Lstat(l.path); err == nil && os.SameFile(fi, l.fi) {
			if err := os.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) && l.closeErr == nil {
				l.closeErr = err
			}
		}
	})
	if l.closeErr != nil && !errors.Is(l.closeErr, net.ErrClosed) {
		return &OpError{Op: "close", Path: l.path, Err: l.closeErr}
	}
	return nil
}

// Serve answers requests with h until ctx is cancelled, then closes the listener
// (removing the socket), waits for the requests in progress and returns nil. It
// returns an error only if accepting fails for good. Each connection carries one
// request: it must arrive within ReadTimeout and be at most MaxRequestSize bytes;
// it is handled with a context that ends at HandleTimeout or when ctx is cancelled.
func (l *Listener) Serve(ctx context.Context, h Handler) error {
	// On return: stop accepting and remove the socket, then wait for the
	// requests in progress.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer l.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { l.ln.Close() })
	defer stop()

	sem := make(chan struct{}, MaxConns)
	streams := make(chan struct{}, MaxStreams)
	var backoff time.Duration
	for {
		c, err := l.ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of descriptors and the like: wait and retry, as net/http does.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff *= 2; backoff > time.Second {
				backoff = time.Second
			}
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		backoff = 0
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			c.Close()
			return nil
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			serveConn(ctx, c, h, streams)
		}()
	}
}

// Serve is Listen followed by Listener.Serve.
func Serve(ctx context.Context, path string, h Handler) error {
	l, err := Listen(path)
	if err != nil {
		return err
	}
	return l.Serve(ctx, h)
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func serveConn(ctx context.Context, c *net.UnixConn, h Handler, streams chan struct{}) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(ReadTimeout))
	cr := &countingReader{r: io.LimitReader(c, MaxRequestSize+1)}
	var req Request
	var resp Response
	if err := json.NewDecoder(cr).Decode(&req); err != nil {
		switch {
		case cr.n > MaxRequestSize:
			resp = errorResponse("gvs adm: request larger than " + strconv.Itoa(MaxRequestSize) + " bytes: refused")
		default:
			resp = errorResponse("gvs adm: bad request: " + err.Error())
		}
	} else if req.Version != Version {
		resp = errorResponse(fmt.Sprintf("gvs adm: protocol version %d is not supported by this director (it speaks %d): use the gvs binary of the running director", req.Version, Version))
	} else if sh, ok := h.(StreamHandler); ok && sh.Streams(req) {
		select {
		case streams <- struct{}{}:
			defer func() { <-streams }()
			hctx, cancel := context.WithTimeout(ctx, HandleTimeout)
			defer cancel()
			serveStream(hctx, c, sh, req)
			return
		default:
			resp = errorResponse("gvs adm: " + ErrBusy.Error())
		}
	} else {
		hctx, cancel := context.WithTimeout(ctx, HandleTimeout)
		resp = h.Handle(hctx, req)
		cancel()
	}
	resp.Version = Version
	c.SetWriteDeadline(time.Now().Add(HandleTimeout))
	// A client that went away gets nothing; there is nobody to report it to.
	_ = json.NewEncoder(c).Encode(resp)
}

func errorResponse(msg string) Response {
	return Response{Version: Version, Stderr: msg + "\n", Status: 1}
}

// Call sends req to the director listening at path and returns its response. Only
// transport problems are errors: a command the director refuses is a Response with
// a non-zero Status. When nothing listens at path the error is a *DialError. A
// streamed response is gathered into Stdout, up to MaxResponseSize.
func Call(path string, req Request) (Response, error) {
	var out limitedBuffer
	resp, err := CallStream(path, req, &out)
	if err != nil {
		return Response{}, err
	}
	if resp.Stream {
		resp.Stdout, resp.Stream = out.b.String(), false
	}
	return resp, nil
}

// CallStream is Call that writes a streamed response's standard output to stdout
// as it arrives, so a listing of any size needs no more memory than a chunk; the
// Response returned then has an empty Stdout and Stream set. A response that is
// not streamed is returned whole, as by Call.
func CallStream(path string, req Request, stdout io.Writer) (Response, error) {
	if req.Version == 0 {
		req.Version = Version
	}
	b, err := json.Marshal(req)
	if err != nil {
		return Response{}, &OpError{Op: "send", Path: path, Err: err}
	}
	if len(b) > MaxRequestSize {
		return Response{}, &OpError{Op: "send", Path: path, Err: fmt.Errorf("request of %d bytes is larger than the limit of %d", len(b), MaxRequestSize)}
	}
	nc, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return Response{}, &DialError{Path: path, Err: err}
	}
	c := nc.(*net.UnixConn)
	defer c.Close()
	c.SetDeadline(time.Now().Add(ReadTimeout + HandleTimeout))
	_, werr := c.Write(b)
	if werr == nil {
		werr = c.CloseWrite()
	}
	// Even when the write failed the director may have answered (a refused
	// request): read what it said before reporting the write error.
	var resp Response
	dec := json.NewDecoder(io.LimitReader(c, MaxResponseSize))
	if err := dec.Decode(&resp); err != nil {
		if werr != nil {
			return Response{}, &OpError{Op: "send", Path: path, Err: werr}
		}
		return Response{}, &OpError{Op: "receive", Path: path, Err: err}
	}
	if resp.Version != Version {
		return Response{}, &OpError{Op: "receive", Path: path, Err: fmt.Errorf("protocol version %d, want %d: use the gvs binary of the running director", resp.Version, Version)}
	}
	if resp.Stream {
		final, err := readStream(io.MultiReader(dec.Buffered(), c), stdout)
		if err != nil {
			return Response{}, &OpError{Op: "receive", Path: path, Err: err}
		}
		final.Stream = true
		return final, nil
	}
	return resp, nil
}
