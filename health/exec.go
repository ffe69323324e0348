package health

import (
	"context"
	"errors"
	"io/fs"
	"os/exec"
	"strconv"
	"time"
)

// execChecker is keepalived's MISC_CHECK: run a command; exit 0 is up, anything else
// down, except that with dynamic (misc_dynamic) exit 2–255 is up with weight exit−2.
//
// The command gets no stdin and its output goes to /dev/null, so nothing it writes is
// buffered. It runs in its own process group, and on timeout the whole group is killed
// (keepalived kills -pid too), so a script's children cannot outlive the check.
type execChecker struct {
	argv    []string
	timeout time.Duration
	dynamic bool
}

var _ Checker = (*execChecker)(nil)

// execWaitDelay bounds Wait after the kill, should a process survive SIGKILL
// (uninterruptible sleep).
const execWaitDelay = time.Second

func (c *execChecker) Check(ctx context.Context) Result {
	return probe(ctx, c.timeout, c.run)
}

func (c *execChecker) run(ctx context.Context) (string, int, error) {
	cmd := exec.CommandContext(ctx, c.argv[0], c.argv[1:]...)
	cmd.WaitDelay = execWaitDelay
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		switch {
		case ctx.Err() != nil:
			return "", 0, err
		case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
			return "", 0, failure("exec: not found")
		case errors.Is(err, fs.ErrPermission):
			return "", 0, failure("exec: permission denied")
		}
		return "", 0, failuref("exec: %v", err)
	}
	err := cmd.Wait()
	if ctx.Err() != nil {
		return "", 0, ctx.Err()
	}
	if err == nil {
		return "exit 0", WeightUnchanged, nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return "", 0, failuref("exec: %v", err)
	}
	code := ee.ExitCode()
	switch {
	case code < 0:
		return "", 0, failure(ee.ProcessState.String()) // "signal: killed"
	case c.dynamic && code >= 2:
		return "exit " + strconv.Itoa(code), code - 2, nil
	}
	return "", 0, failure("exit " + strconv.Itoa(code))
}
