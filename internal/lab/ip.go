package lab

import (
	"bytes"
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// A CommandError is a command the lab ran that failed: which command, what it said
// on stderr and, for `ip -batch`, the line that failed.
type CommandError struct {
	Args   []string // the command line
	Line   string   // ip -batch: the failing batch line; "" otherwise
	Stderr string   // trimmed
	Err    error    // from os/exec: usually an *exec.ExitError
}

func (e *CommandError) Error() string {
	var b strings.Builder
	b.WriteString(strings.Join(e.Args, " "))
	if e.Line != "" {
		b.WriteString(" [")
		b.WriteString(e.Line)
		b.WriteString("]")
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if e.Stderr != "" {
		b.WriteString(": ")
		b.WriteString(e.Stderr)
	}
	return b.String()
}

func (e *CommandError) Unwrap() error { return e.Err }

// batchFailRE finds the failing line in ip -batch's "Command failed -:3".
var batchFailRE = regexp.MustCompile(`Command failed -:(\d+)`)

// ipBatch runs `ip [-n ns] -batch -` with one command per line: one process for a
// whole namespace's setup, and the error names the line that failed. ns "" runs in
// the caller's namespace (only ever for `netns add`/`netns del`, which create
// nothing there but the names in /run/netns).
func ipBatch(ctx context.Context, ns string, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	args := []string{"ip"}
	if ns != "" {
		args = append(args, "-n", ns)
	}
	args = append(args, "-batch", "-")
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		e := &CommandError{Args: args, Stderr: strings.TrimSpace(stderr.String()), Err: err}
		if m := batchFailRE.FindStringSubmatch(e.Stderr); m != nil {
			if n, _ := strconv.Atoi(m[1]); n >= 1 && n <= len(lines) {
				e.Line = lines[n-1]
			}
		}
		return e
	}
	return nil
}

// output runs a command and returns its stdout.
func output(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, &CommandError{Args: args, Stderr: strings.TrimSpace(stderr.String()), Err: err}
	}
	return out, nil
}

// namespaces lists the network namespaces `ip netns` knows.
func namespaces(ctx context.Context) (map[string]bool, error) {
	out, err := output(ctx, "ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	set := make(map[string]bool)
	for line := range strings.Lines(string(out)) {
		// "name (id: 3)" or "name"
		if f := strings.Fields(line); len(f) > 0 {
			set[f[0]] = true
		}
	}
	return set, nil
}

// nsPIDs returns the processes whose network namespace is ns.
func nsPIDs(ctx context.Context, ns string) ([]int, error) {
	out, err := output(ctx, "ip", "netns", "pids", ns)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
