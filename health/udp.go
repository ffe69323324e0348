package health

import (
	"bytes"
	"context"
	"errors"
	"os"
	"syscall"
	"time"
)

// udpChecker is keepalived's UDP_CHECK: send one datagram on a connected socket. With
// expectReply, or a non-empty expect, the server must answer within the timeout (with
// a datagram containing expect, as config.example.toml documents; keepalived's
// require_reply compares a prefix). Otherwise, as keepalived, the server is down only
// when an ICMP error (port unreachable) comes back, and silence until the timeout
// counts as up.
type udpChecker struct {
	dest        dest
	timeout     time.Duration
	payload     []byte
	expectReply bool
	expect      []byte
}

var _ Checker = (*udpChecker)(nil)

// udpReplyBytes is how much of a reply is read; longer datagrams are truncated.
const udpReplyBytes = 2048

func (c *udpChecker) Check(ctx context.Context) Result {
	return probe(ctx, c.timeout, c.send)
}

func (c *udpChecker) send(ctx context.Context) (string, int, error) {
	conn, err := dial(ctx, "udp", c.dest)
	if err != nil {
		return "", 0, err
	}
	defer conn.Close()
	stop := bindConn(ctx, conn)
	defer stop()

	if _, err := conn.Write(c.payload); err != nil {
		return "", 0, udpError(err)
	}
	var buf [udpReplyBytes]byte
	n, err := conn.Read(buf[:])
	if err != nil {
		var te *timeoutError
		timedOut := errors.Is(err, os.ErrDeadlineExceeded) &&
			(ctx.Err() == nil || errors.As(context.Cause(ctx), &te))
		if timedOut && !c.expectReply {
			return "no ICMP error", WeightUnchanged, nil
		}
		return "", 0, udpError(err)
	}
	if !bytes.Contains(buf[:n], c.expect) {
		return "", 0, failure("unexpected reply")
	}
	return "reply", WeightUnchanged, nil
}

func udpError(err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return failure("port unreachable")
	}
	return err
}
