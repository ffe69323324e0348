package health

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gvs-lb/gvs/internal/script"
)

// Spec describes one health check of one real server, in keepalived's terms. It is a
// plain value: the daemon maps its config onto it and the Monitor keeps a private copy.
//
// Zero values: Rise and Fall 0 mean 1; Path "" means "/"; StatusCodes nil means
// 200–299; ConnectIP, ConnectName and ConnectPort unset mean Target's address and port.
// Interval and Timeout must be positive. Defaults returns keepalived's defaults.
type Spec struct {
	// ID names the target across reloads (e.g. "tcp/198.18.0.100:80 198.18.0.5:80").
	// Empty means Target.String(), or the command line for an exec check without one.
	ID   string
	Type Type
	// Target is the real server (its service address and port).
	Target netip.AddrPort

	// ConnectIP, or else ConnectName (a DNS name resolved at each probe, within its
	// timeout), replaces Target's address; ConnectPort replaces its port
	// (keepalived connect_ip, connect_port).
	ConnectIP   netip.Addr
	ConnectName string
	ConnectPort uint16

	// HTTP and HTTPS.
	Path        string        // request path and query, starting with "/"
	StatusCodes []StatusRange // accepted status codes (keepalived status_code)
	Digest      string        // hex MD5 of the body, as keepalived's genhash prints it
	Expect      string        // the body (HTTP) or the reply (UDP, which then requires one) must contain it
	Host        string        // Host header (keepalived virtualhost); default the connect address
	SNI         string        // TLS server name; default Host when it is a name
	TLSVerify   bool          // verify the server certificate (keepalived SSL_GET does not)
	CAFile      string        // PEM roots for TLSVerify; empty means the system roots

	// UDP.
	Payload     []byte // the datagram to send; empty sends an empty datagram
	ExpectReply bool   // require a reply (keepalived require_reply)

	// Exec.
	Command []string // argv; no shell is involved
	Dynamic bool     // exit 2–255 means up with weight exit−2 (keepalived misc_dynamic)
	Env     []string // "NAME=value" added to the command's environment (the real server it checks)

	// Timing.
	Interval   time.Duration // between check starts (keepalived delay_loop)
	Timeout    time.Duration // per probe (keepalived connect_timeout, misc_timeout)
	Retries    int           // extra probes before a check fails (keepalived retry)
	RetryDelay time.Duration // between those probes (keepalived delay_before_retry)
	Rise       int           // consecutive successes to go UP; 0 means 1
	Fall       int           // consecutive failed checks to go DOWN; 0 means 1
	Alpha      bool          // start DOWN until checks pass
	Omega      bool          // report DOWN when stopped or removed while UP
}

// StatusRange is an inclusive range of HTTP status codes; a single code has Lo == Hi.
type StatusRange struct{ Lo, Hi int }

// MaxBodyBytes bounds the HTTP body read for Digest and Expect; a longer body fails the
// probe with "body too large".
const MaxBodyBytes = 1 << 20

// maxHeaderBytes bounds the HTTP status line and headers.
const maxHeaderBytes = 64 << 10

// Defaults returns a Spec of type t carrying keepalived's defaults: delay_loop 60s,
// connect_timeout 5s, retry 1 (0 for exec, as MISC_CHECK), delay_before_retry 1s (3s
// for HTTP and HTTPS), status codes 200–299, path "/".
func Defaults(t Type) Spec {
	s := Spec{
		Type:       t,
		Interval:   60 * time.Second,
		Timeout:    5 * time.Second,
		Retries:    1,
		RetryDelay: time.Second,
		Rise:       1,
		Fall:       1,
	}
	switch t {
	case HTTP, HTTPS:
		s.RetryDelay = 3 * time.Second
		s.Path = "/"
		s.StatusCodes = []StatusRange{{200, 299}}
	case Exec:
		s.Retries = 0
	}
	return s
}

// InitialUp reports the state a target starts in: DOWN with Alpha, UP otherwise.
func (s *Spec) InitialUp() bool { return !s.Alpha }

// ParseStatusRanges parses keepalived's status_code syntax: codes and ranges separated
// by spaces or commas, e.g. "200-299 400-499 503".
func ParseStatusRanges(s string) ([]StatusRange, error) {
	var rs []StatusRange
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
		lo, hi, isRange := strings.Cut(f, "-")
		if !isRange {
			hi = lo
		}
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("health: status code %q: %w", f, ErrInvalidSpec)
		}
		r := StatusRange{l, h}
		if !r.valid() {
			return nil, fmt.Errorf("health: status code %q out of range 100-599: %w", f, ErrInvalidSpec)
		}
		rs = append(rs, r)
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("health: empty status code list: %w", ErrInvalidSpec)
	}
	return rs, nil
}

func (r StatusRange) valid() bool { return 100 <= r.Lo && r.Lo <= r.Hi && r.Hi <= 599 }

func (r StatusRange) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(r.Lo)
	}
	return strconv.Itoa(r.Lo) + "-" + strconv.Itoa(r.Hi)
}

// Validate reports the first problem of s, wrapping ErrInvalidSpec.
func (s *Spec) Validate() error {
	_, err := s.normalize()
	return err
}

// normalize returns a deep copy of s with defaults filled in, or the first problem.
func (s *Spec) normalize() (Spec, error) {
	n := *s
	n.StatusCodes = cloneNonEmpty(s.StatusCodes)
	n.Payload = cloneNonEmpty(s.Payload)
	n.Command = cloneNonEmpty(s.Command)
	n.Env = cloneNonEmpty(s.Env)
	if n.ID == "" {
		switch {
		case n.Target.IsValid():
			n.ID = n.Target.String()
		case n.Type == Exec:
			n.ID = strings.Join(n.Command, " ")
		}
	}
	bad := func(format string, args ...any) (Spec, error) {
		return Spec{}, fmt.Errorf("health: check %q: %s: %w", n.ID, fmt.Sprintf(format, args...), ErrInvalidSpec)
	}
	if n.ID == "" {
		return bad("no ID and no target")
	}
	if n.Type == 0 || int(n.Type) >= len(typeNames) {
		return bad("unknown type %d", n.Type)
	}
	if n.Interval <= 0 {
		return bad("interval must be positive, got %v", n.Interval)
	}
	if n.Timeout <= 0 {
		return bad("timeout must be positive, got %v", n.Timeout)
	}
	if n.Retries < 0 || n.RetryDelay < 0 || n.Rise < 0 || n.Fall < 0 {
		return bad("retries, retry_delay, rise and fall must not be negative")
	}
	n.Rise = max(n.Rise, 1)
	n.Fall = max(n.Fall, 1)
	if n.ConnectIP.IsValid() && n.ConnectName != "" {
		return bad("connect_ip and connect name are exclusive")
	}
	if n.Type == Exec {
		if len(n.Command) == 0 || n.Command[0] == "" {
			return bad("empty command")
		}
		return n, nil
	}
	if !n.Target.IsValid() && !n.ConnectIP.IsValid() && n.ConnectName == "" {
		return bad("no address to connect to")
	}
	if n.ConnectPort == 0 && n.Target.Port() == 0 {
		return bad("no port to connect to")
	}
	if n.Type != HTTP && n.Type != HTTPS {
		return n, nil
	}
	if n.Path == "" {
		n.Path = "/"
	}
	if u, err := url.ParseRequestURI(n.Path); err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(n.Path, "/") {
		return bad("path %q is not an absolute path", n.Path)
	}
	if len(n.StatusCodes) == 0 {
		n.StatusCodes = []StatusRange{{200, 299}}
	}
	for _, r := range n.StatusCodes {
		if !r.valid() {
			return bad("status code range %v out of 100-599", r)
		}
	}
	if n.Digest != "" {
		if b, err := hex.DecodeString(n.Digest); err != nil || len(b) != 16 {
			return bad("digest %q is not a hex MD5", n.Digest)
		}
		n.Digest = strings.ToLower(n.Digest)
	}
	if strings.ContainsAny(n.Host, " \r\n") {
		return bad("host %q", n.Host)
	}
	return n, nil
}

// New validates s and returns its Checker. An exec check runs its command as gvs's
// own user without security checks; NewWithScripts sets the script policy.
func New(s Spec) (Checker, error) { return NewWithScripts(s, nil) }

// NewWithScripts is New with exec checks run by r (nil: the zero script.Runner).
func NewWithScripts(s Spec, r *script.Runner) (Checker, error) {
	n, err := s.normalize()
	if err != nil {
		return nil, err
	}
	switch n.Type {
	case TCP:
		return &tcpChecker{dest: newDest(&n), timeout: n.Timeout}, nil
	case HTTP, HTTPS:
		return newHTTPChecker(&n)
	case UDP:
		return &udpChecker{dest: newDest(&n), timeout: n.Timeout, payload: n.Payload,
			expectReply: n.ExpectReply || n.Expect != "", expect: []byte(n.Expect)}, nil
	case Exec:
		if r == nil {
			r = &script.Runner{}
		}
		return &execChecker{argv: n.Command, env: n.Env, timeout: n.Timeout, dynamic: n.Dynamic, run: r}, nil
	}
	panic("health: normalize accepted unknown type " + n.Type.String())
}

// cloneNonEmpty copies s, returning nil for an empty slice.
func cloneNonEmpty[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}
