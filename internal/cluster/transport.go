package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// UDPConfig says where a UDP transport sends and listens (docs/cluster.md §9).
type UDPConfig struct {
	Interface   string       // sync_interface: the multicast interface, and the source address's
	Local       netip.Addr   // source address; invalid = the interface's first of the group's family
	Group       netip.Addr   // sync_group; ignored when Peers are set
	Peers       []netip.Addr // sync_peers: unicast to each instead of multicast
	SyncPort    int          // sync_port; sync port i is SyncPort+i
	Ports       int          // sync_ports
	ControlPort int          // control_port
	TTL         int          // sync_ttl (multicast hops)
	SockSize    int          // sync_sock_size: SO_SNDBUF/SO_RCVBUF; 0 = the system default
}

// UDP is the Transport over UDP sockets: one sending socket bound to the director's
// address, with the multicast interface, TTL and loop off as the kernel's master sets
// them; one receiving socket per sync port and one for the control port, bound to the
// group (multicast) or to the wildcard address (unicast peers); and one sending socket
// per bulk push in progress, set up as the first. Safe for concurrent use.
type UDP struct {
	cfg     UDPConfig
	ns      *sockNetns // where the sockets live: push sockets are opened there too
	ifi     *net.Interface
	network string
	local   netip.Addr
	send    *net.UDPConn
	recv    []*net.UDPConn // sync ports, then the control port
	dsts    []netip.Addr   // the group, or the peers
	mtu     int            // the sync interface's
	closeMu sync.Once

	mu     sync.Mutex
	closed bool
	pushes map[*udpPush]bool // open push sockets, closed with the transport
}

var _ Transport = (*UDP)(nil)

// ListenUDP opens the transport's sockets in the caller's network namespace.
func ListenUDP(cfg UDPConfig) (u *UDP, err error) {
	op := func(what string, err error) error { return fmt.Errorf("cluster: sync sockets: %s: %w", what, err) }
	if cfg.Ports < 1 {
		cfg.Ports = 1
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, op("sync_interface "+cfg.Interface, err)
	}
	u = &UDP{cfg: cfg, ifi: ifi, dsts: cfg.Peers, mtu: ifi.MTU, pushes: map[*udpPush]bool{}}
	if len(cfg.Peers) == 0 {
		if !cfg.Group.IsMulticast() {
			return nil, op("sync_group", fmt.Errorf("%v is not a multicast address and no sync_peers are set", cfg.Group))
		}
		u.dsts = []netip.Addr{cfg.Group}
	}
	v6 := u.dsts[0].Is6()
	u.network = "udp4"
	if v6 {
		u.network = "udp6"
	}
	u.local = cfg.Local
	if !u.local.IsValid() {
		if u.local, err = ifaceAddr(ifi, v6); err != nil {
			return nil, op("source address", err)
		}
	}
	defer func() {
		if err != nil {
			u.Close()
		}
	}()
	runtime.LockOSThread()
	u.ns, err = callerNetns()
	runtime.UnlockOSThread()
	if err != nil {
		return nil, op("network namespace", err)
	}
	if u.send, err = u.openSender(); err != nil {
		return nil, op("sending socket", err)
	}
	network := u.network
	for i := range cfg.Ports + 1 {
		port := cfg.SyncPort + i
		if i == cfg.Ports {
			port = cfg.ControlPort
		}
		var c *net.UDPConn
		if len(cfg.Peers) == 0 {
			c, err = net.ListenMulticastUDP(network, ifi, net.UDPAddrFromAddrPort(netip.AddrPortFrom(cfg.Group, uint16(port))))
		} else {
			c, err = net.ListenUDP(network, &net.UDPAddr{Port: port})
		}
		if err != nil {
			return nil, op(fmt.Sprintf("listen on port %d", port), err)
		}
		u.recv = append(u.recv, c)
		if cfg.SockSize > 0 {
			if err = c.SetReadBuffer(cfg.SockSize); err != nil {
				return nil, op("receive buffer", err)
			}
		}
	}
	return u, nil
}

// openSender opens a sending socket: bound to the director's address (a port of the
// system's choosing), with the multicast interface, TTL and loop off as the kernel's
// master sets them, no path MTU discovery and sync_sock_size.
func (u *UDP) openSender() (*net.UDPConn, error) {
	c, err := net.ListenUDP(u.network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(u.local, 0)))
	if err != nil {
		return nil, fmt.Errorf("bind %v: %w", u.local, err)
	}
	if u.network == "udp6" {
		p := ipv6.NewPacketConn(c)
		err = errors.Join(p.SetMulticastInterface(u.ifi), p.SetMulticastHopLimit(u.cfg.TTL), p.SetMulticastLoopback(false))
	} else {
		p := ipv4.NewPacketConn(c)
		err = errors.Join(p.SetMulticastInterface(u.ifi), p.SetMulticastTTL(u.cfg.TTL), p.SetMulticastLoopback(false))
	}
	if err == nil {
		err = dontFragment(c)
	}
	if err == nil && u.cfg.SockSize > 0 {
		err = c.SetWriteBuffer(u.cfg.SockSize)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("options: %w", err)
	}
	return c, nil
}

// udpPush is one bulk push's socket.
type udpPush struct {
	u *UDP
	c *net.UDPConn
}

// OpenPush opens a sending socket for one bulk push, set up as the main one.
func (u *UDP) OpenPush() (PushSender, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil, errors.New("cluster: sync sockets closed")
	}
	var c *net.UDPConn
	err := u.ns.do(func() (err error) {
		c, err = u.openSender()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: bulk push socket: %w", err)
	}
	p := &udpPush{u: u, c: c}
	u.pushes[p] = true
	return p, nil
}

// SendSync sends b to sync port index port of the group or of every peer.
func (p *udpPush) SendSync(port int, b []byte) error {
	return p.u.sendFrom(p.c, p.u.cfg.SyncPort+port, b)
}

// Port returns the socket's source port.
func (p *udpPush) Port() uint16 { return uint16(p.c.LocalAddr().(*net.UDPAddr).Port) }

// Close closes the socket.
func (p *udpPush) Close() error {
	p.u.mu.Lock()
	defer p.u.mu.Unlock()
	if !p.u.pushes[p] {
		return nil
	}
	delete(p.u.pushes, p)
	return p.c.Close()
}

// MaxLen returns the sync_maxlen that fits the sync interface's MTU without
// fragmentation (1472 for 1500 over IPv4), at most 65507. The kernel's master always
// uses 1472 whatever the MTU; a jumbo-frame sync LAN carries more records a datagram.
func (u *UDP) MaxLen() int {
	return min(MaxLenForMTU(u.mtu, u.dsts[0].Is6()), 65507)
}

// ifaceAddr returns the interface's first address of the family.
func ifaceAddr(ifi *net.Interface, v6 bool) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is6() == v6 && !p.Addr().IsLinkLocalUnicast() {
			return p.Addr(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no address of that family: give it one or set the source", ifi.Name)
}

// SendSync sends b to sync port index port of the group or of every peer.
func (u *UDP) SendSync(port int, b []byte) error {
	return u.sendTo(u.cfg.SyncPort+port, b)
}

// SendControl sends b to the control port of the group or of every peer.
func (u *UDP) SendControl(b []byte) error { return u.sendTo(u.cfg.ControlPort, b) }

// writeTimeout bounds how long a send may wait for room in the socket buffer: the
// Node holds its lock while sending, and a stalled write must not stall receiving.
const writeTimeout = 50 * time.Millisecond

func (u *UDP) sendTo(port int, b []byte) error { return u.sendFrom(u.send, port, b) }

func (u *UDP) sendFrom(c *net.UDPConn, port int, b []byte) error {
	if err := c.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	var errs []error
	for _, d := range u.dsts {
		if _, err := c.WriteToUDPAddrPort(b, netip.AddrPortFrom(d, uint16(port))); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close closes every socket; it may be called more than once.
func (u *UDP) Close() error {
	var errs []error
	u.closeMu.Do(func() {
		u.mu.Lock()
		u.closed = true
		for p := range u.pushes {
			errs = append(errs, p.c.Close())
		}
		clear(u.pushes)
		u.mu.Unlock()
		errs = append(errs, u.ns.close())
		if u.send != nil {
			errs = append(errs, u.send.Close())
		}
		for _, c := range u.recv {
			errs = append(errs, c.Close())
		}
	})
	return errors.Join(errs...)
}

// Clock is what Run needs of time; testutil.Clock has these methods.
type Clock interface {
	Now() time.Time
	NewTicker(d time.Duration) (<-chan time.Time, func())
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// RealClock is the wall clock for Run.
var RealClock Clock = realClock{}

// inbound is one received datagram on its way to the Node.
type inbound struct {
	control bool
	from    netip.AddrPort
	buf     *[65536]byte
	n       int
}

// Run drives n over u until ctx ends: it reads every socket (one goroutine each,
// feeding one queue so datagrams reach the Node in arrival order), and ticks n every
// tick. It closes u's sockets when ctx ends, joins its readers and returns nil; a
// socket failing otherwise ends it with the error.
func Run(ctx context.Context, n *Node, u *UDP, clock Clock, tick time.Duration) error {
	const nbuf = 64
	free := make(chan *[65536]byte, nbuf)
	for range nbuf {
		free <- new([65536]byte)
	}
	in := make(chan inbound, nbuf)
	errc := make(chan error, len(u.recv))
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, c := range u.recv {
		control := i == len(u.recv)-1
		wg.Go(func() {
			for {
				var buf *[65536]byte
				select {
				case buf = <-free:
				case <-ctx.Done():
					return
				}
				k, from, err := c.ReadFromUDPAddrPort(buf[:])
				if err != nil {
					if ctx.Err() == nil {
						errc <- fmt.Errorf("cluster: reading port %d: %w", c.LocalAddr().(*net.UDPAddr).Port, err)
					}
					return
				}
				select {
				case in <- inbound{control: control, from: from, buf: buf, n: k}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	ticks, stop := clock.NewTicker(tick)
	defer func() {
		stop()
		cancel()
		u.Close() // unblocks the readers
		wg.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case d := <-in:
			if d.control {
				n.HandleControl(d.from, d.buf[:d.n], clock.Now())
			} else {
				n.HandleSync(d.from, d.buf[:d.n], clock.Now())
			}
			free <- d.buf
		case now := <-ticks:
			n.Tick(now)
		}
	}
}
