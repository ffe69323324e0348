package health

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

var docTarget = netip.MustParseAddrPort("198.18.0.5:80")

func TestParseType(t *testing.T) {
	for _, want := range []Type{TCP, HTTP, HTTPS, UDP, Exec} {
		got, err := ParseType(want.String())
		if err != nil || got != want {
			t.Errorf("ParseType(%q) = %v, %v; want %v", want.String(), got, err, want)
		}
	}
	for _, bad := range []string{"", "TCP", "smtp", "Type(0)"} {
		if _, err := ParseType(bad); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("ParseType(%q) error = %v, want ErrInvalidSpec", bad, err)
		}
	}
	if s := Type(0).String(); s != "Type(0)" {
		t.Errorf("Type(0).String() = %q", s)
	}
}

func TestParseStatusRanges(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []StatusRange
	}{
		{"single", "200", []StatusRange{{200, 200}}},
		{"keepalived example", "200-299 400-499 503 505", []StatusRange{{200, 299}, {400, 499}, {503, 503}, {505, 505}}},
		{"commas", "200,301-302", []StatusRange{{200, 200}, {301, 302}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatusRanges(tt.in)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "abc", "99", "600", "300-200", "200-", "-1"} {
		if _, err := ParseStatusRanges(bad); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("ParseStatusRanges(%q) error = %v, want ErrInvalidSpec", bad, err)
		}
	}
}

func TestDefaultsAreValid(t *testing.T) {
	for _, typ := range []Type{TCP, HTTP, HTTPS, UDP, Exec} {
		s := Defaults(typ)
		s.Target = docTarget
		s.Command = []string{"/bin/true"}
		if err := s.Validate(); err != nil {
			t.Errorf("Defaults(%v): %v", typ, err)
		}
	}
	if d := Defaults(HTTP); d.RetryDelay != 3*time.Second || d.Retries != 1 {
		t.Errorf("HTTP defaults %+v, want keepalived retry 1, delay_before_retry 3s", d)
	}
	if d := Defaults(Exec); d.Retries != 0 {
		t.Errorf("exec default retries %d, want 0 (MISC_CHECK)", d.Retries)
	}
}

func TestValidateRejects(t *testing.T) {
	ok := func() Spec {
		s := Defaults(HTTP)
		s.Target = docTarget
		return s
	}
	tests := []struct {
		name   string
		modify func(*Spec)
	}{
		{"zero interval", func(s *Spec) { s.Interval = 0 }},
		{"negative interval", func(s *Spec) { s.Interval = -time.Second }},
		{"zero timeout", func(s *Spec) { s.Timeout = 0 }},
		{"negative timeout", func(s *Spec) { s.Timeout = -1 }},
		{"unknown type", func(s *Spec) { s.Type = 0 }},
		{"type out of range", func(s *Spec) { s.Type = 42 }},
		{"negative retries", func(s *Spec) { s.Retries = -1 }},
		{"negative retry delay", func(s *Spec) { s.RetryDelay = -1 }},
		{"negative rise", func(s *Spec) { s.Rise = -1 }},
		{"negative fall", func(s *Spec) { s.Fall = -1 }},
		{"no address", func(s *Spec) { s.Target = netip.AddrPort{}; s.ID = "x" }},
		{"no port", func(s *Spec) { s.Target = netip.AddrPortFrom(docTarget.Addr(), 0) }},
		{"no ID, no target", func(s *Spec) { s.Target = netip.AddrPort{} }},
		{"ip and name", func(s *Spec) { s.ConnectIP = docTarget.Addr(); s.ConnectName = "a.example" }},
		{"relative path", func(s *Spec) { s.Path = "index.html" }},
		{"absolute URL path", func(s *Spec) { s.Path = "http://example.com/" }},
		{"bad status", func(s *Spec) { s.StatusCodes = []StatusRange{{200, 700}} }},
		{"reversed status", func(s *Spec) { s.StatusCodes = []StatusRange{{300, 200}} }},
		{"digest not hex", func(s *Spec) { s.Digest = "zz" }},
		{"digest short", func(s *Spec) { s.Digest = "640205b7" }},
		{"host with CRLF", func(s *Spec) { s.Host = "a\r\nX: y" }},
		{"exec empty command", func(s *Spec) { s.Type = Exec; s.Command = nil }},
		{"exec empty argv0", func(s *Spec) { s.Type = Exec; s.Command = []string{""} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok()
			tt.modify(&s)
			if err := s.Validate(); !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("Validate() = %v, want ErrInvalidSpec", err)
			}
			if _, err := New(s); err == nil {
				t.Errorf("New accepted the spec")
			}
		})
	}
}

func TestNormalizeDefaultsAndCopies(t *testing.T) {
	s := Spec{Type: HTTP, Target: docTarget, Interval: time.Second, Timeout: time.Second,
		Digest: "640205B7B0FC66C1EA91C463FAC6334D", Command: []string{"x"}}
	n, err := s.normalize()
	if err != nil {
		t.Fatal(err)
	}
	if n.ID != "198.18.0.5:80" || n.Path != "/" || n.Rise != 1 || n.Fall != 1 ||
		!reflect.DeepEqual(n.StatusCodes, []StatusRange{{200, 299}}) ||
		n.Digest != "640205b7b0fc66c1ea91c463fac6334d" {
		t.Errorf("normalized %+v", n)
	}
	s.Command[0] = "changed"
	if n.Command[0] != "x" {
		t.Error("normalize shares the caller's Command slice")
	}
	e := Spec{Type: Exec, Command: []string{"/bin/check", "a"}, Interval: 1, Timeout: 1}
	if n, err := e.normalize(); err != nil || n.ID != "/bin/check a" {
		t.Errorf("exec without target: ID %q, %v", n.ID, err)
	}
}

func TestNewCAFile(t *testing.T) {
	s := Defaults(HTTPS)
	s.Target = docTarget
	s.TLSVerify = true
	s.CAFile = filepath.Join(t.TempDir(), "missing.pem")
	if _, err := New(s); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing CA file: %v", err)
	}
	if err := os.WriteFile(s.CAFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(s); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("CA file without PEM: %v", err)
	}
}
