package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// HTTPGet fetches url from inside host's namespace with a Go client whose sockets
// are made there, and returns the body. The dial gets half the timeout: the
// Transport does not cancel a dial when the request gives up, and a dial still running
// would keep a thread of this process in the namespace (Down would report it busy).
func (l *Lab) HTTPGet(host, url string, timeout time.Duration) (string, error) {
	b, err := l.HTTPFetch(host, url, timeout, 1<<16)
	return string(b), err
}

// HTTPFetch is HTTPGet for up to max bytes of body (more is an error), as bytes,
// and fails on a status other than 200.
func (l *Lab) HTTPFetch(host, url string, timeout time.Duration, max int64) ([]byte, error) {
	c := &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var conn net.Conn
				err := l.Do(host, func() (err error) {
					conn, err = (&net.Dialer{Timeout: timeout / 2}).DialContext(ctx, network, addr)
					return err
				})
				return conn, err
			},
		},
	}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return b, err
	}
	if int64(len(b)) > max {
		return b[:max], fmt.Errorf("lab: %s: body longer than %d bytes", url, max)
	}
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("lab: %s: %s", url, resp.Status)
	}
	return b, nil
}

// UDPAsk sends msg to addr from host's namespace and returns the first answer.
func (l *Lab) UDPAsk(host string, addr netip.AddrPort, msg string, timeout time.Duration) (string, error) {
	var c *net.UDPConn
	if err := l.Do(host, func() (err error) {
		c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
		return err
	}); err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}
