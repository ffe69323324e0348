package health

import (
	"context"
	"errors"
	"io/fs"
	"strconv"
	"time"

	"github.com/gvs-lb/gvs/internal/script"
)

// execChecker is keepalived's MISC_CHECK: run a command; exit 0 is up, anything else
// down, except that with dynamic (misc_dynamic) exit 2–255 is up with weight exit−2.
//
// The command runs through a script.Runner (docs/scripts.md §3): as the configured
// script user, refused when unsafe under enable_script_security, with no stdin, in
// its own process group; on timeout the whole group is stopped (keepalived kills
// -pid too), so a script's children cannot outlive the check. Env tells it which
// real server it checks.
type execChecker struct {
	argv    []string
	env     []string
	timeout time.Duration
	dynamic bool
	run     *script.Runner
}

var _ Checker = (*execChecker)(nil)

func (c *execChecker) Check(ctx context.Context) Result {
	return probe(ctx, c.timeout, c.probe)
}

func (c *execChecker) probe(ctx context.Context) (string, int, error) {
	res, err := c.run.Run(ctx, script.Cmd{Argv: c.argv, Env: c.env})
	switch {
	case ctx.Err() != nil:
		return "", 0, ctx.Err()
	case errors.Is(err, script.ErrNotFound):
		return "", 0, failure("exec: not found")
	case errors.Is(err, fs.ErrPermission):
		return "", 0, failure("exec: permission denied")
	case errors.Is(err, script.ErrInsecure):
		return "", 0, failure("exec: refused: " + err.Error())
	case err != nil:
		return "", 0, failuref("exec: %v", err)
	}
	code := res.Exit
	switch {
	case code == 0:
		return "exit 0", WeightUnchanged, nil
	case code < 0:
		return "", 0, failure(res.Status) // "signal: killed"
	case c.dynamic && code >= 2:
		return "exit " + strconv.Itoa(code), code - 2, nil
	}
	return "", 0, failure("exit " + strconv.Itoa(code))
}
