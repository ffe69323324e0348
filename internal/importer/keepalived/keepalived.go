package keepalived

import (
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gvs-lb/gvs/internal/importer"
)

// Options controls Import. The zero value reads includes from
// the operating system's files and applies no config id.
type Options struct {
	// ConfigID is keepalived's -i (--config-id): lines "@ID ..." are used only when
	// it is ID, lines "@^ID ..." only when it is not. Empty means keepalived run
	// without -i: every "@ID" line is skipped and every "@^ID" line used.
	ConfigID string
	// ReadFile and Glob resolve include statements; nil means os.ReadFile and
	// filepath.Glob. Tests and fuzzing use them to keep imports off the disk.
	ReadFile func(name string) ([]byte, error)
	Glob     func(pattern string) ([]string, error)
}

func (o *Options) readFile(name string) ([]byte, error) {
	if o.ReadFile != nil {
		return o.ReadFile(name)
	}
	return os.ReadFile(name)
}

func (o *Options) glob(pattern string) ([]string, error) {
	if o.Glob != nil {
		return o.Glob(pattern)
	}
	return filepath.Glob(pattern)
}

// ImportFile reads the keepalived.conf at path (and the files it
// includes) and translates it; see Import.
func ImportFile(path string, opt Options) (*importer.Imported, error) {
	data, err := opt.readFile(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return Import(path, data, opt)
}

// Import translates a keepalived.conf into gvs TOML: global_defs,
// virtual_server (address, fwmark and group forms, with virtual_server_group
// ranges expanded into one service per address), real_server with its checker,
// vrrp_instance and vrrp_sync_group. name is the file's path: includes are resolved relative to it and
// notes name it.
//
// Errors are only those of the grammar (unbalanced braces, include cycles, ...),
// as config.Errors with file:line. Everything that parses is translated or noted: an
// unknown or untranslatable keyword becomes a Note, never silence; a block gvs
// would refuse is written commented out, with a note saying why.
func Import(name string, data []byte, opt Options) (*importer.Imported, error) {
	doc := &importer.Doc{Tool: "keepalived"}
	lx := &kaLexer{opt: &opt, doc: doc}
	lx.lexFile(name, data, 0)
	lx.skipNotes()
	p := &kaParser{lx: lx, toks: lx.toks}
	nodes := p.block(nil, 0)
	if len(lx.errs) > 0 {
		return nil, lx.errs
	}
	k := &kaImporter{file: name, doc: doc, opt: &opt, groups: map[string]*kaGroup{}}
	k.translate(nodes)
	doc.Summary = append(doc.Summary, "Source: "+strings.Join(lx.files, ", ")+".")
	if opt.ConfigID != "" {
		doc.Summary = append(doc.Summary, "Config id (keepalived -i): "+opt.ConfigID+".")
	}
	return doc.Finish(name + " (imported)")
}

// kaImporter translates parsed keepalived statements into an importer.Doc.
type kaImporter struct {
	file   string // the top file, for notes about the whole input
	doc    *importer.Doc
	opt    *Options
	groups map[string]*kaGroup
	order  []*kaGroup
	cased  map[string]bool // keyword spellings already noted

	strict      bool
	vrrpVersion int
	garpDelay   importer.Opt[time.Duration]
	garpRefresh importer.Opt[time.Duration]
	garpRepeat  importer.Opt[int]
	garpRefRep  importer.Opt[int]
	anyReal     bool
	syncs       []*kaSync
	syncOf      map[string]*kaSync // instance name → its sync group
	// scripts are the vrrp_script blocks by name; scriptRefs each instance's
	// track_script entries, resolved in trackWeights.
	scripts    map[string]*importer.VRRPScript
	scriptRefs map[*importer.VRRP][]kaScriptRef
	tracked    map[string]kaTracked // "vrrp_script NAME", "vrrp_track_file NAME", …
	// syncd is the IPVS sync daemon, if the file starts one (syncd.go), and
	// routerID global_defs' router_id, its node_id.
	syncd    *kaSyncDaemon
	routerID *kaNode
}

func (k *kaImporter) note(p importer.Pos, format string, args ...any) { k.doc.Note(p, format, args...) }

// Keywords keepalived spells in capitals; every other keyword is lower case.
var kaUpperKeywords = []string{"HTTP_GET", "SSL_GET", "TCP_CHECK", "MISC_CHECK", "SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "PING_CHECK", "FILE_CHECK", "BFD_CHECK", "SSL"}

// dispatch reads one statement of a block: handle returns whether it knew the
// keyword (given in lower case); otherwise unsupported names keywords keepalived
// has and gvs does not, with the reason. Anything else is noted as unknown.
func (k *kaImporter) dispatch(ctx string, n *kaNode, unsupported map[string]string, handle func(kw string) bool) {
	kw := strings.ToLower(n.key.text)
	if handle(kw) {
		k.caseNote(n, kw)
		if !slices.Contains(kaBlockKeywords, kw) {
			k.noBlock(ctx, n)
		}
		return
	}
	if why, ok := unsupported[kw]; ok {
		k.caseNote(n, kw)
		k.note(n.pos(), "%s: %q not translated: %s", ctx, n.words()+n.blockText(), why)
		return
	}
	k.note(n.pos(), "%s: unknown keyword %q: ignored", ctx, n.key.text)
}

// Keywords whose statement has a block; the others' blocks are noted and ignored.
var kaBlockKeywords = []string{"real_server", "url", "authentication", "virtual_ipaddress", "unicast_peer",
	"http_get", "ssl_get", "tcp_check", "udp_check", "misc_check", "smtp_check", "dns_check", "ping_check",
	"file_check", "bfd_check", "global_defs", "virtual_server_group",
	"vrrp_instance", "virtual_server", "vrrp_sync_group", "group", "track_interface", "vrrp_script", "track_script",
	"vrrp_track_file", "track_file", "vrrp_track_process", "track_process",
	"virtual_ipaddress_excluded", "virtual_routes", "virtual_rules"}

// blockText summarises a statement's block for a note: " { a; b c }", shortened.
func (n *kaNode) blockText() string {
	if !n.hasBlock {
		return ""
	}
	var parts []string
	for _, c := range n.block {
		parts = append(parts, c.words()+c.blockText())
	}
	s := strings.Join(parts, "; ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return " { " + s + " }"
}

// caseNote notes a keyword written in another case than keepalived's: keepalived
// matches keywords exactly, so it would have ignored the line; gvs import reads it.
func (k *kaImporter) caseNote(n *kaNode, kw string) {
	want := kw
	if up := strings.ToUpper(kw); slices.Contains(kaUpperKeywords, up) {
		want = up
	}
	if n.key.text == want {
		return
	}
	if k.cased == nil {
		k.cased = map[string]bool{}
	}
	if k.cased[n.key.text] {
		return
	}
	k.cased[n.key.text] = true
	k.note(n.pos(), "keyword %q read as %q: keepalived matches keywords case-sensitively and would have rejected it (further uses are not noted)", n.key.text, want)
}

// needArgs notes a statement with fewer than min words after its keyword.
func (k *kaImporter) needArgs(ctx string, n *kaNode, min int) bool {
	if len(n.args) < min {
		k.note(n.pos(), "%s: %q needs a value: ignored", ctx, n.words())
		return false
	}
	return true
}

// extra notes words after the first used ones.
func (k *kaImporter) extra(ctx string, n *kaNode, used int) {
	if len(n.args) > used {
		var w []string
		for _, a := range n.args[used:] {
			w = append(w, a.text)
		}
		k.note(n.pos(), "%s: %q: extra words %q ignored", ctx, n.words(), strings.Join(w, " "))
	}
}

// noBlock notes a block given to a keyword that takes none.
func (k *kaImporter) noBlock(ctx string, n *kaNode) {
	if n.hasBlock {
		k.note(n.pos(), "%s: %q takes no block: its block is ignored", ctx, n.key.text)
	}
}

func (k *kaImporter) seconds(ctx string, n *kaNode, dst *importer.Opt[time.Duration]) bool {
	if !k.needArgs(ctx, n, 1) {
		return false
	}
	d, err := kaSeconds(n.arg(0))
	if err != nil {
		k.note(n.pos(), "%s: %q: %v: ignored", ctx, n.words(), err)
		return false
	}
	k.extra(ctx, n, 1)
	*dst = importer.Some(d)
	return true
}

func (k *kaImporter) integer(ctx string, n *kaNode, lo, hi int, dst *importer.Opt[int]) bool {
	if !k.needArgs(ctx, n, 1) {
		return false
	}
	v, err := strconv.Atoi(n.arg(0))
	if err != nil || v < lo || v > hi {
		k.note(n.pos(), "%s: %q: want an integer %d..%d: ignored", ctx, n.words(), lo, hi)
		return false
	}
	k.extra(ctx, n, 1)
	*dst = importer.Some(v)
	return true
}

// flag reads a keyword with an optional on/off argument (keepalived's check_true_false).
func (k *kaImporter) flag(ctx string, n *kaNode) bool {
	if len(n.args) == 0 {
		return true
	}
	k.extra(ctx, n, 1)
	switch n.arg(0) {
	case "true", "on", "yes":
		return true
	case "false", "off", "no":
		return false
	}
	k.note(n.pos(), "%s: %q: want on/off, true/false or yes/no: taken as on", ctx, n.words())
	return true
}

// kaSeconds reads a keepalived timer: seconds, possibly fractional.
func kaSeconds(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1e8 {
		return 0, fmt.Errorf("want seconds (e.g. 5 or 0.5), got %q", s)
	}
	return time.Duration(math.Round(f*1e6)) * time.Microsecond, nil
}

func kaAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	return a.Unmap(), nil
}

func kaPort(s string) (uint16, error) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%q is not a port number", s)
	}
	return uint16(p), nil
}

// translate reads the top level. global_defs apply wherever they are written and
// groups may be defined after their use, so both are read first.
func (k *kaImporter) translate(nodes []*kaNode) {
	for _, n := range nodes {
		switch strings.ToLower(n.key.text) {
		case "global_defs":
			k.caseNote(n, "global_defs")
			k.globalDefs(n)
		case "virtual_server_group":
			k.caseNote(n, "virtual_server_group")
			k.group(n)
		}
	}
	for _, n := range nodes {
		k.dispatch("top level", n, kaTopUnsupported, func(kw string) bool {
			switch kw {
			case "global_defs", "virtual_server_group":
			case "vrrp_instance":
				k.vrrpInstance(n)
			case "virtual_server":
				k.virtualServer(n)
			case "vrrp_sync_group":
				k.syncGroup(n)
			case "vrrp_script":
				k.vrrpScript(n)
			case "vrrp_track_file", "track_file":
				k.trackFileDef(n)
			case "vrrp_track_process", "track_process":
				k.trackProcessDef(n)
			default:
				return false
			}
			return true
		})
	}
	k.syncMembers()
	k.trackWeights()
	k.finishSyncDaemon()
	for _, g := range k.order {
		if !g.used {
			k.note(g.pos, "virtual_server_group %s is defined but no virtual_server uses it: nothing written", g.name)
		}
	}
	k.directorInterface()
	if k.anyReal {
		k.note(importer.Pos{File: k.file}, "real servers' MAC addresses are not in keepalived.conf: `mac` is left out (gvs run finds them by ARP/ND); `gvs bench replay` needs them pinned with mac = \"...\"")
	}
}

// directorInterface sets [director] interface when the VRRP instances agree on one.
func (k *kaImporter) directorInterface() {
	var ifaces []string
	var first importer.Pos
	for _, v := range k.doc.VRRP {
		if v.Iface != "" && !slices.Contains(ifaces, v.Iface) {
			if len(ifaces) == 0 {
				first = v.Pos
			}
			ifaces = append(ifaces, v.Iface)
		}
	}
	switch len(ifaces) {
	case 0:
		if len(k.doc.Services) > 0 {
			k.note(importer.Pos{File: k.file}, "[director] interface is not set: keepalived.conf does not say which interface carries the traffic; set it before `gvs run`")
		}
	case 1:
		k.doc.Dir.Iface = ifaces[0]
		k.note(first, "[director] interface = %q taken from the vrrp_instance interface (keepalived has no single data-path interface): check it", ifaces[0])
	default:
		k.note(first, "[director] interface is not set: the vrrp_instances use %s; set the one gvs reads traffic on", strings.Join(ifaces, ", "))
	}
}

var kaTopUnsupported = map[string]string{
	"static_ipaddress":      "gvs adds no addresses to interfaces",
	"static_routes":         "gvs adds no routes",
	"static_rules":          "gvs adds no routing rules",
	"garp_group":            "gvs has no GARP groups",
	"linkbeat_interfaces":   "gvs has no link-beat polling",
	"bfd_instance":          "gvs has no BFD",
	"ssl":                   "gvs has no client certificates for SSL_GET",
	"net_namespace":         "run gvs itself in the namespace (ip netns exec)",
	"net_namespace_ipvs":    "gvs has no IPVS namespace",
	"namespace_with_ipsets": "gvs uses no ipsets",
	"instance":              "gvs has no instance name",
	"use_pid_dir":           "gvs writes no pid files",
	"vrrp_notify_fifo":      "gvs has no notify fifo",
	"notify_fifo":           "gvs has no notify fifo",
}

var kaGlobalUnsupported = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"notification_email", "notification_email_from", "smtp_server", "smtp_connect_timeout", "smtp_helo_name", "smtp_alert", "smtp_alert_vrrp", "smtp_alert_checker", "email_faults", "no_email_faults"} {
		m[k] = "gvs sends no email"
	}
	for _, k := range []string{"router_id", "lvs_id"} {
		m[k] = "gvs has no router id (it appears in nothing gvs sends)"
	}
	for _, k := range []string{"enable_traps", "enable_snmp_vrrp", "enable_snmp_checker", "enable_snmp_rfc", "enable_snmp_rfcv2", "enable_snmp_rfcv3", "enable_snmp_keepalived", "snmp_socket", "enable_dbus"} {
		m[k] = "gvs has no SNMP or D-Bus; it exports metrics at metrics_listen"
	}
	for _, k := range []string{"notify_fifo", "notify_fifo_script", "vrrp_notify_fifo", "vrrp_notify_fifo_script", "lvs_notify_fifo", "lvs_notify_fifo_script"} {
		m[k] = "gvs has no notify fifo"
	}
	for _, k := range []string{"vrrp_skip_check_adv_addr", "vrrp_check_unicast_src", "vrrp_garp_lower_prio_delay", "vrrp_garp_lower_prio_repeat", "vrrp_lower_prio_no_advert", "vrrp_higher_prio_send_advert", "vrrp_mcast_group4", "vrrp_mcast_group6", "vrrp_iptables", "vrrp_ipsets", "vrrp_priority", "checker_priority", "bfd_priority", "vrrp_no_swap", "checker_no_swap", "bfd_no_swap", "vrrp_rt_priority", "checker_rt_priority", "bfd_rt_priority", "vrrp_startup_delay", "max_auto_priority", "min_auto_priority_delay", "dynamic_interfaces", "default_interface", "process_names", "process_name", "vrrp_process_name", "checker_process_name", "bfd_process_name", "vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs", "lvs_netlink_cmd_rcv_bufs", "lvs_netlink_monitor_rcv_bufs", "vrrp_rx_bufs_policy", "vrrp_rx_bufs_multiplier", "lvs_flush_on_stop", "lvs_flush_onstop", "lvs_flush", "vrrp_min_garp", "vrrp_track_process", "random_seed", "reload_check_config", "config_save_dir", "tmp_config_directory", "no_checker_emails", "vrrp_owner_ignore_adverts"} {
		m[k] = "gvs has no such setting"
	}
	return m
}()

// globalDefs reads global_defs: mostly notes, plus VRRP defaults and IPVS timeouts.
func (k *kaImporter) globalDefs(n *kaNode) {
	const ctx = "global_defs"
	for _, c := range n.block {
		k.dispatch(ctx, c, kaGlobalUnsupported, func(kw string) bool {
			switch kw {
			case "vrrp_version":
				var v importer.Opt[int]
				if k.integer(ctx, c, 2, 3, &v) {
					k.vrrpVersion = v.V
				}
			case "vrrp_strict":
				k.strict = true
				k.note(c.pos(), "vrrp_strict: gvs has no strict mode; as keepalived does under it, authentication is dropped from the instances (keepalived's nftables no-accept rules have no gvs equivalent)")
			case "lvs_sync_daemon":
				k.lvsSyncDaemon(ctx, c)
			case "router_id":
				// The sync daemon's node_id, if there is one (finishSyncDaemon).
				k.routerID = c
				k.extra(ctx, c, 1)
			case "vrrp_garp_master_delay":
				k.seconds(ctx, c, &k.garpDelay)
			case "vrrp_garp_master_repeat":
				k.integer(ctx, c, 1, math.MaxInt32, &k.garpRepeat)
			case "vrrp_garp_master_refresh":
				k.seconds(ctx, c, &k.garpRefresh)
			case "vrrp_garp_master_refresh_repeat":
				k.integer(ctx, c, 1, math.MaxInt32, &k.garpRefRep)
			case "vrrp_garp_interval", "vrrp_gna_interval":
				if d, err := kaSeconds(c.arg(0)); err == nil && d == 0 {
					k.note(c.pos(), "%s: %q: gvs sends each burst back to back, as this asks: nothing to write", ctx, c.words())
				} else {
					k.note(c.pos(), "%s: %q not translated: gvs sends each GARP/NA burst back to back", ctx, c.words())
				}
			case "lvs_timeouts":
				k.lvsTimeouts(c)
			case "script_user":
				if k.needArgs(ctx, c, 1) {
					k.extra(ctx, c, 2)
					k.doc.Scripts.User = strings.Join(strings.Fields(c.words())[1:], " ")
				}
			case "enable_script_security":
				k.extra(ctx, c, 0)
				k.doc.Scripts.Security = true
			default:
				return false
			}
			return true
		})
	}
}

// lvsTimeouts reads "lvs_timeouts tcp N tcpfin N udp N" (ipvsadm --set).
func (k *kaImporter) lvsTimeouts(n *kaNode) {
	for i := 0; i < len(n.args); i += 2 {
		name := strings.ToLower(n.args[i].text)
		if i+1 >= len(n.args) {
			k.note(n.pos(), "global_defs: %q: %s has no value: ignored", n.words(), name)
			return
		}
		d, err := kaSeconds(n.args[i+1].text)
		if err != nil || d <= 0 {
			k.note(n.pos(), "global_defs: %q: %s %s is not a positive number of seconds: ignored", n.words(), name, n.args[i+1].text)
			continue
		}
		switch name {
		case "tcp":
			k.doc.Dir.TCP = importer.Some(d)
		case "tcpfin":
			k.doc.Dir.TCPFin = importer.Some(d)
		case "udp":
			k.doc.Dir.UDP = importer.Some(d)
		default:
			k.note(n.pos(), "global_defs: %q: unknown timeout %q: ignored", n.words(), name)
		}
	}
}

// A virtual_server_group: addresses (with ranges) and marks a virtual_server can
// name instead of one address.
type kaGroup struct {
	name    string
	pos     importer.Pos
	entries []kaGroupEntry
	used    bool
}

type kaGroupEntry struct {
	pos    importer.Pos
	text   string // as written
	addrs  []netip.AddrPort
	fwmark uint32
}

// Limits on what one import writes: a group's addresses, and services in all.
const (
	kaMaxGroupAddrs = 1024
	kaMaxServices   = 4096
)

func (k *kaImporter) group(n *kaNode) {
	if !k.needArgs("virtual_server_group", n, 1) {
		return
	}
	ctx := "virtual_server_group " + n.arg(0)
	k.extra(ctx, n, 1)
	g := &kaGroup{name: n.arg(0), pos: n.pos()}
	if _, dup := k.groups[g.name]; dup {
		k.note(n.pos(), "%s is defined twice: this definition is ignored", ctx)
		return
	}
	k.groups[g.name] = g
	k.order = append(k.order, g)
	total := 0
	for _, c := range n.block {
		k.noBlock(ctx, c)
		if strings.EqualFold(c.key.text, "fwmark") {
			k.caseNote(c, "fwmark")
			v, err := strconv.ParseUint(c.arg(0), 10, 32)
			if err != nil || v == 0 {
				k.note(c.pos(), "%s: %q: want a mark 1..4294967295: ignored", ctx, c.words())
				continue
			}
			k.extra(ctx, c, 1)
			g.entries = append(g.entries, kaGroupEntry{pos: c.pos(), text: c.words(), fwmark: uint32(v)})
			continue
		}
		addrs, err := kaRange(c.key.text)
		if err == nil && len(c.args) > 0 {
			var port uint16
			if port, err = kaPort(c.arg(0)); err == nil {
				for i, a := range addrs {
					addrs[i] = netip.AddrPortFrom(a.Addr(), port)
				}
			}
		}
		if err != nil {
			k.note(c.pos(), "%s: %q: %v: ignored", ctx, c.words(), err)
			continue
		}
		if total += len(addrs); total > kaMaxGroupAddrs {
			k.note(c.pos(), "%s: more than %d addresses: %q and later entries ignored", ctx, kaMaxGroupAddrs, c.words())
			break
		}
		k.extra(ctx, c, 1)
		g.entries = append(g.entries, kaGroupEntry{pos: c.pos(), text: c.words(), addrs: addrs})
	}
	if len(g.entries) == 0 {
		k.note(n.pos(), "%s has no usable entries (keepalived removes such a group)", ctx)
	}
}

// kaRange expands a virtual_server_group address as keepalived 2.2.7 reads it,
// into addresses with port 0:
//
//   - "192.168.1.1-10": the last IPv4 byte (decimal) up to 10; for IPv6
//     "2001:db8::2-9" the last 16-bit group (hex). The end must be greater than the
//     start.
//   - "192.168.1.1-192.168.2.7" (the end a whole address, of the same family): every
//     address from the first to the last.
//   - "192.168.1.0/28": every address of the prefix, network and broadcast
//     addresses included (IPVS services, not hosts); the address must have no bits
//     beyond the prefix, and the length must not be 0.
func kaRange(s string) ([]netip.AddrPort, error) {
	if pfx, bits, isCIDR := strings.Cut(s, "/"); isCIDR {
		a, err := kaAddr(pfx)
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(bits)
		if err != nil || n <= 0 || n > a.BitLen() {
			return nil, fmt.Errorf("prefix length %q: want 1..%d", bits, a.BitLen())
		}
		p := netip.PrefixFrom(a, n)
		if p.Masked().Addr() != a {
			return nil, fmt.Errorf("%s has bits set beyond the /%d prefix (keepalived skips it: write %s)", a, n, p.Masked())
		}
		if a.BitLen()-n >= 11 { // 2048 addresses or more
			return nil, fmt.Errorf("prefix /%d holds more than %d addresses", n, kaMaxGroupAddrs)
		}
		last := a
		for range 1<<(a.BitLen()-n) - 1 {
			last = last.Next()
		}
		return kaSpan(a, last)
	}
	base, end, isRange := strings.Cut(s, "-")
	a, err := kaAddr(base)
	if err != nil {
		return nil, err
	}
	if !isRange {
		return []netip.AddrPort{netip.AddrPortFrom(a, 0)}, nil
	}
	if a.Is4() && strings.Contains(end, ".") || a.Is6() && strings.Contains(end, ":") {
		b, err := kaAddr(end)
		switch {
		case err != nil:
			return nil, fmt.Errorf("range end %q: %v", end, err)
		case b.Is4() != a.Is4():
			return nil, fmt.Errorf("range %s-%s mixes address families", a, b)
		case b.Less(a):
			return nil, fmt.Errorf("range end %s is below its start %s", b, a)
		}
		return kaSpan(a, b)
	}
	if a.Is4() {
		b := a.As4()
		hi, err := strconv.ParseUint(end, 10, 8)
		if err != nil || uint8(hi) <= b[3] {
			return nil, fmt.Errorf("range end %q must be a last byte %d..255, above the start (keepalived skips it)", end, int(b[3])+1)
		}
		b[3] = byte(hi)
		return kaSpan(a, netip.AddrFrom4(b))
	}
	b := a.As16()
	lo := uint16(b[14])<<8 | uint16(b[15])
	hi, err := strconv.ParseUint(end, 16, 16)
	if err != nil || uint16(hi) <= lo {
		return nil, fmt.Errorf("range end %q must be a last group %x..ffff (hex), above the start (keepalived skips it)", end, lo+1)
	}
	b[14], b[15] = byte(hi>>8), byte(hi)
	return kaSpan(a, netip.AddrFrom16(b))
}

// kaSpan lists the addresses from a to b (b not below a), at most kaMaxGroupAddrs.
func kaSpan(a, b netip.Addr) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for x := a; ; x = x.Next() {
		if len(out) == kaMaxGroupAddrs {
			return nil, fmt.Errorf("range %s-%s holds more than %d addresses", a, b, kaMaxGroupAddrs)
		}
		out = append(out, netip.AddrPortFrom(x, 0))
		if x == b {
			return out, nil
		}
	}
}
