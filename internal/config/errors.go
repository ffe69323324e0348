package config

import (
	"errors"
	"strconv"
	"strings"

	"github.com/gvs-lb/gvs/ipvs"
)

// Sentinels for the kinds of problem callers may want to tell apart with errors.Is.
// Every other problem is a plain message inside an *Error.
var (
	ErrSyntax         = errors.New("syntax error")
	ErrUnknownKey     = errors.New("unknown key")
	ErrType           = errors.New("wrong type")
	ErrMissing        = errors.New("missing")
	ErrDuplicate      = errors.New("duplicate")
	ErrNotImplemented = ipvs.ErrNotImplemented
)

// An Error is one problem at one place in a config file. It prints as
// "file:line: field: message", the format of compilers and of gvs check.
type Error struct {
	File  string // as given to Parse or Load
	Line  int    // 1-based; the most specific line known for Field
	Field string // path of the offending key: "service[0].real_server[1].weight"; "" for the whole file
	Err   error  // what is wrong; may wrap one of the sentinels above
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(e.Line))
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in one file, ordered by line. Parse returns it
// (never empty) as its error; errors.As retrieves it and errors.Is sees through
// it to the sentinels of each Error.
type Errors []*Error

// Error prints one problem per line.
func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the individual errors, for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}
