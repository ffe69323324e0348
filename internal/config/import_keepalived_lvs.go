package config

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// kaTiming is the checker settings keepalived lets a virtual_server and a
// real_server set for the checkers below them; the innermost setting wins.
type kaTiming struct {
	delayLoop   opt[time.Duration]
	retryDelay  opt[time.Duration]
	timeout     opt[time.Duration]
	retry       opt[int]
	alpha       opt[bool]
	virtualhost string
}

func (t kaTiming) over(outer kaTiming) kaTiming {
	t.delayLoop = t.delayLoop.or(outer.delayLoop)
	t.retryDelay = t.retryDelay.or(outer.retryDelay)
	t.timeout = t.timeout.or(outer.timeout)
	t.retry = t.retry.or(outer.retry)
	t.alpha = t.alpha.or(outer.alpha)
	if t.virtualhost == "" {
		t.virtualhost = outer.virtualhost
	}
	return t
}

// timing reads the timing keywords a virtual_server, real_server and checker share.
func (k *kaImporter) timing(ctx string, n *kaNode, kw string, t *kaTiming) bool {
	switch kw {
	case "delay_loop":
		k.seconds(ctx, n, &t.delayLoop)
	case "delay_before_retry":
		k.seconds(ctx, n, &t.retryDelay)
	case "retry", "nb_get_retry":
		k.integer(ctx, n, 0, math.MaxInt32, &t.retry)
	case "alpha":
		t.alpha = some(k.flag(ctx, n))
	case "virtualhost":
		if k.needArgs(ctx, n, 1) {
			k.extra(ctx, n, 1)
			t.virtualhost = n.arg(0)
		}
	default:
		return false
	}
	return true
}

var kaVSUnsupported = map[string]string{
	"sorry_server_inhibit":    "gvs takes the sorry server out when quorum is back; it has no inhibit (weight 0) mode for it",
	"sorry_server_lvs_method": "gvs forwards to the sorry server by the method of the service's first real server (dr without one)",
	"ha_suspend":              "gvs keeps services whatever the VRRP state",
	"smtp_alert":              "gvs sends no email",
	"persistence_engine":      "gvs has no persistence engines (sip)",
	"nat_mask":                "obsolete keepalived keyword with no effect",
	"weight":                  "gvs has no weight for a virtual server (dynamic weights of MISC_CHECK)",
	"warmup":                  "gvs checks do not stagger their first run by a random warmup",
	"hashed":                  "flag without effect in IPVS",
	"tun_type":                "gvs tunnels with IPIP only",
	"virtual_server":          "virtual servers do not nest",
}

var kaRSUnsupported = map[string]string{
	"notify_up":   "gvs has no notify scripts",
	"notify_down": "gvs has no notify scripts",
	"smtp_alert":  "gvs sends no email",
	"warmup":      "gvs checks do not stagger their first run by a random warmup",
	"tun_type":    "gvs tunnels with IPIP only",
}

var kaCheckers = map[string]string{
	"http_get":   "http",
	"ssl_get":    "https",
	"tcp_check":  "tcp",
	"udp_check":  "udp",
	"misc_check": "exec",
}

var kaUnsupportedCheckers = map[string]string{
	"smtp_check": "gvs has no SMTP check",
	"dns_check":  "gvs has no DNS check",
	"ping_check": "gvs has no ICMP check",
	"file_check": "gvs has no file check",
	"bfd_check":  "gvs has no BFD",
}

// kaVS is a virtual_server block being read.
type kaVS struct {
	svc    *impService
	ctx    string
	timing kaTiming
	omega  bool
	// reals with their checkers, before the service's one check is chosen
	rs []*kaRS
	// set when a keyword only matters to checks
	timingPos []impPos
}

type kaRS struct {
	real     *impReal
	checks   []*impCheck
	ignored  []string // checkers gvs cannot run, as written
	hasCheck bool     // some checker block, supported or not
	pos      impPos
	ctx      string // "virtual_server ...: real_server IP PORT", as written
	written  string // "IP PORT", as written
}

// virtualServer reads one virtual_server block into one service (or, for a group,
// one per address and mark of the group).
func (k *kaImporter) virtualServer(n *kaNode) {
	ctx := "virtual_server " + strings.Join(strings.Fields(n.words())[1:], " ")
	if !k.needArgs("virtual_server", n, 1) {
		return
	}
	if !n.hasBlock {
		k.note(n.pos(), "%s has no block: nothing to write", ctx)
		return
	}
	vs := &kaVS{svc: &impService{pos: n.pos(), what: ctx}, ctx: ctx}
	var group *kaGroup
	switch strings.ToLower(n.arg(0)) {
	case "fwmark":
		if !k.needArgs(ctx, n, 2) {
			return
		}
		v, err := strconv.ParseUint(n.arg(1), 10, 32)
		if err != nil || v == 0 {
			k.note(n.pos(), "%s: want a mark 1..4294967295: left out", ctx)
			return
		}
		k.extra(ctx, n, 2)
		vs.svc.fwmark = uint32(v)
	case "group":
		if !k.needArgs(ctx, n, 2) {
			return
		}
		k.extra(ctx, n, 2)
		group = k.groups[n.arg(1)]
		if group == nil {
			k.note(n.pos(), "%s: no virtual_server_group %s is defined: left out", ctx, n.arg(1))
			return
		}
		group.used = true
	default:
		a, err := kaAddr(n.arg(0))
		var port uint16
		if err == nil {
			if len(n.args) < 2 {
				err = fmt.Errorf("no port")
			} else {
				port, err = kaPort(n.arg(1))
			}
		}
		if err != nil {
			k.note(n.pos(), "%s: %v (want IP PORT, fwmark MARK or group NAME): left out", ctx, err)
			return
		}
		k.extra(ctx, n, 2)
		vs.svc.addr = netip.AddrPortFrom(a, port)
	}
	k.vsBody(vs, n)

	if group == nil {
		if len(k.doc.services) >= kaMaxServices {
			k.note(n.pos(), "%s: more than %d services in all: left out", ctx, kaMaxServices)
			return
		}
		k.finishVS(vs)
		k.doc.services = append(k.doc.services, vs.svc)
		return
	}
	var list []string
	for _, e := range group.entries {
		if e.fwmark != 0 {
			list = append(list, "fwmark "+strconv.FormatUint(uint64(e.fwmark), 10))
			continue
		}
		for _, ap := range e.addrs {
			list = append(list, ap.String())
		}
	}
	if len(list) == 0 {
		k.note(n.pos(), "%s: group %s has no entries: nothing written", ctx, group.name)
		return
	}
	k.note(n.pos(), "%s: expanded into %d gvs services, one per address and mark of the group, sharing these real servers and check (%s)", ctx, len(list), strings.Join(list, ", "))
	if len(k.doc.services)+len(list) > kaMaxServices {
		k.note(n.pos(), "%s: more than %d services in all: this virtual_server is left out", ctx, kaMaxServices)
		return
	}
	for _, e := range group.entries {
		addrs := e.addrs
		if e.fwmark != 0 {
			addrs = []netip.AddrPort{{}}
		}
		for _, ap := range addrs {
			c := vs.clone()
			c.svc.addr, c.svc.fwmark = ap, e.fwmark
			c.svc.pos = e.pos
			if e.fwmark != 0 {
				c.svc.what = fmt.Sprintf("%s (fwmark %d)", ctx, e.fwmark)
			} else {
				c.svc.what = fmt.Sprintf("%s (%s)", ctx, ap)
			}
			c.ctx = c.svc.what
			k.finishVS(c)
			k.doc.services = append(k.doc.services, c.svc)
		}
	}
}

// clone copies a virtual server read from a group's block.
func (vs *kaVS) clone() *kaVS {
	c := *vs
	s := *vs.svc
	c.svc = &s
	s.flags = slices.Clone(vs.svc.flags)
	c.rs = nil
	for _, r := range vs.rs {
		rc := *r
		real := *r.real
		rc.real = &real
		rc.checks = nil
		for _, ch := range r.checks {
			cc := *ch
			cc.codes = slices.Clone(ch.codes)
			cc.command = slices.Clone(ch.command)
			rc.checks = append(rc.checks, &cc)
		}
		c.rs = append(c.rs, &rc)
	}
	return &c
}

// vsBody reads the statements of a virtual_server block.
func (k *kaImporter) vsBody(vs *kaVS, n *kaNode) {
	s, ctx := vs.svc, vs.ctx
	var reals []*kaNode
	for _, c := range n.block {
		k.dispatch(ctx, c, kaVSUnsupported, func(kw string) bool {
			if k.timing(ctx, c, kw, &vs.timing) {
				vs.timingPos = append(vs.timingPos, c.pos())
				return true
			}
			switch kw {
			case "real_server":
				reals = append(reals, c)
			case "lb_algo", "lvs_sched":
				if k.needArgs(ctx, c, 1) {
					k.extra(ctx, c, 1)
					name := strings.ToLower(c.arg(0))
					if !slices.Contains(schedulerNames(), name) {
						k.note(c.pos(), "%s: %q: gvs has no scheduler %q: the default (wlc) is used", ctx, c.words(), c.arg(0))
					} else {
						s.sched = name
					}
				}
			case "lb_kind", "lvs_method":
				if m, ok := k.method(ctx, c); ok {
					s.method = m
				}
			case "persistence_timeout":
				if len(c.args) == 0 {
					s.persist = some(360 * time.Second) // IPVS_SVC_PERSISTENT_TIMEOUT
					break
				}
				d, err := strconv.ParseUint(c.arg(0), 10, 32)
				if err != nil || d == 0 {
					k.note(c.pos(), "%s: %q: want a number of seconds > 0: ignored (as keepalived does)", ctx, c.words())
					break
				}
				k.extra(ctx, c, 1)
				s.persist = some(time.Duration(d) * time.Second)
			case "persistence_granularity":
				if k.needArgs(ctx, c, 1) {
					k.extra(ctx, c, 1)
					k.granularity(vs, c)
				}
			case "protocol":
				if k.needArgs(ctx, c, 1) {
					k.extra(ctx, c, 1)
					switch strings.ToUpper(c.arg(0)) {
					case "TCP":
						s.proto = "tcp"
					case "UDP":
						s.proto = "udp"
					case "SCTP":
						s.proto = "sctp"
						s.off = "protocol SCTP: gvs balances tcp and udp only"
						k.note(c.pos(), "%s: protocol SCTP: gvs balances tcp and udp only: the service is written commented out", ctx)
					default:
						k.note(c.pos(), "%s: unknown protocol %q: tcp is used", ctx, c.arg(0))
					}
				}
			case "ops":
				k.extra(ctx, c, 0)
				s.ops = true
			case "flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback":
				k.extra(ctx, c, 0)
				s.flags = append(s.flags, kw)
			case "ip_family":
				if k.needArgs(ctx, c, 1) {
					k.extra(ctx, c, 1)
					switch c.arg(0) {
					case "inet":
					case "inet6":
						s.inet6 = true
					default:
						k.note(c.pos(), "%s: %q: want inet or inet6: ignored", ctx, c.words())
					}
				}
			case "omega":
				vs.omega = k.flag(ctx, c)
				vs.timingPos = append(vs.timingPos, c.pos())
			case "inhibit_on_failure":
				// keepalived takes no argument here (vs_inhibit_handler): on.
				k.extra(ctx, c, 0)
				s.inhibit = true
			case "sorry_server":
				k.sorryServer(vs, c)
			case "quorum":
				// keepalived: 1..UINT_MAX, else 1 (its default, and gvs's).
				k.integer(ctx, c, 1, math.MaxInt32, &s.quorum)
				s.quorumPos = append(s.quorumPos, c.pos())
			case "hysteresis":
				k.integer(ctx, c, 0, math.MaxInt32, &s.hysteresis)
				s.quorumPos = append(s.quorumPos, c.pos())
			case "quorum_up":
				k.script(ctx, c, &s.quorumUp)
				s.quorumPos = append(s.quorumPos, c.pos())
			case "quorum_down":
				k.script(ctx, c, &s.quorumDown)
				s.quorumPos = append(s.quorumPos, c.pos())
			default:
				return false
			}
			return true
		})
	}
	if s.method == "" {
		// keepalived: "no forwarding method set, setting default NAT".
		s.method = "nat"
		k.note(n.pos(), "%s: no lb_kind: keepalived's default NAT is written (gvs's own default is dr)", ctx)
	}
	for _, c := range reals {
		if r := k.realServer(vs, c); r != nil {
			vs.rs = append(vs.rs, r)
		}
	}
}

// method reads lb_kind / lvs_method.
func (k *kaImporter) method(ctx string, n *kaNode) (string, bool) {
	if !k.needArgs(ctx, n, 1) {
		return "", false
	}
	up := strings.ToUpper(n.arg(0))
	var m string
	switch up {
	case "NAT":
		m = "nat"
	case "DR":
		m = "dr"
	case "TUN":
		m = "tun"
	default:
		k.note(n.pos(), "%s: %q: gvs forwards by NAT, DR or TUN only: ignored", ctx, n.words())
		return "", false
	}
	if n.arg(0) != up {
		k.note(n.pos(), "%s: %q read as %s: keepalived compares the method case-sensitively and would have ignored it", ctx, n.words(), up)
	}
	if up == "TUN" && len(n.args) > 1 {
		k.note(n.pos(), "%s: %q: tunnel options not translated: gvs tunnels with IPIP only", ctx, n.words())
	} else {
		k.extra(ctx, n, 1)
	}
	return m, true
}

// granularity reads persistence_granularity: an IPv4 mask or an IPv6 prefix length.
func (k *kaImporter) granularity(vs *kaVS, n *kaNode) {
	s, v := vs.svc, n.arg(0)
	if strings.Contains(v, ".") {
		m, err := netip.ParseAddr(v)
		if err != nil || !m.Is4() {
			k.note(n.pos(), "%s: %q: not an IPv4 netmask: ignored", vs.ctx, n.words())
			return
		}
		s.netmask = tomlString(v)
	} else {
		bits, err := strconv.Atoi(v)
		if err != nil || bits < 1 || bits > 128 {
			k.note(n.pos(), "%s: %q: want an IPv6 prefix length 1..128: ignored", vs.ctx, n.words())
			return
		}
		s.netmask = strconv.Itoa(bits)
	}
	if !s.persist.ok {
		s.persist = some(360 * time.Second)
		k.note(n.pos(), "%s: persistence_granularity without persistence_timeout: keepalived's persistence of 360s is written", vs.ctx)
	}
}

// sorryServer reads sorry_server IP [PORT]. keepalived keeps the last one; a
// missing or zero port is the service's, as in gvs.
func (k *kaImporter) sorryServer(vs *kaVS, n *kaNode) {
	ctx := vs.ctx
	if !k.needArgs(ctx, n, 1) {
		return
	}
	a, err := kaAddr(n.arg(0))
	var port uint16
	if err == nil && len(n.args) > 1 && strings.Trim(n.arg(1), "0") != "" {
		port, err = kaPort(n.arg(1))
	}
	if err != nil {
		k.note(n.pos(), "%s: %q: %v: ignored (keepalived skips it too)", ctx, n.words(), err)
		return
	}
	k.extra(ctx, n, 2)
	s := vs.svc
	if s.sorry.ok {
		k.note(n.pos(), "%s: %q: a second sorry_server: this one is used (as keepalived does)", ctx, n.words())
	}
	s.sorry = some(netip.AddrPortFrom(a, port))
	s.sorryPos = n.pos()
}

// script reads one of keepalived's notify scripts (quorum_up, quorum_down,
// notify_master, ...): a program with arguments, written as one quoted string or as
// several words, which keepalived runs without a shell; gvs runs the command string
// with /bin/sh -c. A quoted script is written as its text; separate words are
// quoted for the shell where needed.
func (k *kaImporter) script(ctx string, n *kaNode, dst *string) {
	if !k.needArgs(ctx, n, 1) {
		return
	}
	if *dst != "" {
		k.note(n.pos(), "%s: %q: %s is already set: ignored (as keepalived does)", ctx, n.words(), strings.ToLower(n.key.text))
		return
	}
	var cmd string
	if len(n.args) == 1 {
		cmd = n.arg(0)
	} else {
		words := make([]string, len(n.args))
		for i, a := range n.args {
			words[i] = shellQuote(a.text)
		}
		cmd = strings.Join(words, " ")
	}
	if strings.TrimSpace(cmd) == "" {
		k.note(n.pos(), "%s: %q: empty command: ignored", ctx, n.words())
		return
	}
	if len(n.args) == 1 && strings.ContainsAny(cmd, "|;&<>$`()*?~#'\\\"{}[]") {
		k.note(n.pos(), "%s: %q: keepalived runs the script without a shell, gvs with /bin/sh -c: its shell syntax now takes effect", ctx, n.words())
	}
	*dst = cmd
}

// shellQuote quotes w for /bin/sh when it holds anything but plain word characters.
func shellQuote(w string) string {
	if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=/.,:@%") == "" {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

// realServer reads one real_server statement.
func (k *kaImporter) realServer(vs *kaVS, n *kaNode) *kaRS {
	ctx := vs.ctx + ": real_server " + strings.Join(strings.Fields(n.words())[1:], " ")
	if !k.needArgs(vs.ctx, n, 1) {
		return nil
	}
	a, err := kaAddr(n.arg(0))
	var port uint16
	if err == nil && len(n.args) > 1 {
		port, err = kaPort(n.arg(1))
	}
	if err != nil {
		k.note(n.pos(), "%s: %v: left out", ctx, err)
		return nil
	}
	k.extra(ctx, n, 2)
	k.anyReal = true
	written := strings.Join(strings.Fields(n.words())[1:], " ")
	r := &kaRS{real: &impReal{pos: n.pos(), addr: a, port: port}, pos: n.pos(), ctx: ctx, written: written}
	var t kaTiming
	var checkers []*kaNode
	for _, c := range n.block {
		k.dispatch(ctx, c, kaRSUnsupported, func(kw string) bool {
			if _, ok := kaCheckers[kw]; ok {
				checkers = append(checkers, c)
				return true
			}
			if why, ok := kaUnsupportedCheckers[kw]; ok {
				r.hasCheck = true
				r.ignored = append(r.ignored, c.key.text)
				k.caseNote(c, kw)
				k.note(c.pos(), "%s: %s not translated: %s", ctx, c.key.text, why)
				return true
			}
			if k.timing(ctx, c, kw, &t) {
				return true
			}
			switch kw {
			case "weight":
				k.integer(ctx, c, 0, math.MaxInt32, &r.real.weight)
			case "lvs_method", "lb_kind":
				if m, ok := k.method(ctx, c); ok {
					r.real.method = m
				}
			case "inhibit_on_failure":
				r.real.inhibit = some(k.flag(ctx, c))
			case "uthreshold", "lthreshold":
				var v opt[int]
				if k.integer(ctx, c, 0, math.MaxInt32, &v) {
					if kw == "uthreshold" {
						r.real.upper = uint32(v.v)
					} else {
						r.real.lower = uint32(v.v)
					}
				}
			default:
				return false
			}
			return true
		})
	}
	t = t.over(vs.timing)
	for _, c := range checkers {
		r.hasCheck = true
		if ch := k.checker(ctx, c, t, vs); ch != nil {
			r.checks = append(r.checks, ch)
		}
	}
	return r
}

var kaCheckUnsupported = map[string]string{
	"bindto":            "gvs does not choose the checks' source address",
	"bind_to":           "gvs does not choose the checks' source address",
	"bind_port":         "gvs does not choose the checks' source port",
	"bind_if":           "gvs does not choose the checks' interface",
	"fwmark":            "gvs does not mark check packets",
	"warmup":            "gvs checks do not stagger their first run by a random warmup",
	"log_all_failures":  "gvs logs state changes",
	"http_protocol":     "gvs speaks HTTP/1.1",
	"tls_compliant":     "gvs closes TLS connections properly anyway",
	"fast_recovery":     "gvs has no fast recovery",
	"misc_dynamic":      "gvs has no dynamic weights: the exit status only means up (0) or down",
	"user":              "gvs runs exec checks as its own user",
	"min_reply_length":  "gvs has no reply length limits",
	"max_reply_length":  "gvs has no reply length limits",
	"dynamic":           "gvs has no dynamic weights",
	"connect_interface": "gvs does not choose the checks' interface",
}

var kaURLUnsupported = map[string]string{
	"regex":            "gvs matches a substring (expect), not a regex",
	"regex_no_match":   "gvs has no negative match",
	"regex_options":    "gvs has no regex",
	"regex_stack":      "gvs has no regex",
	"regex_min_offset": "gvs has no regex",
	"regex_max_offset": "gvs has no regex",
}

// checker translates one checker block of a real server.
func (k *kaImporter) checker(rsCtx string, n *kaNode, outer kaTiming, vs *kaVS) *impCheck {
	kw := strings.ToLower(n.key.text)
	ctx := rsCtx + ": " + strings.ToUpper(kw)
	c := &impCheck{pos: n.pos(), typ: kaCheckers[kw], omega: vs.omega}
	k.extra(ctx, n, 0)
	var t kaTiming
	var miscTimeout opt[time.Duration]
	var urls []*kaNode
	sni := false
	var connectPort opt[int]
	for _, s := range n.block {
		k.dispatch(ctx, s, kaCheckUnsupported, func(kw string) bool {
			if k.timing(ctx, s, kw, &t) {
				return true
			}
			web := c.typ == "http" || c.typ == "https"
			switch {
			case kw == "connect_timeout" && c.typ != "exec":
				k.seconds(ctx, s, &t.timeout)
			case kw == "connect_port" && c.typ != "exec":
				k.integer(ctx, s, 1, 65535, &connectPort)
			case kw == "connect_ip" && c.typ != "exec":
				if k.needArgs(ctx, s, 1) {
					k.extra(ctx, s, 1)
					if a, err := kaAddr(s.arg(0)); err != nil {
						k.note(s.pos(), "%s: %q: %v: ignored", ctx, s.words(), err)
					} else {
						c.connectIP = a
					}
				}
			case kw == "url" && web:
				urls = append(urls, s)
			case kw == "enable_sni" && c.typ == "https":
				sni = k.flag(ctx, s)
			case kw == "misc_path" && c.typ == "exec":
				k.miscPath(ctx, s, c)
			case kw == "misc_timeout" && c.typ == "exec":
				k.seconds(ctx, s, &miscTimeout)
			case kw == "payload" && c.typ == "udp":
				if k.needArgs(ctx, s, 1) {
					k.extra(ctx, s, 1)
					if p, ok := k.hexText(ctx, s, s.arg(0)); ok {
						c.payload = some(p)
					}
				}
			case kw == "require_reply" && c.typ == "udp":
				if len(s.args) == 0 {
					k.note(s.pos(), "%s: require_reply without a pattern: gvs cannot require a reply of any content (a reply is optional)", ctx)
					break
				}
				k.extra(ctx, s, 1)
				if p, ok := k.hexText(ctx, s, s.arg(0)); ok && p != "" {
					c.expect = p
				}
			default:
				return false
			}
			return true
		})
	}
	t = t.over(outer)
	c.interval, c.timeout, c.retries, c.retryDelay = t.delayLoop, t.timeout, t.retry, t.retryDelay
	c.alpha = t.alpha.ok && t.alpha.v
	if connectPort.ok {
		c.connectPort = uint16(connectPort.v)
	}
	switch c.typ {
	case "exec":
		c.timeout = miscTimeout
		if !c.timeout.ok && c.interval.ok {
			c.timeout = c.interval // keepalived: misc_timeout defaults to delay_loop
		}
		if len(c.command) == 0 {
			k.note(n.pos(), "%s: no misc_path: the check is left out", ctx)
			return nil
		}
	case "http", "https":
		c.host = t.virtualhost
		k.urls(ctx, urls, c)
		if sni && c.host == "" {
			k.note(n.pos(), "%s: enable_sni without a virtualhost: gvs sends no name either", ctx)
		}
	}
	return c
}

// urls reads the url blocks of HTTP_GET / SSL_GET: gvs checks one path.
func (k *kaImporter) urls(ctx string, urls []*kaNode, c *impCheck) {
	for i, u := range urls {
		k.extra(ctx, u, 0)
		if i > 0 {
			path := ""
			for _, s := range u.block {
				if strings.EqualFold(s.key.text, "path") {
					path = " " + s.arg(0)
				}
			}
			k.note(u.pos(), "%s: url%s not checked: gvs checks one path per service, the first url's", ctx, path)
			continue
		}
		for _, s := range u.block {
			k.dispatch(ctx+": url", s, kaURLUnsupported, func(kw string) bool {
				switch kw {
				case "path":
					if k.needArgs(ctx, s, 1) {
						k.extra(ctx, s, 1)
						c.path = s.arg(0)
					}
				case "digest":
					if k.needArgs(ctx, s, 1) {
						k.extra(ctx, s, 1)
						d := strings.ToLower(s.arg(0))
						if len(d) != 32 || strings.Trim(d, "0123456789abcdef") != "" {
							k.note(s.pos(), "%s: %q is not an MD5 digest (32 hex digits): ignored", ctx, s.words())
						} else {
							c.digest = d
						}
					}
				case "status_code":
					if k.needArgs(ctx, s, 1) {
						c.codes = k.statusCodes(ctx, s)
					}
				case "virtualhost":
					if k.needArgs(ctx, s, 1) {
						k.extra(ctx, s, 1)
						c.host = s.arg(0)
					}
				default:
					return false
				}
				return true
			})
		}
	}
}

// statusCodes reads "status_code 200", "200-299", "200 302" or "200,302".
func (k *kaImporter) statusCodes(ctx string, n *kaNode) []int {
	var codes []int
	for _, a := range n.args {
		for item := range strings.SplitSeq(a.text, ",") {
			lo, hi, isRange := strings.Cut(item, "-")
			if !isRange {
				hi = lo
			}
			l, err1 := strconv.Atoi(lo)
			h, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil || l < 100 || h > 599 || l > h {
				k.note(n.pos(), "%s: %q: %q is not a status code or range 100..599: ignored", ctx, n.words(), item)
				continue
			}
			for code := l; code <= h; code++ {
				if !slices.Contains(codes, code) {
					codes = append(codes, code)
				}
			}
		}
	}
	slices.Sort(codes)
	if len(codes) == 100 && codes[0] == 200 && codes[99] == 299 {
		return nil // gvs's default: any 2xx
	}
	return codes
}

// hexText decodes a UDP_CHECK payload or reply, which keepalived writes in hex.
func (k *kaImporter) hexText(ctx string, n *kaNode, h string) (string, bool) {
	h = strings.TrimPrefix(strings.TrimPrefix(h, "0x"), "0X")
	if len(h)%2 != 0 {
		k.note(n.pos(), "%s: %q: not an even number of hex digits: ignored", ctx, n.words())
		return "", false
	}
	b := make([]byte, len(h)/2)
	for i := range b {
		v, err := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		if err != nil {
			k.note(n.pos(), "%s: %q: not hex: ignored", ctx, n.words())
			return "", false
		}
		b[i] = byte(v)
	}
	if !utf8.ValidString(string(b)) {
		k.note(n.pos(), "%s: %q: the bytes are not UTF-8 text, which a gvs config cannot hold: ignored", ctx, n.words())
		return "", false
	}
	return string(b), true
}

// miscPath reads MISC_CHECK's misc_path: a program and its arguments. keepalived
// splits one quoted string holding spaces into words, and runs it without a shell.
func (k *kaImporter) miscPath(ctx string, n *kaNode, c *impCheck) {
	if !k.needArgs(ctx, n, 1) {
		return
	}
	var argv []string
	if len(n.args) == 1 {
		argv = strings.Fields(n.arg(0))
	} else {
		for _, a := range n.args {
			argv = append(argv, a.text)
		}
	}
	if len(argv) == 0 {
		k.note(n.pos(), "%s: misc_path is empty: ignored", ctx)
		return
	}
	if strings.ContainsAny(strings.Join(argv, " "), "|;&<>$`()*?") {
		k.note(n.pos(), "%s: %q looks like shell syntax: gvs runs the command without a shell (write [\"/bin/sh\", \"-c\", \"...\"] if it needs one)", ctx, n.words())
	}
	c.command = argv
}

// finishVS chooses the service's check, resolves real-server ports and methods, and
// notes what the choice leaves out.
func (k *kaImporter) finishVS(vs *kaVS) {
	s := vs.svc
	if s.fwmark != 0 && s.off == "" {
		s.off = fmt.Sprintf("fwmark %d: gvs needs [[service.match]] rules for the mark", s.fwmark)
		k.note(s.pos, "%s: fwmark service written commented out: gvs sets no netfilter marks and needs [[service.match]] rules saying which packets carry mark %d (the iptables mangle rule that sets it is not in keepalived.conf): add them and uncomment", vs.ctx, s.fwmark)
	}
	if s.ops && s.proto != "udp" {
		s.ops = false
		k.note(s.pos, "%s: ops applies to UDP services only: not written (keepalived and IPVS refuse it too)", vs.ctx)
	}
	var flags []string
	for _, f := range s.flags {
		sched := s.sched
		if sched == "" {
			sched = "wlc"
		}
		if _, err := parseSchedFlag(sched, f); err != nil {
			k.note(s.pos, "%s: %s: %v: not written (keepalived ignores it too)", vs.ctx, f, err)
			continue
		}
		flags = append(flags, f)
	}
	s.flags = flags

	fam6 := s.inet6
	if s.fwmark == 0 {
		fam6 = s.addr.Addr().Is6()
	}
	seen := map[netip.AddrPort]bool{}
	var chosen *impCheck
	var chosenFrom *kaRS
	for _, r := range vs.rs {
		real := r.real
		ctx := vs.ctx + ": real_server " + r.written // this service's, for a group's clones
		method := real.method
		if method == "" {
			method = s.method
		}
		if real.addr.Is6() != fam6 && method != "tun" {
			k.note(r.pos, "%s: address family differs from the virtual server's: left out (keepalived skips it too)", ctx)
			continue
		}
		if real.method == s.method {
			real.method = ""
		}
		if real.inhibit.ok && real.inhibit.v == s.inhibit {
			real.inhibit = opt[bool]{} // the service's already
		}
		if s.fwmark == 0 && method != "nat" && real.port != 0 && real.port != s.addr.Port() {
			k.note(r.pos, "%s: %s cannot change the port: written without port %d (gvs forwards to the service port %d; IPVS ignores a DR/TUN real server's port on the wire)", ctx, strings.ToUpper(method), real.port, s.addr.Port())
			real.port = 0
		}
		key := netip.AddrPortFrom(real.addr, real.port)
		if real.port == 0 && s.fwmark == 0 {
			key = netip.AddrPortFrom(real.addr, s.addr.Port())
		}
		if seen[key] {
			k.note(r.pos, "%s: the same real server again: left out (keepalived ignores it too)", ctx)
			continue
		}
		seen[key] = true
		s.reals = append(s.reals, real)
		if len(r.checks) > 0 && chosen == nil {
			chosen, chosenFrom = r.checks[0], r
		}
	}
	for _, r := range vs.rs {
		if !slices.Contains(s.reals, r.real) {
			continue
		}
		ctx := r.ctx
		for i, c := range r.checks {
			switch {
			case c == chosen:
			case i > 0:
				k.note(c.pos, "%s: a second checker (%s) not translated: gvs runs one check per service", ctx, c.typ)
			case !slices.Equal(c.lines(), chosen.lines()):
				k.note(c.pos, "%s: its checker differs (%s) from the service's check, the one of real_server %s (line %d): gvs runs one check per service, that one", ctx, checkDiff(c, chosen), chosenFrom.real.label(), chosen.pos.line)
			}
		}
		if chosen != nil && len(r.checks) == 0 {
			if len(r.ignored) > 0 {
				k.note(r.pos, "%s: its %s is replaced by the service's check (%s)", ctx, strings.Join(r.ignored, ", "), chosen.typ)
			} else {
				k.note(r.pos, "%s: keepalived did not check it (always up); gvs runs the service's check (%s) on it", ctx, chosen.typ)
			}
		}
		if chosen == nil && r.hasCheck && len(r.ignored) > 0 {
			k.note(r.pos, "%s: no check gvs can run: the real server is always up", ctx)
		}
	}
	if chosen != nil {
		s.check = chosen
	} else if len(vs.timingPos) > 0 {
		k.note(vs.timingPos[0], "%s: check settings (delay_loop, retry, alpha, ...) without a checker gvs can run: not written", vs.ctx)
	}
	k.finishSorry(vs, fam6)
	if s.check == nil && (s.sorry.ok || len(s.quorumPos) > 0) {
		p := s.sorryPos
		if !s.sorry.ok || (len(s.quorumPos) > 0 && s.quorumPos[0].seq < p.seq) {
			p = s.quorumPos[0]
		}
		k.note(p, "%s: no check gvs can run: gvs applies quorum and the sorry server only to checked services (keepalived counts unchecked real servers as up): no effect as written", vs.ctx)
	}
}

// finishSorry checks the sorry server against the service and notes where gvs
// uses it differently from keepalived.
func (k *kaImporter) finishSorry(vs *kaVS, fam6 bool) {
	s := vs.svc
	if !s.sorry.ok {
		return
	}
	ctx, ap := vs.ctx, s.sorry.v
	// gvs forwards to the sorry server by its first real server's method, dr
	// without one; keepalived by the virtual server's (or sorry_server_lvs_method).
	method := "dr"
	if len(s.reals) > 0 {
		method = cmp.Or(s.reals[0].method, s.method)
	}
	if ap.Addr().Is6() != fam6 && method != "tun" {
		k.note(s.sorryPos, "%s: sorry_server %s: address family differs from the virtual server's: left out", ctx, ap.Addr())
		s.sorry = opt[netip.AddrPort]{}
		return
	}
	if method != s.method {
		k.note(s.sorryPos, "%s: sorry_server: gvs forwards to it by %s, the method of the service's first real server (dr without one); keepalived by the virtual server's %s", ctx, strings.ToUpper(method), strings.ToUpper(s.method))
	}
	if s.fwmark == 0 && method != "nat" && ap.Port() != 0 && ap.Port() != s.addr.Port() {
		k.note(s.sorryPos, "%s: sorry_server: %s cannot change the port: written without port %d (gvs forwards to the service port %d)", ctx, strings.ToUpper(method), ap.Port(), s.addr.Port())
		s.sorry.v = netip.AddrPortFrom(ap.Addr(), 0)
	}
	k.note(s.sorryPos, "%s: sorry_server %s: its MAC is not in keepalived.conf: sorry_server_mac is left out (gvs run finds it by ARP/ND); `gvs bench replay` needs it pinned", ctx, ap.Addr())
}

// checkDiff names the keys in which two checks differ: "digest 640205b7... here".
func checkDiff(a, b *impCheck) string {
	keys := func(c *impCheck) map[string]string {
		m := map[string]string{}
		for _, l := range c.lines() {
			k, v, _ := strings.Cut(l, " = ")
			m[k] = v
		}
		return m
	}
	ka, kb := keys(a), keys(b)
	var diffs []string
	for _, l := range a.lines() {
		k, _, _ := strings.Cut(l, " = ")
		if ka[k] != kb[k] {
			diffs = append(diffs, k+" "+ka[k])
		}
	}
	for _, l := range b.lines() {
		k, _, _ := strings.Cut(l, " = ")
		if _, ok := ka[k]; !ok {
			diffs = append(diffs, "no "+k)
		}
	}
	return strings.Join(diffs, ", ")
}
