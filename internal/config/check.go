package config

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// checkTiming is keepalived's checker timing given above a check, at the
// virtual-server or real-server level (delay_loop, connect_timeout, retry,
// delay_before_retry; gvs: check_interval, check_timeout, check_retries,
// check_retry_delay). A nil field is not given.
type checkTiming struct {
	interval, timeout, retryDelay *time.Duration
	retries                       *int
}

// readTiming reads the check_* keys of t over base.
func (r *reader) readTiming(t *table, base checkTiming) checkTiming {
	out := base
	var d time.Duration
	if t.positiveDuration("check_interval", &d) {
		out.interval = &d
	}
	var to time.Duration
	if t.positiveDuration("check_timeout", &to) {
		out.timeout = &to
	}
	var rd time.Duration
	if t.duration("check_retry_delay", &rd) {
		out.retryDelay = &rd
	}
	var n int
	if t.intField("check_retries", 0, math.MaxInt32, &n) {
		out.retries = &n
	}
	return out
}

// over returns tm with the fields top gives replaced.
func (tm checkTiming) over(top checkTiming) checkTiming {
	out := tm
	if top.interval != nil {
		out.interval = top.interval
	}
	if top.timeout != nil {
		out.timeout = top.timeout
	}
	if top.retryDelay != nil {
		out.retryDelay = top.retryDelay
	}
	if top.retries != nil {
		out.retries = top.retries
	}
	return out
}

// given reports whether any timing is given.
func (tm checkTiming) given() bool {
	return tm.interval != nil || tm.timeout != nil || tm.retryDelay != nil || tm.retries != nil
}

// apply sets c's timing from tm where the check's own table did not set it
// (explicit).
func (tm checkTiming) apply(c *Check, explicit checkTiming) {
	if tm.interval != nil && explicit.interval == nil {
		c.Interval = *tm.interval
	}
	if tm.timeout != nil && explicit.timeout == nil {
		c.Timeout = *tm.timeout
	}
	if tm.retryDelay != nil && explicit.retryDelay == nil {
		c.RetryDelay = *tm.retryDelay
	}
	if tm.retries != nil && explicit.retries == nil {
		c.Retries = *tm.retries
	}
}

// check reads a [service.check] (or [service.real_server.check]) table for the
// real servers of s, which must already be read, since a check needs a port to
// probe on each of them. inh is the timing given above the check; explicit says
// which timing keys the table itself set.
func (r *reader) check(t *table, s *Service, inh checkTiming) (c *Check, explicit checkTiming) {
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
	ck := DefaultCheck(typ) // keepalived's defaults differ by checker
	c = &ck
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

	if t.positiveDuration("interval", &c.Interval) {
		explicit.interval = &c.Interval
	}
	if t.positiveDuration("timeout", &c.Timeout) {
		explicit.timeout = &c.Timeout
	}
	if t.intField("retries", 0, math.MaxInt32, &c.Retries) {
		explicit.retries = &c.Retries
	}
	if t.duration("retry_delay", &c.RetryDelay) {
		explicit.retryDelay = &c.RetryDelay
	}
	inh.apply(c, explicit)
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
	return c, explicit
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
