package config

import (
	"strconv"
	"strings"
)

// BurntSushi/toml keeps key positions private (MetaData has none, and its internal
// table records one line per dotted key name, so every [[service]] shares a line),
// so errors get their lines from a second, small scan of the file: lineIndex maps
// each key path, with array indices, to the line it starts on:
//
//	service[0]                          line of the first [[service]] header
//	service[0].real_server[1].weight    line of that weight = ...
//	service[0].scheduler_flags[1]       line of the array's second element
//
// The scan runs only on text the TOML parser has already accepted, so it
// recognises structure and skips strings, comments and multi-line values, and
// never reports errors. It must not panic or loop on any input all the same: every
// step advances or returns.
type lineIndex map[string]int

// line returns the line of path or, when the file does not spell path out (a
// default, a missing key), of its nearest ancestor that it does; 1 when none.
func (x lineIndex) line(path string) int {
	for {
		if l, ok := x[path]; ok {
			return l
		}
		if path == "" {
			return 1
		}
		path = parentPath(path)
	}
}

// joinKey appends key to a path, quoting it when it is not a bare TOML key so that
// paths built from decoded maps and from the scan agree.
func joinKey(path, key string) string {
	if !isBareKey(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// joinIndex appends an array index to a path.
func joinIndex(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// parentPath strips the last ".key" or "[i]" of a path, respecting quoted keys.
func parentPath(path string) string {
	cut, quoted := 0, false
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && (c == '.' || c == '['):
			cut = i
		}
	}
	return path[:cut]
}

func isBareKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isBareByte(k[i]) {
			return false
		}
	}
	return true
}

func isBareByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// indexLines scans a TOML document that has parsed successfully.
func indexLines(src []byte) lineIndex {
	s := &lineScanner{src: src, line: 1, idx: lineIndex{}, arrays: map[string]int{}}
	s.document()
	return s.idx
}

type lineScanner struct {
	src    []byte
	i      int
	line   int
	idx    lineIndex
	arrays map[string]int // path of each array of tables ([[x]]) → elements so far
}

func (s *lineScanner) eof() bool { return s.i >= len(s.src) }

func (s *lineScanner) peek(off int) byte {
	if s.i+off < len(s.src) {
		return s.src[s.i+off]
	}
	return 0
}

func (s *lineScanner) has(prefix string) bool {
	return strings.HasPrefix(string(s.src[s.i:min(len(s.src), s.i+len(prefix))]), prefix)
}

// advance moves one byte, counting lines.
func (s *lineScanner) advance() {
	if s.src[s.i] == '\n' {
		s.line++
	}
	s.i++
}

func (s *lineScanner) record(path string) {
	if _, ok := s.idx[path]; !ok {
		s.idx[path] = s.line
	}
}

// skipSpace skips blanks and, when lines is set, newlines and comments too.
func (s *lineScanner) skipSpace(lines bool) {
	for !s.eof() {
		switch c := s.src[s.i]; {
		case c == ' ' || c == '\t' || c == '\r':
			s.i++
		case lines && c == '\n':
			s.advance()
		case lines && c == '#':
			for !s.eof() && s.src[s.i] != '\n' {
				s.i++
			}
		default:
			return
		}
	}
}

func (s *lineScanner) skipLine() {
	for !s.eof() && s.src[s.i] != '\n' {
		s.i++
	}
}

func (s *lineScanner) document() {
	table := ""
	for {
		s.skipSpace(true)
		if s.eof() {
			return
		}
		start := s.i
		if s.src[s.i] == '[' {
			table = s.header()
		} else {
			s.keyValue(table)
		}
		s.skipSpace(false)
		if s.i == start || !s.eof() && s.src[s.i] != '\n' && s.src[s.i] != '#' {
			s.skipLine() // not expected in valid TOML; resynchronise
		}
	}
}

// header reads [a.b] or [[a.b]] and returns the table's path.
func (s *lineScanner) header() string {
	array := s.peek(1) == '['
	if array {
		s.i += 2
	} else {
		s.i++
	}
	keys := s.keys()
	path := ""
	for n, k := range keys {
		path = joinKey(path, k)
		if n == len(keys)-1 && array {
			s.record(path)
			i := s.arrays[path]
			s.arrays[path] = i + 1
			path = joinIndex(path, i)
			s.idx[path] = s.line
			break
		}
		if i, ok := s.arrays[path]; ok && i > 0 {
			path = joinIndex(path, i-1)
		}
		s.record(path)
	}
	s.skipSpace(false)
	for !s.eof() && s.src[s.i] == ']' {
		s.i++
	}
	return path
}

// keys reads a dotted key: a.b, "a.b".c, 'x' .
func (s *lineScanner) keys() []string {
	var keys []string
	for {
		s.skipSpace(false)
		if s.eof() {
			return keys
		}
		switch s.src[s.i] {
		case '"':
			start := s.i
			s.basicString()
			keys = append(keys, unescapeKey(s.src[start:s.i]))
		case '\'':
			start := s.i
			s.literalString()
			keys = append(keys, strings.Trim(string(s.src[start:s.i]), "'"))
		default:
			start := s.i
			for !s.eof() && !strings.ContainsRune(" \t\r\n.=[]#,{}\"'", rune(s.src[s.i])) {
				s.i++
			}
			if s.i == start {
				return keys
			}
			keys = append(keys, string(s.src[start:s.i]))
		}
		s.skipSpace(false)
		if s.eof() || s.src[s.i] != '.' {
			return keys
		}
		s.i++
	}
}

// keyValue reads key = value relative to table.
func (s *lineScanner) keyValue(table string) {
	keys := s.keys()
	if len(keys) == 0 {
		return
	}
	path := table
	for _, k := range keys {
		path = joinKey(path, k)
		s.record(path)
	}
	s.skipSpace(false)
	if s.eof() || s.src[s.i] != '=' {
		return
	}
	s.i++
	s.skipSpace(false)
	s.value(path)
}

func (s *lineScanner) value(path string) {
	if s.eof() {
		return
	}
	switch {
	case s.has(`"""`):
		s.multiString('"')
	case s.has(`'''`):
		s.multiString('\'')
	case s.src[s.i] == '"':
		s.basicString()
	case s.src[s.i] == '\'':
		s.literalString()
	case s.src[s.i] == '[':
		s.i++
		for n := 0; ; {
			s.skipSpace(true)
			if s.eof() {
				return
			}
			switch s.src[s.i] {
			case ']':
				s.i++
				return
			case ',':
				s.i++
				continue
			}
			elem := joinIndex(path, n)
			s.record(elem)
			start := s.i
			s.value(elem)
			if s.i == start {
				s.i++
			}
			n++
		}
	case s.src[s.i] == '{':
		s.i++
		for {
			s.skipSpace(true)
			if s.eof() {
				return
			}
			switch s.src[s.i] {
			case '}':
				s.i++
				return
			case ',':
				s.i++
				continue
			}
			start := s.i
			s.keyValue(path)
			if s.i == start {
				s.i++
			}
		}
	default: // number, boolean, date-time (which may hold a space)
		for !s.eof() && !strings.ContainsRune(",]}#\n", rune(s.src[s.i])) {
			s.i++
		}
	}
}

// basicString skips "..." (on one line), honouring backslash escapes.
func (s *lineScanner) basicString() {
	s.i++
	for !s.eof() {
		switch s.src[s.i] {
		case '\\':
			s.i += 2
			continue
		case '"':
			s.i++
			return
		case '\n':
			return
		}
		s.i++
	}
	s.i = min(s.i, len(s.src))
}

// literalString skips '...' (on one line).
func (s *lineScanner) literalString() {
	s.i++
	for !s.eof() {
		switch s.src[s.i] {
		case '\'':
			s.i++
			return
		case '\n':
			return
		}
		s.i++
	}
}

// multiString skips a multi-line string (basic or literal: q is its quote
// character), counting the lines inside. Up to two quotes may precede the closing
// delimiter and belong to the content.
func (s *lineScanner) multiString(q byte) {
	s.i += 3
	for !s.eof() {
		c := s.src[s.i]
		if c == '\\' && q == '"' {
			s.i++
			if !s.eof() {
				s.advance()
			}
			continue
		}
		if c == q && s.peek(1) == q && s.peek(2) == q {
			n := 0
			for !s.eof() && s.src[s.i] == q && n < 5 {
				s.i++
				n++
			}
			return
		}
		s.advance()
	}
}

// unescapeKey decodes a quoted key ("..." with TOML escapes, including TOML 1.1's
// \e and \xHH). Malformed escapes are kept as written: the decoder has accepted
// the file, so they do not occur.
func unescapeKey(q []byte) string {
	q = q[1:]
	if n := len(q); n > 0 && q[n-1] == '"' {
		q = q[:n-1]
	}
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c != '\\' || i+1 >= len(q) {
			b.WriteByte(c)
			continue
		}
		i++
		switch e := q[i]; e {
		case 'b':
			b.WriteByte('\b')
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'f':
			b.WriteByte('\f')
		case 'r':
			b.WriteByte('\r')
		case 'e':
			b.WriteByte(0x1b)
		case 'x', 'u', 'U':
			n := 2
			if e == 'u' {
				n = 4
			} else if e == 'U' {
				n = 8
			}
			if i+n < len(q) {
				if v, err := strconv.ParseUint(string(q[i+1:i+1+n]), 16, 32); err == nil {
					b.WriteRune(rune(v))
					i += n
					continue
				}
			}
			b.WriteByte('\\')
			b.WriteByte(e)
		default: // \" and \\
			b.WriteByte(e)
		}
	}
	return b.String()
}
