package config

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// editDistanceRef is editDistance with the whole matrix: the definition, kept
// as the reference for the three-row version.
func editDistanceRef(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"abc", "", 3},
		{"weight", "weight", 0},
		{"wieght", "weight", 1}, // a transposition
		{"adress", "address", 1},
		{"ca", "abc", 3}, // optimal string alignment: no edit of a transposed pair
		{"kitten", "sitting", 3},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
	// Against the reference, on short words over a small alphabet, where
	// transpositions and repeats are common.
	rng := rand.New(rand.NewPCG(1, 2))
	word := func() string {
		b := make([]byte, rng.IntN(8))
		for i := range b {
			b[i] = "abc_"[rng.IntN(4)]
		}
		return string(b)
	}
	for range 20000 {
		a, b := word(), word()
		if got, want := editDistance(a, b), editDistanceRef(a, b); got != want {
			t.Fatalf("editDistance(%q, %q) = %d, reference %d", a, b, got, want)
		}
	}
}

// TestSuggestLongWord checks that a long word costs no comparison: a value of
// any length is looked up with oneOf, which suggests.
func TestSuggestLongWord(t *testing.T) {
	word := strings.Repeat("x", 1<<20)
	names := []string{"rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "lblc", "lblcr", "fo", "ovf", "twos", "mh", "none"}
	if got := suggest(word, names); got != "" {
		t.Fatalf("suggest(long word) = %q", got)
	}
	if n := testing.AllocsPerRun(3, func() { suggest(word, names) }); n > 0 {
		t.Errorf("suggest(long word): %v allocations, want 0", n)
	}
}

// TestTooManyProblems checks that Parse lists the first maxErrors problems in
// line order, even those found last, then how many more there are.
func TestTooManyProblems(t *testing.T) {
	const n = 2*maxErrors + 500
	lines := []string{`[[service]]`, `wieght = 1`, `address = "198.18.0.1:80"`, `scheduler_flags = [`}
	for range n {
		lines = append(lines, `  1,`)
	}
	lines = append(lines, `]`)
	_, err := Parse("gvs.toml", file(lines...))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != maxErrors+1 {
		t.Fatalf("got %d problems, want %d: %.300v", len(errs), maxErrors+1, err)
	}
	// The unknown key is found after the flags (when the table is done with),
	// but it comes first.
	if e := errs[0]; e.Line != 2 || !errors.Is(e, ErrUnknownKey) {
		t.Errorf("first problem: got %v, want the unknown key on line 2", e)
	}
	for i, e := range errs[1:maxErrors] {
		if want := 5 + i; e.Line != want || !errors.Is(e, ErrType) {
			t.Fatalf("problem %d: got %v, want a wrong type on line %d", i+1, e, want)
		}
	}
	last := errs[maxErrors]
	if want := fmt.Sprintf("gvs.toml:%d: and %d more problems after these (gvs lists the first %d)", errs[maxErrors-1].Line, n+1-maxErrors, maxErrors); last.Error() != want {
		t.Errorf("last: got %q, want %q", last, want)
	}
}
