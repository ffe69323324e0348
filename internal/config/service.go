package config

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/sched"
)

// service reads one [[service]] table with its match rules, real servers (in file
// order) and check. It always returns the service, valid or not, so that later
// services are numbered as in the file; its problems are recorded in r.
func (r *reader) service(t *table) Service {
	s := DefaultService()
	s.Line = r.lines.line(t.path)

	var addrOK bool
	var fam Family // 0 until known: a bad address has none
	if t.present("address") {
		var str string
		if t.str("address", &str) {
			a, port, hasPort, err := parseHostPort(str)
			switch {
			case err != nil:
				t.fail("address", err)
			case !hasPort:
				t.errorf("address", "missing port in %q (write %q for all ports)", str, netip.AddrPortFrom(a, 0).String())
			default:
				if err := unicast(a); err != nil {
					t.fail("address", err)
				} else {
					s.Addr, addrOK = netip.AddrPortFrom(a, port), true
					fam = familyOf(a)
				}
			}
		}
	}
	var mark int64
	markOK := t.integer("fwmark", 0, math.MaxUint32, &mark)
	switch {
	case !t.present("address") && !t.present("fwmark"):
		r.add(t.path, fmt.Errorf("%w address: set address = \"VIP:port\" or fwmark", ErrMissing))
	case !markOK:
	case mark != 0 && t.present("address"):
		t.errorf("fwmark", "set either address or fwmark, not both")
	case mark != 0:
		s.FWMark = uint32(mark)
	case !t.present("address"):
		t.errorf("fwmark", "must not be zero without an address (fwmark 0 means \"no mark\")")
	}

	var str string
	if t.str("family", &str) {
		switch f, err := parseFamily(str); {
		case err != nil:
			t.fail("family", err)
		case s.FWMark != 0:
			fam = f
		case addrOK && f != fam:
			t.errorf("family", "is %s but address %s is %s", f, s.Addr.Addr(), fam)
		}
	}
	if s.FWMark != 0 && fam == 0 {
		fam = FamilyInet
	}
	s.IPv6 = fam == FamilyInet6

	if t.str("protocol", &str) {
		switch p, err := oneOf("protocol", str, "tcp", "udp"); {
		case strings.EqualFold(str, "sctp"):
			t.errorf("protocol", "%w: sctp (use tcp or udp)", ErrNotImplemented)
		case err != nil:
			t.fail("protocol", err)
		case p == "udp":
			s.Protocol = ipvs.UDP
		default:
			s.Protocol = ipvs.TCP
		}
	}

	schedOK := true
	if t.str("scheduler", &str) {
		name, err := oneOf("scheduler", str, SchedulerNames()...)
		if err != nil {
			t.fail("scheduler", err)
			schedOK = false
		} else {
			s.Scheduler = name
		}
	}
	var flags []string
	flagsSet := t.strings("scheduler_flags", &flags)
	if !flagsSet && r.clusterECMP && s.Scheduler == "mh" {
		// ECMP cluster mode's default: a failed server (weight 0) keeps its slots and
		// lookups go past it, so a health flap never rebuilds the table.
		s.Flags |= sched.FlagSched1 // mh-fallback
	}
	if flagsSet && schedOK {
		for i, f := range flags {
			bit, err := ParseSchedFlag(s.Scheduler, f)
			if err != nil {
				r.add(joinIndex(t.key("scheduler_flags"), i), err)
				continue
			}
			s.Flags |= bit
		}
	}
	if s.Scheduler == "mh" {
		s.MHTableSize = ipvs.DefaultMHTableSize
	}
	var size int
	if t.intField("mh_table_size", 0, math.MaxInt32, &size) && schedOK {
		switch sizes := MHTableSizes(); {
		case s.Scheduler != "mh":
			t.errorf("mh_table_size", "applies only to the mh scheduler (scheduler is %s)", s.Scheduler)
		case !mhTableSizeOK(size):
			t.errorf("mh_table_size", "must be one of %s (got %d)", joinInts(sizes), size)
		default:
			s.MHTableSize = size
		}
	}

	if t.str("method", &str) {
		if m, err := ipvs.ParseMethod(str); err != nil {
			t.fail("method", err)
		} else {
			s.Method = m
		}
	}
	t.duration("persistence", &s.Persistence)
	r.netmask(t, &s, fam)
	// ECMP cluster mode's default: health changes weights, not membership, so
	// every director keeps one mh table whatever its checks saw (docs/cluster.md
	// §2; not with announce = "vrrp", where one director schedules at a time, §14).
	s.InhibitOnFailure = s.InhibitOnFailure || r.clusterECMP
	t.boolean("inhibit_on_failure", &s.InhibitOnFailure)
	if t.str("sorry_server", &str) {
		if ap, err := parseAddrPortDefault(str, s.Addr.Port()); err != nil {
			t.fail("sorry_server", err)
		} else {
			s.SorryServer = ap
		}
	}
	t.mac("sorry_server_mac", &s.SorryServerMAC)
	t.integer("quorum", 0, math.MaxInt32, &s.Quorum)
	t.integer("hysteresis", 0, math.MaxInt32, &s.Hysteresis)
	t.str("quorum_up", &s.QuorumUp)
	t.str("quorum_down", &s.QuorumDown)
	if t.boolean("ops", &s.OPS) && s.OPS && s.Protocol != ipvs.UDP {
		t.errorf("ops", "one-packet scheduling is only for UDP services (protocol is %s)", strings.ToLower(s.Protocol.String()))
	}
	if addrOK && s.Addr.Port() == 0 && s.Persistence == 0 {
		t.errorf("address", "port zero only supported in persistent services (set persistence, or a port)")
	}

	matches := t.array("match")
	switch {
	case s.FWMark != 0 && !t.present("match"):
		r.add(t.path, fmt.Errorf("%w match: an fwmark service needs [[service.match]] rules saying which packets carry its mark (gvs has no netfilter to set marks)", ErrMissing))
	case s.FWMark == 0 && t.present("match"):
		t.errorf("match", "applies only to fwmark services")
	case s.FWMark != 0 && len(matches) == 0 && t.emptyList("match"):
		t.errorf("match", "%w: an fwmark service needs at least one [[service.match]] rule saying which packets carry its mark; an empty list gives it none", ErrMissing)
	case s.FWMark != 0:
		for _, mt := range matches {
			m, ok := r.match(mt, &s)
			if !ok {
				continue
			}
			// A rule identical to an earlier one never matches: the first match wins.
			k := Match{Match: m.Match}
			if first, dup := r.rules[k]; dup {
				r.add(mt.path, fmt.Errorf("%w match rule (first at line %d, %s): it would never match", ErrDuplicate, r.lines.line(first), first))
				continue
			}
			r.rules[k] = mt.path
			s.Match = append(s.Match, m)
		}
	}

	svcTiming := r.readTiming(t, checkTiming{})
	rsTiming := map[int]checkTiming{} // by index in s.RealServers: the servers that give their own
	seen := map[netip.AddrPort]string{}
	for _, rt := range t.array("real_server") {
		rs, tm, own, ok := r.realServer(rt, &s, addrOK || s.FWMark != 0, svcTiming)
		if !ok {
			continue
		}
		if first, dup := seen[rs.Addr]; dup {
			rt.errorf("address", "%w real server %s (first at line %d, %s)", ErrDuplicate, rs.Addr, r.lines.line(first), first)
		} else {
			seen[rs.Addr] = rt.path
		}
		if own {
			rsTiming[len(s.RealServers)] = tm
		}
		s.RealServers = append(s.RealServers, rs)
	}
	if ct := t.sub("check"); ct != nil {
		var explicit checkTiming
		s.Check, explicit = r.check(ct, &s, svcTiming)
		// A server's own timing applies to its run of the service's check
		// (keepalived's real_server delay_loop, retry, … over the virtual server's).
		for i, tm := range rsTiming {
			if rs := &s.RealServers[i]; rs.Checks == nil {
				c := *s.Check
				c.StatusCodes, c.Command = slices.Clone(c.StatusCodes), slices.Clone(c.Command)
				tm.apply(&c, explicit)
				rs.Checks = []Check{c}
			}
		}
	}
	t.done()
	if s.FWMark != 0 {
		s.Protocol = 0 // an fwmark service's key has none (ipvs.MarkKey)
	}
	return s
}

// match reads one [[service.match]] rule of the fwmark service s.
func (r *reader) match(t *table, s *Service) (Match, bool) {
	m := Match{Line: r.lines.line(t.path)}
	ok := true
	var str string
	if t.str("protocol", &str) {
		switch p, err := oneOf("protocol", str, "tcp", "udp"); {
		case err != nil:
			t.fail("protocol", err)
			ok = false
		case p == "udp":
			m.Protocol = ipvs.UDP
		default:
			m.Protocol = ipvs.TCP
		}
	}
	if v, present := t.get("port"); present {
		lo, hi, err := parsePortRange(v)
		if err != nil {
			t.fail("port", err)
			ok = false
		}
		m.PortLo, m.PortHi = lo, hi
	}
	present := t.present("address")
	read := t.addr("address", unicast, &m.Addr)
	t.done()
	switch {
	case !present:
		r.add(t.path, fmt.Errorf("%w address: the destination address the rule matches", ErrMissing))
		return m, false
	case !read:
		return m, false
	case familyOf(m.Addr) != s.Family():
		t.errorf("address", "is %s but the service's family is %s", familyOf(m.Addr), s.Family())
		return m, false
	}
	return m, ok
}

// parsePortRange reads a match's port: 80, "80", or a range "8000-8099"
// (iptables' "8000:8099" too).
func parsePortRange(v any) (lo, hi uint16, err error) {
	var text string
	switch v := v.(type) {
	case int64:
		text = strconv.FormatInt(v, 10)
	case string:
		text = v
	default:
		return 0, 0, fmt.Errorf("%w: want a port (80) or a range (\"8000-8099\"), got %s", ErrType, describe(v))
	}
	a, b, isRange := strings.Cut(text, "-")
	if !isRange {
		a, b, isRange = strings.Cut(text, ":")
	}
	if !isRange {
		b = a
	}
	l, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
	h, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 16)
	switch {
	case err1 != nil || err2 != nil:
		return 0, 0, fmt.Errorf("invalid port %q (want 80 or \"8000-8099\")", text)
	case l == 0:
		return 0, 0, fmt.Errorf("port 0 is not a port (leave port out to match every port)")
	case l > h:
		return 0, 0, fmt.Errorf("port range %q is empty (%d > %d)", text, l, h)
	}
	return uint16(l), uint16(h), nil
}

// netmask reads a service's persistence granularity: an IPv4 mask
// ("255.255.255.0") or prefix length, or an IPv6 prefix length (ipvsadm -M). fam
// is the service's family, 0 when its address is bad.
func (r *reader) netmask(t *table, s *Service, fam Family) {
	maxBits := 32
	if fam == FamilyInet6 {
		maxBits = 128
	}
	s.Netmask = ipvs.Netmask(s.IPv6, maxBits)
	v, ok := t.get("netmask")
	if !ok || fam == 0 {
		return
	}
	var bits int64
	switch v := v.(type) {
	case int64:
		bits = v
	case string:
		if n, err := strconv.ParseInt(strings.TrimPrefix(v, "/"), 10, 64); err == nil {
			bits = n
			break
		}
		m, err := netip.ParseAddr(v)
		if err != nil || !m.Is4() {
			t.errorf("netmask", "want an IPv4 mask like \"255.255.255.0\" or a prefix length, got %q", v)
			return
		}
		if fam == FamilyInet6 {
			t.errorf("netmask", "an IPv6 service takes a prefix length (1..128), not %q", v)
			return
		}
		b := m.As4()
		n := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		ones := 0
		for n&(1<<31) != 0 {
			ones++
			n <<= 1
		}
		if n != 0 {
			t.errorf("netmask", "%q is not a contiguous mask", v)
			return
		}
		bits = int64(ones)
	default:
		t.typeErr("netmask", "a mask string or prefix length", v)
		return
	}
	lo := int64(0)
	if fam == FamilyInet6 {
		lo = 1 // docs/ipvs-semantics.md §1.1: an IPv6 netmask is a prefix length 1..128
	}
	if bits < lo || bits > int64(maxBits) {
		t.errorf("netmask", "prefix length must be %d..%d for %s (got %d)", lo, maxBits, fam, bits)
		return
	}
	s.Netmask = ipvs.Netmask(s.IPv6, int(bits))
}

// realServer reads one real server of s with its own checks; ok is false when its
// address is unusable (the problem is recorded). svcOK says whether s's address
// or mark is valid, so the family and port rules can be applied. svcTiming is the
// service's check timing; tm is the server's over the service's, and own says
// whether the server gives any.
func (r *reader) realServer(t *table, s *Service, svcOK bool, svcTiming checkTiming) (rs RealServer, tm checkTiming, own bool, ok bool) {
	rs = DefaultRealServer()
	rs.Line = r.lines.line(t.path)
	rs.Method = s.Method
	rs.InhibitOnFailure = s.InhibitOnFailure
	t.boolean("inhibit_on_failure", &rs.InhibitOnFailure)

	var str string
	if t.str("method", &str) {
		if m, err := ipvs.ParseMethod(str); err != nil {
			t.fail("method", err)
		} else {
			rs.Method = m
		}
	}
	var n int64
	if t.integer("weight", 0, math.MaxInt32, &n) {
		rs.Weight = int32(n)
	}
	t.mac("mac", &rs.MAC)
	if t.integer("upper_threshold", 0, math.MaxUint32, &n) {
		rs.UpperThreshold = uint32(n)
	}
	if t.integer("lower_threshold", 0, math.MaxUint32, &n) {
		rs.LowerThreshold = uint32(n)
		if rs.LowerThreshold > rs.UpperThreshold {
			// docs/ipvs-semantics.md §2.1: IPVS refuses l > u even when u is 0.
			t.errorf("lower_threshold", "must not exceed upper_threshold (%d > %d)", rs.LowerThreshold, rs.UpperThreshold)
		}
	}
	mine := r.readTiming(t, checkTiming{})
	tm, own = svcTiming.over(mine), mine.given()
	ownChecks := r.rsChecks(t)
	present := t.present("address")
	read := t.str("address", &str)
	t.done()
	if !present {
		r.add(t.path, fmt.Errorf("%w address", ErrMissing))
	}
	if !read {
		return rs, tm, own, false
	}

	a, port, hasPort, err := parseHostPort(str)
	if err == nil {
		err = unicast(a)
	}
	if err != nil {
		t.fail("address", err)
		return rs, tm, own, false
	}
	if !hasPort {
		port = s.Addr.Port()
	}
	rs.Addr = netip.AddrPortFrom(a, port)
	// Its own checks see only this server (the port rule of check).
	one := Service{Service: s.Service, RealServers: []RealServer{rs}}
	for _, ct := range ownChecks {
		c, _ := r.check(ct, &one, tm)
		rs.Checks = append(rs.Checks, *c)
	}
	if !svcOK {
		return rs, tm, own, true
	}
	if f := familyOf(a); f != s.Family() {
		why := "DR and NAT need the real server in the service's address family"
		if rs.Method == ipvs.TUN {
			why = "TUN across address families is not supported yet"
		}
		t.errorf("address", "%s real server %s in an %s service: %s", f, a, s.Family(), why)
	}
	if hasPort && s.FWMark == 0 && rs.Method != ipvs.NAT && port != s.Addr.Port() {
		t.errorf("address", "port %d differs from the service port %d: %s cannot change the port (omit it, or use method = \"nat\")",
			port, s.Addr.Port(), strings.ToUpper(rs.Method.String()))
	}
	return rs, tm, own, true
}

// rsChecks returns a real server's check tables: [service.real_server.check] (one)
// or [[service.real_server.check]] (several, all of which must pass).
func (r *reader) rsChecks(t *table) []*table {
	v, ok := t.get("check")
	if !ok {
		return nil
	}
	if _, one := v.(map[string]any); one {
		return []*table{t.sub("check")}
	}
	return t.array("check")
}

// parseAddrPortDefault parses "addr", "addr:port" or "[v6]:port"; a missing port is
// def.
func parseAddrPortDefault(v string, def uint16) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(v); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	a, err := netip.ParseAddr(strings.Trim(v, "[]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("want ADDR or ADDR:PORT, got %q", v)
	}
	return netip.AddrPortFrom(a.Unmap(), def), nil
}
