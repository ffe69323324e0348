package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzParse checks that Parse never panics and always answers in one of two
// shapes: a Config whose enums and defaults are all set, or Errors in line order,
// each starting "name:line: " with a line inside the file. Parsing is also
// deterministic. Seeds: testdata/fuzz/FuzzParse (see testdata/README.md).
func FuzzParse(f *testing.F) {
	addExample(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "fuzz.toml"
		c, err := Parse(name, data)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", c != nil, err)
		}
		c2, err2 := Parse(name, data)
		if fmt.Sprint(err) != fmt.Sprint(err2) || !reflect.DeepEqual(c, c2) {
			t.Fatalf("Parse is not deterministic:\n%v\n---\n%v", err, err2)
		}
		if err != nil {
			checkFuzzErrors(t, name, data, err)
			return
		}
		checkFuzzConfig(t, c)
	})
}

func checkFuzzErrors(t *testing.T, name string, data []byte, err error) {
	var errs Errors
	if !errors.As(err, &errs) || len(errs) == 0 {
		t.Fatalf("error is %T, want non-empty Errors: %v", err, err)
	}
	lines := bytes.Count(data, []byte("\n")) + 1
	for i, e := range errs {
		prefix := fmt.Sprintf("%s:%d: ", name, e.Line)
		if e.Line < 1 || e.Line > lines || !strings.HasPrefix(e.Error(), prefix) {
			t.Errorf("error %d has no valid %q prefix (file has %d lines): %q", i, name+":line:", lines, e.Error())
		}
		if i > 0 && e.Line < errs[i-1].Line {
			t.Errorf("errors out of line order: %d after %d", e.Line, errs[i-1].Line)
		}
		if e.Err == nil {
			t.Errorf("error %d has no cause", i)
		}
	}
}

func checkFuzzConfig(t *testing.T, c *Config) {
	d := c.Director
	if d.ConnMax < 1 || d.ConnShards < 1 || d.ConnShards&(d.ConnShards-1) != 0 || d.ConnShards > d.ConnMax {
		t.Errorf("director sizes: conn_max %d conn_shards %d", d.ConnMax, d.ConnShards)
	}
	if d.Timeouts.TCP <= 0 || d.Timeouts.TCPFin <= 0 || d.Timeouts.UDP <= 0 {
		t.Errorf("timeouts not positive: %+v", d.Timeouts)
	}
	for i, s := range c.Services {
		if (s.Protocol == 0) != (s.FWMark != 0) || s.Method == 0 || s.Scheduler == "" || !s.Netmask.IsValid() {
			t.Errorf("service[%d] has an unset field: %+v", i, s)
		}
		if (s.FWMark == 0) == !s.Addr.IsValid() {
			t.Errorf("service[%d]: want exactly one of address and fwmark: %+v", i, s)
		}
		if (s.FWMark != 0) != (len(s.Match) > 0) {
			t.Errorf("service[%d]: fwmark %d with %d match rules", i, s.FWMark, len(s.Match))
		}
		if s.Addr.IsValid() && s.Addr.Port() == 0 && s.Persistence == 0 {
			t.Errorf("service[%d]: port 0 but not persistent", i)
		}
		seen := map[string]bool{}
		for j, rs := range s.RealServers {
			if rs.Method == 0 || rs.Weight < 0 || !rs.Addr.IsValid() {
				t.Errorf("service[%d].real_server[%d] invalid: %+v", i, j, rs)
			}
			if seen[rs.Addr.String()] {
				t.Errorf("service[%d]: duplicate real server %s", i, rs.Addr)
			}
			seen[rs.Addr.String()] = true
			if (rs.Addr.Addr().Is4()) != !s.IPv6 {
				t.Errorf("service[%d].real_server[%d]: family differs from the service", i, j)
			}
		}
		if s.Check != nil && (s.Check.Type == 0 || s.Check.Interval <= 0 || s.Check.Timeout <= 0) {
			t.Errorf("service[%d].check invalid: %+v", i, *s.Check)
		}
	}
	for i, v := range c.VRRP {
		if v.Name == "" || v.VirtualRouterID == 0 || v.Priority == 0 || len(v.VirtualIPAddress) == 0 || (v.Version != 2 && v.Version != 3) {
			t.Errorf("vrrp[%d] invalid: %+v", i, v)
		}
	}
}

// FuzzLineIndex checks the line scan against the TOML decoder: for any document
// the decoder accepts, every key and element path it produces has a line, and the
// scan never panics.
func FuzzLineIndex(f *testing.F) {
	f.Add([]byte(trickyTOML))
	addExample(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		idx := indexLines(data) // must not panic, even on invalid TOML
		var doc map[string]any
		if _, err := toml.Decode(string(data), &doc); err != nil {
			return
		}
		n := bytes.Count(data, []byte("\n")) + 1
		for _, p := range decodedPaths("", doc) {
			l, ok := idx[p]
			if !ok {
				t.Fatalf("no line for %s", p)
			}
			if l < 1 || l > n {
				t.Fatalf("line %d for %s is outside the file (%d lines)", l, p, n)
			}
		}
	})
}

// addExample seeds a fuzz target with the reference config.
func addExample(f *testing.F) {
	data, err := os.ReadFile("../../config.example.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
}
