package health

import (
	"context"
	"time"
)

// tcpChecker is keepalived's TCP_CHECK: the server is up when a TCP connection opens.
type tcpChecker struct {
	dest    dest
	timeout time.Duration
}

var _ Checker = (*tcpChecker)(nil)

func (c *tcpChecker) Check(ctx context.Context) Result {
	return probe(ctx, c.timeout, func(ctx context.Context) (string, int, error) {
		conn, err := dial(ctx, "tcp", c.dest)
		if err != nil {
			return "", 0, err
		}
		conn.Close()
		return "connected", WeightUnchanged, nil
	})
}
