package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Bounds of process start and stop.
const (
	readyTimeout = 10 * time.Second       // a helper must report ready within this
	startGrace   = 500 * time.Millisecond // Start: a process alive this long has started
	stopTimeout  = 2 * time.Second        // after SIGTERM, before SIGKILL
	// killTimeout bounds the wait for a SIGKILLed process to be gone: it cannot refuse,
	// but its exit waits for the kernel to release what it held (packet rings, TAP
	// devices), which took over 2 s while other labs' namespaces were torn down (two
	// lab runs at once: "pid still running after SIGKILL" in both, at the same moment).
	killTimeout = 30 * time.Second
	readyFD     = 3 // the helper's end of the readiness pipe (first ExtraFiles entry)
)

// Start runs `Exe args...` inside host's namespace, detached from the terminal,
// its output appended to RunDir/<host>-<name>.log, and records it in the state
// file so Down stops it by PID. It returns once the process has stayed up for half
// a second, or with its log's tail if it exited sooner.
func (l *Lab) Start(ctx context.Context, host, name string, args ...string) (Proc, error) {
	return l.start(ctx, host, name, false, args...)
}

// StartDirector runs `Exe run -c configPath` in director's namespace ("dir1",
// "dir2"): gvs as that director. configPath "" means ConfigPath(director), the
// config Up generated.
func (l *Lab) StartDirector(ctx context.Context, director, configPath string) (Proc, error) {
	h, ok := l.Host(director)
	if !ok || h.Role != Director {
		return Proc{}, fmt.Errorf("lab %s: %q is not a director", l.spec.Prefix, director)
	}
	if configPath == "" {
		configPath = l.ConfigPath(director)
	}
	return l.start(ctx, director, "director", false, "run", "-c", configPath)
}

// start runs Exe with args in host's namespace. With ready, the process gets
// --ready-fd and start waits for it to write "ready" there (the helpers do once
// they listen); without, it waits startGrace for an early exit.
func (l *Lab) start(ctx context.Context, host, name string, ready bool, args ...string) (Proc, error) {
	return l.startArgv(ctx, host, name, ready, append([]string{l.spec.Exe}, args...))
}

// startArgv is start for any program: argv[0] need not be Exe (BIRD, say).
func (l *Lab) startArgv(ctx context.Context, host, name string, ready bool, argv []string) (Proc, error) {
	ns, err := l.ns(host)
	if err != nil {
		return Proc{}, err
	}
	if err := ctx.Err(); err != nil {
		return Proc{}, context.Cause(ctx)
	}
	if ready {
		argv = append(argv, "--ready-fd", strconv.Itoa(readyFD))
	}
	logPath := filepath.Join(l.RunDir(), host+"-"+name+".log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return Proc{}, fmt.Errorf("lab: %s %s: log: %w", host, name, err)
	}
	defer logf.Close()

	// Not CommandContext: the process outlives ctx, which only bounds the wait.
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	var readyR, readyW *os.File
	if ready {
		if readyR, readyW, err = os.Pipe(); err != nil {
			return Proc{}, fmt.Errorf("lab: %s %s: %w", host, name, err)
		}
		defer readyR.Close()
		cmd.ExtraFiles = []*os.File{readyW} // fd 3 in the child; ip netns exec passes it on
	}
	err = cmd.Start()
	if readyW != nil {
		// From here the child's copy alone keeps the pipe open: its exit means EOF.
		readyW.Close()
	}
	if err != nil {
		return Proc{}, fmt.Errorf("lab: %s %s: %w", host, name, err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(c.done)
	}()
	p := Proc{Host: host, Name: name, PID: cmd.Process.Pid, Argv: argv, Log: logPath}
	if _, start, err := procStat(p.PID); err == nil {
		p.Start = start
	}

	l.mu.Lock()
	l.children[p.PID] = c
	l.st.Procs = append(l.st.Procs, p)
	err = saveState(l.spec.StateDir, l.st)
	l.mu.Unlock()
	if err != nil {
		l.abandon(p, c)
		return Proc{}, err
	}

	var waitErr error
	if ready {
		waitErr = waitReady(ctx, readyR, c)
	} else {
		select {
		case <-c.done:
			waitErr = errors.New("exited at once")
		case <-time.After(startGrace):
		case <-ctx.Done():
			waitErr = context.Cause(ctx)
		}
	}
	if waitErr != nil {
		l.abandon(p, c)
		return Proc{}, fmt.Errorf("lab: %s: %s %s: %w%s", ns, name, strings.Join(argv, " "), waitErr, logTail(logPath))
	}
	l.log.Debug("lab process", "host", host, "name", name, "pid", p.PID)
	return p, nil
}

// waitReady waits for a helper's "ready" on r, its exit, ctx, or readyTimeout.
func waitReady(ctx context.Context, r *os.File, c *child) error {
	got := make(chan bool, 1)
	go func() {
		// Ends at EOF: when the helper closes its end, or dies (abandon kills it).
		b, _ := io.ReadAll(io.LimitReader(r, 64))
		got <- bytes.HasPrefix(b, []byte("ready"))
	}()
	t := time.NewTimer(readyTimeout)
	defer t.Stop()
	select {
	case ok := <-got:
		if ok {
			return nil
		}
		return errors.New("exited before it was ready")
	case <-t.C:
		return fmt.Errorf("not ready after %v", readyTimeout)
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// abandon stops a process that failed to start and forgets it.
func (l *Lab) abandon(p Proc, c *child) {
	stop(p, c)
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.children, p.PID)
	for i, q := range l.st.Procs {
		if q.PID == p.PID {
			l.st.Procs = append(l.st.Procs[:i], l.st.Procs[i+1:]...)
			break
		}
	}
	saveState(l.spec.StateDir, l.st) // best effort: Down skips dead PIDs anyway
}

// stop ends a lab process: SIGTERM, waited for at most stopTimeout, then SIGKILL,
// waited for at most killTimeout. c is non-nil for a child of this process, which is then signalled
// through os.Process (a pidfd: never a reused PID) and reaped; any other process
// is signalled only if its PID still has the recorded start time.
func stop(p Proc, c *child) error {
	id := procID{PID: p.PID, Start: p.Start}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		wait := stopTimeout
		if sig == syscall.SIGKILL {
			wait = killTimeout
		}
		if c != nil {
			select {
			case <-c.done:
				return nil
			default:
			}
			if err := c.cmd.Process.Signal(sig); err != nil {
				if errors.Is(err, os.ErrProcessDone) {
					<-c.done
					return nil
				}
				return err
			}
			select {
			case <-c.done:
				return nil
			case <-time.After(wait):
			}
			continue
		}
		sent, err := signalProc(id, sig)
		if err != nil || !sent {
			return err
		}
		for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if !alive(id) {
				return nil
			}
		}
	}
	return fmt.Errorf("pid %d still running after SIGKILL", p.PID)
}

// logTail returns the last lines of a log, for error messages.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return "; its log " + path + " ends:\n\t" + strings.Join(lines, "\n\t")
}
