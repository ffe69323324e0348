package ipvsadm

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ParseRestore reads an ipvsadm -R stream with the zero Parser. See
// Parser.ParseRestore.
func ParseRestore(r io.Reader) ([]*Command, error) {
	var p Parser
	return p.ParseRestore(r)
}

// ParseRestore reads an ipvsadm -R stream: one command per line, in ipvsadm
// syntax without the program name, as FormatSave writes them. Words are
// separated by blanks, tabs and carriage returns; a word "ipvsadm" is
// dropped (so "ipvsadm -A …" lines work too); everything from a '#' to the
// end of the line is a comment; lines with no words are skipped.
//
// ipvsadm runs each line as it reads it and stops at the first bad one, with
// the lines before it already applied. ParseRestore returns the commands of
// the lines before the first bad line together with a *LineError naming it,
// so a caller can do the same, or refuse the whole stream. A -R inside the
// stream is refused with ipvsadm's help hint.
func (p *Parser) ParseRestore(r io.Reader) ([]*Command, error) {
	cmds, _, err := p.ParseRestoreLines(r)
	return cmds, err
}

// ParseRestoreLines is ParseRestore that also returns the 1-based line of the
// stream each command was read from (lines[i] is cmds[i]'s).
func (p *Parser) ParseRestoreLines(r io.Reader) (cmds []*Command, lines []int, err error) {
	br := bufio.NewReader(r)
	for line := 1; ; line++ {
		text, err := br.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return cmds, lines, fmt.Errorf("ipvsadm: restore: %w", err)
		}
		if text == "" && err != nil {
			return cmds, lines, nil
		}
		words := restoreWords(text)
		if len(words) > 0 {
			c, perr := p.Parse(words)
			if perr == nil && c.Op == OpRestore {
				perr = p.tryHelp()
			}
			if perr != nil {
				return cmds, lines, &LineError{Line: line, Err: perr}
			}
			cmds, lines = append(cmds, c), append(lines, line)
		}
		if err != nil {
			return cmds, lines, nil
		}
	}
}

// restoreWords splits one line of a restore stream.
func restoreWords(line string) []string {
	line, _, _ = strings.Cut(line, "#")
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
