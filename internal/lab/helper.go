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
//	serve  --name NAME [--http ADDR] [--udp ADDR] [--ready-fd N]
//	       HTTP server answering "NAME\n" to every request, and a UDP echo that
//	       answers each datagram with "NAME: " and the datagram, from the address
//	       it was sent to (so replies to the VIP come from the VIP).
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
		return serve(ctx, log, *name, hl, uc, readyFunc(*ready))
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

// serve runs the real server's HTTP server on hl and UDP echo on uc (either may
// be nil) until ctx ends, and closes them.
func serve(ctx context.Context, log *slog.Logger, name string, hl net.Listener, uc *net.UDPConn, ready func()) error {
	if uc != nil {
		if err := enablePktinfo(uc); err != nil {
			if hl != nil {
				hl.Close()
			}
			uc.Close()
			return fmt.Errorf("serve: %w", err)
		}
	}
	var httpAddr, udpAddr string
	if hl != nil {
		httpAddr = hl.Addr().String()
	}
	if uc != nil {
		udpAddr = uc.LocalAddr().String()
	}
	log.Info("serving", "name", name, "http", httpAddr, "udp", udpAddr)
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
	if hl != nil {
		body := []byte(name + "\n")
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.Write(body)
			}),
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
	if uc != nil {
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
