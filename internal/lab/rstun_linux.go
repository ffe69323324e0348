package lab

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// decapsulate is the rs-tun helper: a real server's IP-in-IP endpoint where the
// kernel has no ipip module. A raw socket of protocol 4 receives every IPIP packet
// addressed to this host (and, being there, keeps the kernel from answering
// "protocol unreachable"); the inner packet goes into TUN device dev, from where
// the kernel takes it as if it had arrived on dev: addressed to the VIP on lo, it
// is delivered locally, and the reply leaves by eth0 as in DR. Needs rp_filter
// off for dev (the client routes via eth0), which the lab sets.
func decapsulate(ctx context.Context, log *slog.Logger, dev string, ready func()) error {
	tun, err := openTUN(dev)
	if err != nil {
		return fmt.Errorf("rs-tun: %w", err)
	}
	defer tun.Close()
	// Best effort: the lab sets net.ipv4.conf.default.rp_filter=0 before starting
	// us, which dev inherits.
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+dev+"/rp_filter", []byte("0"), 0o644); err != nil {
		log.Warn("rp_filter", "dev", dev, "err", err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_IPIP)
	if err != nil {
		return fmt.Errorf("rs-tun: raw IPPROTO_IPIP socket: %w", err)
	}
	raw := os.NewFile(uintptr(fd), "ipip") // non-blocking: the runtime poller wakes Read on Close
	// IPv6-in-IPv6 (next header 41, RFC 2473): an IPv6 raw socket hands over the
	// payload without the outer header, which is the inner packet itself. Best
	// effort: a host without IPv6 still decapsulates IPv4.
	var raw6 *os.File
	if fd6, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_IPV6); err != nil {
		log.Warn("no IPv6-in-IPv6", "err", err)
	} else {
		raw6 = os.NewFile(uintptr(fd6), "ip6ip6")
	}
	log.Info("decapsulating", "from", "raw IPPROTO_IPIP and IPPROTO_IPV6 sockets", "to", dev)
	ready()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		raw.Close()
		if raw6 != nil {
			raw6.Close()
		}
	}()
	var n6 uint64
	done6 := make(chan error, 1)
	if raw6 != nil {
		go func() {
			buf := make([]byte, 65536)
			for {
				m, err := raw6.Read(buf)
				if err != nil {
					if ctx.Err() == nil {
						done6 <- fmt.Errorf("rs-tun: read ip6ip6: %w", err)
						cancel()
					}
					close(done6)
					return
				}
				if m < ipv6HeaderLen || buf[0]>>4 != 6 {
					continue
				}
				if _, err := tun.Write(buf[:m]); err != nil {
					log.Warn("write", "dev", dev, "err", err)
					continue
				}
				if n6++; n6 == 1 {
					src, _ := netip.AddrFromSlice(buf[8:24])
					dst, _ := netip.AddrFromSlice(buf[24:40])
					log.Info("first IPv6 packet decapsulated", "inner_src", src, "inner_dst", dst, "bytes", m)
				}
			}
		}()
	} else {
		close(done6)
	}
	var n, dropped, failed uint64
	buf := make([]byte, 65536)
	var rerr error
	for {
		m, err := raw.Read(buf)
		if err != nil {
			if ctx.Err() == nil {
				rerr = fmt.Errorf("rs-tun: read: %w", err)
			}
			break
		}
		inner, ok := decapIPIP(buf[:m])
		if !ok {
			dropped++
			continue
		}
		if _, err := tun.Write(inner); err != nil {
			failed++
			log.Warn("write", "dev", dev, "err", err)
			continue
		}
		if n++; n == 1 {
			src, _ := netip.AddrFromSlice(inner[12:16])
			dst, _ := netip.AddrFromSlice(inner[16:20])
			log.Info("first packet decapsulated", "inner_src", src, "inner_dst", dst, "bytes", len(inner))
		}
	}
	cancel()
	<-stopped
	if err, ok := <-done6; ok && rerr == nil {
		rerr = err
	}
	log.Info("stopped", "decapsulated", n, "decapsulated_ipv6", n6, "dropped", dropped, "write_errors", failed)
	return rerr
}

// ipv6HeaderLen is the length of the fixed IPv6 header (RFC 8200 §3).
const ipv6HeaderLen = 40

// openTUN creates TUN device name (no packet-info header) and brings it up.
func openTUN(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun %s: %w", name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("tun %s: TUNSETIFF: %w", name, err)
	}
	if err := linkUp(name); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// linkUp sets IFF_UP on an interface of the calling thread's namespace.
func linkUp(name string) error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("link %s up: %w", name, err)
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("link %s up: %w", name, err)
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("link %s up: SIOCGIFFLAGS: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("link %s up: SIOCSIFFLAGS: %w", name, err)
	}
	return nil
}
