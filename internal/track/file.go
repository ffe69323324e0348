package track

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxFileRead is how much of a tracked file is read: a number and some space.
const maxFileRead = 64

// ParseFileValue reads a tracked file's content as keepalived does with strtol
// (base 0): leading space, an optional sign, then decimal, 0x hex or 0 octal digits,
// as many as there are; no digits reads as 0. ok is false for a number outside the
// 32-bit range, which keepalived ignores (the previous value stays).
func ParseFileValue(b []byte) (v int64, ok bool) {
	s := strings.TrimLeft(string(b), " \t\n\r\v\f")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg, s = s[0] == '-', s[1:]
	}
	base := 10
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && digitOf(s[2], 16):
		base, s = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base = 8
	}
	n := 0
	for n < len(s) && digitOf(s[n], base) {
		n++
	}
	if n == 0 {
		return 0, true
	}
	u, err := strconv.ParseUint(s[:n], base, 64)
	if err != nil || u > math.MaxInt32+1 {
		return 0, false
	}
	v = int64(u)
	if neg {
		v = -v
	}
	if v > math.MaxInt32 {
		return 0, false
	}
	return v, true
}

func digitOf(c byte, base int) bool {
	var d int
	switch {
	case '0' <= c && c <= '9':
		d = int(c - '0')
	case 'a' <= c && c <= 'f':
		d = int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		d = int(c-'A') + 10
	default:
		return false
	}
	return d < base
}

// File tracks the integer value of a file (keepalived's track_file), read every
// interval. keepalived watches the file with inotify; gvs reads it at each poll,
// which bounds the delay by the interval and also sees a file on a filesystem
// inotify does not watch. A missing or unreadable file reads as 0, as in keepalived.
// Value is safe for concurrent use.
type File struct {
	name, path string
	interval   time.Duration
	clock      Clock
	log        *slog.Logger
	onChange   func()

	mu    sync.Mutex
	value int64
	err   string // the last read problem, "" when none
}

// NewFile returns the tracker of the file at path, named name, read every interval.
// Its value is read once here, so that it is right before Run starts.
func NewFile(name, path string, interval time.Duration, clock Clock, log *slog.Logger, onChange func()) *File {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &File{name: name, path: path, interval: interval, clock: clock, log: log, onChange: onChange}
	f.poll()
	return f
}

// Name returns the tracked file's name.
func (f *File) Name() string { return f.name }

// Value returns the file's last value.
func (f *File) Value() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.value
}

// Run reads the file every interval until ctx ends.
func (f *File) Run(ctx context.Context) error {
	for {
		c, stop := f.clock.NewTimer(f.interval)
		select {
		case <-ctx.Done():
			stop()
			return nil
		case <-c:
		}
		if f.poll() && f.onChange != nil {
			f.onChange()
		}
	}
}

// poll reads the file and reports whether its value changed.
func (f *File) poll() bool {
	v, problem := readValue(f.path)
	f.mu.Lock()
	old, oldProblem := f.value, f.err
	ignored := strings.HasPrefix(problem, "ignored")
	if !ignored {
		f.value = v
	}
	f.err = problem
	f.mu.Unlock()
	if problem != oldProblem && problem != "" {
		f.log.Warn("tracked file", "track_file", f.name, "path", f.path, "problem", problem)
	}
	if !ignored && v != old {
		f.log.Info("tracked file value changed", "track_file", f.name, "path", f.path, "from", old, "to", v)
		return true
	}
	return false
}

// readValue returns the file's value and a problem to report ("" when none); a
// problem starting "ignored" keeps the previous value.
func readValue(path string) (int64, string) {
	fh, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, "" // keepalived: a missing file is 0
		}
		return 0, "unreadable, counts as 0: " + err.Error()
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxFileRead))
	if err != nil {
		return 0, "unreadable, counts as 0: " + err.Error()
	}
	v, ok := ParseFileValue(b)
	if !ok {
		return 0, "ignored: " + strconv.Quote(strings.TrimSpace(string(b))) + " is outside the 32-bit range"
	}
	return v, ""
}
