package config

// This file holds what both importers (keepalived.conf and ipvsadm-save) share:
// the Note and Imported types, a small typed model of the gvs TOML being written,
// the TOML emitter, and finish, which proves the output with Parse. It is named
// import_keepalived_* only because the repository's file ownership says so.

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A Note is one thing an importer did not translate exactly: a keyword gvs has no
// equivalent for, a value it adjusted, a block it left out. Nothing is dropped
// without one.
type Note struct {
	File string // the source file (an included file's path as resolved)
	Line int    // 1-based; 0 when the note is about the input as a whole
	Msg  string
}

// String formats n as "file:line: msg", or "file: msg" without a line.
func (n Note) String() string {
	if n.Line > 0 {
		return n.File + ":" + strconv.Itoa(n.Line) + ": " + n.Msg
	}
	return n.File + ": " + n.Msg
}

// Imported is the result of translating another tool's configuration into gvs's.
type Imported struct {
	// TOML is the gvs configuration, with the notes repeated as comments at its top.
	// Parse accepts it: whatever gvs would refuse is written commented out, with a
	// note saying why.
	TOML []byte
	// Notes are in source order (position in the input as read, includes in place).
	Notes []Note
	// Config is TOML as Parse returns it.
	Config *Config
}

// opt is an optional value: ok says whether the source set it.
type opt[T any] struct {
	v  T
	ok bool
}

func some[T any](v T) opt[T] { return opt[T]{v, true} }

// or returns o when it is set, otherwise d (an inherited default).
func (o opt[T]) or(d opt[T]) opt[T] {
	if o.ok {
		return o
	}
	return d
}

// impPos is where something came from; seq orders positions across included files.
type impPos struct {
	file string
	line int
	seq  int
}

type noteEntry struct {
	Note
	seq int
}

// impDoc is the gvs configuration being built, before it is written.
type impDoc struct {
	tool     string   // "keepalived", "ipvsadm"
	summary  []string // header comment lines after the first
	dir      impDirector
	services []*impService
	vrrp     []*impVRRP
	groups   []*impSyncGroup
	notes    []noteEntry
}

type impDirector struct {
	addr4, addr6     bool // [director] address / address6 set (never, so far)
	iface            string
	tcp, tcpfin, udp opt[time.Duration]
}

type impService struct {
	pos     impPos
	what    string // how the source names it, for comments and notes
	addr    netip.AddrPort
	fwmark  uint32
	inet6   bool // fwmark services: family inet6
	proto   string
	sched   string
	flags   []string
	method  string
	persist opt[time.Duration]
	netmask string // TOML value, "" = default
	ops     bool
	// what health checks do (keepalived's names); sorryPos and quorumPos are
	// where the source set them, for notes.
	inhibit    bool
	sorry      opt[netip.AddrPort] // port 0: the service's
	sorryPos   impPos
	quorum     opt[int]
	hysteresis opt[int]
	quorumUp   string
	quorumDown string
	quorumPos  []impPos
	check      *impCheck
	reals      []*impReal
	off        string // non-empty: written commented out, for this reason
}

type impReal struct {
	pos     impPos
	addr    netip.Addr
	port    uint16 // 0 = written without a port
	weight  opt[int]
	method  string
	upper   uint32
	lower   uint32
	inhibit opt[bool] // written when it differs from the service's
	off     string
}

type impCheck struct {
	pos         impPos
	typ         string
	interval    opt[time.Duration]
	timeout     opt[time.Duration]
	retries     opt[int]
	retryDelay  opt[time.Duration]
	path        string
	codes       []int
	digest      string
	host        string
	sni         string
	payload     opt[string]
	expect      string
	command     []string
	connectIP   netip.Addr
	connectPort uint16
	alpha       bool
	omega       bool
	off         string
}

type impVRRP struct {
	pos               impPos
	name              string
	iface             string
	state             string
	vrid              int
	priority          int // 0 = not set
	advert            opt[time.Duration]
	version           int // 0 = not set
	authType          string
	authPass          string
	vips              []netip.Addr
	src               netip.Addr
	peers             []netip.Addr
	nopreempt         bool
	preemptDelay      opt[time.Duration]
	garpDelay         opt[time.Duration]
	garpRepeat        opt[int]
	garpRefresh       opt[time.Duration]
	garpRefreshRepeat opt[int]
	notifyMaster      string
	notifyBackup      string
	notifyFault       string
	notify            string
	track             []impTrack // track_interface
	off               string
}

// impTrack is one track_interface entry; weight 0 = none.
type impTrack struct {
	pos    impPos
	name   string
	weight int
}

func (t impTrack) String() string {
	if t.weight == 0 {
		return t.name
	}
	return t.name + " weight " + strconv.Itoa(t.weight)
}

type impSyncGroup struct {
	pos     impPos
	name    string
	listed  []string    // the members as written, for a group written commented out
	members []impMember // the members that name an instance, each in this group only
	group   []string    // the members whose instance is written live (syncGroupMembers)
	off     string
}

type impMember struct {
	pos  impPos
	name string
}

func (d *impDoc) note(p impPos, format string, args ...any) {
	d.notes = append(d.notes, noteEntry{Note{File: p.file, Line: p.line, Msg: fmt.Sprintf(format, args...)}, p.seq})
}

// sortedNotes returns the notes in source order, without exact repeats.
func (d *impDoc) sortedNotes() []Note {
	slices.SortStableFunc(d.notes, func(a, b noteEntry) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]Note, 0, len(d.notes))
	seen := map[Note]bool{}
	for _, n := range d.notes {
		if !seen[n.Note] {
			seen[n.Note] = true
			out = append(out, n.Note)
		}
	}
	return out
}

// A span is the lines [start, end] one block was written on, so that a problem Parse
// reports can be traced back to the block that caused it.
type span struct {
	start, end int
	off        *string
	what       string
	pos        impPos
}

// tomlWriter writes TOML lines, optionally all commented out.
type tomlWriter struct {
	b         strings.Builder
	lines     int
	commented bool
}

func (w *tomlWriter) line(s string) {
	if w.commented && s != "" {
		w.b.WriteString("# ")
	}
	w.b.WriteString(s)
	w.b.WriteByte('\n')
	w.lines++
}

// comment writes s as comment lines (s may hold several lines).
func (w *tomlWriter) comment(indent, s string) {
	for l := range strings.SplitSeq(s, "\n") {
		w.line(indent + "# " + commentText(l))
	}
}

func (w *tomlWriter) kv(indent, key, val string) { w.line(indent + key + " = " + val) }

// commentText makes s safe inside a TOML comment: valid UTF-8 without control
// characters other than tab.
func commentText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.IndexFunc(s, func(r rune) bool { return r != '\t' && (r < 0x20 || r == 0x7f) }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r != '\t' && (r < 0x20 || r == 0x7f) {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// tomlString quotes s as a TOML basic string. Invalid UTF-8 becomes U+FFFD (TOML
// documents are UTF-8).
func tomlString(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

func tomlStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = tomlString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func tomlAddrs(as []netip.Addr) string {
	q := make([]string, len(as))
	for i, a := range as {
		q[i] = tomlString(a.String())
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// tomlDuration writes d as gvs reads it: "6s", or Go syntax ("1.5s", "250ms").
func tomlDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return tomlString(strconv.FormatInt(int64(d/time.Second), 10) + "s")
	}
	return tomlString(d.String())
}

// render writes the document and returns the spans of its blocks.
func (d *impDoc) render(notes []Note) ([]byte, []span) {
	w := &tomlWriter{}
	var spans []span
	w.comment("", "gvs configuration written by `gvs import "+d.tool+"`.")
	for _, s := range d.summary {
		w.comment("", s)
	}
	w.comment("", "Check it with `gvs check -c FILE`. Each note below is something that was not")
	w.comment("", "translated exactly (the same notes are printed on stderr); blocks gvs would")
	w.comment("", "refuse are written commented out.")
	if len(notes) > 0 {
		w.line("#")
		for _, n := range notes {
			w.comment("", "note: "+n.String())
		}
	}

	if d.dir.iface != "" || d.dir.tcp.ok || d.dir.tcpfin.ok || d.dir.udp.ok {
		w.line("")
		w.line("[director]")
		if d.dir.iface != "" {
			w.kv("", "interface", tomlString(d.dir.iface))
		}
		if d.dir.tcp.ok {
			w.kv("", "tcp_timeout", tomlDuration(d.dir.tcp.v))
		}
		if d.dir.tcpfin.ok {
			w.kv("", "tcpfin_timeout", tomlDuration(d.dir.tcpfin.v))
		}
		if d.dir.udp.ok {
			w.kv("", "udp_timeout", tomlDuration(d.dir.udp.v))
		}
	}

	for _, v := range d.vrrp {
		w.line("")
		w.comment("", originText(v.pos, "vrrp_instance "+v.name))
		w.commented = v.off != ""
		start := w.lines + 1
		v.write(w)
		spans = append(spans, span{start, w.lines, &v.off, "vrrp_instance " + v.name, v.pos})
		w.commented = false
	}

	for _, g := range d.groups {
		w.line("")
		w.comment("", originText(g.pos, "vrrp_sync_group "+g.name))
		w.commented = g.off != ""
		start := w.lines + 1
		g.write(w)
		spans = append(spans, span{start, w.lines, &g.off, "vrrp_sync_group " + g.name, g.pos})
		w.commented = false
	}

	for _, s := range d.services {
		w.line("")
		w.comment("", originText(s.pos, s.what))
		w.commented = s.off != ""
		start := w.lines + 1
		spans = append(spans, s.write(w)...)
		spans = append(spans, span{start, w.lines, &s.off, s.what, s.pos})
		w.commented = false
	}
	return []byte(w.b.String()), spans
}

func originText(p impPos, what string) string {
	if p.line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.file, p.line, what)
	}
	return p.file + ": " + what
}

func (v *impVRRP) write(w *tomlWriter) {
	w.line("[[vrrp]]")
	w.kv("", "name", tomlString(v.name))
	if v.iface != "" {
		w.kv("", "interface", tomlString(v.iface))
	}
	if v.state != "" {
		w.kv("", "state", tomlString(v.state))
	}
	w.kv("", "virtual_router_id", strconv.Itoa(v.vrid))
	if v.priority != 0 {
		w.kv("", "priority", strconv.Itoa(v.priority))
	}
	if v.advert.ok {
		w.kv("", "advert_int", tomlDuration(v.advert.v))
	}
	if v.version != 0 {
		w.kv("", "version", strconv.Itoa(v.version))
	}
	if v.authType != "" {
		w.kv("", "auth_type", tomlString(v.authType))
		w.kv("", "auth_pass", tomlString(v.authPass))
	}
	w.kv("", "virtual_ipaddress", tomlAddrs(v.vips))
	if v.src.IsValid() {
		w.kv("", "unicast_src_ip", tomlString(v.src.String()))
	}
	if len(v.peers) > 0 {
		w.kv("", "unicast_peer", tomlAddrs(v.peers))
	}
	if v.nopreempt {
		w.kv("", "nopreempt", "true")
	}
	if v.preemptDelay.ok {
		w.kv("", "preempt_delay", tomlDuration(v.preemptDelay.v))
	}
	if v.garpDelay.ok {
		w.kv("", "garp_master_delay", tomlDuration(v.garpDelay.v))
	}
	if v.garpRepeat.ok {
		w.kv("", "garp_master_repeat", strconv.Itoa(v.garpRepeat.v))
	}
	if v.garpRefresh.ok {
		w.kv("", "garp_master_refresh", tomlDuration(v.garpRefresh.v))
	}
	if v.garpRefreshRepeat.ok {
		w.kv("", "garp_master_refresh_repeat", strconv.Itoa(v.garpRefreshRepeat.v))
	}
	for _, kv := range [][2]string{{"notify_master", v.notifyMaster}, {"notify_backup", v.notifyBackup},
		{"notify_fault", v.notifyFault}, {"notify", v.notify}} {
		if kv[1] != "" {
			w.kv("", kv[0], tomlString(kv[1]))
		}
	}
	if len(v.track) > 0 {
		entries := make([]string, len(v.track))
		for i, t := range v.track {
			entries[i] = t.String()
		}
		w.kv("", "track_interface", tomlStrings(entries))
	}
}

func (g *impSyncGroup) write(w *tomlWriter) {
	w.line("[[vrrp_sync_group]]")
	w.kv("", "name", tomlString(g.name))
	members := g.group
	if g.off != "" {
		members = g.listed
	}
	w.kv("", "group", tomlStrings(members))
}

// write writes the service and returns the spans of its check and real servers.
func (s *impService) write(w *tomlWriter) []span {
	var spans []span
	w.line("[[service]]")
	if s.fwmark != 0 {
		w.kv("", "fwmark", strconv.FormatUint(uint64(s.fwmark), 10))
		if s.inet6 {
			w.kv("", "family", tomlString("inet6"))
		}
	} else {
		w.kv("", "address", tomlString(s.addr.String()))
	}
	if s.proto != "" {
		w.kv("", "protocol", tomlString(s.proto))
	}
	if s.sched != "" {
		w.kv("", "scheduler", tomlString(s.sched))
	}
	if len(s.flags) > 0 {
		w.kv("", "scheduler_flags", tomlStrings(s.flags))
	}
	if s.method != "" {
		w.kv("", "method", tomlString(s.method))
	}
	if s.persist.ok {
		w.kv("", "persistence", tomlDuration(s.persist.v))
	}
	if s.netmask != "" {
		w.kv("", "netmask", s.netmask)
	}
	if s.ops {
		w.kv("", "ops", "true")
	}
	if s.inhibit {
		w.kv("", "inhibit_on_failure", "true")
	}
	if s.sorry.ok {
		w.kv("", "sorry_server", tomlString(s.sorryText()))
	}
	if s.quorum.ok {
		w.kv("", "quorum", strconv.Itoa(s.quorum.v))
	}
	if s.hysteresis.ok {
		w.kv("", "hysteresis", strconv.Itoa(s.hysteresis.v))
	}
	if s.quorumUp != "" {
		w.kv("", "quorum_up", tomlString(s.quorumUp))
	}
	if s.quorumDown != "" {
		w.kv("", "quorum_down", tomlString(s.quorumDown))
	}
	if s.fwmark != 0 {
		w.line("")
		w.comment("  ", "gvs needs the packets that carry the mark, e.g.:")
		w.comment("  ", "[[service.match]]")
		w.comment("  ", `address = "VIP"`)
		w.comment("  ", `protocol = "tcp"`)
		w.comment("  ", `port = "80"`)
	}
	if c := s.check; c != nil {
		w.line("")
		outer := w.commented
		w.commented = outer || c.off != ""
		start := w.lines + 1
		c.write(w)
		spans = append(spans, span{start, w.lines, &c.off, s.what + ": the health check (" + c.typ + ")", c.pos})
		w.commented = outer
	}
	for _, r := range s.reals {
		w.line("")
		outer := w.commented
		w.commented = outer || r.off != ""
		start := w.lines + 1
		r.write(w)
		spans = append(spans, span{start, w.lines, &r.off, s.what + ": real_server " + r.label(), r.pos})
		w.commented = outer
	}
	return spans
}

// sorryText is the sorry server as gvs reads it: "IP" (the service's port) or
// "IP:port".
func (s *impService) sorryText() string {
	if s.sorry.v.Port() == 0 {
		return s.sorry.v.Addr().String()
	}
	return s.sorry.v.String()
}

func (r *impReal) label() string {
	if r.port != 0 {
		return netip.AddrPortFrom(r.addr, r.port).String()
	}
	return r.addr.String()
}

func (r *impReal) write(w *tomlWriter) {
	w.line("  [[service.real_server]]")
	w.kv("  ", "address", tomlString(r.label()))
	if r.weight.ok {
		w.kv("  ", "weight", strconv.Itoa(r.weight.v))
	}
	if r.method != "" {
		w.kv("  ", "method", tomlString(r.method))
	}
	if r.upper != 0 {
		w.kv("  ", "upper_threshold", strconv.FormatUint(uint64(r.upper), 10))
	}
	if r.lower != 0 {
		w.kv("  ", "lower_threshold", strconv.FormatUint(uint64(r.lower), 10))
	}
	if r.inhibit.ok {
		w.kv("  ", "inhibit_on_failure", strconv.FormatBool(r.inhibit.v))
	}
}

// lines returns the check's key lines; two checks are the same when these are.
func (c *impCheck) lines() []string {
	var l []string
	kv := func(k, v string) { l = append(l, k+" = "+v) }
	kv("type", tomlString(c.typ))
	if c.interval.ok {
		kv("interval", tomlDuration(c.interval.v))
	}
	if c.timeout.ok {
		kv("timeout", tomlDuration(c.timeout.v))
	}
	if c.retries.ok {
		kv("retries", strconv.Itoa(c.retries.v))
	}
	if c.retryDelay.ok {
		kv("retry_delay", tomlDuration(c.retryDelay.v))
	}
	if c.path != "" {
		kv("path", tomlString(c.path))
	}
	if len(c.codes) > 0 {
		s := make([]string, len(c.codes))
		for i, code := range c.codes {
			s[i] = strconv.Itoa(code)
		}
		kv("status_codes", "["+strings.Join(s, ", ")+"]")
	}
	if c.expect != "" {
		kv("expect", tomlString(c.expect))
	}
	if c.digest != "" {
		kv("digest", tomlString(c.digest))
	}
	if c.host != "" {
		kv("host", tomlString(c.host))
	}
	if c.sni != "" {
		kv("sni", tomlString(c.sni))
	}
	if c.payload.ok {
		kv("payload", tomlString(c.payload.v))
	}
	if len(c.command) > 0 {
		kv("command", tomlStrings(c.command))
	}
	if c.connectIP.IsValid() {
		kv("connect_ip", tomlString(c.connectIP.String()))
	}
	if c.connectPort != 0 {
		kv("connect_port", strconv.Itoa(int(c.connectPort)))
	}
	if c.alpha {
		kv("alpha", "true")
	}
	if c.omega {
		kv("omega", "true")
	}
	return l
}

func (c *impCheck) write(w *tomlWriter) {
	w.line("  [service.check]")
	for _, l := range c.lines() {
		w.line("  " + l)
	}
}

// finish writes the document and proves it with Parse. A block Parse refuses is
// written commented out, with a note quoting gvs's reason, and the document is
// written again, until Parse accepts it; name is used for the parse.
func (d *impDoc) finish(name string) (*Imported, error) {
	d.tunnelSources()
	for range 1000 {
		d.syncGroupMembers()
		text, spans := d.render(nil)
		_, err := Parse(name, text)
		if err == nil {
			notes := d.sortedNotes()
			text, _ = d.render(notes)
			cfg, err := Parse(name, text)
			if err != nil {
				// Comments cannot change what Parse sees.
				return nil, fmt.Errorf("config: import: notes changed the output: %w", err)
			}
			return &Imported{TOML: text, Notes: notes, Config: cfg}, nil
		}
		var es Errors
		if !errors.As(err, &es) {
			return nil, fmt.Errorf("config: import: %w", err)
		}
		why := map[*string][]string{}
		var order []*span
		for _, e := range es {
			sp := innermost(spans, e.Line)
			if sp == nil {
				return nil, fmt.Errorf("config: import: the translation is not a valid gvs config: %w", err)
			}
			if _, seen := why[sp.off]; !seen {
				order = append(order, sp)
			}
			why[sp.off] = append(why[sp.off], errorText(e))
		}
		for _, sp := range order {
			msgs := slices.Compact(why[sp.off])
			*sp.off = strings.Join(msgs, "; ")
			d.note(sp.pos, "%s is written commented out: gvs would refuse it: %s", sp.what, *sp.off)
		}
	}
	return nil, errors.New("config: import: could not produce a valid config")
}

// tunnelSources applies the one rule gvs check adds to Parse that an import can
// break (the dataplane's Apply): a TUN real server needs the director's own address
// of its family, the tunnel's outer source, which neither keepalived.conf nor an
// ipvsadm dump holds. cmd/gvs's import test runs the real gvs check on every
// importer input, so a new dataplane rule shows up there.
func (d *impDoc) tunnelSources() {
	for _, s := range d.services {
		for _, r := range s.reals {
			m := r.method
			if m == "" {
				m = s.method
			}
			if m != "tun" || r.off != "" {
				continue
			}
			key, fam := "address", "IPv4"
			if r.addr.Is6() {
				key, fam = "address6", "IPv6"
			}
			if (key == "address" && d.dir.addr4) || (key == "address6" && d.dir.addr6) {
				continue
			}
			r.off = "TUN needs [director] " + key
			d.note(r.pos, "%s: real_server %s is written commented out: TUN needs the director's own %s address as the tunnel's outer source: set [director] %s and uncomment it", s.what, r.label(), fam, key)
		}
	}
}

// syncGroupMembers sets each sync group's members to those whose instance is
// written live: gvs refuses a group naming an instance it does not run. finish
// calls it before each try, as a try may comment out an instance; a group left
// without members is written commented out.
func (d *impDoc) syncGroupMembers() {
	live := map[string]bool{}
	for _, v := range d.vrrp {
		if v.off == "" {
			live[v.name] = true
		}
	}
	for _, g := range d.groups {
		if g.off != "" {
			continue
		}
		g.group = nil
		for _, m := range g.members {
			if live[m.name] {
				g.group = append(g.group, m.name)
			} else {
				d.note(m.pos, "vrrp_sync_group %s: member %s is dropped: its vrrp_instance is written commented out", g.name, m.name)
			}
		}
		if len(g.group) == 0 {
			g.off = "no member"
			d.note(g.pos, "vrrp_sync_group %s has no member gvs runs: written commented out", g.name)
		}
	}
}

// innermost returns the smallest enabled span holding line l.
func innermost(spans []span, l int) *span {
	var best *span
	for i := range spans {
		sp := &spans[i]
		if l < sp.start || l > sp.end || *sp.off != "" {
			continue
		}
		if best == nil || sp.end-sp.start < best.end-best.start {
			best = sp
		}
	}
	return best
}

// errorText is a Parse error without the file and line of the TOML, which the user
// never saw: the last part of the field, then the message.
func errorText(e *Error) string {
	f := e.Field
	if i := strings.LastIndexByte(f, '.'); i >= 0 {
		f = f[i+1:]
	} else if strings.HasSuffix(f, "]") {
		f = ""
	}
	if f == "" {
		return e.Err.Error()
	}
	return f + ": " + e.Err.Error()
}
