package config

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ImportIpvsadm translates an ipvsadm-save dump into gvs TOML: each -A line
// (-t/-u ADDR:PORT or -f MARK, -s, -p, -M, -b, -o, -6) becomes a [[service]], each
// -a line (-r, -g/-m/-i, -w, -x, -y) a real server of it, in the dump's order (as
// ipvsadm-restore would add them). Lines may also be ipvsadm commands as written
// in a shell script ("ipvsadm -A -t ..."), with long options and -C, -E, -e, -D,
// -d and --set applied in order. name is used in notes and errors.
//
// A line that is not an ipvsadm rule, or a rule that cannot be read (no service,
// a bad address) is an error with its line. Options gvs has no equivalent for are
// notes; an fwmark service is written commented out, since gvs needs to be told
// which packets carry the mark.
func ImportIpvsadm(r io.Reader, name string) (*Imported, error) {
	doc := &impDoc{tool: "ipvsadm"}
	im := &ipvsImporter{doc: doc, file: name}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		im.line(sc.Text(), impPos{file: name, line: line, seq: line})
		if len(im.errs) >= kaMaxErrors {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("config: import: %s: %w", name, err)
	}
	if len(im.errs) > 0 {
		return nil, im.errs
	}
	im.finish()
	doc.summary = append(doc.summary,
		"Source: "+name+" (ipvsadm-save rules).",
		"Real servers are in the dump's order, which is what ipvsadm-restore would add;",
		"ipvsadm-save lists them sorted by address, not in the order they were first added.")
	return doc.finish(name + " (imported)")
}

type ipvsImporter struct {
	doc      *impDoc
	file     string
	errs     Errors
	services []*ipvsService
	anyReal  bool
}

type ipvsService struct {
	svc   *impService
	key   string
	reals []*ipvsReal
}

type ipvsReal struct {
	real   *impReal
	method string
}

func (im *ipvsImporter) errorf(p impPos, format string, args ...any) {
	im.errs = append(im.errs, &Error{File: p.file, Line: p.line, Err: fmt.Errorf("%w: "+format, append([]any{ErrSyntax}, args...)...)})
}

// ipvsArgs is one rule's options.
type ipvsArgs struct {
	cmd      string // A E D C a e d set, or another command (ignored)
	kind     string // t u f sctp
	svc      string
	sched    string
	persist  opt[string] // value "" = ipvsadm's default
	netmask  string
	flags    string
	ops      bool
	ipv6     bool
	real     string
	method   string
	weight   opt[string]
	upper    opt[string]
	lower    opt[string]
	setArgs  []string
	ignored  []string // options without a gvs equivalent, as written
	unknown  []string
	explicit []string // every option seen, for "given twice" checks
}

var ipvsCommands = map[string]string{
	"-A": "A", "--add-service": "A", "-E": "E", "--edit-service": "E", "-D": "D", "--delete-service": "D",
	"-C": "C", "--clear": "C", "-a": "a", "--add-server": "a", "-e": "e", "--edit-server": "e",
	"-d": "d", "--delete-server": "d", "--set": "set",
	"-R": "restore", "--restore": "restore", "-S": "save", "--save": "save", "-Z": "zero", "--zero": "zero",
	"-L": "list", "-l": "list", "--list": "list", "--start-daemon": "daemon", "--stop-daemon": "daemon",
	"-h": "help", "--help": "help", "-v": "version", "--version": "version",
}

// ipvsOptions maps option spellings to a canonical name and whether it takes a
// value ("?" = an optional one, as -p).
var ipvsOptions = map[string][2]string{
	"-t": {"t", "1"}, "--tcp-service": {"t", "1"}, "-u": {"u", "1"}, "--udp-service": {"u", "1"},
	"--sctp-service": {"sctp", "1"}, "-f": {"f", "1"}, "--fwmark-service": {"f", "1"},
	"-s": {"s", "1"}, "--scheduler": {"s", "1"}, "-p": {"p", "?"}, "--persistent": {"p", "?"},
	"-M": {"M", "1"}, "--netmask": {"M", "1"}, "-b": {"b", "1"}, "--sched-flags": {"b", "1"},
	"-o": {"o", ""}, "--ops": {"o", ""}, "-6": {"6", ""}, "--ipv6": {"6", ""},
	"-r": {"r", "1"}, "--real-server": {"r", "1"}, "-g": {"g", ""}, "--gatewaying": {"g", ""},
	"-m": {"m", ""}, "--masquerading": {"m", ""}, "-i": {"i", ""}, "--ipip": {"i", ""},
	"-w": {"w", "1"}, "--weight": {"w", "1"}, "-x": {"x", "1"}, "--u-threshold": {"x", "1"},
	"-y": {"y", "1"}, "--l-threshold": {"y", "1"}, "--pe": {"pe", "1"},
	"-n": {"n", ""}, "--numeric": {"n", ""},
	"--tun-type": {"tun", "1"}, "--tun-port": {"tun", "1"}, "--tun-nocsum": {"tun", ""},
	"--tun-csum": {"tun", ""}, "--tun-remcsum": {"tun", ""},
	"--mcast-interface": {"sync", "1"}, "--syncid": {"sync", "1"}, "--sync-maxlen": {"sync", "1"},
	"--mcast-group": {"sync", "1"}, "--mcast-port": {"sync", "1"}, "--mcast-ttl": {"sync", "1"},
	"-c": {"conn", ""}, "--connection": {"conn", ""}, "--timeout": {"list", ""}, "--daemon": {"list", ""},
	"--stats": {"list", ""}, "--rate": {"list", ""}, "--thresholds": {"list", ""},
	"--persistent-conn": {"list", ""}, "--nosort": {"list", ""}, "--sort": {"list", ""},
	"--exact": {"list", ""}, "-X": {"list", ""},
}

// split turns a rule into options: "--opt=value" and "-tVALUE" are split.
func ipvsSplit(fields []string) []string {
	var out []string
	for _, f := range fields {
		if strings.HasPrefix(f, "--") {
			if k, v, ok := strings.Cut(f, "="); ok {
				out = append(out, k, v)
				continue
			}
		} else if len(f) > 2 && f[0] == '-' && f[1] != '-' {
			if o, ok := ipvsOptions[f[:2]]; ok && o[1] != "" {
				out = append(out, f[:2], f[2:])
				continue
			}
			if flags := ipvsCluster(f); flags != nil {
				out = append(out, flags...)
				continue
			}
		}
		out = append(out, f)
	}
	return out
}

// ipvsCluster splits "-Ln" into "-L", "-n" when every letter is a short option
// without a value (or a command); otherwise it returns nil.
func ipvsCluster(f string) []string {
	var out []string
	for _, c := range f[1:] {
		o := "-" + string(c)
		if opt, ok := ipvsOptions[o]; ok && opt[1] == "" {
			out = append(out, o)
		} else if _, ok := ipvsCommands[o]; ok {
			out = append(out, o)
		} else {
			return nil
		}
	}
	return out
}

func (im *ipvsImporter) line(text string, p impPos) {
	if i := strings.IndexByte(text, '#'); i >= 0 {
		text = text[:i]
	}
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return
	}
	if fields[0] == "ipvsadm" || strings.HasSuffix(fields[0], "/ipvsadm") {
		fields = fields[1:]
		if len(fields) == 0 {
			im.doc.note(p, "ipvsadm without a command (it lists the table): ignored")
			return
		}
	}
	a, ok := im.parse(ipvsSplit(fields), p)
	if !ok {
		return
	}
	for _, u := range a.unknown {
		im.doc.note(p, "unknown option %q: ignored", u)
	}
	for _, g := range a.ignored {
		if a.cmd == "list" {
			break // options of a listing command, which is noted below
		}
		im.doc.note(p, "%s not translated: %s", g, ipvsIgnoredWhy(g))
	}
	switch a.cmd {
	case "A", "E":
		im.service(a, p)
	case "D":
		if s := im.find(a, p); s != nil {
			im.services = slices.DeleteFunc(im.services, func(x *ipvsService) bool { return x == s })
			im.doc.note(p, "-D deletes %s: it is not written", s.svc.what)
		}
	case "C":
		if len(im.services) > 0 {
			im.doc.note(p, "-C clears the %d services defined above: they are not written", len(im.services))
		}
		im.services = nil
	case "a", "e", "d":
		im.realServer(a, p)
	case "set":
		im.set(a, p)
	default:
		im.doc.note(p, "ipvsadm %s command is not a rule: ignored", a.cmd)
	}
}

func ipvsIgnoredWhy(opt string) string {
	switch {
	case strings.HasPrefix(opt, "--pe"):
		return "gvs has no persistence engines"
	case opt == "--tun-type ipip":
		return "IPIP is gvs's only tunnel: nothing to write"
	case strings.HasPrefix(opt, "--tun"):
		return "gvs tunnels with IPIP only"
	case opt == "-n" || opt == "--numeric":
		return "only changes how ipvsadm prints"
	}
	return "gvs has no such setting"
}

// parse reads a rule's options; errors are recorded.
func (im *ipvsImporter) parse(toks []string, p impPos) (ipvsArgs, bool) {
	var a ipvsArgs
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if c, ok := ipvsCommands[t]; ok {
			if a.cmd != "" {
				im.errorf(p, "two commands (%s and %s) in one rule", a.cmd, t)
				return a, false
			}
			a.cmd = c
			if c == "set" {
				for i+1 < len(toks) && !strings.HasPrefix(toks[i+1], "-") {
					i++
					a.setArgs = append(a.setArgs, toks[i])
				}
			}
			continue
		}
		o, ok := ipvsOptions[t]
		if !ok {
			if strings.HasPrefix(t, "-") {
				a.unknown = append(a.unknown, t)
				continue
			}
			im.errorf(p, "unexpected word %q (not an ipvsadm option)", t)
			return a, false
		}
		val := ""
		switch o[1] {
		case "1":
			if i+1 >= len(toks) {
				im.errorf(p, "option %s needs a value", t)
				return a, false
			}
			i++
			val = toks[i]
		case "?":
			if i+1 < len(toks) && !strings.HasPrefix(toks[i+1], "-") {
				i++
				val = toks[i]
			}
		}
		if slices.Contains(a.explicit, o[0]) && o[0] != "tun" && o[0] != "list" && o[0] != "sync" {
			im.errorf(p, "option %s given twice", t)
			return a, false
		}
		a.explicit = append(a.explicit, o[0])
		switch o[0] {
		case "t", "u", "f", "sctp":
			if a.kind != "" {
				im.errorf(p, "two services (-%s and %s) in one rule", a.kind, t)
				return a, false
			}
			a.kind, a.svc = o[0], val
		case "s":
			a.sched = val
		case "p":
			a.persist = some(val)
		case "M":
			a.netmask = val
		case "b":
			a.flags = val
		case "o":
			a.ops = true
		case "6":
			a.ipv6 = true
		case "r":
			a.real = val
		case "g", "m", "i":
			if a.method != "" {
				im.errorf(p, "two forwarding methods in one rule")
				return a, false
			}
			a.method = map[string]string{"g": "dr", "m": "nat", "i": "tun"}[o[0]]
		case "w":
			a.weight = some(val)
		case "x":
			a.upper = some(val)
		case "y":
			a.lower = some(val)
		case "pe", "tun", "n", "sync":
			a.ignored = append(a.ignored, strings.TrimSpace(t+" "+val))
		case "conn", "list":
			if a.cmd == "" {
				a.cmd = "list"
			}
		}
	}
	if a.cmd == "" {
		im.errorf(p, "no command (want -A, -a, ... as ipvsadm-save writes)")
		return a, false
	}
	return a, true
}

// svcKey identifies a service as ipvsadm does: protocol and address, or mark and family.
func ipvsKey(kind string, addr netip.AddrPort, mark uint32, v6 bool) string {
	if kind == "f" {
		return fmt.Sprintf("f %d %v", mark, v6)
	}
	return kind + " " + addr.String()
}

// ipvsMark reads an fwmark; Debian's ipvsadm prints marks with %d, so marks above
// 2^31 appear negative (docs/ipvsadm-format.md) and are read back as ipvsadm -R would.
func ipvsMark(s string) (uint32, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil || v == 0 || v > math.MaxUint32 || v < math.MinInt32:
		return 0, false
	case v < 0:
		return uint32(int32(v)), true
	}
	return uint32(v), true
}

// ipvsAddr reads a service or real-server address: "1.2.3.4:80", "[2001:db8::1]:80",
// "1.2.3.4" (port 0), or with a service name for the port ("1.2.3.4:http").
func ipvsAddr(s, proto string) (netip.AddrPort, bool, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Addr().Zone() != "" {
			return ap, false, fmt.Errorf("%q: zones are not supported", s)
		}
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true, nil
	}
	if a, err := kaAddr(s); err == nil {
		return netip.AddrPortFrom(a, 0), false, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, false, fmt.Errorf("%q is not ADDRESS:PORT", s)
	}
	a, err := kaAddr(host)
	if err != nil {
		return netip.AddrPort{}, false, fmt.Errorf("%q is a host name: dump with `ipvsadm-save -n` so addresses are numeric", host)
	}
	if proto != "udp" {
		proto = "tcp"
	}
	n, err := net.LookupPort(proto, port)
	if err != nil || n < 0 || n > 65535 {
		return netip.AddrPort{}, false, fmt.Errorf("unknown port %q: dump with `ipvsadm-save -n`", port)
	}
	return netip.AddrPortFrom(a, uint16(n)), true, nil
}

// target finds the service a rule names; create allows a new one.
func (im *ipvsImporter) target(a ipvsArgs, p impPos) (key string, addr netip.AddrPort, mark uint32, ok bool) {
	switch a.kind {
	case "":
		im.errorf(p, "no service (-t, -u or -f)")
		return "", addr, 0, false
	case "f":
		m, ok := ipvsMark(a.svc)
		if !ok {
			im.errorf(p, "-f %s: want a mark 1..4294967295", a.svc)
			return "", addr, 0, false
		}
		mark = m
	default:
		proto := map[string]string{"t": "tcp", "u": "udp", "sctp": "sctp"}[a.kind]
		var err error
		if addr, _, err = ipvsAddr(a.svc, proto); err != nil {
			im.errorf(p, "service %v", err)
			return "", addr, 0, false
		}
	}
	return ipvsKey(a.kind, addr, mark, a.ipv6), addr, mark, true
}

func (im *ipvsImporter) find(a ipvsArgs, p impPos) *ipvsService {
	key, _, _, ok := im.target(a, p)
	if !ok {
		return nil
	}
	for _, s := range im.services {
		if s.key == key {
			return s
		}
	}
	im.doc.note(p, "no such service %s defined above: rule ignored (ipvsadm would fail)", a.svc)
	return nil
}

// service applies -A (add) or -E (edit).
func (im *ipvsImporter) service(a ipvsArgs, p impPos) {
	var s *ipvsService
	if a.cmd == "E" {
		if s = im.find(a, p); s == nil {
			return
		}
	} else {
		key, addr, mark, ok := im.target(a, p)
		if !ok {
			return
		}
		for _, x := range im.services {
			if x.key == key {
				im.doc.note(p, "service %s is already defined (line %d): rule ignored (ipvsadm would fail)", a.svc, x.svc.pos.line)
				return
			}
		}
		what := map[string]string{"t": "-t ", "u": "-u ", "f": "-f ", "sctp": "--sctp-service "}[a.kind] + a.svc
		s = &ipvsService{key: key, svc: &impService{pos: p, what: what, addr: addr, fwmark: mark, inet6: mark != 0 && a.ipv6}}
		switch a.kind {
		case "u":
			s.svc.proto = "udp"
		case "sctp":
			s.svc.proto = "sctp"
			s.svc.off = "SCTP: gvs balances tcp and udp only"
			im.doc.note(p, "%s: SCTP service written commented out: gvs balances tcp and udp only", what)
		}
		if mark != 0 {
			s.svc.off = fmt.Sprintf("fwmark %d: gvs needs [[service.match]] rules for the mark", mark)
			im.doc.note(p, "%s: fwmark service written commented out: gvs sets no netfilter marks and needs [[service.match]] rules saying which packets carry mark %d (the iptables mangle rule is not in the dump): add them and uncomment", what, mark)
		}
		im.services = append(im.services, s)
	}
	svc := s.svc
	if a.sched != "" {
		if name := strings.ToLower(a.sched); slices.Contains(schedulerNames(), name) {
			svc.sched = name
		} else {
			im.doc.note(p, "-s %s: gvs has no such scheduler: the default (wlc) is used", a.sched)
		}
	}
	if a.persist.ok {
		secs := uint64(300) // ipvsadm's default with a bare -p
		if a.persist.v != "" {
			v, err := strconv.ParseUint(a.persist.v, 10, 32)
			if err != nil || v == 0 {
				im.doc.note(p, "-p %s: want seconds > 0: ignored", a.persist.v)
				a.persist.ok = false
			}
			secs = v
		}
		if a.persist.ok {
			svc.persist = some(time.Duration(secs) * time.Second)
		}
	}
	if a.netmask != "" {
		if _, err := strconv.Atoi(a.netmask); err == nil {
			svc.netmask = a.netmask
		} else {
			svc.netmask = tomlString(a.netmask)
		}
	}
	if a.flags != "" {
		sched := svc.sched
		if sched == "" {
			sched = "wlc"
		}
		svc.flags = nil
		for f := range strings.SplitSeq(a.flags, ",") {
			if f == "" {
				continue
			}
			if _, err := parseSchedFlag(sched, f); err != nil {
				im.doc.note(p, "-b %s: %v: not written", f, err)
				continue
			}
			svc.flags = append(svc.flags, f)
		}
	}
	if a.ops {
		if svc.proto == "udp" {
			svc.ops = true
		} else {
			im.doc.note(p, "-o (one-packet scheduling) applies to UDP services only: not written (ipvsadm refuses it too)")
		}
	}
	for _, o := range []struct {
		set  bool
		name string
	}{{a.real != "", "-r"}, {a.method != "", "-g/-m/-i"}, {a.weight.ok, "-w"}, {a.upper.ok, "-x"}, {a.lower.ok, "-y"}} {
		if o.set {
			im.doc.note(p, "%s belongs to a real-server rule (-a): ignored here", o.name)
		}
	}
}

// realServer applies -a (add), -e (edit) or -d (delete).
func (im *ipvsImporter) realServer(a ipvsArgs, p impPos) {
	if a.real == "" {
		im.errorf(p, "no real server (-r)")
		return
	}
	s := im.find(a, p)
	if s == nil {
		return
	}
	svc := s.svc
	proto := svc.proto
	addr, hasPort, err := ipvsAddr(a.real, proto)
	if err != nil {
		im.errorf(p, "real server %v", err)
		return
	}
	if !hasPort && svc.fwmark == 0 {
		addr = netip.AddrPortFrom(addr.Addr(), svc.addr.Port())
	}
	method := a.method
	var existing *ipvsReal
	for _, r := range s.reals {
		if r.real.addr == addr.Addr() && r.real.port == addr.Port() {
			existing = r
		}
	}
	switch a.cmd {
	case "d":
		if existing == nil {
			im.doc.note(p, "-d: no real server %s in %s: ignored", a.real, svc.what)
			return
		}
		s.reals = slices.DeleteFunc(s.reals, func(x *ipvsReal) bool { return x == existing })
		im.doc.note(p, "-d deletes real server %s of %s: it is not written", a.real, svc.what)
		return
	case "e":
		if existing == nil {
			im.doc.note(p, "-e: no real server %s in %s: ignored", a.real, svc.what)
			return
		}
	case "a":
		if existing != nil {
			im.doc.note(p, "real server %s of %s is already defined (line %d): rule ignored (ipvsadm would fail)", a.real, svc.what, existing.real.pos.line)
			return
		}
		if method == "" {
			method = "dr" // ipvsadm's default, -g
		}
		existing = &ipvsReal{real: &impReal{pos: p, addr: addr.Addr(), port: addr.Port()}}
		s.reals = append(s.reals, existing)
		im.anyReal = true
	}
	r := existing.real
	if method != "" {
		existing.method = method
		r.port = addr.Port()
		if svc.fwmark == 0 && method != "nat" && r.port != svc.addr.Port() {
			// ipvsadm itself forces a DR/TUN real server's port to the service's.
			im.doc.note(p, "%s: %s cannot change the port: port %d written as the service's %d, as ipvsadm does", a.real, strings.ToUpper(method), r.port, svc.addr.Port())
			r.port = svc.addr.Port()
		}
	}
	if a.weight.ok {
		if w, err := strconv.ParseInt(a.weight.v, 10, 32); err != nil || w < 0 {
			im.doc.note(p, "-w %s: want a weight >= 0: ignored", a.weight.v)
		} else {
			r.weight = some(int(w))
		}
	}
	for _, t := range []struct {
		v   opt[string]
		dst *uint32
		n   string
	}{{a.upper, &r.upper, "-x"}, {a.lower, &r.lower, "-y"}} {
		if !t.v.ok {
			continue
		}
		if v, err := strconv.ParseUint(t.v.v, 10, 32); err != nil {
			im.doc.note(p, "%s %s: want a connection count: ignored", t.n, t.v.v)
		} else {
			*t.dst = uint32(v)
		}
	}
	for _, o := range []struct {
		set  bool
		name string
	}{{a.sched != "", "-s"}, {a.persist.ok, "-p"}, {a.netmask != "", "-M"}, {a.flags != "", "-b"}, {a.ops, "-o"}} {
		if o.set {
			im.doc.note(p, "%s belongs to a service rule (-A): ignored here", o.name)
		}
	}
}

// set applies --set TCP TCPFIN UDP (seconds; 0 leaves a timeout unchanged).
func (im *ipvsImporter) set(a ipvsArgs, p impPos) {
	if len(a.setArgs) != 3 {
		im.errorf(p, "--set needs three values: tcp tcpfin udp")
		return
	}
	dsts := []*opt[time.Duration]{&im.doc.dir.tcp, &im.doc.dir.tcpfin, &im.doc.dir.udp}
	for i, v := range a.setArgs {
		n, err := strconv.ParseUint(v, 10, 31)
		if err != nil {
			im.errorf(p, "--set: %q is not a number of seconds", v)
			return
		}
		if n > 0 {
			*dsts[i] = some(time.Duration(n) * time.Second)
		}
	}
}

// finish moves the services into the document, choosing each one's method.
func (im *ipvsImporter) finish() {
	for _, s := range im.services {
		svc := s.svc
		methods := map[string]bool{}
		for _, r := range s.reals {
			methods[r.method] = true
		}
		if len(methods) == 1 {
			for m := range methods {
				svc.method = m
			}
		} else {
			svc.method = "dr"
		}
		for _, r := range s.reals {
			if r.method != svc.method {
				r.real.method = r.method
			}
			svc.reals = append(svc.reals, r.real)
		}
		im.doc.services = append(im.doc.services, svc)
	}
	if im.anyReal {
		im.doc.note(impPos{file: im.file}, "real servers' MAC addresses are not in an ipvsadm dump: `mac` is left out (gvs run finds them by ARP/ND); `gvs bench replay` needs them pinned with mac = \"...\"")
	}
	if len(im.doc.services) > 0 {
		im.doc.note(impPos{file: im.file}, "[director] interface is not set: an ipvsadm dump does not say which interface carries the traffic; set it before `gvs run`")
	}
}
