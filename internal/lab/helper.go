package lab

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrUsage marks a helper invocation with bad arguments.
var ErrUsage = errors.New("usage")

// RunHelper runs one of the lab's hidden helper commands, which the lab starts
// inside real-server namespaces as `gvs lab serve ...` and `gvs lab rs-tun ...`
// (args starts with "serve" or "rs-tun"). It returns when ctx ends (SIGTERM, in
// the helper process) or the helper fails. Logs go to stderr.
//
//	serve  --name NAME [--http ADDR] [--udp ADDR] [--ipv6] [--ready-fd N]
//	       HTTP server answering "NAME\n" to every request, except
//	       GET /whoami: "NAME CLIENT_IP:PORT\n", the peer address as the server sees it,
//	       GET /bytes?n=N: N bytes (at most 16 MiB) of PatternBytes, for transfers;
//	       and a UDP echo that answers each datagram with "NAME: " and the datagram,
//	       from the address it was sent to (so replies to the VIP come from the VIP).
//	       --ipv6 also listens on the IPv6 wildcard address (IPv6-only sockets).
//	rs-tun [--dev tun0] [--ready-fd N]
//	       IP-in-IP decapsulator: reads protocol-4 packets from a raw socket and
//	       writes their inner packet into TUN device --dev.
//
// --ready-fd N: write "ready\n" to file descriptor N once listening, then close it.
func RunHelper(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: gvs lab serve|rs-tun [flags]", ErrUsage)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	switch args[0] {
	case "serve":
		fs := helperFlags("serve", stderr)
		name := fs.String("name", "", "name to answer with (required)")
		httpAddr := fs.String("http", ":80", `HTTP listen address; "" = none`)
		udpAddr := fs.String("udp", ":53", `UDP echo listen address; "" = none`)
		ipv6 := fs.Bool("ipv6", false, "also listen on IPv6")
		ready := fs.Int("ready-fd", 0, "file descriptor to report readiness on")
		if err := parseHelperFlags(fs, args[1:]); err != nil {
			return err
		}
		if *name == "" {
			return fmt.Errorf("%w: serve: --name is required", ErrUsage)
		}
		hl, uc, err := listenServe(*httpAddr, *udpAddr)
		if err != nil {
			return err
		}
		ls, ucs := []net.Listener{hl}, []*net.UDPConn{uc}
		if *ipv6 {
			hl6, uc6, err := listenServe6(*httpAddr, *udpAddr)
			if err != nil {
				if hl != nil {
					hl.Close()
				}
				if uc != nil {
					uc.Close()
				}
				return err
			}
			ls, ucs = append(ls, hl6), append(ucs, uc6)
		}
		return serveAll(ctx, log, *name, ls, ucs, readyFunc(*ready))
	case "rs-tun":
		fs := helperFlags("rs-tun", stderr)
		dev := fs.String("dev", tunDev, "TUN device to create and write inner packets to")
		ready := fs.Int("ready-fd", 0, "file descriptor to report readiness on")
		if err := parseHelperFlags(fs, args[1:]); err != nil {
			return err
		}
		return decapsulate(ctx, log, *dev, readyFunc(*ready))
	}
	return fmt.Errorf("%w: unknown lab helper %q (serve or rs-tun)", ErrUsage, args[0])
}

func helperFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func parseHelperFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrUsage, fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected argument %q", ErrUsage, fs.Name(), fs.Arg(0))
	}
	return nil
}

// readyFunc returns what a helper calls once it is ready: it tells the lab on fd.
func readyFunc(fd int) func() {
	if fd <= 0 {
		return func() {}
	}
	return func() {
		f := os.NewFile(uintptr(fd), "ready")
		if f == nil {
			return
		}
		f.Write([]byte("ready\n"))
		f.Close()
	}
}

// listenServe opens serve's sockets on every address: TCP httpAddr and UDP
// udpAddr ("" = none).
func listenServe(httpAddr, udpAddr string) (net.Listener, *net.UDPConn, error) {
	var hl net.Listener
	if httpAddr != "" {
		var err error
		if hl, err = net.Listen("tcp4", httpAddr); err != nil {
			return nil, nil, fmt.Errorf("serve: %w", err)
		}
	}
	if udpAddr == "" {
		return hl, nil, nil
	}
	ua, err := net.ResolveUDPAddr("udp4", udpAddr)
	var uc *net.UDPConn
	if err == nil {
		uc, err = net.ListenUDP("udp4", ua)
	}
	if err != nil {
		if hl != nil {
			hl.Close()
		}
		return nil, nil, fmt.Errorf("serve: %w", err)
	}
	return hl, uc, nil
}

// listenServe6 is listenServe on the IPv6 wildcard address, IPv6 only (so it
// coexists with listenServe's IPv4 sockets on the same ports): httpAddr and
// udpAddr are ":PORT" or "" (none).
func listenServe6(httpAddr, udpAddr string) (net.Listener, *net.UDPConn, error) {
	var hl net.Listener
	if httpAddr != "" {
		var err error
		if hl, err = net.Listen("tcp6", httpAddr); err != nil {
			return nil, nil, fmt.Errorf("serve: %w", err)
		}
	}
	if udpAddr == "" {
		return hl, nil, nil
	}
	ua, err := net.ResolveUDPAddr("udp6", udpAddr)
	var uc *net.UDPConn
	if err == nil {
		uc, err = net.ListenUDP("udp6", ua)
	}
	if err != nil {
		if hl != nil {
			hl.Close()
		}
		return nil, nil, fmt.Errorf("serve: %w", err)
	}
	return hl, uc, nil
}

// serve runs the real server's HTTP server on hl and UDP echo on uc (either may
// be nil) until ctx ends, and closes them.
func serve(ctx context.Context, log *slog.Logger, name string, hl net.Listener, uc *net.UDPConn, ready func()) error {
	return serveAll(ctx, log, name, []net.Listener{hl}, []*net.UDPConn{uc}, ready)
}

// MaxPatternBytes bounds GET /bytes?n=N.
const MaxPatternBytes = 16 << 20

// PatternBytes fills b with the bytes at offsets off.. of the real servers'
// /bytes stream: byte i is the low byte of i*i/251 + i, a sequence that repeats
// only far beyond 16 MiB at any short period, so a lost, doubled or reordered
// segment shows in a hash.
func PatternBytes(b []byte, off int) {
	for j := range b {
		i := uint64(off + j)
		b[j] = byte(i*i/251 + i)
	}
}

// handler is the real server's HTTP handler.
func handler(name string) http.Handler {
	body := []byte(name + "\n")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		switch r.URL.Path {
		case "/whoami":
			fmt.Fprintf(w, "%s %s\n", name, r.RemoteAddr)
		case "/bytes":
			n, err := strconv.Atoi(r.URL.Query().Get("n"))
			if err != nil || n < 0 || n > MaxPatternBytes {
				http.Error(w, fmt.Sprintf("%s: want /bytes?n=N with 0 <= N <= %d", name, MaxPatternBytes), http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(n))
			buf := make([]byte, 32<<10)
			for off := 0; off < n; {
				k := min(len(buf), n-off)
				PatternBytes(buf[:k], off)
				if _, err := w.Write(buf[:k]); err != nil {
					return
				}
				off += k
			}
		default:
			w.Write(body)
		}
	})
}

// serveAll runs the real server's HTTP server on every listener and the UDP echo
// on every UDP socket (nil entries are skipped) until ctx ends, and closes them.
func serveAll(ctx context.Context, log *slog.Logger, name string, hls []net.Listener, ucs []*net.UDPConn, ready func()) error {
	hls = slices.DeleteFunc(slices.Clone(hls), func(l net.Listener) bool { return l == nil })
	ucs = slices.DeleteFunc(slices.Clone(ucs), func(c *net.UDPConn) bool { return c == nil })
	for _, uc := range ucs {
		if err := enablePktinfo(uc); err != nil {
			for _, hl := range hls {
				hl.Close()
			}
			for _, uc := range ucs {
				uc.Close()
			}
			return fmt.Errorf("serve: %w", err)
		}
	}
	var httpAddrs, udpAddrs []string
	for _, hl := range hls {
		httpAddrs = append(httpAddrs, hl.Addr().String())
	}
	for _, uc := range ucs {
		udpAddrs = append(udpAddrs, uc.LocalAddr().String())
	}
	log.Info("serving", "name", name, "http", strings.Join(httpAddrs, ","), "udp", strings.Join(udpAddrs, ","))
	ready()

	// The first server to fail ends the others; ctx's end ends them all.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
		cancel()
	}
	for _, hl := range hls {
		srv := &http.Server{
			Handler:           handler(name),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		wg.Go(func() {
			if err := srv.Serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fail(fmt.Errorf("serve: http: %w", err))
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			sctx, scancel := context.WithTimeout(context.Background(), time.Second)
			defer scancel()
			if srv.Shutdown(sctx) != nil {
				srv.Close()
			}
		})
	}
	for _, uc := range ucs {
		wg.Go(func() {
			if err := udpEcho(ctx, log, uc, name); err != nil {
				fail(fmt.Errorf("serve: udp: %w", err))
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			uc.Close()
		})
	}
	wg.Wait()
	log.Info("stopped", "name", name)
	return first
}

// udpEcho answers each datagram with "name: " and the datagram, from the
// address the datagram was sent to: a socket bound to 0.0.0.0 would otherwise
// answer a datagram sent to the VIP from eth0's address, and the client would
// drop it.
func udpEcho(ctx context.Context, log *slog.Logger, c *net.UDPConn, name string) error {
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	prefix := []byte(name + ": ")
	out := make([]byte, 0, len(prefix)+len(buf))
	for {
		n, oobn, _, from, err := c.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		out = append(append(out[:0], prefix...), buf[:n]...)
		var reply []byte // control message: answer from the address asked
		if dst, ok := pktinfoDst(oob[:oobn]); ok {
			reply = pktinfoSrc(dst)
		}
		if _, _, err := c.WriteMsgUDPAddrPort(out, reply, from); err != nil {
			log.Warn("udp reply", "to", from, "err", err)
			continue
		}
	}
}
