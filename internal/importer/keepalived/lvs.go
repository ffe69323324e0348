package keepalived

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

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/importer"
	"github.com/gvs-lb/gvs/ipvs"
)

// kaTiming is the checker settings keepalived lets a virtual_server and a
// real_server set for the checkers below them; the innermost setting wins.
type kaTiming struct {
	delayLoop   importer.Opt[time.Duration]
	retryDelay  importer.Opt[time.Duration]
	timeout     importer.Opt[time.Duration]
	retry       importer.Opt[int]
	alpha       importer.Opt[bool]
	virtualhost string
}

func (t kaTiming) over(outer kaTiming) kaTiming {
	t.delayLoop = t.delayLoop.Or(outer.delayLoop)
	t.retryDelay = t.retryDelay.Or(outer.retryDelay)
	t.timeout = t.timeout.Or(outer.timeout)
	t.retry = t.retry.Or(outer.retry)
	t.alpha = t.alpha.Or(outer.alpha)
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
		t.alpha = importer.Some(k.flag(ctx, n))
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
	svc    *importer.Service
	ctx    string
	timing kaTiming
	omega  bool
	// reals with their checkers, before the service's one check is chosen
	rs []*kaRS
	// set when a keyword only matters to checks
	timingPos []importer.Pos
}

type kaRS struct {
	real     *importer.RealServer
	checks   []*importer.Check
	ignored  []string // checkers gvs cannot run, as written
	hasCheck bool     // some checker block, supported or not
	pos      importer.Pos
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
	vs := &kaVS{svc: &importer.Service{Pos: n.pos(), What: ctx}, ctx: ctx}
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
		vs.svc.FWMark = uint32(v)
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
		vs.svc.Addr = netip.AddrPortFrom(a, port)
	}
	k.vsBody(vs, n)

	if group == nil {
		if len(k.doc.Services) >= kaMaxServices {
			k.note(n.pos(), "%s: more than %d services in all: left out", ctx, kaMaxServices)
			return
		}
		k.finishVS(vs)
		k.doc.Services = append(k.doc.Services, vs.svc)
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
	if len(k.doc.Services)+len(list) > kaMaxServices {
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
			c.svc.Addr, c.svc.FWMark = ap, e.fwmark
			c.svc.Pos = e.pos
			if e.fwmark != 0 {
				c.svc.What = fmt.Sprintf("%s (fwmark %d)", ctx, e.fwmark)
			} else {
				c.svc.What = fmt.Sprintf("%s (%s)", ctx, ap)
			}
			c.ctx = c.svc.What
			k.finishVS(c)
			k.doc.Services = append(k.doc.Services, c.svc)
		}
	}
}

// clone copies a virtual server read from a group's block.
func (vs *kaVS) clone() *kaVS {
	c := *vs
	s := *vs.svc
	c.svc = &s
	s.Flags = slices.Clone(vs.svc.Flags)
	c.rs = nil
	for _, r := range vs.rs {
		rc := *r
		real := *r.real
		rc.real = &real
		rc.checks = nil
		for _, ch := range r.checks {
			cc := *ch
			cc.Codes = slices.Clone(ch.Codes)
			cc.Command = slices.Clone(ch.Command)
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
					if !slices.Contains(config.SchedulerNames(), name) {
						k.note(c.pos(), "%s: %q: gvs has no scheduler %q: the default (wlc) is used", ctx, c.words(), c.arg(0))
					} else {
						s.Sched = name
					}
				}
			case "lb_kind", "lvs_method":
				if m, ok := k.method(ctx, c); ok {
					s.Method = m
				}
			case "persistence_timeout":
				if len(c.args) == 0 {
					s.Persist = importer.Some(ipvs.DefaultPersistence)
					break
				}
				d, err := strconv.ParseUint(c.arg(0), 10, 32)
				if err != nil || d == 0 {
					k.note(c.pos(), "%s: %q: want a number of seconds > 0: ignored (as keepalived does)", ctx, c.words())
					break
				}
				k.extra(ctx, c, 1)
				s.Persist = importer.Some(time.Duration(d) * time.Second)
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
						s.Proto = "tcp"
					case "UDP":
						s.Proto = "udp"
					case "SCTP":
						s.Proto = "sctp"
						s.Off = "protocol SCTP: gvs balances tcp and udp only"
						k.note(c.pos(), "%s: protocol SCTP: gvs balances tcp and udp only: the service is written commented out", ctx)
					default:
						k.note(c.pos(), "%s: unknown protocol %q: tcp is used", ctx, c.arg(0))
					}
				}
			case "ops":
				k.extra(ctx, c, 0)
				s.OPS = true
			case "flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback":
				k.extra(ctx, c, 0)
				s.Flags = append(s.Flags, kw)
			case "ip_family":
				if k.needArgs(ctx, c, 1) {
					k.extra(ctx, c, 1)
					switch c.arg(0) {
					case "inet":
					case "inet6":
						s.Inet6 = true
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
				s.Inhibit = true
			case "sorry_server":
				k.sorryServer(vs, c)
			case "quorum":
				// keepalived: 1..UINT_MAX, else 1 (its default, and gvs's).
				k.integer(ctx, c, 1, math.MaxInt32, &s.Quorum)
				s.QuorumPos = append(s.QuorumPos, c.pos())
			case "hysteresis":
				k.integer(ctx, c, 0, math.MaxInt32, &s.Hysteresis)
				s.QuorumPos = append(s.QuorumPos, c.pos())
			case "quorum_up":
				k.script(ctx, c, &s.QuorumUp)
				s.QuorumPos = append(s.QuorumPos, c.pos())
			case "quorum_down":
				k.script(ctx, c, &s.QuorumDown)
				s.QuorumPos = append(s.QuorumPos, c.pos())
			default:
				return false
			}
			return true
		})
	}
	if s.Method == "" {
		// keepalived: "no forwarding method set, setting default NAT".
		s.Method = "nat"
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
		s.Netmask = v
	} else {
		bits, err := strconv.Atoi(v)
		if err != nil || bits < 1 || bits > 128 {
			k.note(n.pos(), "%s: %q: want an IPv6 prefix length 1..128: ignored", vs.ctx, n.words())
			return
		}
		s.Netmask = bits
	}
	if !s.Persist.OK {
		s.Persist = importer.Some(ipvs.DefaultPersistence)
		k.note(n.pos(), "%s: persistence_granularity without persistence_timeout: keepalived's persistence of %ds is written", vs.ctx, ipvs.DefaultPersistence/time.Second)
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
	if s.Sorry.OK {
		k.note(n.pos(), "%s: %q: a second sorry_server: this one is used (as keepalived does)", ctx, n.words())
	}
	s.Sorry = importer.Some(netip.AddrPortFrom(a, port))
	s.SorryPos = n.pos()
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
	r := &kaRS{real: &importer.RealServer{Pos: n.pos(), Addr: a, Port: port}, pos: n.pos(), ctx: ctx, written: written}
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
				k.integer(ctx, c, 0, math.MaxInt32, &r.real.Weight)
			case "lvs_method", "lb_kind":
				if m, ok := k.method(ctx, c); ok {
					r.real.Method = m
				}
			case "inhibit_on_failure":
				r.real.Inhibit = importer.Some(k.flag(ctx, c))
			case "uthreshold", "lthreshold":
				var v importer.Opt[int]
				if k.integer(ctx, c, 0, math.MaxInt32, &v) {
					if kw == "uthreshold" {
						r.real.Upper = uint32(v.V)
					} else {
						r.real.Lower = uint32(v.V)
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
func (k *kaImporter) checker(rsCtx string, n *kaNode, outer kaTiming, vs *kaVS) *importer.Check {
	kw := strings.ToLower(n.key.text)
	ctx := rsCtx + ": " + strings.ToUpper(kw)
	c := &importer.Check{Pos: n.pos(), Type: kaCheckers[kw], Omega: vs.omega}
	k.extra(ctx, n, 0)
	var t kaTiming
	var miscTimeout importer.Opt[time.Duration]
	var urls []*kaNode
	sni := false
	var connectPort importer.Opt[int]
	for _, s := range n.block {
		k.dispatch(ctx, s, kaCheckUnsupported, func(kw string) bool {
			web := c.Type == "http" || c.Type == "https"
			if kw == "nb_get_retry" && !web {
				// keepalived 2.2.7 knows nb_get_retry only in HTTP_GET and SSL_GET
				// (deprecated there for retry): elsewhere it ignores the line.
				k.note(s.pos(), "%s: %q ignored, as keepalived 2.2.7 does: nb_get_retry exists only in HTTP_GET and SSL_GET (write retry)", ctx, s.words())
				return true
			}
			if k.timing(ctx, s, kw, &t) {
				return true
			}
			switch {
			case kw == "connect_timeout" && c.Type != "exec":
				k.seconds(ctx, s, &t.timeout)
			case kw == "connect_port" && c.Type != "exec":
				k.integer(ctx, s, 1, 65535, &connectPort)
			case kw == "connect_ip" && c.Type != "exec":
				if k.needArgs(ctx, s, 1) {
					k.extra(ctx, s, 1)
					if a, err := kaAddr(s.arg(0)); err != nil {
						k.note(s.pos(), "%s: %q: %v: ignored", ctx, s.words(), err)
					} else {
						c.ConnectIP = a
					}
				}
			case kw == "url" && web:
				urls = append(urls, s)
			case kw == "enable_sni" && c.Type == "https":
				sni = k.flag(ctx, s)
			case kw == "misc_path" && c.Type == "exec":
				k.miscPath(ctx, s, c)
			case kw == "misc_timeout" && c.Type == "exec":
				k.seconds(ctx, s, &miscTimeout)
			case kw == "payload" && c.Type == "udp":
				if k.needArgs(ctx, s, 1) {
					k.extra(ctx, s, 1)
					if p, ok := k.hexText(ctx, s, s.arg(0)); ok {
						c.Payload = importer.Some(p)
					}
				}
			case kw == "require_reply" && c.Type == "udp":
				if len(s.args) == 0 {
					k.note(s.pos(), "%s: require_reply without a pattern: gvs cannot require a reply of any content (a reply is optional)", ctx)
					break
				}
				k.extra(ctx, s, 1)
				if p, ok := k.hexText(ctx, s, s.arg(0)); ok && p != "" {
					c.Expect = p
				}
			default:
				return false
			}
			return true
		})
	}
	t = t.over(outer)
	c.Interval, c.Timeout, c.Retries, c.RetryDelay = t.delayLoop, t.timeout, t.retry, t.retryDelay
	c.Alpha = t.alpha.OK && t.alpha.V
	if connectPort.OK {
		c.ConnectPort = uint16(connectPort.V)
	}
	switch c.Type {
	case "exec":
		c.Timeout = miscTimeout
		if !c.Timeout.OK && c.Interval.OK {
			c.Timeout = c.Interval // keepalived: misc_timeout defaults to delay_loop
		}
		if len(c.Command) == 0 {
			k.note(n.pos(), "%s: no misc_path: the check is left out", ctx)
			return nil
		}
	case "http", "https":
		c.Host = t.virtualhost
		k.urls(ctx, urls, c)
		if sni && c.Host == "" {
			k.note(n.pos(), "%s: enable_sni without a virtualhost: gvs sends no name either", ctx)
		}
	}
	return c
}

// urls reads the url blocks of HTTP_GET / SSL_GET: gvs checks one path.
func (k *kaImporter) urls(ctx string, urls []*kaNode, c *importer.Check) {
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
						c.Path = s.arg(0)
					}
				case "digest":
					if k.needArgs(ctx, s, 1) {
						k.extra(ctx, s, 1)
						d := strings.ToLower(s.arg(0))
						if len(d) != 32 || strings.Trim(d, "0123456789abcdef") != "" {
							k.note(s.pos(), "%s: %q is not an MD5 digest (32 hex digits): ignored", ctx, s.words())
						} else {
							c.Digest = d
						}
					}
				case "status_code":
					if k.needArgs(ctx, s, 1) {
						c.Codes = k.statusCodes(ctx, s)
					}
				case "virtualhost":
					if k.needArgs(ctx, s, 1) {
						k.extra(ctx, s, 1)
						c.Host = s.arg(0)
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
func (k *kaImporter) miscPath(ctx string, n *kaNode, c *importer.Check) {
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
	c.Command = argv
}

// finishVS chooses the service's check, resolves real-server ports and methods, and
// notes what the choice leaves out.
func (k *kaImporter) finishVS(vs *kaVS) {
	s := vs.svc
	if s.FWMark != 0 && s.Off == "" {
		s.Off = fmt.Sprintf("fwmark %d: gvs needs [[service.match]] rules for the mark", s.FWMark)
		k.note(s.Pos, "%s: fwmark service written commented out: gvs sets no netfilter marks and needs [[service.match]] rules saying which packets carry mark %d (the iptables mangle rule that sets it is not in keepalived.conf): add them and uncomment", vs.ctx, s.FWMark)
	}
	if s.FWMark == 0 && s.Proto == "" && s.Off == "" {
		// keepalived 2.2.7 warns "no protocol set - defaulting to UDP" and makes
		// the service UDP (the kernel's default for protocol 0), not TCP.
		s.Proto = "udp"
		k.note(s.Pos, "%s: no protocol: keepalived 2.2.7 makes such a virtual server UDP, not TCP: written as protocol = \"udp\" (write protocol TCP if TCP was meant)", vs.ctx)
	}
	if s.OPS && s.Proto != "udp" {
		s.OPS = false
		k.note(s.Pos, "%s: ops applies to UDP services only: not written (keepalived and IPVS refuse it too)", vs.ctx)
	}
	var flags []string
	for _, f := range s.Flags {
		sched := s.Sched
		if sched == "" {
			sched = ipvs.DefaultScheduler
		}
		if _, err := config.ParseSchedFlag(sched, f); err != nil {
			k.note(s.Pos, "%s: %s: %v: not written (keepalived ignores it too)", vs.ctx, f, err)
			continue
		}
		flags = append(flags, f)
	}
	s.Flags = flags

	fam6 := s.Inet6
	if s.FWMark == 0 {
		fam6 = s.Addr.Addr().Is6()
	}
	seen := map[netip.AddrPort]bool{}
	var chosen *importer.Check
	for _, r := range vs.rs {
		real := r.real
		ctx := vs.ctx + ": real_server " + r.written // this service's, for a group's clones
		method := real.Method
		if method == "" {
			method = s.Method
		}
		if real.Addr.Is6() != fam6 && method != "tun" {
			k.note(r.pos, "%s: address family differs from the virtual server's: left out (keepalived skips it too)", ctx)
			continue
		}
		if real.Method == s.Method {
			real.Method = ""
		}
		if real.Inhibit.OK && real.Inhibit.V == s.Inhibit {
			real.Inhibit = importer.Opt[bool]{} // the service's already
		}
		if s.FWMark == 0 && method != "nat" && real.Port != 0 && real.Port != s.Addr.Port() {
			k.note(r.pos, "%s: %s cannot change the port: written without port %d (gvs forwards to the service port %d; IPVS ignores a DR/TUN real server's port on the wire)", ctx, strings.ToUpper(method), real.Port, s.Addr.Port())
			real.Port = 0
		}
		key := netip.AddrPortFrom(real.Addr, real.Port)
		if real.Port == 0 && s.FWMark == 0 {
			key = netip.AddrPortFrom(real.Addr, s.Addr.Port())
		}
		if seen[key] {
			k.note(r.pos, "%s: the same real server again: left out (keepalived ignores it too)", ctx)
			continue
		}
		seen[key] = true
		s.Reals = append(s.Reals, real)
		if len(r.checks) > 0 && chosen == nil {
			chosen = r.checks[0]
		}
	}
	// keepalived's checkers belong to each real server. When every written server
	// has the same one checker, it is written once as the service's check;
	// otherwise each server gets its own checks ([[service.real_server.check]],
	// all of which must pass) and a server without any stays unchecked (always
	// up), as in keepalived.
	uniform := chosen != nil
	for _, r := range vs.rs {
		if slices.Contains(s.Reals, r.real) && (len(r.checks) != 1 || !slices.Equal(r.checks[0].Lines(), chosen.Lines())) {
			uniform = false
		}
	}
	for _, r := range vs.rs {
		if !slices.Contains(s.Reals, r.real) {
			continue
		}
		ctx := r.ctx
		if !uniform {
			r.real.Checks = r.checks
		}
		if len(r.checks) == 0 && r.hasCheck && len(r.ignored) > 0 {
			k.note(r.pos, "%s: no check gvs can run (%s): the real server is always up", ctx, strings.Join(r.ignored, ", "))
		}
	}
	if uniform {
		s.Check = chosen
	} else if chosen == nil && len(vs.timingPos) > 0 {
		k.note(vs.timingPos[0], "%s: check settings (delay_loop, retry, alpha, ...) without a checker gvs can run: not written", vs.ctx)
	}
	k.finishSorry(vs, fam6)
	if chosen == nil && (s.Sorry.OK || len(s.QuorumPos) > 0) {
		p := s.SorryPos
		if !s.Sorry.OK || (len(s.QuorumPos) > 0 && s.QuorumPos[0].Seq < p.Seq) {
			p = s.QuorumPos[0]
		}
		k.note(p, "%s: no check gvs can run: gvs applies quorum and the sorry server only to checked services (keepalived counts unchecked real servers as up): no effect as written", vs.ctx)
	}
}

// finishSorry checks the sorry server against the service and notes where gvs
// uses it differently from keepalived.
func (k *kaImporter) finishSorry(vs *kaVS, fam6 bool) {
	s := vs.svc
	if !s.Sorry.OK {
		return
	}
	ctx, ap := vs.ctx, s.Sorry.V
	// gvs forwards to the sorry server by its first real server's method, dr
	// without one; keepalived by the virtual server's (or sorry_server_lvs_method).
	method := ipvs.DefaultMethod.String()
	if len(s.Reals) > 0 {
		method = cmp.Or(s.Reals[0].Method, s.Method)
	}
	if ap.Addr().Is6() != fam6 && method != "tun" {
		k.note(s.SorryPos, "%s: sorry_server %s: address family differs from the virtual server's: left out", ctx, ap.Addr())
		s.Sorry = importer.Opt[netip.AddrPort]{}
		return
	}
	if method != s.Method {
		k.note(s.SorryPos, "%s: sorry_server: gvs forwards to it by %s, the method of the service's first real server (dr without one); keepalived by the virtual server's %s", ctx, strings.ToUpper(method), strings.ToUpper(s.Method))
	}
	if s.FWMark == 0 && method != "nat" && ap.Port() != 0 && ap.Port() != s.Addr.Port() {
		k.note(s.SorryPos, "%s: sorry_server: %s cannot change the port: written without port %d (gvs forwards to the service port %d)", ctx, strings.ToUpper(method), ap.Port(), s.Addr.Port())
		s.Sorry.V = netip.AddrPortFrom(ap.Addr(), 0)
	}
	k.note(s.SorryPos, "%s: sorry_server %s: its MAC is not in keepalived.conf: sorry_server_mac is left out (gvs run finds it by ARP/ND); `gvs bench replay` needs it pinned", ctx, ap.Addr())
}
