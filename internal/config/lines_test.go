package config

import (
	"os"
	"slices"
	"sort"
	"testing"

	"github.com/BurntSushi/toml"
)

const trickyTOML = `# comment [[service]]
title = "a # not a comment"   # 2

[director]                    # 4
interface = """
[[service]]
weight = -1"""                # 7
control_socket = '''
x = 1
'''                           # 10
"quoted.key" = 1              # 11
'lit' = 2                     # 12
a.b.c = 3                     # 13

[[service]]                   # 15
address = "198.18.0.1:80"
flags = [                     # 17
  "one",                      # 18
  # a comment ]
  "two", "th]ree",            # 20
]
real_server = [               # 22
  { address = "198.18.0.5", weight = 1 },  # 23
  { address = "198.18.0.6",               
    weight = 2 },             # 25
]
  [service.check]             # 27
  type = "tcp"
  nested.deep = { x = [1, {y = 2}] }  # 29

[[service]]                   # 31
  [[service.real_server]]     # 32
  address = "198.18.0.7"
  [[service.real_server]]     # 34
  address = "198.18.0.8"      # 35
  [service.check]             # 36
  when = 1979-05-27 07:32:00Z # 37
  esc = "a \" b"              # 38
  ml = """a""""               # 39
  after = 1                   # 40
[ director . "sub table" ]    # 41
k = 1                         # 42
arr = ["""a"""",              # 43
  "b",                        # 44
]
"k\u00e9\x41\e" = 1             # 46
`

func TestLineIndex(t *testing.T) {
	idx := indexLines([]byte(trickyTOML))
	for path, want := range map[string]int{
		"title":                                    2,
		"director":                                 4,
		"director.interface":                       5,
		"director.control_socket":                  8,
		`director."quoted.key"`:                    11,
		"director.lit":                             12,
		"director.a.b.c":                           13,
		"service[0]":                               15,
		"service[0].flags":                         17,
		"service[0].flags[0]":                      18,
		"service[0].flags[1]":                      20,
		"service[0].flags[2]":                      20,
		"service[0].real_server[0]":                23,
		"service[0].real_server[1]":                24,
		"service[0].real_server[1].weight":         25,
		"service[0].check":                         27,
		"service[0].check.nested.deep.x[1].y":      29,
		"service[1]":                               31,
		"service[1].real_server[0]":                32,
		"service[1].real_server[1]":                34,
		"service[1].real_server[1].address":        35,
		"service[1].check":                         36,
		"service[1].check.when":                    37,
		"service[1].check.esc":                     38,
		"service[1].check.ml":                      39,
		"service[1].check.after":                   40,
		`director."sub table"`:                     41,
		`director."sub table".k`:                   42,
		`director."sub table".arr[0]`:              43,
		`director."sub table".arr[1]`:              44,
		"director.\"sub table\".\"k\u00e9A\\x1b\"": 46, // strconv.Quote form
	} {
		if got := idx[path]; got != want {
			t.Errorf("line of %s: got %d, want %d", path, got, want)
		}
	}
	if _, ok := idx["service[0].weight"]; ok {
		t.Errorf("a key inside a multi-line string was indexed")
	}
	if got := idx.line("service[1].check.missing"); got != 36 {
		t.Errorf("fallback to the table: got %d, want 36", got)
	}
	if got := idx.line(`director."sub table".missing[3]`); got != 41 {
		t.Errorf("fallback through a quoted key: got %d, want 41", got)
	}
	assertIndexed(t, []byte(trickyTOML))
}

func TestLineIndexExample(t *testing.T) {
	data, err := os.ReadFile("../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	assertIndexed(t, data)
}

// assertIndexed checks the index against the decoder: every key path the TOML
// decoder produces must have its own line.
func assertIndexed(t *testing.T, data []byte) {
	t.Helper()
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		t.Fatalf("test input is not TOML: %v", err)
	}
	idx := indexLines(data)
	var missing []string
	for _, p := range decodedPaths("", doc) {
		if _, ok := idx[p]; !ok {
			missing = append(missing, p)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("paths without a line: %q", missing)
	}
}

// decodedPaths lists every key and array element path of a decoded TOML value.
func decodedPaths(prefix string, v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p := joinKey(prefix, k)
			out = append(out, p)
			out = append(out, decodedPaths(p, v[k])...)
		}
	case []map[string]any:
		for i, e := range v {
			p := joinIndex(prefix, i)
			out = append(out, p)
			out = append(out, decodedPaths(p, e)...)
		}
	case []any:
		for i, e := range v {
			p := joinIndex(prefix, i)
			out = append(out, p)
			out = append(out, decodedPaths(p, e)...)
		}
	}
	return out
}

func TestParentPath(t *testing.T) {
	for in, want := range map[string]string{
		"service[0].real_server[1].weight": "service[0].real_server[1]",
		"service[0].real_server[1]":        "service[0].real_server",
		"service":                          "",
		`a."b.c[1]"`:                       "a",
		`a."x\"y.z".w`:                     `a."x\"y.z"`,
	} {
		if got := parentPath(in); got != want {
			t.Errorf("parentPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnescapeKey(t *testing.T) {
	for in, want := range map[string]string{
		`"plain"`:            "plain",
		`"a\"b"`:             `a"b`,
		`"a\\b"`:             `a\b`,
		`"\u00e9\U0001F600"`: "\u00e9\U0001F600",
		`"\xe9\e\t"`:         "\u00e9\x1b\t",
		`"dot.ted"`:          "dot.ted",
	} {
		if got := unescapeKey([]byte(in)); got != want {
			t.Errorf("unescapeKey(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestHeaderName(t *testing.T) {
	for in, want := range map[string]string{
		"service[0].real_server": "service.real_server",
		"service[12].check":      "service.check",
		`a."b[1]".c[2]`:          `a."b[1]".c`,
		`a."x\"[y".z[0]`:         `a."x\"[y".z`,
	} {
		if got := headerName(in); got != want {
			t.Errorf("headerName(%q) = %q, want %q", in, got, want)
		}
	}
}
