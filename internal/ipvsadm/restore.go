package ipvsadm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// A RestoreLine is one line of a restore stream that holds words: the command
// read from it, or why it was refused.
type RestoreLine struct {
	Line int      // 1-based
	Cmd  *Command // nil when Err is set
	// Err is why the line was refused before it reached the table: an *Error
	// of ipvsadm's parser, or an *UnsupportedError of gvs.
	Err error
}

// Ends reports whether ipvsadm -R stops at this line: its parser exits on
// every error except popt's (Error.Returns), and the lines after it never run.
// A line that merely fails (popt's errors, what gvs does not do, and later
// anything the table refuses) prints its message and the stream goes on.
func (l *RestoreLine) Ends() bool {
	var e *Error
	return errors.As(l.Err, &e) && !e.Returns
}

// ReadRestore reads an ipvsadm -R stream as ipvsadm 1.31 reads it, one line at
// a time (config_stream_read): words are separated by blanks, tabs, carriage
// returns and newlines; a word "ipvsadm" is dropped; a line with no other words
// is skipped; every other line is one command line. A '#' is a word like any
// other: ipvsadm's comment handling never sees it (it looks for '#' in the
// blank after a word), so "# text" is a line without a command, which ipvsadm
// refuses with its help hint, ending the restore, and "-A … # text" fails with
// "unexpected argument #". A -R inside the stream gets the help hint too.
//
// The one exception is gvs's own: a line "# gvs: --match RULE …" (FormatSave
// writes one before each fwmark service with match rules) gives its options to
// the command on the next line holding words, which must be -A or -E of an
// fwmark service (ApplyOptions); its errors are the directive line's.
//
// ReadRestore returns the lines up to and including the first that Ends, as
// ipvsadm reads no further; the caller runs them in order. Only a read error
// is returned as an error.
func (p *Parser) ReadRestore(r io.Reader) ([]RestoreLine, error) {
	var out []RestoreLine
	err := p.readRestore(r, false, func(l RestoreLine) bool {
		out = append(out, l)
		return !l.Ends()
	})
	return out, err
}

// ParseRestore reads an ipvsadm -R stream with the zero Parser. See
// Parser.ParseRestore.
func ParseRestore(r io.Reader) ([]*Command, error) {
	var p Parser
	return p.ParseRestore(r)
}

// ParseRestore reads a restore stream for gvs's all-or-nothing restore (gvs adm
// -R --atomic) and for importers: as ReadRestore, except that everything from a
// '#' to the end of a line is a comment (the "# gvs:" lines are read), and that
// any refused line is the end. It returns the commands of the lines before the
// first refused one together with a *LineError naming it, so a caller can refuse
// the whole stream.
func (p *Parser) ParseRestore(r io.Reader) ([]*Command, error) {
	cmds, _, err := p.ParseRestoreLines(r)
	return cmds, err
}

// ParseRestoreLines is ParseRestore that also returns the 1-based line of the
// stream each command was read from (lines[i] is cmds[i]'s).
func (p *Parser) ParseRestoreLines(r io.Reader) (cmds []*Command, lines []int, err error) {
	rerr := p.readRestore(r, true, func(l RestoreLine) bool {
		if l.Err != nil {
			err = &LineError{Line: l.Line, Err: l.Err}
			return false
		}
		cmds, lines = append(cmds, l.Cmd), append(lines, l.Line)
		return true
	})
	if rerr != nil {
		return cmds, lines, rerr
	}
	return cmds, lines, err
}

// readRestore hands each line that holds words to yield until it returns false.
// comments: '#' starts a comment (gvs's lenient reading).
func (p *Parser) readRestore(r io.Reader, comments bool, yield func(RestoreLine) bool) error {
	br := bufio.NewReader(r)
	var pending *Options // a "# gvs:" line's options, for the next command
	pendingLine := 0
	for line := 1; ; line++ {
		text, rerr := br.ReadString('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return fmt.Errorf("ipvsadm: restore: %w", rerr)
		}
		if text == "" && rerr != nil {
			return nil
		}
		words := restoreWords(text)
		if len(words) > 0 {
			l := RestoreLine{Line: line}
			switch {
			case isDirective(words):
				o, rest, err := SplitOptions(words[2:])
				switch {
				case err != nil:
					l.Err = err
				case len(rest) > 0 || o.Atomic:
					l.Err = failf("a \"# " + directiveWord + "\" line takes --match rules only, for the fwmark service of the next line")
				default:
					pending, pendingLine = &o, line
					continue
				}
				// A bad directive fails alone: the command after it runs without.
				l.Err = &UnsupportedError{Msg: l.Err.Error()}
			default:
				if comments {
					words = restoreWords(strings.SplitN(text, "#", 2)[0])
					if len(words) == 0 {
						continue
					}
				}
				l.Cmd, l.Err = p.Parse(words)
				if l.Err == nil && l.Cmd.Op == OpRestore {
					l.Cmd, l.Err = nil, p.tryHelp()
				}
				if l.Err == nil && pending != nil {
					if err := ApplyOptions(l.Cmd, *pending); err != nil {
						// gvs's own: the line fails, the stream goes on.
						l.Cmd, l.Err = nil, &UnsupportedError{Msg: "the \"# " + directiveWord + "\" line " + strconv.Itoa(pendingLine) + " before it: " + err.Error()}
					}
				}
				pending = nil
			}
			if !yield(l) {
				return nil
			}
		}
		if rerr != nil {
			return nil
		}
	}
}

// restoreWords splits one line of a restore stream as config_stream_read does.
func restoreWords(line string) []string {
	words := strings.FieldsFunc(line, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\r' || r == '\n'
	})
	out := words[:0]
	for _, w := range words {
		if w != "ipvsadm" {
			out = append(out, w)
		}
	}
	return out
}
