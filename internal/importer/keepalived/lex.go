package keepalived

// The keepalived.conf grammar, as keepalived's own reader (lib/parser.c) applies it,
// line by line:
//
//  1. A comment starts at the first '!' or '#' outside double quotes, anywhere in the
//     line; "\!" and "\#" outside quotes stand for the characters themselves.
//  2. A line "@ID rest" is kept (as "rest") only when keepalived runs with config id
//     ID (keepalived -i ID); "@^ID rest" only when it does not. Without a config id,
//     every "@ID" line is dropped and every "@^ID" line kept.
//  3. "$NAME=TEXT" defines a parameter; "$NAME" and "${NAME}" in later lines are
//     replaced by TEXT (only once some definition exists, as keepalived does).
//  4. "include PATTERN" (exactly two words) reads the files the glob matches (with
//     {a,b} alternatives), relative to the including file's directory, in place.
//  5. '{' and '}' outside quotes are tokens of their own wherever they appear, so a
//     block may open on the keyword's line or the next, and close on any line
//     ("real_server 1.2.3.4 80 { weight 1 }" is one block).
//  6. Words are separated by white space; "..." is one word without its quotes (it
//     runs to the next '"'; there are no escapes).
//
// A statement is a keyword and its words up to the end of the line or a brace; a
// '{' after it (on the same or a following line) opens its block.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/importer"
)

// Limits that keep a hostile or broken input from consuming the machine.
const (
	kaMaxIncludeDepth = 32      // nested include levels
	kaMaxFiles        = 1000    // files read in one import, includes counted
	kaMaxBlockDepth   = 64      // nested blocks
	kaMaxErrors       = 20      // syntax errors reported before giving up
	kaMaxSubst        = 16      // parameter substitution passes per line
	kaMaxLine         = 1 << 16 // bytes of a line after substitution
)

type kaKind uint8

const (
	_ kaKind = iota
	kaWord
	kaOpen  // {
	kaClose // }
	kaEOL   // end of a line: ends a statement
	kaEOF
)

type kaTok struct {
	kind kaKind
	text string
	pos  importer.Pos
}

// kaLexer turns keepalived.conf files into tokens.
type kaLexer struct {
	opt   *Options
	doc   *importer.Doc
	toks  []kaTok
	seq   int
	files []string // the files read, in order, each once
	reads int      // files read, includes counted each time
	stack []string // include stack, cleaned paths
	defs  map[string]string
	errs  config.Errors
	// skipped collects lines dropped by '@' conditions, one note per file and id.
	skipped map[string]*kaSkip
	skipKey []string
}

type kaSkip struct {
	pos   importer.Pos
	id    string
	rev   bool
	lines []int
}

func (lx *kaLexer) pos(file string, line int) importer.Pos {
	lx.seq++
	return importer.Pos{File: file, Line: line, Seq: lx.seq}
}

func (lx *kaLexer) errorf(p importer.Pos, format string, args ...any) {
	if len(lx.errs) < kaMaxErrors {
		lx.errs = append(lx.errs, &config.Error{File: p.File, Line: p.Line, Err: fmt.Errorf("%w: "+format, append([]any{config.ErrSyntax}, args...)...)})
	}
}

// lexFile reads one file's lines. name is how the file is named in notes.
func (lx *kaLexer) lexFile(name string, data []byte, depth int) {
	lx.stack = append(lx.stack, filepath.Clean(name))
	defer func() { lx.stack = lx.stack[:len(lx.stack)-1] }()
	if !slices.Contains(lx.files, name) {
		lx.files = append(lx.files, name)
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF")) // a byte-order mark some editors write

	for i, raw := range strings.Split(string(data), "\n") {
		if len(lx.errs) >= kaMaxErrors {
			return
		}
		p := lx.pos(name, i+1)
		line := lx.decomment(strings.TrimSuffix(raw, "\r"), p)
		if line == "" {
			continue
		}
		line, ok := lx.expand(line, p)
		if !ok || line == "" {
			continue
		}
		if words := kaSplitWords(line); len(words) == 2 && strings.EqualFold(words[0], "include") {
			lx.include(words[1], name, p, depth)
			continue
		}
		lx.tokenize(line, p)
	}
}

const kaSpace = " \t\f\v\r\n"

// decomment strips comments and surrounding white space, as keepalived's decomment().
func (lx *kaLexer) decomment(s string, p importer.Pos) string {
	var b strings.Builder
	quote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			quote = !quote
		case c == '\\' && i+1 < len(s):
			if !quote && (s[i+1] == '#' || s[i+1] == '!') {
				b.WriteByte(s[i+1])
			} else {
				b.WriteByte(c)
				b.WriteByte(s[i+1])
			}
			i++
			continue
		case !quote && (c == '!' || c == '#'):
			return strings.Trim(b.String(), kaSpace)
		}
		b.WriteByte(c)
	}
	if quote {
		lx.doc.Note(p, "unterminated '\"': the quoted word runs to the end of the line (keepalived reports this line as an error)")
	}
	return strings.Trim(b.String(), kaSpace)
}

// expand applies '@' conditions and parameter definitions and substitutions. It
// returns false when the line is consumed (skipped, or a definition).
func (lx *kaLexer) expand(line string, p importer.Pos) (string, bool) {
	for pass := 0; ; pass++ {
		if line[0] == '@' {
			var keep bool
			if line, keep = lx.condition(line, p); !keep {
				return "", false
			}
		}
		if line == "" {
			return "", false
		}
		if line[0] == '$' {
			if name, val, isDef := kaDefinition(line); isDef {
				if strings.HasSuffix(val, "\\") {
					lx.errorf(p, "multi-line definition $%s is not supported by gvs import (write it out)", name)
					return "", false
				}
				if lx.defs == nil {
					lx.defs = map[string]string{}
				}
				lx.defs[name] = val
				return "", false
			}
		}
		if strings.HasPrefix(line, "~SEQ") {
			lx.errorf(p, "~SEQ is not supported by gvs import (write the generated lines out)")
			return "", false
		}
		if lx.defs == nil || !strings.Contains(line, "$") || pass >= kaMaxSubst {
			return line, true
		}
		next, changed := lx.substitute(line, p)
		if !changed {
			return line, true
		}
		if len(next) > kaMaxLine {
			lx.errorf(p, "parameter substitution makes the line longer than %d bytes", kaMaxLine)
			return "", false
		}
		line = strings.Trim(next, kaSpace)
		if line == "" {
			return "", false
		}
	}
}

// condition applies "@ID" / "@^ID" to line (which starts with '@').
func (lx *kaLexer) condition(line string, p importer.Pos) (string, bool) {
	rev := strings.HasPrefix(line, "@^")
	rest := line[1:]
	if rev {
		rest = line[2:]
	}
	end := strings.IndexAny(rest, " \t")
	if end < 0 {
		// Nothing after the id: keepalived drops the line.
		lx.doc.Note(p, "line %q has a config id and nothing else: ignored, as keepalived does", line)
		return "", false
	}
	id := rest[:end]
	match := lx.opt.ConfigID != "" && id == lx.opt.ConfigID
	if match == rev {
		k := p.File + "\x00" + line[:end+len(line)-len(rest)]
		sk := lx.skipped[k]
		if sk == nil {
			if lx.skipped == nil {
				lx.skipped = map[string]*kaSkip{}
			}
			sk = &kaSkip{pos: p, id: id, rev: rev}
			lx.skipped[k] = sk
			lx.skipKey = append(lx.skipKey, k)
		}
		sk.lines = append(sk.lines, p.Line)
		return "", false
	}
	return strings.TrimLeft(rest[end:], " \t"), true
}

// skipNotes turns the lines dropped by '@' conditions into one note per file and id.
func (lx *kaLexer) skipNotes() {
	for _, k := range lx.skipKey {
		sk := lx.skipped[k]
		lines := make([]string, len(sk.lines))
		for i, l := range sk.lines {
			lines[i] = fmt.Sprint(l)
		}
		var why string
		switch {
		case sk.rev:
			why = fmt.Sprintf("lines starting @^%s skipped: they apply only when keepalived runs without config id %q (-i), and the import was given -i %s", sk.id, sk.id, sk.id)
		case lx.opt.ConfigID == "":
			why = fmt.Sprintf("lines starting @%s skipped: no config id given (keepalived -i %s would use them; pass -i %s to import them)", sk.id, sk.id, sk.id)
		default:
			why = fmt.Sprintf("lines starting @%s skipped: the config id is %q", sk.id, lx.opt.ConfigID)
		}
		lx.doc.Note(sk.pos, "%s; lines %s", why, strings.Join(lines, ", "))
	}
}

// kaDefinition recognises "$NAME=TEXT" (white space allowed before '=').
func kaDefinition(line string) (name, val string, ok bool) {
	i := 1
	if i >= len(line) || !(isAlpha(line[i]) || line[i] == '_') {
		return "", "", false
	}
	for i < len(line) && (isAlpha(line[i]) || isDigit(line[i]) || line[i] == '_') {
		i++
	}
	name = line[1:i]
	rest := strings.TrimLeft(line[i:], " \t")
	if !strings.HasPrefix(rest, "=") {
		return "", "", false
	}
	return name, strings.Trim(rest[1:], " \t"), true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// substitute replaces $NAME and ${NAME} with defined values once.
func (lx *kaLexer) substitute(line string, p importer.Pos) (string, bool) {
	var b strings.Builder
	changed := false
	for i := 0; i < len(line); i++ {
		if line[i] != '$' || i+1 >= len(line) {
			b.WriteByte(line[i])
			continue
		}
		j, braces := i+1, false
		if line[j] == '{' {
			braces = true
			j++
		}
		k := j
		for k < len(line) && (isAlpha(line[k]) || line[k] == '_' || (k > j && isDigit(line[k]))) {
			k++
		}
		name := line[j:k]
		if braces {
			if k >= len(line) || line[k] != '}' {
				name = ""
			}
		} else if k < len(line) && !strings.ContainsRune(" \t,)", rune(line[k])) {
			name = ""
		}
		val, ok := lx.defs[name]
		switch {
		case name == "_INSTANCE":
			val, ok = lx.opt.ConfigID, true
		case name == "_PWD":
			val, ok = filepath.Dir(p.File), true
		case name == "_RANDOM" && !ok:
			lx.doc.Note(p, "$_RANDOM is not expanded by gvs import")
		}
		if name == "" || !ok {
			b.WriteByte(line[i])
			continue
		}
		b.WriteString(val)
		changed = true
		i = k - 1
		if braces {
			i = k
		}
	}
	return b.String(), changed
}

// kaSplitWords splits a line into words as keepalived's include check does.
func kaSplitWords(line string) []string {
	var words []string
	for i := 0; i < len(line); {
		switch c := line[i]; {
		case strings.IndexByte(kaSpace, c) >= 0:
			i++
		case c == '"':
			end := strings.IndexByte(line[i+1:], '"')
			if end < 0 {
				words = append(words, line[i+1:])
				return words
			}
			words = append(words, line[i+1:i+1+end])
			i += end + 2
		default:
			j := i
			for j < len(line) && strings.IndexByte(kaSpace, line[j]) < 0 && line[j] != '"' {
				j++
			}
			words = append(words, line[i:j])
			i = j
		}
	}
	return words
}

// tokenize appends the tokens of one (decommented, expanded) line.
func (lx *kaLexer) tokenize(line string, p importer.Pos) {
	add := func(k kaKind, text string) {
		lx.toks = append(lx.toks, kaTok{kind: k, text: text, pos: p})
	}
	for i := 0; i < len(line); {
		switch c := line[i]; {
		case strings.IndexByte(kaSpace, c) >= 0:
			i++
		case c == '{':
			add(kaOpen, "{")
			i++
		case c == '}':
			add(kaClose, "}")
			i++
		case c == '"':
			end := strings.IndexByte(line[i+1:], '"')
			if end < 0 {
				add(kaWord, line[i+1:])
				i = len(line)
				break
			}
			add(kaWord, line[i+1:i+1+end])
			i += end + 2
		default:
			j := i
			for j < len(line) && strings.IndexByte(kaSpace, line[j]) < 0 && line[j] != '"' && line[j] != '{' && line[j] != '}' {
				j++
			}
			add(kaWord, line[i:j])
			i = j
		}
	}
	add(kaEOL, "")
}

// include reads the files pattern matches, relative to the including file.
func (lx *kaLexer) include(pattern, from string, p importer.Pos, depth int) {
	if depth+1 > kaMaxIncludeDepth {
		lx.errorf(p, "includes nested more than %d deep", kaMaxIncludeDepth)
		return
	}
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(filepath.Dir(from), pattern)
	}
	var matches []string
	for _, pat := range kaBraceExpand(pattern, 0) {
		m, err := lx.opt.glob(pat)
		if err != nil {
			lx.errorf(p, "include %s: %v", pat, err)
			return
		}
		matches = append(matches, m...)
	}
	read := 0
	for _, m := range matches {
		if lx.reads++; lx.reads > kaMaxFiles {
			lx.errorf(p, "more than %d files included", kaMaxFiles)
			return
		}
		if i := slices.Index(lx.stack, filepath.Clean(m)); i >= 0 {
			chain := append(append([]string{}, lx.stack[i:]...), filepath.Clean(m))
			lx.errorf(p, "include cycle: %s", strings.Join(chain, " -> "))
			return
		}
		data, err := lx.opt.readFile(m)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) && isDirErr(m, lx.opt) {
				continue // keepalived skips directories a glob matches
			}
			lx.errorf(p, "include: %v", err)
			continue
		}
		read++
		lx.lexFile(m, data, depth+1)
	}
	if read == 0 {
		lx.doc.Note(p, "include %s: no file matched (keepalived goes on without it)", pattern)
	}
}

func isDirErr(name string, o *Options) bool {
	if o.ReadFile != nil {
		return false
	}
	st, err := os.Stat(name)
	return err == nil && st.IsDir()
}

// kaBraceExpand expands {a,b,...} alternatives in pattern, as glob's GLOB_BRACE
// does, returning at most a few hundred patterns.
func kaBraceExpand(pattern string, depth int) []string {
	open := strings.IndexByte(pattern, '{')
	if open < 0 || depth > 8 {
		return []string{pattern}
	}
	level, end := 0, -1
	var cuts []int // top-level commas
	for i := open; i < len(pattern) && end < 0; i++ {
		switch pattern[i] {
		case '{':
			level++
		case '}':
			if level--; level == 0 {
				end = i
			}
		case ',':
			if level == 1 {
				cuts = append(cuts, i)
			}
		}
	}
	if end < 0 {
		return []string{pattern}
	}
	var out []string
	prev := open
	for _, c := range append(cuts, end) {
		alt := pattern[:open] + pattern[prev+1:c] + pattern[end+1:]
		out = append(out, kaBraceExpand(alt, depth+1)...)
		if len(out) > 256 {
			return out[:256]
		}
		prev = c
	}
	return out
}

// kaNode is one statement: a keyword, its words, and its block if it has one.
type kaNode struct {
	key      kaTok
	args     []kaTok
	block    []*kaNode
	hasBlock bool
}

func (n *kaNode) pos() importer.Pos { return n.key.pos }

// words returns the statement as written, for messages.
func (n *kaNode) words() string {
	parts := []string{n.key.text}
	for _, a := range n.args {
		parts = append(parts, a.text)
	}
	return strings.Join(parts, " ")
}

func (n *kaNode) arg(i int) string {
	if i < len(n.args) {
		return n.args[i].text
	}
	return ""
}

// kaParser builds statements from tokens.
type kaParser struct {
	lx   *kaLexer
	toks []kaTok
	i    int
}

func (p *kaParser) peek() kaTok {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return kaTok{kind: kaEOF}
}

func (p *kaParser) next() kaTok {
	t := p.peek()
	if p.i < len(p.toks) {
		p.i++
	}
	return t
}

// openFollows reports whether the next token after any line ends is '{'.
func (p *kaParser) openFollows() bool {
	for j := p.i; j < len(p.toks); j++ {
		switch p.toks[j].kind {
		case kaEOL:
			continue
		case kaOpen:
			return true
		}
		return false
	}
	return false
}

// block parses statements up to the '}' closing open (nil: up to the end).
func (p *kaParser) block(open *kaTok, depth int) []*kaNode {
	var nodes []*kaNode
	for len(p.lx.errs) < kaMaxErrors {
		t := p.next()
		switch t.kind {
		case kaEOF:
			if open != nil {
				p.lx.errorf(open.pos, "'{' is never closed (missing '}')")
			}
			return nodes
		case kaEOL:
		case kaClose:
			if open != nil {
				return nodes
			}
			p.lx.errorf(t.pos, "unexpected '}' (no block is open)")
		case kaOpen:
			p.lx.errorf(t.pos, "'{' without a keyword before it")
			if depth < kaMaxBlockDepth {
				p.block(&t, depth+1)
			}
		case kaWord:
			n := &kaNode{key: t}
			for p.peek().kind == kaWord {
				n.args = append(n.args, p.next())
			}
			if p.openFollows() {
				for p.peek().kind == kaEOL {
					p.next()
				}
				ob := p.next()
				if depth >= kaMaxBlockDepth {
					p.lx.errorf(ob.pos, "blocks nested more than %d deep", kaMaxBlockDepth)
					return nodes
				}
				n.hasBlock = true
				n.block = p.block(&ob, depth+1)
			}
			nodes = append(nodes, n)
		}
	}
	return nodes
}
