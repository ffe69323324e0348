package script

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"time"
)

// DefaultUserName is the user scripts run as when the configuration names none and
// it exists (keepalived's default).
const DefaultUserName = "keepalived_script"

// DefaultGrace is how long a timed-out command has between SIGTERM and SIGKILL
// (keepalived waits 2 s).
const DefaultGrace = 2 * time.Second

// DefaultMaxOutput bounds the output a Result keeps.
const DefaultMaxOutput = 4096

// ErrInsecure is wrapped by the error of a command refused because a path it runs
// from is writable by someone other than root (see InsecureError).
var ErrInsecure = errors.New("insecure script")

// ErrNotFound is wrapped by the error of a command whose program does not exist or
// cannot be found in PATH.
var ErrNotFound = errors.New("script not found")

// InsecureError says which path makes a command unsafe to run as root, and why.
type InsecureError struct {
	Command string // the program as configured
	Path    string // the file or directory at fault
	Why     string // "writable by group 1000", "owned by uid 1000", …
}

func (e *InsecureError) Error() string {
	return fmt.Sprintf("%s: refusing to run %q as root: %s is %s (make it owned by root and writable only by root, or set a script_user)",
		ErrInsecure, e.Command, e.Path, e.Why)
}

func (e *InsecureError) Unwrap() error { return ErrInsecure }

// A User is who a command runs as.
type User struct {
	Name string // for messages
	UID  uint32
	GID  uint32
	// Groups are the supplementary groups; nil means none.
	Groups []uint32
}

// Root reports whether u is root by user or group (keepalived protects such runs).
func (u *User) Root() bool { return u.UID == 0 || u.GID == 0 }

func (u *User) String() string {
	return fmt.Sprintf("%s (uid %d gid %d)", u.Name, u.UID, u.GID)
}

// LookupUser resolves keepalived's "USER [GROUP]": a name or numeric id, and an
// optional group (default: the user's primary group). The supplementary groups are
// the user's.
func LookupUser(name, group string) (*User, error) {
	if name == "" {
		return nil, errors.New("script: empty user name")
	}
	u, err := user.Lookup(name)
	if err != nil {
		if _, nerr := strconv.ParseUint(name, 10, 32); nerr == nil {
			u, err = user.LookupId(name)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("script: user %q: %w", name, err)
	}
	out := &User{Name: u.Username}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("script: user %q has a non-numeric id (%s:%s)", name, u.Uid, u.Gid)
	}
	out.UID, out.GID = uint32(uid), uint32(gid)
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			if _, nerr := strconv.ParseUint(group, 10, 32); nerr == nil {
				g, err = user.LookupGroupId(group)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("script: group %q: %w", group, err)
		}
		gid, err := strconv.ParseUint(g.Gid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("script: group %q has a non-numeric id %s", group, g.Gid)
		}
		out.GID = uint32(gid)
	}
	if ids, err := u.GroupIds(); err == nil {
		for _, s := range ids {
			if g, err := strconv.ParseUint(s, 10, 32); err == nil {
				out.Groups = append(out.Groups, uint32(g))
			}
		}
	}
	return out, nil
}

// ParseUser resolves a config's user string, "USER" or "USER GROUP".
func ParseUser(s string) (*User, error) {
	f := strings.Fields(s)
	switch len(f) {
	case 1:
		return LookupUser(f[0], "")
	case 2:
		return LookupUser(f[0], f[1])
	}
	return nil, fmt.Errorf("script: user %q: want \"USER\" or \"USER GROUP\"", s)
}

// DefaultUser returns the user scripts run as when the config names none:
// DefaultUserName if it exists; otherwise nil (gvs's own user) and a warning to log,
// as keepalived warns. gvs running as another user than root cannot switch users:
// then it is nil, with no warning.
func DefaultUser() (*User, string) {
	if !isRoot() {
		return nil, ""
	}
	u, err := LookupUser(DefaultUserName, "")
	if err != nil {
		return nil, fmt.Sprintf("user %s does not exist: scripts run as gvs's own user (root); create that user or set script_user", DefaultUserName)
	}
	return u, ""
}

// A Cmd is one command to run.
type Cmd struct {
	// Argv is the program and its arguments, run without a shell; or
	Argv []string
	// Shell, when Argv is empty, is run with /bin/sh -c (notify and quorum
	// commands). Its first word is the program the security check looks at.
	Shell string
	// Env is added to gvs's environment ("NAME=value").
	Env []string
	// User overrides the Runner's default user; nil means the default.
	User *User
	// Timeout bounds the run; 0 means only ctx does.
	Timeout time.Duration
}

// program returns the word naming the program: Argv[0], or the first word of Shell.
func (c *Cmd) program() string {
	if len(c.Argv) > 0 {
		return c.Argv[0]
	}
	f := strings.Fields(c.Shell)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

func (c *Cmd) String() string {
	if len(c.Argv) > 0 {
		return strings.Join(c.Argv, " ")
	}
	return c.Shell
}

// Result is the outcome of a command that ran.
type Result struct {
	// Exit is the exit status, or -1 when a signal ended the command.
	Exit int
	// TimedOut reports that the timeout (or ctx) ended the command; it is then a
	// failure whatever Exit says.
	TimedOut bool
	// Output is the start of what the command wrote to stdout and stderr
	// (DefaultMaxOutput bytes at most).
	Output []byte
	// Duration is how long the command ran.
	Duration time.Duration
	// Status is how the process ended, as os.ProcessState says it ("exit status
	// 3", "signal: killed").
	Status string
}

// OK reports whether the command exited 0 in time.
func (r Result) OK() bool { return r.Exit == 0 && !r.TimedOut }

// Reason describes the outcome in a few words: "exit 0", "exit 3", "killed at
// timeout 2s", "signal: killed".
func (r Result) Reason(timeout time.Duration) string {
	switch {
	case r.TimedOut && timeout > 0:
		return "killed at timeout " + timeout.String()
	case r.TimedOut:
		return "cancelled"
	case r.Exit < 0:
		return "ended by a signal"
	}
	return "exit " + strconv.Itoa(r.Exit)
}

// A Runner runs commands under one policy. The zero value runs commands as gvs's
// own user without security checks. A Runner is safe for concurrent use; do not
// change its fields while it is in use.
type Runner struct {
	// User is the default user (script_user); nil means gvs's own user.
	User *User
	// Secure refuses commands that would run as root from a path writable by
	// someone other than root (enable_script_security).
	Secure bool
	// Grace is the time between SIGTERM and SIGKILL at a timeout; 0 means
	// DefaultGrace.
	Grace time.Duration
	// Log receives a warning for an unsafe command run anyway (Secure off); nil
	// discards.
	Log *slog.Logger
}

// user returns who c runs as: its own user, the Runner's, or nil (ourselves).
func (r *Runner) user(c *Cmd) *User {
	if c.User != nil {
		return c.User
	}
	return r.User
}

// Check finds c's program and applies the security rule: it returns an error
// wrapping ErrNotFound when the program is missing, and one wrapping ErrInsecure
// (an *InsecureError) when Secure is set, the command would run as root and a path
// it runs from is writable by someone other than root. Without Secure an unsafe
// path is logged, not refused.
func (r *Runner) Check(c Cmd) error {
	prog := c.program()
	if prog == "" {
		return errors.New("script: empty command")
	}
	if len(c.Argv) == 0 && !strings.Contains(prog, "/") {
		if _, err := lookPath(prog); err != nil {
			return nil // a shell builtin or keyword ("trap", "if"): the shell runs it
		}
	}
	u := r.user(&c)
	asRoot := u == nil && isRoot() || u != nil && u.Root()
	if !asRoot {
		// keepalived protects only runs with root's rights; the program must
		// still exist.
		_, err := lookPath(prog)
		return err
	}
	err := checkSecure(prog)
	var ie *InsecureError
	if errors.As(err, &ie) && !r.Secure {
		if r.Log != nil {
			r.Log.Warn("unsafe script run as root (set enable_script_security to refuse it)", "command", c.String(), "err", err)
		}
		return nil
	}
	return err
}

// Run checks c (see Check) and runs it. The error is non-nil only when the command
// could not run: refused, not found, or not started; a command that ran and failed
// or timed out returns its Result and nil.
func (r *Runner) Run(ctx context.Context, c Cmd) (Result, error) {
	if err := r.Check(c); err != nil {
		return Result{Exit: -1}, err
	}
	var cmd *exec.Cmd
	if len(c.Argv) > 0 {
		cmd = exec.Command(c.Argv[0], c.Argv[1:]...)
	} else {
		cmd = exec.Command("/bin/sh", "-c", c.Shell)
	}
	if len(c.Env) > 0 {
		cmd.Env = append(cmd.Environ(), c.Env...)
	}
	out := &limitedBuffer{max: DefaultMaxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	setup(cmd, r.user(&c))
	grace := r.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	// A child that keeps the output pipe open after the program exited does not
	// hold Wait for longer than the grace period.
	cmd.WaitDelay = grace
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{Exit: -1}, fmt.Errorf("script: start %q: %w", c.String(), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	timedOut := false
	select {
	case err = <-done:
	case <-ctx.Done():
		timedOut = true
		signalGroup(cmd, false)
		t := time.NewTimer(grace)
		select {
		case err = <-done:
			t.Stop()
		case <-t.C:
			signalGroup(cmd, true)
			err = <-done
		}
	}
	// Children left in the group are killed too: a timed-out script's helpers
	// must not outlive it, whatever the leader did with SIGTERM.
	if timedOut {
		signalGroup(cmd, true)
	}
	res := Result{Exit: 0, TimedOut: timedOut, Output: out.Bytes(), Duration: time.Since(start)}
	if cmd.ProcessState != nil {
		res.Status = cmd.ProcessState.String()
	}
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return Result{Exit: -1}, fmt.Errorf("script: wait %q: %w", c.String(), err)
		}
		res.Exit = ee.ExitCode()
	}
	return res, nil
}

// limitedBuffer keeps the first max bytes written to it and discards the rest. (It
// does not embed bytes.Buffer: io.Copy would use the promoted ReadFrom and bypass
// the limit.)
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte { return b.buf.Bytes() }
