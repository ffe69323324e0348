package config

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A reader collects the problems of one file. Values are read from the decoded
// TOML (maps of any) through tables, which check types and remember which keys
// the schema knows, so unknown keys are reported with their line and a suggestion.
//
// Reading does not go through BurntSushi's struct decoding on purpose: it matches
// keys case-insensitively (so "Weight" would pass silently), stops at the first
// type mismatch, and cannot place a key inside an array of tables.
type reader struct {
	file    string
	lines   lineIndex
	errs    Errors           // at most 2*maxErrors; see keep
	dropped int              // problems found beyond the first maxErrors in line order
	rules   map[Match]string // fwmark match rules (Line zero) → path of the first with the same effect
	// clusterOn is whether the file turns cluster mode on: it changes defaults of
	// tables read before [cluster] (clusterOn).
	clusterOn bool
	// clusterECMP is whether its VIPs go to an ECMP router (announce = "bird"):
	// only then do inhibit_on_failure and mh-fallback default on.
	clusterECMP bool
	// seen, when set (tests), is told each table's known keys as it is done with.
	seen func(t *table)
}

// maxErrors is how many problems Parse lists: the first in line order, then how
// many more there are. Enough to fix a file by, and it keeps a file that repeats
// one mistake (8 MiB of "1," in a list of strings is four million of them) from
// costing a GB of messages.
const maxErrors = 1000

func newReader(file string) *reader {
	return &reader{file: file, lines: lineIndex{}, rules: map[Match]string{}}
}

// errorf records a problem with the value at path.
func (r *reader) errorf(path, format string, args ...any) {
	r.add(path, fmt.Errorf(format, args...))
}

func (r *reader) add(path string, err error) {
	r.keep(&Error{File: r.file, Line: r.lines.line(path), Field: path, Err: err})
}

// keep records a problem. It holds on to at most 2*maxErrors: when that many
// have gathered it keeps the first maxErrors in line order and counts the rest.
func (r *reader) keep(e *Error) {
	r.errs = append(r.errs, e)
	if len(r.errs) == 2*maxErrors {
		r.trim()
	}
}

// trim sorts the problems by line (stable, so problems found on one line keep
// the order in which they were checked) and drops all but the first maxErrors.
// Trimming as they come keeps the same problems as trimming once at the end.
func (r *reader) trim() {
	slices.SortStableFunc(r.errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	if n := len(r.errs) - maxErrors; n > 0 {
		r.dropped += n
		clear(r.errs[maxErrors:])
		r.errs = r.errs[:maxErrors]
	}
}

// result returns the problems sorted by line, or nil. Beyond maxErrors, a last
// entry says how many more there are.
func (r *reader) result() error {
	if len(r.errs) == 0 {
		return nil
	}
	r.trim()
	if r.dropped > 0 {
		r.errs = append(r.errs, &Error{File: r.file, Line: r.errs[len(r.errs)-1].Line,
			Err: fmt.Errorf("and %d more problems after these (gvs lists the first %d)", r.dropped, maxErrors)})
		r.dropped = 0
	}
	return r.errs
}

// A table is one TOML table being read.
type table struct {
	r     *reader
	path  string
	m     map[string]any
	known []string
}

func (r *reader) table(path string, m map[string]any) *table {
	return &table{r: r, path: path, m: m}
}

// key returns the path of one of t's keys.
func (t *table) key(k string) string { return joinKey(t.path, k) }

// errorf records a problem with t's key k.
func (t *table) errorf(k, format string, args ...any) { t.r.errorf(t.key(k), format, args...) }

// fail records err as the problem with t's key k.
func (t *table) fail(k string, err error) { t.r.add(t.key(k), err) }

// get returns the raw value of k and marks k as part of the schema.
func (t *table) get(k string) (any, bool) {
	t.known = append(t.known, k)
	v, ok := t.m[k]
	return v, ok
}

// present reports whether k is set, marking it known.
func (t *table) present(k string) bool {
	_, ok := t.get(k)
	return ok
}

// emptyList reports whether k is an array with no elements (match = []), which
// array reads as no tables without an error.
func (t *table) emptyList(k string) bool {
	v, _ := t.get(k)
	switch v := v.(type) {
	case []any:
		return len(v) == 0
	case []map[string]any:
		return len(v) == 0
	}
	return false
}

func (t *table) typeErr(k string, want string, v any) {
	t.r.add(t.key(k), fmt.Errorf("%w: want %s, got %s", ErrType, want, describe(v)))
}

// str reads a string into dst; it reports whether a valid value was read.
func (t *table) str(k string, dst *string) bool {
	v, ok := t.get(k)
	if !ok {
		return false
	}
	s, ok := v.(string)
	if !ok {
		t.typeErr(k, "a string", v)
		return false
	}
	*dst = s
	return true
}

// boolean reads a boolean into dst.
func (t *table) boolean(k string, dst *bool) bool {
	v, ok := t.get(k)
	if !ok {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		t.typeErr(k, "a boolean (true or false)", v)
		return false
	}
	*dst = b
	return true
}

// integer reads an integer in [lo, hi] into dst.
func (t *table) integer(k string, lo, hi int64, dst *int64) bool {
	v, ok := t.get(k)
	if !ok {
		return false
	}
	n, ok := v.(int64)
	if !ok {
		t.typeErr(k, "an integer", v)
		return false
	}
	switch {
	case n < lo && lo == 0:
		t.errorf(k, "must not be negative (got %d)", n)
		return false
	case n < lo:
		t.errorf(k, "must be at least %d (got %d)", lo, n)
		return false
	case n > hi:
		t.errorf(k, "must be at most %d (got %d)", hi, n)
		return false
	}
	*dst = n
	return true
}

// intField reads an integer in [lo, hi] into an int.
func (t *table) intField(k string, lo, hi int64, dst *int) bool {
	var n int64
	if !t.integer(k, lo, hi, &n) {
		return false
	}
	*dst = int(n)
	return true
}

// duration reads a non-negative duration: a Go duration string ("300s", "1m30s"),
// or seconds as keepalived users write them (300, "300", 0.5).
func (t *table) duration(k string, dst *time.Duration) bool {
	v, ok := t.get(k)
	if !ok {
		return false
	}
	d, err := parseDuration(v)
	if err != nil {
		t.fail(k, err)
		return false
	}
	*dst = d
	return true
}

// positiveDuration is duration that must also be > 0.
func (t *table) positiveDuration(k string, dst *time.Duration) bool {
	var d time.Duration
	if !t.duration(k, &d) {
		return false
	}
	if d <= 0 {
		t.errorf(k, "must be greater than zero")
		return false
	}
	*dst = d
	return true
}

// strings reads an array of strings; each element is reported on its own line.
func (t *table) strings(k string, dst *[]string) bool {
	v, ok := t.get(k)
	if !ok {
		return false
	}
	arr, ok := v.([]any)
	if !ok {
		t.typeErr(k, "an array of strings", v)
		return false
	}
	out := make([]string, 0, len(arr))
	good := true
	for i, e := range arr {
		s, ok := e.(string)
		if !ok {
			t.r.add(joinIndex(t.key(k), i), fmt.Errorf("%w: want a string, got %s", ErrType, describe(e)))
			good = false
			continue
		}
		out = append(out, s)
	}
	if good {
		*dst = out
	}
	return good
}

// sub returns the sub-table k, or nil when absent or not a table.
func (t *table) sub(k string) *table {
	v, ok := t.get(k)
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.typeErr(k, "a table", v)
		return nil
	}
	return t.r.table(t.key(k), m)
}

// array returns the elements of the array of tables k ([[k]] or k = [{...}]).
func (t *table) array(k string) []*table {
	v, ok := t.get(k)
	if !ok {
		return nil
	}
	var elems []*table
	switch v := v.(type) {
	case []map[string]any:
		for i, m := range v {
			elems = append(elems, t.r.table(joinIndex(t.key(k), i), m))
		}
	case []any:
		for i, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				t.r.add(joinIndex(t.key(k), i), fmt.Errorf("%w: want a table, got %s", ErrType, describe(e)))
				continue
			}
			elems = append(elems, t.r.table(joinIndex(t.key(k), i), m))
		}
	default:
		t.typeErr(k, "an array of tables ([["+headerName(t.key(k))+"]])", v)
	}
	return elems
}

// done reports every key of t that the schema does not know, in file order.
func (t *table) done() {
	type unknownKey struct {
		k    string
		line int
	}
	var unknown []unknownKey
	for k := range t.m {
		if !slices.Contains(t.known, k) {
			unknown = append(unknown, unknownKey{k, t.r.lines.line(t.key(k))})
		}
	}
	slices.SortFunc(unknown, func(a, b unknownKey) int {
		return cmp.Or(cmp.Compare(a.line, b.line), strings.Compare(a.k, b.k))
	})
	for _, u := range unknown {
		err := fmt.Errorf("%w %q", ErrUnknownKey, u.k)
		if s := suggest(u.k, t.known); s != "" {
			err = fmt.Errorf("%w %q (did you mean %q?)", ErrUnknownKey, u.k, s)
		}
		t.r.keep(&Error{File: t.r.file, Line: u.line, Field: t.path, Err: err})
	}
	if t.r.seen != nil {
		t.r.seen(t)
	}
	t.known = nil // done with, and there may be a hundred thousand tables
}

// describe names a decoded TOML value's type for messages: `integer -2`.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return "string " + strconv.Quote(v)
	case int64:
		return "integer " + strconv.FormatInt(v, 10)
	case float64:
		return "float " + strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return "boolean " + strconv.FormatBool(v)
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date-time"
	}
	return fmt.Sprintf("%T", v)
}

// maxSeconds is the largest whole number of seconds a time.Duration holds.
const maxSeconds = math.MaxInt64 / int64(time.Second)

// parseDuration accepts Go duration strings and, like keepalived, plain seconds
// (integers, floats, or strings of either).
func parseDuration(v any) (time.Duration, error) {
	var d time.Duration
	switch v := v.(type) {
	case int64:
		if v > maxSeconds || v < -maxSeconds {
			return 0, fmt.Errorf("duration %d s is out of range", v)
		}
		d = time.Duration(v) * time.Second
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > float64(maxSeconds) {
			return 0, fmt.Errorf("duration %v s is out of range", v)
		}
		d = time.Duration(v * float64(time.Second))
	case string:
		s := strings.TrimSpace(v)
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return parseDuration(n)
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return parseDuration(f)
		}
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("invalid duration %q (want e.g. \"300s\", \"1m30s\", or seconds)", v)
		}
	default:
		return 0, fmt.Errorf("%w: want a duration (\"300s\" or seconds), got %s", ErrType, describe(v))
	}
	if d < 0 {
		return 0, fmt.Errorf("must not be negative (got %v)", d)
	}
	return d, nil
}

// suggest returns the candidate closest to word if it is close enough to be a
// likely typo, else "". A candidate whose length differs from word's by more
// than that is too far without comparing them, so the cost does not grow with
// word, which may be any string of the file (oneOf suggests for values).
func suggest(word string, candidates []string) string {
	limit := max(1, min(3, len(word)/3))
	lower := strings.ToLower(word)
	best, bestDist := "", 0
	for _, c := range candidates {
		c2 := strings.ToLower(c)
		if len(lower) > len(c2)+limit || len(c2) > len(lower)+limit {
			continue // editDistance is at least the difference in length
		}
		d := editDistance(lower, c2)
		if best == "" || d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" || bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the Damerau-Levenshtein (optimal string alignment) distance,
// so a swap of two letters ("wieght") counts as one edit. It keeps three rows of
// the distance matrix, the most a transposition looks back.
func editDistance(a, b string) int {
	n := len(b) + 1
	rows := make([]int, 3*n)
	back, prev, cur := rows[:n], rows[n:2*n], rows[2*n:] // rows i-2, i-1 and i
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], back[j-2]+1)
			}
		}
		back, prev, cur = prev, cur, back
	}
	return prev[len(b)]
}

// oneOf returns the canonical spelling of s among names (case-insensitively), or
// an error listing them and suggesting the closest.
func oneOf(what, s string, names ...string) (string, error) {
	for _, n := range names {
		if strings.EqualFold(s, n) {
			return n, nil
		}
	}
	msg := fmt.Sprintf("unknown %s %q", what, s)
	if sug := suggest(s, names); sug != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", sug)
	}
	return "", errors.New(msg + "; one of: " + strings.Join(names, ", "))
}

// headerName returns path as a TOML table header spells it, without the array
// indices: service[0].real_server → service.real_server.
func headerName(path string) string {
	var b strings.Builder
	quoted, index := false, false
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case quoted && c == '\\' && i+1 < len(path):
			b.WriteByte(c)
			i++
			c = path[i]
		case c == '"':
			quoted = !quoted
		case !quoted && c == '[':
			index = true
		case !quoted && c == ']':
			index = false
			continue
		}
		if !index {
			b.WriteByte(c)
		}
	}
	return b.String()
}
