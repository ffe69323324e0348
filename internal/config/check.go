package config

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// check reads the [service.check] table of s; s.RealServers must already be read,
// since a check needs a port to probe on each of them.
func (r *reader) check(t *table, s *Service) *Check {
	var typ CheckType
	var str string
	if !t.present("type") {
		r.add(t.path, fmt.Errorf("%w type: one of tcp, http, https, udp, exec", ErrMissing))
	} else if t.str("type", &str) {
		types := []CheckType{CheckTCP, CheckHTTP, CheckHTTPS, CheckUDP, CheckExec}
		names := make([]string, len(types))
		for i, ct := range types {
			names[i] = ct.String()
		}
		if name, err := oneOf("check type", str, names...); err != nil {
			t.fail("type", err)
		} else {
			typ = types[slices.Index(names, name)]
		}
	}
	c := DefaultCheck(typ) // keepalived's defaults differ by checker
	c.Line = r.lines.line(t.path)
	web := c.Type == CheckHTTP || c.Type == CheckHTTPS
	// only reports key k when it is set for a type it does not apply to.
	only := func(k, types string, ok bool) bool {
		if t.present(k) && c.Type != 0 && !ok {
			t.errorf(k, "applies only to %s checks (type is %s)", types, c.Type)
			return false
		}
		return true
	}

	t.positiveDuration("interval", &c.Interval)
	t.positiveDuration("timeout", &c.Timeout)
	t.intField("retries", 0, math.MaxInt32, &c.Retries)
	t.duration("retry_delay", &c.RetryDelay)
	t.intField("rise", 1, math.MaxInt32, &c.Rise)
	t.intField("fall", 1, math.MaxInt32, &c.Fall)

	if t.str("path", &c.Path) && only("path", "http and https", web) && !strings.HasPrefix(c.Path, "/") {
		t.errorf("path", "must start with \"/\" (got %q)", c.Path)
	}
	if v, ok := t.get("status_codes"); ok && only("status_codes", "http and https", web) {
		c.StatusCodes = r.statusCodes(t, v)
	}
	if t.str("expect", &c.Expect) {
		only("expect", "http, https and udp", web || c.Type == CheckUDP)
	}
	if t.str("digest", &c.Digest) && only("digest", "http and https", web) {
		c.Digest = strings.ToLower(c.Digest)
		if c.Digest != "" && len(c.Digest) != 32 || strings.Trim(c.Digest, "0123456789abcdef") != "" {
			t.errorf("digest", "must be an MD5 digest: 32 hex digits (got %q)", c.Digest)
		}
	}
	if t.str("host", &c.Host) {
		only("host", "http and https", web)
	}
	if t.str("sni", &c.SNI) {
		only("sni", "https", c.Type == CheckHTTPS)
	}
	if t.boolean("tls_verify", &c.TLSVerify) {
		only("tls_verify", "https", c.Type == CheckHTTPS)
	}
	if t.str("payload", &c.Payload) {
		only("payload", "udp", c.Type == CheckUDP)
	}
	if v, ok := t.get("command"); ok {
		if only("command", "exec", c.Type == CheckExec) {
			read := false
			if str, isStr := v.(string); isStr {
				c.Command, read = strings.Fields(str), true
			} else {
				read = t.strings("command", &c.Command)
			}
			if read && (len(c.Command) == 0 || c.Command[0] == "") {
				t.errorf("command", "must name a program to run")
			}
		}
	} else if c.Type == CheckExec {
		r.add(t.path, fmt.Errorf("%w command: an exec check needs command = [\"/path/to/script\", \"arg\"]", ErrMissing))
	}
	t.addr("connect_ip", unicast, &c.ConnectIP)
	var port int64
	if t.integer("connect_port", 0, 65535, &port) {
		c.ConnectPort = uint16(port)
	}
	t.boolean("alpha", &c.Alpha)
	t.boolean("omega", &c.Omega)
	t.done()

	if c.Type != 0 && c.Type != CheckExec && c.ConnectPort == 0 {
		for _, rs := range s.RealServers {
			if rs.Addr.Port() == 0 {
				t.errorf("connect_port", "is required: real server %s has no port to check (fwmark or port-0 service)", rs.Addr.Addr())
				break
			}
		}
	}
	return &c
}

// statusCodes reads status_codes: HTTP status codes, each checked on its own line.
func (r *reader) statusCodes(t *table, v any) []int {
	arr, ok := v.([]any)
	if !ok {
		t.typeErr("status_codes", "an array of integers", v)
		return nil
	}
	codes := make([]int, 0, len(arr))
	for i, e := range arr {
		n, ok := e.(int64)
		switch {
		case !ok:
			r.add(joinIndex(t.key("status_codes"), i), fmt.Errorf("%w: want an integer, got %s", ErrType, describe(e)))
		case n < 100 || n > 599:
			r.errorf(joinIndex(t.key("status_codes"), i), "not an HTTP status code (got %d)", n)
		default:
			codes = append(codes, int(n))
		}
	}
	return codes
}
