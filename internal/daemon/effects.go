package daemon

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"sync"
	"time"

	"github.com/gvs-lb/gvs/dataplane/afpacket"
)

// effect is what the outside world must be told after the controller changed the
// Director: every field is optional.
type effect struct {
	filter      *filterView // set on the links that take filters
	setGuard    bool        // install the ingress guard for guard's VIPs
	guard       *filterView
	removeGuard bool
	ann         Announcer // announce each of announce repeat times on ann
	announce    []netip.Addr
	repeat      int
	scripts     []string // quorum commands, run with RunScript
	// kernel changes VRRP kernel addresses before the announcements and returns
	// more addresses to announce on ann.
	kernel func() []netip.Addr
	// done is closed once this effect and every one queued before it are performed.
	done chan struct{}
}

func (e *effect) empty() bool {
	return e.filter == nil && !e.setGuard && !e.removeGuard && len(e.announce) == 0 && len(e.scripts) == 0 && e.kernel == nil && e.done == nil
}

// flushed returns a channel closed once every effect queued before the call has been
// performed (or dropped by close): what waits for it sees the host as they left it.
func (f *effects) flushed() <-chan struct{} {
	c := make(chan struct{})
	f.mu.Lock()
	if f.closed {
		close(c)
	} else {
		f.q = append(f.q, effect{done: c})
	}
	f.mu.Unlock()
	select {
	case f.ready <- struct{}{}:
	default:
	}
	return c
}

// effects performs the controller's side effects on a goroutine of its own, in the
// order they were queued, so that a slow nft or an announcement never holds up the
// controller (nor anything waiting for it). Scripts run on goroutines it joins.
type effects struct {
	d *Daemon

	mu     sync.Mutex
	q      []effect
	spare  []effect // the array run performed last, cleared: q's next, so queueing allocates nothing
	closed bool
	ready  chan struct{}

	scripts sync.WaitGroup
	ctx     context.Context // cancelled once the queue is drained at close
	cancel  context.CancelFunc

	steered    string // what the links last said of their steering (logSteering)
	filterMode string // filterMode of the links' filter
	mirror     filterMirror
}

// steerer is a link of a fanout group that says whether NAT replies reach the worker
// of their flow, and why not (afpacket.Ring).
type steerer interface{ Steering() error }

var _ steerer = (*afpacket.Ring)(nil)

// logSteering logs how the links' fanout group steers frames when it changed: the
// links share one group, so the first one tells. It runs in New, before the
// effects goroutine starts, then on it.
func (f *effects) logSteering() {
	if len(f.d.links) < 2 {
		return
	}
	s, ok := f.d.links[0].(steerer)
	if !ok {
		return
	}
	why := "ok"
	if err := s.Steering(); err != nil {
		why = err.Error()
	}
	if why == f.steered {
		return
	}
	f.steered = why
	if why == "ok" {
		f.d.log.Info("workers: each flow and its NAT replies on one worker (PACKET_FANOUT_CBPF, by client)", "workers", len(f.d.links))
		return
	}
	f.d.log.Warn("workers: NAT replies may land on another worker than their flow (correct, slower)", "reason", why, "workers", len(f.d.links))
}

func newEffects(d *Daemon) *effects {
	ctx, cancel := context.WithCancel(context.Background())
	return &effects{d: d, ready: make(chan struct{}, 1), ctx: ctx, cancel: cancel}
}

// queue adds e behind the effects queued before it. It never blocks.
func (f *effects) queue(e effect) {
	if e.empty() {
		return
	}
	f.mu.Lock()
	if !f.closed {
		f.q = append(f.q, e)
	}
	f.mu.Unlock()
	select {
	case f.ready <- struct{}{}:
	default:
	}
}

// close makes run return once it has performed what is queued.
func (f *effects) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	select {
	case f.ready <- struct{}{}:
	default:
	}
}

// run performs the queued effects until close, then gives the scripts it started
// notifyDrain to finish and kills the ones still running.
func (f *effects) run() {
	defer func() {
		done := make(chan struct{})
		go func() {
			f.scripts.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(notifyDrain):
			f.cancel()
			<-done
		}
		f.cancel()
	}()
	for range f.ready {
		f.mu.Lock()
		q, closed := f.q, f.closed
		f.q, f.spare = f.spare, nil
		f.mu.Unlock()
		f.perform(q)
		if closed {
			return
		}
		clear(q) // what the effects named is not kept alive
		f.mu.Lock()
		f.spare = q[:0]
		f.mu.Unlock()
	}
}

// perform carries out a batch in order. Of several guard changes in one batch only
// the last is made: each replaces the previous one whole. Filters too: the
// batch's last filter is set where its first one was (the Director runs the
// newest services already), so a burst of gvs adm commands sets the links'
// filter once, not once per command; the mirror follows each filter's change on
// the way, at the cost of the change.
func (f *effects) perform(q []effect) {
	lastGuard, lastFilter := -1, -1
	for i := range q {
		if q[i].setGuard || q[i].removeGuard {
			lastGuard = i
		}
		if q[i].filter != nil {
			lastFilter = i
		}
	}
	log := f.d.log
	for i := range q {
		e := &q[i]
		if e.filter != nil && lastFilter >= 0 {
			var fl *afpacket.Filter
			for j := i; j <= lastFilter; j++ {
				if q[j].filter != nil {
					fl = f.mirror.follow(q[j].filter)
				}
			}
			lastFilter = -1 // set once
			for _, l := range f.d.links {
				if fs, ok := l.(FilterSetter); ok {
					if err := fs.SetFilter(fl); err != nil {
						log.Warn("link filter", "err", err)
					}
				}
			}
			if m := filterMode(fl); m != f.filterMode {
				f.filterMode = m
				log.Info("link filter", "mode", m, "vips", len(fl.VIPs))
			}
			f.logSteering()
		}
		if i == lastGuard && f.d.guard != nil {
			ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
			var err error
			if e.setGuard {
				err = f.d.guard.Install(ctx, slices.Clone(e.guard.flat().VIPs))
			} else {
				err = f.d.guard.Remove(ctx)
			}
			cancel()
			if err != nil {
				log.Warn("ingress guard", "err", err)
			}
		}
		if e.kernel != nil {
			e.announce = append(slices.Clip(e.announce), e.kernel()...)
		}
		if len(e.announce) > 0 && e.ann != nil {
			for range max(e.repeat, 1) {
				if err := e.ann.Announce(e.announce); err != nil {
					if !errors.Is(err, net.ErrClosed) {
						log.Warn("gratuitous ARP / unsolicited NA", "err", err)
					}
					break
				}
			}
		}
		if e.done != nil {
			close(e.done)
		}
		for _, c := range e.scripts {
			f.scripts.Add(1)
			go func() {
				defer f.scripts.Done()
				ctx, cancel := context.WithTimeout(f.ctx, scriptTimeout)
				defer cancel()
				if out, err := f.d.runScript(ctx, c); err != nil {
					log.Warn("quorum command failed", "command", c, "err", err, "output", string(out))
				}
			}()
		}
	}
}

// runScript runs a command with Deps.RunScript, or /bin/sh -c.
func (d *Daemon) runScript(ctx context.Context, c string) ([]byte, error) {
	if d.deps.RunScript != nil {
		return d.deps.RunScript(ctx, c)
	}
	return runShellAs(ctx, d.scripts, c)
}

// runShell runs c with /bin/sh -c and returns its output; it is killed when ctx
// ends.
func runShell(ctx context.Context, c string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", c)
	cmd.WaitDelay = time.Second
	return cmd.CombinedOutput()
}
