package config

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gvs-lb/gvs/internal/kaddr"
)

// vrrp reads one [[vrrp]] table with keepalived's defaults and rules (docs/vrrp.md §2);
// d supplies the default interface.
func (r *reader) vrrp(t *table, d *Director) VRRP {
	v := DefaultVRRP()
	v.Line = r.lines.line(t.path)
	v.Interface = d.Interface

	if !t.present("name") {
		r.add(t.path, fmt.Errorf("%w name (keepalived's vrrp_instance name, e.g. \"VI_1\")", ErrMissing))
	} else if t.str("name", &v.Name) && v.Name == "" {
		t.errorf("name", "must not be empty")
	}
	t.str("interface", &v.Interface)
	var str string
	if t.str("state", &str) {
		if s, err := oneOf("state", str, "MASTER", "BACKUP"); err != nil {
			t.fail("state", err)
		} else if s == "MASTER" {
			v.State = VRRPMaster
		}
	}
	var n int64
	if !t.present("virtual_router_id") {
		r.add(t.path, fmt.Errorf("%w virtual_router_id (1..255)", ErrMissing))
	} else if t.integer("virtual_router_id", 1, 255, &n) {
		v.VirtualRouterID = uint8(n)
	}
	if t.integer("priority", 1, 255, &n) {
		v.Priority = uint8(n)
	} else if !t.present("priority") && v.State == VRRPMaster {
		v.Priority = 255 // keepalived: MASTER without a priority is the address owner
	}
	advertOK := !t.present("advert_int") || t.positiveDuration("advert_int", &v.AdvertInt)

	v.VIPs = r.vipList(t, "virtual_ipaddress", true, v.Interface)
	vips := make([]netip.Addr, len(v.VIPs))
	for i, a := range v.VIPs {
		vips[i] = a.Addr()
	}
	v.VirtualIPAddress = vips
	v.ExcludedVIPs = r.vipList(t, "virtual_ipaddress_excluded", false, v.Interface)
	var routes []string
	if t.strings("virtual_routes", &routes) {
		for i, e := range routes {
			rt, err := ParseVirtualRoute(e)
			if err != nil {
				r.add(joinIndex(t.key("virtual_routes"), i), err)
				continue
			}
			v.VirtualRoutes = append(v.VirtualRoutes, rt)
		}
	}
	var rules []string
	if t.strings("virtual_rules", &rules) {
		for i, e := range rules {
			ru, err := ParseVirtualRule(e)
			if err != nil {
				r.add(joinIndex(t.key("virtual_rules"), i), err)
				continue
			}
			v.VirtualRules = append(v.VirtualRules, ru)
		}
	}
	for i, a := range v.ExcludedVIPs {
		if slices.Contains(vips, a.Addr()) {
			r.add(joinIndex(t.key("virtual_ipaddress_excluded"), i), fmt.Errorf("%w address %s (also in virtual_ipaddress)", ErrDuplicate, a.Addr()))
		}
	}
	fam := Family(0)
	if len(vips) > 0 {
		fam = familyOf(vips[0])
	}
	if fam == FamilyInet6 {
		v.Version = 3 // keepalived: IPv6 instances always use VRRPv3
	}
	versionOK := true
	if t.integer("version", 2, 3, &n) {
		v.Version = int(n)
		if fam == FamilyInet6 && n == 2 {
			t.errorf("version", "VRRPv2 is IPv4 only; IPv6 addresses need version = 3")
			versionOK = false
		}
	} else if t.present("version") {
		versionOK = false
	}
	if advertOK && versionOK {
		const centi = 10 * time.Millisecond // the v3 interval unit (RFC 5798 §5.2.7)
		switch {
		case v.Version == 2 && (v.AdvertInt%time.Second != 0 || v.AdvertInt > 255*time.Second):
			t.errorf("advert_int", "VRRPv2 needs whole seconds 1..255 (got %v)", v.AdvertInt)
		case v.Version == 3 && (v.AdvertInt%centi != 0 || v.AdvertInt > 4095*centi):
			t.errorf("advert_int", "VRRPv3 needs a multiple of 10ms up to 40.95s (got %v)", v.AdvertInt)
		}
	}

	if t.str("auth_type", &str) {
		switch a, err := oneOf("auth_type", str, "PASS", "AH"); {
		case err != nil:
			t.fail("auth_type", err)
		case a == "AH":
			t.errorf("auth_type", "%w: AH (use PASS, or no authentication)", ErrNotImplemented)
		case v.Version == 3:
			t.errorf("auth_type", "authentication is VRRPv2 only (version is 3)")
		default:
			v.AuthType = a
		}
	}
	if t.str("auth_pass", &v.AuthPass) {
		switch {
		case !t.present("auth_type"):
			t.errorf("auth_pass", "needs auth_type = \"PASS\"")
		case v.AuthPass == "" || len(v.AuthPass) > 8:
			t.errorf("auth_pass", "must be 1..8 bytes (the VRRPv2 auth field; got %d)", len(v.AuthPass))
		}
	} else if v.AuthType == "PASS" {
		r.add(t.path, fmt.Errorf("%w auth_pass (auth_type is PASS)", ErrMissing))
	}

	if t.addr("unicast_src_ip", unicast, &v.UnicastSrcIP) && fam != 0 && familyOf(v.UnicastSrcIP) != fam {
		t.errorf("unicast_src_ip", "is %s but virtual_ipaddress is %s", familyOf(v.UnicastSrcIP), fam)
	}
	v.UnicastPeer = r.addrList(t, "unicast_peer", false)
	for i, p := range v.UnicastPeer {
		if fam != 0 && familyOf(p) != fam {
			r.errorf(joinIndex(t.key("unicast_peer"), i), "is %s but virtual_ipaddress is %s", familyOf(p), fam)
		}
	}

	if t.boolean("nopreempt", &v.NoPreempt) && v.NoPreempt {
		switch {
		case v.State == VRRPMaster:
			t.errorf("nopreempt", "needs state = \"BACKUP\" (keepalived ignores it for MASTER)")
		case v.Priority == 255:
			t.errorf("nopreempt", "is incompatible with priority 255 (the address owner always preempts)")
		}
	}
	if t.duration("preempt_delay", &v.PreemptDelay) {
		switch {
		case v.PreemptDelay > 1000*time.Second:
			t.errorf("preempt_delay", "must be at most 1000s (got %v)", v.PreemptDelay)
		case v.PreemptDelay > 0 && v.State == VRRPMaster:
			t.errorf("preempt_delay", "needs state = \"BACKUP\" (keepalived ignores it for MASTER)")
		}
	}
	t.duration("garp_master_delay", &v.GARPMasterDelay)
	t.intField("garp_master_repeat", 1, math.MaxInt32, &v.GARPMasterRepeat)
	t.duration("garp_master_refresh", &v.GARPMasterRefresh)
	t.intField("garp_master_refresh_repeat", 1, math.MaxInt32, &v.GARPMasterRefreshRepeat)
	v.GARPLowerPrioDelay, v.GARPLowerPrioRepeat = v.GARPMasterDelay, v.GARPMasterRepeat
	t.duration("garp_lower_prio_delay", &v.GARPLowerPrioDelay)
	t.intField("garp_lower_prio_repeat", 0, math.MaxInt32, &v.GARPLowerPrioRepeat)
	for k, dst := range map[string]*string{"notify_master": &v.NotifyMaster, "notify_backup": &v.NotifyBackup,
		"notify_fault": &v.NotifyFault, "notify": &v.Notify} {
		if t.str(k, dst) && strings.TrimSpace(*dst) == "" {
			t.errorf(k, "must not be empty (omit the key to run nothing)")
		}
	}
	var strs []string
	if t.strings("track_interface", &strs) {
		for i, e := range strs {
			path := joinIndex(t.key("track_interface"), i)
			name, w, rev, err := trackInterfaceEntry(e, v.Priority) // V2: "… reverse" (vrrpscript.go)
			switch {
			case err != nil:
				r.add(path, err)
			case strings.ContainsAny(name, "/") || len(name) > 15:
				r.errorf(path, "want an interface name, got %q", name)
			case slices.ContainsFunc(v.TrackInterface, func(x TrackedInterface) bool { return x.Name == name }):
				r.add(path, fmt.Errorf("%w interface %s", ErrDuplicate, name))
			default:
				v.TrackInterface = append(v.TrackInterface, TrackedInterface{Name: name, Weight: w, Reverse: rev})
			}
		}
	}
	strs = nil
	if t.strings("track_service", &strs) {
		for i, e := range strs {
			path := joinIndex(t.key("track_service"), i)
			name, w, err := trackEntry(e, v.Priority)
			if err != nil {
				r.add(path, err)
				continue
			}
			ap, err := netip.ParseAddrPort(name)
			ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			switch {
			case err != nil:
				r.errorf(path, "want a service address VIP:PORT, got %q", name)
			case slices.ContainsFunc(v.TrackService, func(x TrackedService) bool { return x.Addr == ap }):
				r.add(path, fmt.Errorf("%w service %s", ErrDuplicate, ap))
			default:
				v.TrackService = append(v.TrackService, TrackedService{Addr: ap, Weight: w})
			}
		}
	}
	r.vrrpTracks(t, &v) // V2: track_script, track_file, track_process (vrrpscript.go)
	t.done()
	return v
}

// VirtualAddress is one virtual_ipaddress (or virtual_ipaddress_excluded) entry,
// written as keepalived writes it: "ADDR[/LEN] [dev IF] [brd B] [scope S] [label L]
// [no_track]" (docs/vrrp.md "Kernel addresses"). An address no [[service]] uses is
// added to the kernel while the instance is MASTER; a service's VIP is served by gvs
// itself and the options do not apply to it.
type VirtualAddress struct {
	// Prefix is the address with its prefix length: /32 or /128 when not given,
	// as keepalived.
	Prefix netip.Prefix
	// Dev is the interface the address goes on; "" is the instance's.
	Dev string
	// Broadcast is the IPv4 broadcast address (brd); invalid: none.
	Broadcast netip.Addr
	// Scope is the address scope: "" (global), site, link, host, nowhere or a number.
	Scope string
	// Label is the IPv4 address label ("eth0:1"), starting with the interface's name
	// and a colon.
	Label string
	// NoTrack (no_track): the interface of this address (Dev, when it is not the
	// instance's) does not take the instance to FAULT when it goes down, as
	// keepalived's (docs/vrrp.md "Kernel addresses").
	NoTrack bool
}

// Addr returns the address without its prefix length.
func (a VirtualAddress) Addr() netip.Addr { return a.Prefix.Addr() }

// String writes a back in keepalived's form.
func (a VirtualAddress) String() string {
	var b strings.Builder
	b.WriteString(a.Prefix.String())
	if a.Dev != "" {
		b.WriteString(" dev " + a.Dev)
	}
	if a.Broadcast.IsValid() {
		b.WriteString(" brd " + a.Broadcast.String())
	}
	if a.Scope != "" {
		b.WriteString(" scope " + a.Scope)
	}
	if a.Label != "" {
		b.WriteString(" label " + a.Label)
	}
	if a.NoTrack {
		b.WriteString(" no_track")
	}
	return b.String()
}

// ParseVirtualAddress reads one virtual_ipaddress entry; ifname is the instance's
// interface (where a label must start when there is no dev).
func ParseVirtualAddress(s, ifname string) (VirtualAddress, error) {
	var a VirtualAddress
	f := strings.Fields(s)
	if len(f) == 0 {
		return a, errors.New("empty entry: want \"ADDR[/LEN] [dev IF] [brd B] [scope S] [label L] [no_track]\"")
	}
	addr, bits, hasLen := strings.Cut(f[0], "/")
	ip, err := parseAddr(addr)
	if err == nil {
		err = unicast(ip)
	}
	if err != nil {
		return a, err
	}
	n := ip.BitLen()
	if hasLen {
		if n, err = strconv.Atoi(bits); err != nil || n < 0 || n > ip.BitLen() {
			return a, fmt.Errorf("prefix length %q of %s: want 0-%d", bits, ip, ip.BitLen())
		}
	}
	a.Prefix = netip.PrefixFrom(ip, n)
	seen := map[string]bool{}
	for i := 1; i < len(f); i++ {
		k := f[i]
		if seen[k] {
			return a, fmt.Errorf("%q: %s given twice", s, k)
		}
		seen[k] = true
		if k == "no_track" {
			a.NoTrack = true
			continue
		}
		switch k {
		case "dev", "brd", "broadcast", "scope", "label":
		case "peer", "home", "-nodad", "noprefixroute", "autojoin", "preferred_lft", "track_group":
			return a, fmt.Errorf("%q: %s is a keepalived option gvs does not support (supported: dev, brd, scope, label, no_track)", s, k)
		default:
			return a, fmt.Errorf("%q: unknown option %q (supported: dev, brd, scope, label, no_track)", s, k)
		}
		if i+1 >= len(f) {
			return a, fmt.Errorf("%q: %s needs a value", s, k)
		}
		i++
		val := f[i]
		switch k {
		case "dev":
			if len(val) > 15 || strings.ContainsAny(val, "/:") {
				return a, fmt.Errorf("%q: dev %q is not an interface name", s, val)
			}
			a.Dev = val
		case "brd", "broadcast":
			b, err := parseAddr(val)
			if err != nil || !b.Is4() || !ip.Is4() {
				return a, fmt.Errorf("%q: brd wants an IPv4 address, for an IPv4 VIP", s)
			}
			a.Broadcast = b
		case "scope":
			if _, err := kaddr.ParseScope(val); err != nil {
				return a, fmt.Errorf("%q: %w", s, err)
			}
			if val != "global" && val != "0" {
				a.Scope = val
			}
		case "label":
			a.Label = val
		}
	}
	if a.Label != "" {
		dev := a.Dev
		if dev == "" {
			dev = ifname
		}
		switch {
		case ip.Is6():
			return a, fmt.Errorf("%q: IPv6 addresses have no labels", s)
		case len(a.Label) > 15:
			return a, fmt.Errorf("%q: label %q is longer than 15 bytes", s, a.Label)
		case dev != "" && !strings.HasPrefix(a.Label, dev+":"):
			return a, fmt.Errorf("%q: label %q must start with the interface's name and a colon (%s:1)", s, a.Label, dev)
		}
	}
	return a, nil
}

// VirtualRoute is one virtual_routes entry, keepalived's form: "[src ADDR] [to]
// PREFIX [via|gw ADDR] [dev IF] [scope S] [table N] [metric N] [no_track]", or
// "blackhole|unreachable|prohibit PREFIX ...". The route goes on the kernel with the
// instance's kernel addresses while it is MASTER (docs/vrrp.md "Kernel addresses").
type VirtualRoute struct {
	Dst    netip.Prefix
	Src    netip.Addr // preferred source; invalid: none
	Via    netip.Addr // gateway; invalid: none
	Dev    string     // "" : the instance's interface (none for blackhole and the like)
	Scope  string     // "" : the kernel's default
	Table  uint32     // 0: main
	Metric uint32
	// Type is "" (unicast), "blackhole", "unreachable" or "prohibit".
	Type    string
	NoTrack bool
}

// ParseVirtualRoute reads one virtual_routes entry.
func ParseVirtualRoute(s string) (VirtualRoute, error) {
	var rt VirtualRoute
	f := strings.Fields(s)
	bad := func(format string, args ...any) (VirtualRoute, error) {
		return VirtualRoute{}, fmt.Errorf("virtual route %q: "+format, append([]any{s}, args...)...)
	}
	addr := func(v string) (netip.Addr, error) {
		a, err := parseAddr(v)
		if err == nil && a.IsUnspecified() {
			err = fmt.Errorf("%s is the unspecified address", a)
		}
		return a, err
	}
	seen := map[string]bool{}
	for i := 0; i < len(f); i++ {
		k := f[i]
		switch k {
		case "no_track":
			rt.NoTrack = true
			continue
		case "blackhole", "unreachable", "prohibit":
			if rt.Type != "" || rt.Dst.IsValid() {
				return bad("%s must come first, once", k)
			}
			rt.Type = k
			continue
		case "src", "to", "via", "gw", "dev", "scope", "table", "metric":
		case "or", "proto", "protocol", "tos", "dsfield", "realms", "mtu", "advmss", "onlink", "pref", "nexthop", "encap", "expires", "type":
			return bad("%s is a keepalived option gvs does not support (supported: src, to, via/gw, dev, scope, table, metric, no_track, blackhole/unreachable/prohibit)", k)
		default:
			if rt.Dst.IsValid() {
				return bad("unknown option %q", k)
			}
			k = "to"
			i-- // the bare destination
		}
		if k == "gw" {
			k = "via"
		}
		if seen[k] {
			return bad("%s given twice", k)
		}
		seen[k] = true
		if i+1 >= len(f) {
			return bad("%s needs a value", k)
		}
		i++
		v := f[i]
		var err error
		switch k {
		case "to":
			if v == "default" {
				v = "0.0.0.0/0"
			}
			rt.Dst, err = hostOrPrefix(v)
		case "src":
			rt.Src, err = addr(v)
		case "via":
			rt.Via, err = addr(v)
		case "dev":
			if len(v) > 15 || strings.ContainsAny(v, "/:") {
				err = fmt.Errorf("dev %q is not an interface name", v)
			}
			rt.Dev = v
		case "scope":
			if _, err = kaddr.ParseScope(v); err == nil {
				rt.Scope = v
			}
		case "table", "metric":
			var n uint64
			if n, err = strconv.ParseUint(v, 10, 32); err == nil {
				if k == "table" {
					rt.Table = uint32(n)
				} else {
					rt.Metric = uint32(n)
				}
			}
		}
		if err != nil {
			return bad("%s: %v", k, err)
		}
	}
	switch {
	case !rt.Dst.IsValid():
		return bad("no destination (want \"[to] PREFIX ...\")")
	case rt.Src.IsValid() && rt.Src.Is4() != rt.Dst.Addr().Is4(), rt.Via.IsValid() && rt.Via.Is4() != rt.Dst.Addr().Is4():
		return bad("src and via must be of the destination's family")
	case rt.Type != "" && (rt.Via.IsValid() || rt.Dev != ""):
		return bad("a %s route has no via or dev", rt.Type)
	}
	return rt, nil
}

// String writes rt back in keepalived's form.
func (rt VirtualRoute) String() string {
	var f []string
	if rt.Type != "" {
		f = append(f, rt.Type)
	}
	if rt.Src.IsValid() {
		f = append(f, "src", rt.Src.String())
	}
	f = append(f, "to", rt.Dst.String())
	if rt.Via.IsValid() {
		f = append(f, "via", rt.Via.String())
	}
	if rt.Dev != "" {
		f = append(f, "dev", rt.Dev)
	}
	if rt.Scope != "" {
		f = append(f, "scope", rt.Scope)
	}
	if rt.Table != 0 {
		f = append(f, "table", strconv.FormatUint(uint64(rt.Table), 10))
	}
	if rt.Metric != 0 {
		f = append(f, "metric", strconv.FormatUint(uint64(rt.Metric), 10))
	}
	if rt.NoTrack {
		f = append(f, "no_track")
	}
	return strings.Join(f, " ")
}

// VirtualRule is one virtual_rules entry, keepalived's form: "[from PREFIX|all]
// [to PREFIX|all] [fwmark MARK[/MASK]] [iif IF] [oif IF] [priority N]
// table|lookup N [no_track]". The rule goes on the kernel after the instance's
// virtual routes while it is MASTER (docs/vrrp.md "Kernel addresses").
type VirtualRule struct {
	From, To netip.Prefix // invalid: all
	IIF, OIF string
	// Mark/Mask: fwmark, when HasMark; Mask 0 is all bits.
	Mark, Mask uint32
	HasMark    bool
	// Priority, when HasPriority (priority, preference or pref).
	Priority    uint32
	HasPriority bool
	Table       uint32
	NoTrack     bool
}

// ruleTables are the table names ip-rule(8) knows besides numbers.
var ruleTables = map[string]uint32{"main": 254, "local": 255, "default": 253}

// hostOrPrefix reads a prefix, or an address alone as its host prefix (/32,
// /128), as ip-route(8) and ip-rule(8) do; the result is masked.
func hostOrPrefix(v string) (netip.Prefix, error) {
	if !strings.Contains(v, "/") {
		a, err := parseAddr(v)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(v)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked(), nil
}

// ParseVirtualRule reads one virtual_rules entry.
func ParseVirtualRule(s string) (VirtualRule, error) {
	var ru VirtualRule
	f := strings.Fields(s)
	bad := func(format string, args ...any) (VirtualRule, error) {
		return VirtualRule{}, fmt.Errorf("virtual rule %q: "+format, append([]any{s}, args...)...)
	}
	seen := map[string]bool{}
	for i := 0; i < len(f); i++ {
		k := f[i]
		switch k {
		case "no_track":
			ru.NoTrack = true
			continue
		case "lookup":
			k = "table"
		case "preference", "pref":
			k = "priority"
		case "iifname":
			k = "iif"
		case "oifname":
			k = "oif"
		case "from", "to", "table", "priority", "iif", "oif", "fwmark":
		case "not", "tos", "dsfield", "realms", "goto", "nop", "no_action", "blackhole", "unreachable", "prohibit",
			"suppress_prefixlength", "sup_pl", "suppress_ifgroup", "sup_group", "uidrange", "ipproto", "sport", "dport",
			"l3mdev", "tunnel-id", "protocol", "nat", "map-to", "type", "action", "realm":
			return bad("%s is a keepalived option gvs does not support (supported: from, to, table/lookup, priority/preference, iif, oif, fwmark[/mask], no_track)", k)
		default:
			return bad("unknown option %q", k)
		}
		if seen[k] {
			return bad("%s given twice", k)
		}
		seen[k] = true
		if i+1 >= len(f) {
			return bad("%s needs a value", k)
		}
		i++
		v := f[i]
		var err error
		switch k {
		case "from", "to":
			var p netip.Prefix
			if v != "all" {
				p, err = hostOrPrefix(v)
			}
			if k == "from" {
				ru.From = p
			} else {
				ru.To = p
			}
		case "table":
			if n, ok := ruleTables[v]; ok {
				ru.Table = n
				break
			}
			var n uint64
			if n, err = strconv.ParseUint(v, 0, 32); err == nil && n == 0 {
				err = errors.New("table 0 is no table")
			}
			ru.Table = uint32(n)
		case "priority":
			var n uint64
			n, err = strconv.ParseUint(v, 0, 32)
			ru.Priority, ru.HasPriority = uint32(n), true
		case "iif", "oif":
			if len(v) > 15 || strings.ContainsAny(v, "/: ") {
				err = fmt.Errorf("%q is not an interface name", v)
			}
			if k == "iif" {
				ru.IIF = v
			} else {
				ru.OIF = v
			}
		case "fwmark":
			mark, mask, hasMask := strings.Cut(v, "/")
			var n uint64
			if n, err = strconv.ParseUint(mark, 0, 32); err == nil {
				ru.Mark, ru.HasMark = uint32(n), true
				if hasMask {
					if n, err = strconv.ParseUint(mask, 0, 32); err == nil {
						ru.Mask = uint32(n)
						if ru.Mask == 0xffffffff {
							ru.Mask = 0 // all bits, as without a mask
						}
					}
				}
			}
		}
		if err != nil {
			return bad("%s: %v", k, err)
		}
	}
	switch {
	case ru.Table == 0:
		return bad("no table (want \"table N\" or \"lookup N\": gvs's rules only look a table up)")
	case ru.From.IsValid() && ru.To.IsValid() && ru.From.Addr().Is4() != ru.To.Addr().Is4():
		return bad("from and to must be of one family")
	}
	return ru, nil
}

// String writes ru back in keepalived's form.
func (ru VirtualRule) String() string {
	var f []string
	if ru.From.IsValid() {
		f = append(f, "from", ru.From.String())
	}
	if ru.To.IsValid() {
		f = append(f, "to", ru.To.String())
	}
	if ru.HasMark {
		m := "0x" + strconv.FormatUint(uint64(ru.Mark), 16)
		if ru.Mask != 0 {
			m += "/0x" + strconv.FormatUint(uint64(ru.Mask), 16)
		}
		f = append(f, "fwmark", m)
	}
	if ru.IIF != "" {
		f = append(f, "iif", ru.IIF)
	}
	if ru.OIF != "" {
		f = append(f, "oif", ru.OIF)
	}
	if ru.HasPriority {
		f = append(f, "priority", strconv.FormatUint(uint64(ru.Priority), 10))
	}
	f = append(f, "table", strconv.FormatUint(uint64(ru.Table), 10))
	if ru.NoTrack {
		f = append(f, "no_track")
	}
	return strings.Join(f, " ")
}

// vipList reads an array of virtual_ipaddress entries of one family, without
// duplicate addresses.
func (r *reader) vipList(t *table, k string, required bool, ifname string) []VirtualAddress {
	if !t.present(k) {
		if required {
			r.add(t.path, fmt.Errorf("%w %s", ErrMissing, k))
		}
		return nil
	}
	var strs []string
	if !t.strings(k, &strs) {
		return nil
	}
	if required && len(strs) == 0 {
		t.errorf(k, "must list at least one address")
	}
	var out []VirtualAddress
	for i, s := range strs {
		path := joinIndex(t.key(k), i)
		a, err := ParseVirtualAddress(s, ifname)
		switch {
		case err != nil:
			r.add(path, err)
		case len(out) > 0 && familyOf(a.Addr()) != familyOf(out[0].Addr()):
			r.errorf(path, "%s is %s but %s is %s: one family per instance", a.Addr(), familyOf(a.Addr()), out[0].Addr(), familyOf(out[0].Addr()))
		case slices.ContainsFunc(out, func(x VirtualAddress) bool { return x.Addr() == a.Addr() }):
			r.add(path, fmt.Errorf("%w address %s", ErrDuplicate, a.Addr()))
		default:
			out = append(out, a)
		}
	}
	return out
}

// addrList reads an array of unicast addresses of one family, without duplicates.
func (r *reader) addrList(t *table, k string, required bool) []netip.Addr {
	if !t.present(k) {
		if required {
			r.add(t.path, fmt.Errorf("%w %s", ErrMissing, k))
		}
		return nil
	}
	var strs []string
	if !t.strings(k, &strs) {
		return nil
	}
	if required && len(strs) == 0 {
		t.errorf(k, "must list at least one address")
	}
	var out []netip.Addr
	for i, s := range strs {
		path := joinIndex(t.key(k), i)
		a, err := parseAddr(s)
		if err == nil {
			err = unicast(a)
		}
		switch {
		case err != nil:
			r.add(path, err)
		case len(out) > 0 && familyOf(a) != familyOf(out[0]):
			r.errorf(path, "%s is %s but %s is %s: one family per instance", a, familyOf(a), out[0], familyOf(out[0]))
		case slices.Contains(out, a):
			r.add(path, fmt.Errorf("%w address %s", ErrDuplicate, a))
		default:
			out = append(out, a)
		}
	}
	return out
}

// vrrpSyncGroup reads one [[vrrp_sync_group]] table; the member names are checked
// against the [[vrrp]] names in crossCheck.
func (r *reader) vrrpSyncGroup(t *table) VRRPSyncGroup {
	g := VRRPSyncGroup{Line: r.lines.line(t.path)}
	if !t.present("name") {
		r.add(t.path, fmt.Errorf("%w name (keepalived's vrrp_sync_group name, e.g. \"VG_1\")", ErrMissing))
	} else if t.str("name", &g.Name) && g.Name == "" {
		t.errorf("name", "must not be empty")
	}
	if !t.present("group") {
		r.add(t.path, fmt.Errorf("%w group (the [[vrrp]] names of the members)", ErrMissing))
	} else if t.strings("group", &g.Group) && len(g.Group) == 0 {
		t.errorf("group", "must list at least one [[vrrp]] name")
	}
	t.done()
	return g
}

// crossCheckVRRP checks what refers across tables: sync group members name
// instances, each in one group at most; tracked services are configured.
func (r *reader) crossCheckVRRP(cfg *Config) {
	names := map[string]bool{}
	for _, v := range cfg.VRRP {
		names[v.Name] = true
	}
	inGroup := map[string]int{}
	groups := map[string]int{}
	for i, g := range cfg.VRRPSyncGroups {
		base := joinIndex("vrrp_sync_group", i)
		if g.Name != "" {
			if j, dup := groups[g.Name]; dup {
				r.add(joinKey(base, "name"), fmt.Errorf("%w name %q (first at line %d, vrrp_sync_group[%d])", ErrDuplicate, g.Name, cfg.VRRPSyncGroups[j].Line, j))
			} else {
				groups[g.Name] = i
			}
		}
		for k, n := range g.Group {
			path := joinIndex(joinKey(base, "group"), k)
			switch j, dup := inGroup[n]; {
			case !names[n]:
				r.errorf(path, "no [[vrrp]] is named %q", n)
			case dup && j == i:
				r.add(path, fmt.Errorf("%w member %q", ErrDuplicate, n))
			case dup:
				r.errorf(path, "%q is already in vrrp_sync_group[%d] (line %d): an instance is in one group at most", n, j, cfg.VRRPSyncGroups[j].Line)
			default:
				inGroup[n] = i
			}
		}
	}
	// One virtual address, one instance: two instances taking it would take it
	// from each other (gvs refuses the second at run time; refuse the file).
	vipOwner := map[netip.Addr]int{}
	for i, v := range cfg.VRRP {
		for k, a := range slices.Concat(v.VIPs, v.ExcludedVIPs) {
			if j, dup := vipOwner[a.Addr()]; dup && j != i {
				key := "virtual_ipaddress"
				if k >= len(v.VIPs) {
					key, k = "virtual_ipaddress_excluded", k-len(v.VIPs)
				}
				r.errorf(joinIndex(joinKey(joinIndex("vrrp", i), key), k), "%s is already a virtual address of vrrp %q (line %d): list each address in one instance",
					a.Addr(), cfg.VRRP[j].Name, cfg.VRRP[j].Line)
				continue
			}
			vipOwner[a.Addr()] = i
		}
	}
	services := map[netip.AddrPort]bool{}
	for _, s := range cfg.Services {
		if s.FWMark == 0 {
			services[s.Addr] = true
		}
	}
	for i, v := range cfg.VRRP {
		for k, ts := range v.TrackService {
			if !services[ts.Addr] {
				r.errorf(joinIndex(joinKey(joinIndex("vrrp", i), "track_service"), k), "no [[service]] has address %s", ts.Addr)
			}
		}
	}
}

// trackEntry reads one track list entry: "NAME" or "NAME weight W" (keepalived's
// syntax), W in -253..253 and not 0. An address owner (priority 255) cannot take
// weights: keepalived ignores them there, gvs refuses them.
func trackEntry(s string, priority uint8) (string, TrackWeight, error) {
	f := strings.Fields(s)
	switch {
	case len(f) == 1:
		return f[0], 0, nil
	case len(f) == 3 && f[1] == "weight":
		w, err := strconv.Atoi(f[2])
		switch {
		case err != nil || w < -253 || w > 253 || w == 0:
			return "", 0, fmt.Errorf("weight %q: want a whole number from -253 to 253, not 0 (omit \"weight W\" to go to FAULT instead)", f[2])
		case priority == 255:
			return "", 0, fmt.Errorf("%q: a weight cannot change the priority of the address owner (priority 255): drop the weight, or lower the priority", s)
		}
		return f[0], TrackWeight(w), nil
	}
	return "", 0, fmt.Errorf("want \"NAME\" or \"NAME weight W\", got %q", s)
}
