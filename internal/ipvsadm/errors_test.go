package ipvsadm

import (
	"errors"
	"fmt"
	"testing"
)

func TestKernelErrors(t *testing.T) {
	err := fmt.Errorf("daemon: add dest: %w", ErrDestExists)
	if !errors.Is(err, ErrDestExists) || errors.Is(err, ErrNoSuchDest) {
		t.Errorf("errors.Is does not see through wrapping: %v", err)
	}
	if got := ErrNoMemory.Error(); got != "Memory allocation problem" {
		t.Errorf("ErrNoMemory = %q", got)
	}
}

func TestExitStatus(t *testing.T) {
	_, usage := Parse([]string{"-n"})
	_, fail := Parse([]string{"-A"})
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{usage, 255},
		{fail, 2},
		{&LineError{Line: 3, Err: fail}, 2},
		{fmt.Errorf("x: %w", ErrNoSuchService), 255},
		{errors.New("cannot open file /proc/net/ip_vs_conn"), 1},
	}
	for _, tt := range tests {
		if got := ExitStatus(tt.err); got != tt.want {
			t.Errorf("ExitStatus(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestListing(t *testing.T) {
	for line, want := range map[string]Listing{
		"":                  ListTable,
		"-Ln":               ListTable,
		"-Lnc":              ListConns,
		"-L -t 10.0.0.1:80": ListService,
		"-L --timeout":      ListTimeouts,
		"-L --daemon":       ListDaemons,
		"-C":                0,
	} {
		c, err := Parse(words(line))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Listing(); got != want {
			t.Errorf("%q: Listing() = %d, want %d", line, got, want)
		}
	}
}
