package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/vrrp"
)

const (
	// notifyTimeout bounds one notify command; it is killed after that.
	notifyTimeout = 30 * time.Second
	// notifyDrain is how long shutdown waits for queued notifications (STOP).
	notifyDrain = 5 * time.Second
	// notifyQueue is how many notifications may wait per instance; more are
	// dropped with a warning rather than blocking the VRRP runner.
	notifyQueue = 32
)

// notifyCommands returns the commands keepalived would run for instance v entering
// state to with effective priority prio: the state's own notify_* first, then the
// generic notify with the arguments INSTANCE NAME STATE PRIORITY (keepalived's
// notify script interface; STOP for a shutdown).
func notifyCommands(v config.VRRP, to vrrp.State, prio uint8) []string {
	var cmds []string
	state := to.String()
	switch to {
	case vrrp.StateMaster:
		cmds = appendNonEmpty(cmds, v.NotifyMaster)
	case vrrp.StateBackup:
		cmds = appendNonEmpty(cmds, v.NotifyBackup)
	case vrrp.StateFault:
		cmds = appendNonEmpty(cmds, v.NotifyFault)
	case vrrp.StateInitialize:
		state = "STOP"
	}
	if v.Notify != "" {
		cmds = append(cmds, fmt.Sprintf("%s INSTANCE %s %s %d", v.Notify, shellQuote(v.Name), state, prio))
	}
	return cmds
}

func appendNonEmpty(cmds []string, c string) []string {
	if c == "" {
		return cmds
	}
	return append(cmds, c)
}

// shellQuote quotes s for /bin/sh as one word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// notifier runs notify commands with /bin/sh -c, each bounded by timeout, on one
// goroutine per instance so that an instance's notifications run in order; enqueue
// never blocks.
type notifier struct {
	log     *slog.Logger
	timeout time.Duration
	exec    func(ctx context.Context, command string) ([]byte, error)
	ctx     context.Context
	cancel  context.CancelFunc

	mu     sync.Mutex
	queues map[string]chan []string
	closed bool
	wg     sync.WaitGroup
}

func newNotifier(log *slog.Logger, timeout time.Duration, run func(ctx context.Context, command string) ([]byte, error)) *notifier {
	ctx, cancel := context.WithCancel(context.Background())
	return &notifier{log: log, timeout: timeout, exec: run, ctx: ctx, cancel: cancel, queues: map[string]chan []string{}}
}

// enqueue queues cmds for instance name.
func (n *notifier) enqueue(name string, cmds []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	q := n.queues[name]
	if q == nil {
		q = make(chan []string, notifyQueue)
		n.queues[name] = q
		n.wg.Add(1)
		go n.work(name, q)
	}
	select {
	case q <- cmds:
	default:
		n.log.Warn("VRRP notify queue full: notification dropped", "instance", name, "commands", cmds)
	}
}

func (n *notifier) work(name string, q <-chan []string) {
	defer n.wg.Done()
	for cmds := range q {
		for _, c := range cmds {
			n.run(name, c)
		}
	}
}

func (n *notifier) run(name, c string) {
	ctx, cancel := context.WithTimeout(n.ctx, n.timeout)
	defer cancel()
	out, err := n.exec(ctx, c)
	if err != nil {
		n.log.Warn("VRRP notify command failed", "instance", name, "command", c, "err", err, "output", string(out))
		return
	}
	n.log.Debug("VRRP notify command", "instance", name, "command", c)
}

// close stops accepting notifications and waits up to drain for the queued ones,
// then kills what still runs.
func (n *notifier) close(drain time.Duration) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.closed = true
	for _, q := range n.queues {
		close(q)
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(drain):
		n.cancel()
		<-done
	}
	n.cancel()
}
