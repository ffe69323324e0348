package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// nest returns key = {key = {… = 1}} with n keys.
func nest(key string, n int) string {
	return strings.Repeat(key+" = {", n-1) + key + " = 1" + strings.Repeat("}", n-1)
}

// dotted returns a key of n parts: a.a.a….
func dotted(n int) string { return strings.TrimSuffix(strings.Repeat("a.", n), ".") }

var limitCases = []struct {
	name     string
	src      string
	deepest  int   // when err is nil
	complete bool  // when err is nil
	err      error // a limit sentinel, or nil
	line     int   // of err
}{
	{name: "empty", src: "", complete: true},
	{name: "brackets in a comment", src: "# [[[[[[[[[[ {{{{{{{{\na = 1 # ]]]] [[[[[[[[[[\n", deepest: 1, complete: true},
	{name: "brackets in strings", src: `a = "[[[[[[[[[[{{{{"` + "\n" + `b = '[[[[[[[[[[{{{{'`, deepest: 1, complete: true},
	{name: "escaped quote in a basic string", src: `a = "\"[[[[[[[[[[\" # {{"` + "\nb = [1]", deepest: 2, complete: true},
	{name: "escaped backslash ends a basic string", src: `a = "\\" # [[[[[[[[[[` + "\nb = [1]", deepest: 2, complete: true},
	{name: "backslash ends a literal string", src: `a = 'C:\' # [[[[[[[[[[` + "\nb = [1]", deepest: 2, complete: true},
	{name: "multi-line basic string", src: "a = \"\"\"\n[[[[[[[[[[\n# ]] \" '' \"\"\nb = [[[[[[[[[[1]]]]]]]]]]\"\"\"\nc = [1]", deepest: 2, complete: true},
	{name: "multi-line string ends with quotes", src: "a = \"\"\"x\"\"\"\"\"\nb = " + strings.Repeat("[", 8) + "1" + strings.Repeat("]", 8), err: ErrTooDeep, line: 2},
	{name: "escaped quotes in a multi-line string", src: "a = \"\"\"a\\\"\"\"b\"\"\"\nb = " + strings.Repeat("[", 8) + "1" + strings.Repeat("]", 8), err: ErrTooDeep, line: 2},
	{name: "multi-line literal string", src: "a = '''\nC:\\'''\nb = '''x'''''\nc = [[1]]", deepest: 3, complete: true},
	{name: "comments in arrays", src: "a = [ # ]]]]\n  1, # [[[[[[[[[[\n  '#', \"]\",\n]", deepest: 2, complete: true},
	{name: "key-like text in a string", src: "a = \"b.c.d.e.f.g.h.i.j = 1\"", deepest: 1, complete: true},
	{name: "date-time with a space", src: "a = 1979-05-27 07:32:00Z\nb = [[1]]", deepest: 3, complete: true},
	{name: "trailing commas and line breaks", src: "a = [1, 2, ]\nb = {\n  c = 1,\n  d = [{}],\n}\n", deepest: 3, complete: true},
	{name: "empty array and table", src: "a = []\nb = {}", deepest: 2, complete: true},
	{name: "CRLF", src: "a = 1\r\n[b]\r\nc = [\r\n 2,\r\n]\r\n", deepest: 3, complete: true},
	{name: "quoted key with dots", src: `"a.b.c.d.e.f.g.h.i" = 1`, deepest: 1, complete: true},
	{name: "spaces around dots", src: "a . 'b' . \"c\" = 1", deepest: 3, complete: true},
	{name: "spaces in headers", src: "[ a . b ]\n[[ c ]]\n[[\td\t]]", deepest: 2, complete: true},

	// The schema's deepest value, written all inline and with headers.
	{name: "schema inline", src: "service = [{ address = \"198.18.0.1:80\", check = { status_codes = [200] }, real_server = [{ address = \"198.18.0.5\" }] }]", deepest: 5, complete: true},
	{name: "schema headers", src: "[[service]]\n[service.check]\nstatus_codes = [200]\n[[service.real_server]]\naddress = \"198.18.0.5\"", deepest: 4, complete: true},

	// At the limit and one above, in each form.
	{name: "inline tables at limit", src: nest("a", MaxDepth), deepest: MaxDepth, complete: true},
	{name: "inline tables above", src: "x = 1\n" + nest("a", MaxDepth+1), err: ErrTooDeep, line: 2},
	{name: "arrays at limit", src: "a = " + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1), deepest: MaxDepth, complete: true},
	{name: "arrays above", src: "a = [\n" + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth) + "\n", err: ErrTooDeep, line: 2},
	{name: "arrays of tables at limit", src: "a = [{b = [{c = [{d = [1]}]}]}]", deepest: 8, complete: true},
	{name: "arrays of tables above", src: "a = [{b = [{c = [{d = [{e = 1}]}]}]}]", err: ErrTooDeep, line: 1},
	{name: "dotted key at limit", src: dotted(MaxDepth) + " = 1", deepest: MaxDepth, complete: true},
	{name: "dotted key above", src: "\n\n" + dotted(MaxDepth+1) + " = 1", err: ErrTooDeep, line: 3},
	{name: "header at limit", src: "[" + dotted(MaxDepth-1) + "]\nb = 1", deepest: MaxDepth, complete: true},
	{name: "key under header above", src: "[" + dotted(MaxDepth-1) + "]\nb = 1\nc.d = 1", err: ErrTooDeep, line: 3},
	{name: "array header above", src: "[[" + dotted(MaxDepth+1) + "]]", err: ErrTooDeep, line: 1},
	{name: "header resets the depth", src: "[" + dotted(MaxDepth-1) + "]\n[x]\n" + dotted(MaxDepth-1) + " = 1", deepest: MaxDepth, complete: true},
	{name: "dotted keys in inline tables", src: "a.b = {c.d = {e.f = [[1]]}}", deepest: MaxDepth, complete: true},
	{name: "dotted keys in inline tables above", src: "a.b = {c.d = {e.f = [[[1]]]}}", err: ErrTooDeep, line: 1},
	{name: "depth after a multi-line string", src: "a = \"\"\"\n\n\"\"\"\n\r\nb = '''\n'''\n" + nest("c", MaxDepth+1), err: ErrTooDeep, line: 7},

	// Key length.
	{name: "key at limit", src: strings.Repeat("k", MaxKeyLen) + " = 1", deepest: 1, complete: true},
	{name: "quoted key at limit", src: `"` + strings.Repeat("k", MaxKeyLen) + `" = 1`, deepest: 1, complete: true},
	{name: "key above", src: "a = 1\nb." + strings.Repeat("k", MaxKeyLen+1) + " = 1", err: ErrKeyTooLong, line: 2},
	{name: "quoted key above", src: "a = {'" + strings.Repeat("k", MaxKeyLen+1) + "' = 1}", err: ErrKeyTooLong, line: 1},
	{name: "header key above", src: "[" + strings.Repeat("k", MaxKeyLen+1) + "]", err: ErrKeyTooLong, line: 1},

	// The decoder drops byte-order marks; so must the scan.
	{name: "BOM", src: "\xef\xbb\xbf" + nest("a", MaxDepth+1), err: ErrTooDeep, line: 1},
	{name: "UTF-16 BOM", src: "\xff\xfe" + nest("a", MaxDepth+1), err: ErrTooDeep, line: 1},

	// Invalid TOML: the scan stops and leaves the error to the decoder.
	{name: "missing value", src: "a = = 1\nb = " + strings.Repeat("[", 20), complete: false},
	{name: "unterminated string", src: "a = \"abc\nb = 1", complete: false},
	{name: "unclosed array", src: "a = [1, 2", deepest: 2, complete: false},
	{name: "empty key", src: "a = { = 1}", deepest: 1, complete: false},
	{name: "bare words", src: "just some text", complete: false},
}

func TestLimitScan(t *testing.T) {
	for _, tc := range limitCases {
		t.Run(tc.name, func(t *testing.T) {
			s := limitScan{src: []byte(tc.src)}
			e := s.run()
			if tc.err != nil {
				if e == nil || !errors.Is(e, tc.err) || e.Line != tc.line {
					t.Fatalf("got error %v, want %v at line %d", e, tc.err, tc.line)
				}
				if !strings.Contains(e.Error(), fmt.Sprintf(" at line %d; ", tc.line)) {
					t.Errorf("error %q does not name line %d", e, tc.line)
				}
				return
			}
			if e != nil {
				t.Fatalf("unexpected error %v", e)
			}
			if s.complete != tc.complete || tc.complete && s.deepest != tc.deepest {
				t.Errorf("got deepest %d, complete %v; want %d, %v", s.deepest, s.complete, tc.deepest, tc.complete)
			}
			checkScanAgainstDecoder(t, []byte(tc.src))
		})
	}
}

// checkScanAgainstDecoder checks the scan against the TOML decoder: on every
// document the decoder accepts, the scan reaches the end and finds the depth of
// the decoded document, or refuses it for a limit it breaks.
func checkScanAgainstDecoder(t *testing.T, data []byte) {
	t.Helper()
	s := limitScan{src: data}
	e := s.run()
	if e != nil {
		if e.Line < 1 || e.Line > bytes.Count(data, []byte("\n"))+1 {
			t.Fatalf("error line %d is outside the file: %v", e.Line, e)
		}
	}
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		return
	}
	depth := decodedDepth(doc)
	switch {
	case e != nil && errors.Is(e, ErrTooDeep):
		if depth <= MaxDepth {
			t.Fatalf("scan refused a document %d levels deep: %v", depth, e)
		}
	case e != nil:
		if !errors.Is(e, ErrKeyTooLong) && !errors.Is(e, ErrTooManyTables) {
			t.Fatalf("scan failed with %v", e)
		}
	case !s.complete:
		t.Fatalf("scan stopped at byte %d of %d of a valid document", s.i, len(data))
	case s.deepest != depth:
		t.Fatalf("scan found depth %d, the decoded document has %d", s.deepest, depth)
	default:
		if k := longestKey(doc); len(k) > MaxKeyLen {
			t.Fatalf("scan accepted key %q, %d bytes", k, len(k))
		}
	}
}

// decodedDepth counts levels as MaxDepth does: one per key and one per array.
// The elements of an array of tables ([[a]], decoded as []map[string]any) sit
// at the level of its key, as its header spells no array.
func decodedDepth(v any) int {
	d := 0
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			d = max(d, 1+decodedDepth(e))
		}
	case []map[string]any:
		for _, e := range v {
			d = max(d, decodedDepth(e))
		}
	case []any:
		d = 1
		for _, e := range v {
			d = max(d, 1+decodedDepth(e))
		}
	}
	return d
}

// longestKey returns the longest key in a decoded document.
func longestKey(v any) string {
	long := ""
	keep := func(k string) {
		if len(k) > len(long) {
			long = k
		}
	}
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			keep(k)
			keep(longestKey(e))
		}
	case []map[string]any:
		for _, e := range v {
			keep(longestKey(e))
		}
	case []any:
		for _, e := range v {
			keep(longestKey(e))
		}
	}
	return long
}

// TestParseLimits checks that Parse and Load apply the limits, and that a file
// within them goes on to the schema's own errors.
func TestParseLimits(t *testing.T) {
	deep := file(
		`[director]`,
		`interface = "eth0"`,
		`[[service]]`,
		`address = "198.18.0.1:80"`,
		`check = { type = "http", status_codes = [[[[[[[200]]]]]]] }`,
	)
	checkErrors(t, deep, []wantErr{{5, "", "too deeply nested: 9 levels of keys and arrays at line 5; gvs configs nest at most 8 levels"}})

	// At the limit, a near miss gets the schema's error, not the limit's.
	near := file(`service = [{ address = "198.18.0.1:80", real_server = [{ address = "198.18.0.5", probe = { status_codes = [200] } }] }]`)
	checkErrors(t, near, []wantErr{{1, "service[0].real_server[0]", `unknown key "probe"`}})

	long := file(`[director]`, strings.Repeat("x", MaxKeyLen+1)+` = 1`)
	checkErrors(t, long, []wantErr{{2, "", "key too long: 65 bytes at line 2; gvs keys are at most 64 bytes"}})

	// The size limit, on the boundary: a file of MaxFileSize bytes is read.
	if err := checkLimits("big.toml", bytes.Repeat([]byte("\n"), MaxFileSize)); err != nil {
		t.Errorf("a file of MaxFileSize bytes: %v", err)
	}
	_, err := Parse("big.toml", make([]byte, MaxFileSize+1))
	if !errors.Is(err, ErrTooLarge) || !strings.HasPrefix(err.Error(), "big.toml:1: file too large: more than 8388608 bytes") {
		t.Errorf("Parse of MaxFileSize+1 bytes: got %v, want ErrTooLarge", err)
	}

	// Load reads no more than the limit: a sparse file far larger is refused.
	path := filepath.Join(t.TempDir(), "huge.toml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		f.Close()
		t.Skipf("no sparse file: %v", err)
	}
	f.Close()
	if _, err := Load(path); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Load of a 1 TiB file: got %v, want ErrTooLarge", err)
	}
}

// TestLimitTables checks the count of tables, at the limit and one above.
func TestLimitTables(t *testing.T) {
	atLimit := "[director]\n[[service]]\nreal_server = [" + strings.Repeat("{},", MaxTables-3) + "]\ncheck = {}\n"
	s := limitScan{src: []byte(atLimit)}
	if e := s.run(); e != nil || !s.complete || s.tables != MaxTables {
		t.Fatalf("at the limit: error %v, complete %v, %d tables", e, s.complete, s.tables)
	}
	s = limitScan{src: []byte(atLimit + "\n[vrrp]\n")}
	e := s.run()
	if e == nil || !errors.Is(e, ErrTooManyTables) || e.Line != 6 {
		t.Fatalf("one above: got %v, want ErrTooManyTables at line 6", e)
	}
	if want := "too many tables: 262145 at line 6; gvs configs have at most 262144"; e.Err.Error() != want {
		t.Errorf("got %q, want %q", e.Err, want)
	}
}

// TestLimitsRefuseWithoutDecoding checks that a pathological file is refused
// before the decoder sees it: the allocations of a refusal do not grow with the
// file. Each input here makes the decoder allocate in proportion to its size or
// its square (a few hundred MB for the largest).
func TestLimitsRefuseWithoutDecoding(t *testing.T) {
	for _, tc := range []struct {
		name string
		gen  func(n int) string
		want error
	}{
		{"inline tables", func(n int) string { return nest("a", n) }, ErrTooDeep},
		{"arrays of inline tables", func(n int) string {
			return "a = " + strings.Repeat("[{a = ", n) + "1" + strings.Repeat("}]", n)
		}, ErrTooDeep},
		{"arrays", func(n int) string { return "a = " + strings.Repeat("[", n) + strings.Repeat("]", n) }, ErrTooDeep},
		{"dotted key", func(n int) string { return dotted(n) + " = 1" }, ErrTooDeep},
		{"header", func(n int) string { return "[" + dotted(n) + "]\n" }, ErrTooDeep},
		{"long key", func(n int) string { return "[[service]]\n" + strings.Repeat("k", 100*n) + " = 1\n" }, ErrKeyTooLong},
		{"tables", func(n int) string { return "service = [" + strings.Repeat("{},", MaxTables+n) + "]" }, ErrTooManyTables},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var allocs [2]float64
			for i, n := range []int{100, 2000} {
				data := []byte(tc.gen(n))
				_, err := Parse("x.toml", data)
				if !errors.Is(err, tc.want) {
					t.Fatalf("n=%d: got %.200v, want %v", n, err, tc.want)
				}
				allocs[i] = testing.AllocsPerRun(2, func() { Parse("x.toml", data) })
			}
			// The race detector's sync.Pool drops a random share of what is put
			// back, so there the counts vary from run to run: only the bound,
			// which no input of either size could stay under if it were
			// decoded, is checked.
			if (!raceEnabled && allocs[0] != allocs[1]) || allocs[0] > 16 || allocs[1] > 16 {
				t.Errorf("allocations of a refusal: %v at n=100, %v at n=2000; want the same, at most 16", allocs[0], allocs[1])
			}
		})
	}
}

// TestLimitScanAllocs checks that the scan allocates nothing, whatever the file.
func TestLimitScanAllocs(t *testing.T) {
	data := genServices(200)
	if n := testing.AllocsPerRun(5, func() {
		s := limitScan{src: data}
		if e := s.run(); e != nil || !s.complete {
			t.Fatalf("scan: %v, complete %v", e, s.complete)
		}
	}); n != 0 {
		t.Errorf("scan of %d bytes: %v allocations, want 0", len(data), n)
	}
}

// TestGeneratedConfigsParse checks the benchmarks' inputs: genServices is a
// valid config, and genNested is within the limits.
func TestGeneratedConfigsParse(t *testing.T) {
	c := mustParse(t, genServices(30))
	if len(c.Services) != 30 || len(c.Services[0].RealServers) != 3 || len(c.Services[2].RealServers) != 2 {
		t.Errorf("got %d services", len(c.Services))
	}
	for _, form := range []string{"inline", "header"} {
		_, err := Parse("x.toml", genNested(form, 10))
		if err == nil || errors.Is(err, ErrTooDeep) || errors.Is(err, ErrKeyTooLong) || errors.Is(err, ErrSyntax) {
			t.Errorf("%s: got %v, want only unknown keys", form, err)
		}
	}
}

// genServices returns a valid config with n services, each with two or three
// real servers, written in turn as [[service.real_server]] tables, as an
// array of inline tables, and all inline.
func genServices(n int) []byte {
	var b bytes.Buffer
	b.WriteString("[director]\ninterface = \"eth0\"\n\n")
	for i := range n {
		vip := fmt.Sprintf("198.18.%d.%d", i/250, i%250+1)
		net := fmt.Sprintf("198.19.%d", i/250)
		switch i % 3 {
		case 0:
			fmt.Fprintf(&b, "# service %d\n[[service]]\naddress = %q\nscheduler = \"wlc\"\npersistence = \"300s\"\n", i, vip+":80")
			b.WriteString("  [service.check]\n  type = \"http\"\n  path = \"/healthz\"\n  status_codes = [200, 204]\n")
			for j := 1; j <= 3; j++ {
				fmt.Fprintf(&b, "  [[service.real_server]]\n  address = \"%s.%d:80\"\n  weight = %d\n", net, j, j)
			}
		case 1:
			fmt.Fprintf(&b, "[[service]]\naddress = %q\nscheduler = \"rr\"\nreal_server = [\n", vip+":443")
			for j := 1; j <= 3; j++ {
				fmt.Fprintf(&b, "  { address = \"%s.%d:443\", weight = %d },\n", net, j, j)
			}
			b.WriteString("]\n")
		case 2:
			fmt.Fprintf(&b, "[[service]]\naddress = %q\nprotocol = \"udp\"\n"+
				"check = { type = \"udp\", payload = \"ping\", expect = \"pong\" }\n"+
				"real_server = [{ address = \"%s.1\" }, { address = \"%s.2\", weight = 0 }]\n", vip+":53", net, net)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// genNested returns n blocks nested to MaxDepth with keys of MaxKeyLen bytes,
// the most the decoder and the line index store per byte within the limits:
// "inline" nests inline tables; "header" puts many short keys under a header of
// MaxDepth-1 long parts.
func genNested(form string, n int) []byte {
	var b bytes.Buffer
	long := func(i, j int) string { return fmt.Sprintf("k%0*d", MaxKeyLen-1, i*MaxDepth+j) }
	for i := range n {
		switch form {
		case "inline":
			fmt.Fprintf(&b, "%s = {", long(i, 0))
			for j := 1; j < MaxDepth-1; j++ {
				fmt.Fprintf(&b, "%s = {", long(i, j))
			}
			fmt.Fprintf(&b, "%s = 1", long(i, MaxDepth-1))
			b.WriteString(strings.Repeat("}", MaxDepth-2) + "}\n")
		case "header":
			b.WriteByte('[')
			for j := range MaxDepth - 1 {
				if j > 0 {
					b.WriteByte('.')
				}
				b.WriteString(long(i, j))
			}
			b.WriteString("]\n")
			for j := range 100 {
				fmt.Fprintf(&b, "k%d = 1\n", j)
			}
		}
	}
	return b.Bytes()
}

// FuzzLimits checks the limit scan against the TOML decoder (see
// checkScanAgainstDecoder); the scan must also never panic. Seeds: the cases of
// TestLimitScan, the line-index and example configs, and testdata/fuzz/FuzzLimits
// (see testdata/README.md).
func FuzzLimits(f *testing.F) {
	for _, tc := range limitCases {
		f.Add([]byte(tc.src))
	}
	f.Add([]byte(trickyTOML))
	addExample(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkScanAgainstDecoder(t, data)
	})
}

// BenchmarkParseLarge parses generated configs of about 2.7 and 5.4 MB.
func BenchmarkParseLarge(b *testing.B) {
	for _, n := range []int{10000, 20000} {
		data := genServices(n)
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Parse("large.toml", data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseNestedAtLimit parses the worst cases within the limits at two
// sizes; ns/op and B/op double with the size.
func BenchmarkParseNestedAtLimit(b *testing.B) {
	for _, form := range []string{"inline", "header"} {
		for _, n := range map[string][]int{"inline": {2000, 4000}, "header": {200, 400}}[form] {
			data := genNested(form, n)
			b.Run(fmt.Sprintf("%s/bytes=%d", form, len(data)), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					if _, err := Parse("nested.toml", data); err == nil || errors.Is(err, ErrTooDeep) {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkLimitScan is the scan alone, on the larger generated config.
func BenchmarkLimitScan(b *testing.B) {
	data := genServices(20000)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		s := limitScan{src: data}
		if e := s.run(); e != nil || !s.complete {
			b.Fatal(e)
		}
	}
}
