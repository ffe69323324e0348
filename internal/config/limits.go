package config

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Limits on a config file. Parse refuses a file beyond them before the TOML
// decoder sees it, so that what a reload costs is bounded by the file's size.
//
// The decoder (BurntSushi/toml v1.6.0) stores, for every key, the key's full path
// as a string and as a slice of parts, and walks that path from the root once per
// key and once per part of a dotted key. So it costs keys × depth, which is
// quadratic in the file's size when the depth grows with the file. Measured:
// 32 KB of nested inline tables (a = {a = {a = …}}) allocate 7.5 GB, 48 KB of
// nested arrays of inline tables 8.4 GB, a dotted key of 8,000 parts (16 KB)
// 2.6 GB, a table header as long 0.8 GB, 4,000 keys inside 4,000 nested inline
// tables (47 KB) 3.2 GB; each doubling of the input quadruples these. Arrays
// nested on their own, long arrays, long strings, comments, and many keys or
// tables are linear. gvs's own line index (lines.go) records the path of every
// key and element, so it has the same shape. Bounding the depth and the length
// of a key bounds every stored path, and with it the cost of a byte.
const (
	// MaxFileSize is the largest file Load and Parse accept, in bytes: three times
	// a config of 10,000 services with two or three real servers each (2.7 MB,
	// parsed in about 0.4 s). A real config of this size peaks at about 300 MB;
	// the costliest constructs within the limits below (many keys under a header
	// of long keys, or four million array elements of the wrong type) at about
	// 1.5 GB.
	MaxFileSize = 8 << 20

	// MaxDepth is how deep a value may sit, counting as one level each part of
	// its key (those of the [table] header, of a dotted key and of the keys of
	// enclosing inline tables) and each enclosing array. The deepest value of the
	// schema is a check's status code written all inline,
	// service = [{check = {status_codes = [200]}}]: 5 levels (service, its array,
	// check, status_codes, its array), 4 with [service.check]. The margin lets a
	// near miss, such as a check inside a real server (7), get the schema's own
	// "unknown key" error instead of this one.
	MaxDepth = 8

	// MaxKeyLen is the longest key, or part of a dotted key, in bytes as written
	// (between the quotes for a quoted key). The longest key of the schema has 26
	// bytes (garp_master_refresh_repeat); a key is stored once per value under it.
	MaxKeyLen = 64

	// MaxTables is how many tables a file may hold: [table] and [[table]]
	// headers, and inline tables. Each costs a kilobyte or so once read, however
	// few bytes it takes: service = [{}, {}, …] of MaxFileSize is 2.8 million
	// services and over 3 GB. A real config reaches it only with some 250,000
	// real servers (10,000 services with a check and three real servers each
	// have 50,000 tables).
	MaxTables = 1 << 18
)

// Sentinels for the limits, under which Parse and Load report a file beyond them.
var (
	ErrTooLarge      = errors.New("file too large")
	ErrTooDeep       = errors.New("too deeply nested")
	ErrKeyTooLong    = errors.New("key too long")
	ErrTooManyTables = errors.New("too many tables")
)

// checkLimits returns Errors naming the first limit data breaks, or nil.
func checkLimits(name string, data []byte) error {
	if len(data) > MaxFileSize {
		return Errors{{File: name, Line: 1, Err: fmt.Errorf("%w: more than %d bytes; gvs configs are at most %d MiB",
			ErrTooLarge, MaxFileSize, MaxFileSize>>20)}}
	}
	s := limitScan{src: data}
	if err := s.run(); err != nil {
		err.File = name
		return Errors{err}
	}
	return nil
}

// A limitScan checks a TOML document against MaxDepth, MaxKeyLen and MaxTables
// in one pass over its bytes, without allocating. It knows TOML lexically:
// comments, the four kinds of string (so brackets, quotes and # inside them are
// content), keys and dotted keys, table headers, arrays and inline tables.
//
// It is not a validator. At the first byte that cannot continue a valid document
// it stops and leaves the syntax error to the decoder. That is safe because the
// decoder reads in order and stops at its first error, which is at or before that
// byte: all it has read by then is the prefix the scan has checked. FuzzLimits
// checks the other half, that the scan reads every document the decoder accepts
// to its end and finds the same depth.
type limitScan struct {
	src      []byte
	i        int // next byte
	deepest  int // deepest level seen
	complete bool
	open     [2 * MaxDepth]frame // enclosing arrays and inline tables, innermost last
	n        int                 // frames in open
	tables   int                 // seen so far
}

// A frame is an open array or inline table. Array levels increase strictly along
// open, and so do table levels (a table is the value of a key, a level below the
// table holding that key, or an element of an array, at the array's level), so
// there are at most two frames per level.
type frame struct {
	table bool // an inline table, else an array
	level int  // of the array itself, or of the key whose value the table is
}

// A want is what the scan expects next, after blanks, line breaks and comments.
type want int

const (
	_         want = iota
	wantTop        // at the top level: a [table] header or a key
	wantKey        // in an inline table: a key, or the closing }
	wantValue      // a value at level; in an array also the closing ]
	wantNext       // after a value: in an array or inline table, a comma or the closing bracket
)

// run scans s.src. It returns the first limit broken, as an *Error without a
// file name, or nil; complete tells whether it reached the end.
func (s *limitScan) run() *Error {
	// The decoder drops a byte-order mark (and a UTF-16 one, as if it were one).
	switch {
	case bytes.HasPrefix(s.src, []byte("\xff\xfe")), bytes.HasPrefix(s.src, []byte("\xfe\xff")):
		s.i = 2
	case bytes.HasPrefix(s.src, []byte("\xef\xbb\xbf")):
		s.i = 3
	}
	state, level, base := wantTop, 0, 0 // base: levels of the current [table] header
	for {
		s.skip()
		if s.i >= len(s.src) {
			s.complete = s.n == 0 && (state == wantTop || state == wantNext)
			return nil
		}
		c := s.src[s.i]
		switch state {
		case wantTop:
			if c == '[' { // [a.b] or [[a.b]]
				if err := s.table(); err != nil {
					return err
				}
				s.i++
				array := s.eat('[')
				s.skip()
				parts, err := s.key(0)
				if err != nil || parts == 0 {
					return err
				}
				if !s.eat(']') || array && !s.eat(']') {
					return nil
				}
				base = parts
				continue
			}
			parts, err := s.key(base)
			if err != nil || parts == 0 || !s.eat('=') {
				return err
			}
			state, level = wantValue, base+parts
		case wantKey:
			outer := s.open[s.n-1].level
			if c == '}' {
				s.i++
				s.n--
				state = wantNext
				continue
			}
			parts, err := s.key(outer)
			if err != nil || parts == 0 || !s.eat('=') {
				return err
			}
			state, level = wantValue, outer+parts
		case wantValue:
			switch {
			case c == '[':
				if err := s.reach(s.i, level+1); err != nil {
					return err
				}
				s.i++
				s.push(false, level+1)
				level++
			case c == '{':
				if err := s.table(); err != nil {
					return err
				}
				s.i++
				s.push(true, level)
				state = wantKey
			case c == ']' && s.n > 0 && !s.open[s.n-1].table: // [] or a trailing comma
				s.i++
				s.n--
				state = wantNext
			case c == '"' || c == '\'':
				if !s.str() {
					return nil
				}
				state = wantNext
			case c == ',' || c == ']' || c == '}' || c == '=':
				return nil
			default: // a number, boolean or date-time, which may hold a space
				for s.i < len(s.src) && strings.IndexByte(",]}#\n", s.src[s.i]) < 0 {
					s.i++
				}
				state = wantNext
			}
		case wantNext:
			if s.n == 0 {
				state = wantTop
				continue
			}
			f := s.open[s.n-1]
			switch {
			case c == ',':
				s.i++
				state, level = wantKey, f.level
				if !f.table {
					state = wantValue
				}
			case c == '}' && f.table, c == ']' && !f.table:
				s.i++
				s.n--
			default:
				return nil
			}
		}
	}
}

// push opens an array or inline table; reach has checked its level.
func (s *limitScan) push(table bool, level int) {
	s.open[s.n] = frame{table: table, level: level}
	s.n++
}

// reach records that the byte at offset at is level levels deep, or reports
// that this is too deep.
func (s *limitScan) reach(at, level int) *Error {
	if level > MaxDepth {
		return s.fail(at, ErrTooDeep, "%d levels of keys and arrays", level, "gvs configs nest at most %d levels", MaxDepth)
	}
	s.deepest = max(s.deepest, level)
	return nil
}

// table counts a table starting at s.i, or reports one too many.
func (s *limitScan) table() *Error {
	s.tables++
	if s.tables > MaxTables {
		return s.fail(s.i, ErrTooManyTables, "%d", s.tables, "gvs configs have at most %d", MaxTables)
	}
	return nil
}

// key reads a dotted key (a, a.b, "a b".'c' …), whose first part is at level
// from+1, and returns how many parts it has: 0 when none starts at s.i.
func (s *limitScan) key(from int) (int, *Error) {
	for parts := 1; ; parts++ {
		start, quotes := s.i, 0
		switch c := s.peek(0); {
		case c == '"' || c == '\'':
			if !s.quoted(c) {
				return 0, nil
			}
			quotes = 2
		case isBareByte(c):
			for s.i < len(s.src) && isBareByte(s.src[s.i]) {
				s.i++
			}
		default:
			return 0, nil
		}
		if n := s.i - start - quotes; n > MaxKeyLen {
			return 0, s.fail(start, ErrKeyTooLong, "%d bytes", n, "gvs keys are at most %d bytes", MaxKeyLen)
		}
		if err := s.reach(start, from+parts); err != nil {
			return 0, err
		}
		s.skip()
		if !s.eat('.') {
			return parts, nil
		}
		s.skip()
	}
}

// str skips a string value of any kind.
func (s *limitScan) str() bool {
	q := s.src[s.i]
	if s.peek(1) == q && s.peek(2) == q {
		return s.multiline(q)
	}
	return s.quoted(q)
}

// quoted skips a one-line string, basic ("…", with backslash escapes) or literal
// ('…'); it reports whether the string ends on its line.
func (s *limitScan) quoted(q byte) bool {
	for s.i++; s.i < len(s.src); s.i++ {
		switch s.src[s.i] {
		case '\\':
			if q == '"' {
				s.i++ // an escaped byte never ends the string
			}
		case q:
			s.i++
			return true
		case '\n':
			return false
		}
	}
	s.i = len(s.src)
	return false
}

// multiline skips a multi-line string, basic (between triple double quotes, with
// backslash escapes) or literal (between triple single quotes). It ends at the
// first run of three or more quotes not escaped; the run may hold up to two quotes
// of content before the delimiter.
func (s *limitScan) multiline(q byte) bool {
	for s.i += 3; s.i < len(s.src); {
		switch c := s.src[s.i]; {
		case c == '\\' && q == '"':
			s.i += 2
		case c == q:
			run := 0
			for s.i < len(s.src) && s.src[s.i] == q {
				s.i++
				run++
			}
			if run >= 3 {
				return true
			}
		default:
			s.i++
		}
	}
	s.i = len(s.src)
	return false
}

// skip skips blanks, line breaks and comments.
func (s *limitScan) skip() {
	for s.i < len(s.src) {
		switch s.src[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		case '#':
			for s.i < len(s.src) && s.src[s.i] != '\n' {
				s.i++
			}
		default:
			return
		}
	}
}

// eat consumes c if it is next.
func (s *limitScan) eat(c byte) bool {
	if s.peek(0) != c {
		return false
	}
	s.i++
	return true
}

// peek returns the byte off bytes ahead, or 0 past the end.
func (s *limitScan) peek(off int) byte {
	if s.i+off < len(s.src) {
		return s.src[s.i+off]
	}
	return 0
}

// fail reports a broken limit at offset at: "<sentinel>: <what> at line N; <limit>".
func (s *limitScan) fail(at int, sentinel error, what string, n int, limit string, most int) *Error {
	line := 1 + bytes.Count(s.src[:at], []byte("\n"))
	return &Error{Line: line, Err: fmt.Errorf("%w: "+what+" at line %d; "+limit, sentinel, n, line, most)}
}
