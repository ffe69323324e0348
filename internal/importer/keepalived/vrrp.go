package keepalived

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/importer"
)

var kaVRRPUnsupported = func() map[string]string {
	m := map[string]string{
		"use_vmac":                   "gvs sends from the interface's own MAC (keepalived's default without use_vmac)",
		"vmac_xmit_base":             "gvs has no virtual MAC interface",
		"native_ipv6":                "gvs has no virtual MAC interface",
		"dont_track_primary":         "gvs always tracks the instance's own interface (down means FAULT)",
		"smtp_alert":                 "gvs sends no email",
		"accept":                     "gvs has no accept mode setting",
		"no_accept":                  "gvs has no accept mode setting",
		"debug":                      "gvs has no per-instance debug level",
		"promote_secondaries":        "gvs adds no addresses to interfaces",
		"linkbeat_use_polling":       "gvs does not poll links",
		"kernel_rx_buf_size":         "gvs has no such setting",
		"lower_prio_no_advert":       "gvs's config has no such setting",
		"higher_prio_send_advert":    "gvs's config has no such setting",
		"check_unicast_src":          "gvs's config has no such setting",
		"skip_check_adv_addr":        "gvs checks every advert's addresses",
		"old_unicast_checksum":       "gvs sends RFC checksums only (docs/vrrp.md §2.6)",
		"unicast_fault_no_peer":      "gvs has no fault state for peerless unicast",
		"unicast_ttl":                "gvs has no such setting",
		"mcast_dst_ip":               "gvs advertises to the standard group only",
		"sync_group_tracking_weight": "gvs reads it in vrrp_sync_group only",
		"track_bfd":                  "gvs has no BFD",
		"track_src_ip":               "gvs does not track the source address",
		"notify_stop":                "gvs has no notify script for this event (it has notify_master, notify_backup, notify_fault and notify)",
		"notify_deleted":             "gvs has no notify script for this event (it has notify_master, notify_backup, notify_fault and notify)",
		"notify_master_rx_lower_pri": "gvs has no notify script for this event (it has notify_master, notify_backup, notify_fault and notify)",
		"version3_checksum":          "gvs has no such setting",
	}
	return m
}()

// vrrpInstance reads one vrrp_instance block.
func (k *kaImporter) vrrpInstance(n *kaNode) {
	if !k.needArgs("vrrp_instance", n, 1) {
		return
	}
	ctx := "vrrp_instance " + n.arg(0)
	k.extra(ctx, n, 1)
	v := &importer.VRRP{Pos: n.pos(), Name: n.arg(0)}
	var vrid, priority, version importer.Opt[int]
	var authType, authPass string
	var authPos, preemptPos importer.Pos
	strict := k.strict
	for _, c := range n.block {
		k.dispatch(ctx, c, kaVRRPUnsupported, func(kw string) bool {
			switch kw {
			case "state":
				if k.needArgs(ctx, c, 1) {
					k.extra(ctx, c, 1)
					switch up := strings.ToUpper(c.arg(0)); up {
					case "MASTER", "BACKUP":
						v.State = up
						if c.arg(0) != up {
							k.note(c.pos(), "%s: %q read as %s (keepalived compares it case-sensitively)", ctx, c.words(), up)
						}
					default:
						k.note(c.pos(), "%s: %q: want MASTER or BACKUP: ignored", ctx, c.words())
					}
				}
			case "interface":
				if k.needArgs(ctx, c, 1) {
					k.extra(ctx, c, 1)
					v.Iface = c.arg(0)
				}
			case "virtual_router_id":
				k.integer(ctx, c, 1, 255, &vrid)
			case "priority":
				k.integer(ctx, c, 1, 255, &priority)
			case "advert_int":
				k.seconds(ctx, c, &v.Advert)
			case "version":
				k.integer(ctx, c, 2, 3, &version)
			case "authentication":
				authPos = c.pos()
				for _, a := range c.block {
					k.dispatch(ctx+": authentication", a, nil, func(kw string) bool {
						switch kw {
						case "auth_type":
							if k.needArgs(ctx, a, 1) {
								k.extra(ctx, a, 1)
								authType = strings.ToUpper(a.arg(0))
							}
						case "auth_pass":
							if k.needArgs(ctx, a, 1) {
								k.extra(ctx, a, 1)
								authPass = a.arg(0)
							}
						default:
							return false
						}
						return true
					})
				}
			case "virtual_ipaddress":
				k.vips(ctx, c, v)
			case "virtual_ipaddress_excluded":
				k.excludedVIPs(ctx, c, v)
			case "virtual_routes":
				v.Routes = k.entries(ctx, c, "virtual_routes", func(e string) error { _, err := config.ParseVirtualRoute(e); return err })
			case "virtual_rules":
				v.Rules = k.entries(ctx, c, "virtual_rules", func(e string) error { _, err := config.ParseVirtualRule(e); return err })
			case "garp_lower_prio_delay":
				k.seconds(ctx, c, &v.GARPLowerPrioDelay)
			case "garp_lower_prio_repeat":
				k.integer(ctx, c, 0, math.MaxInt32, &v.GARPLowerPrioRepeat)
			case "unicast_src_ip", "mcast_src_ip":
				if k.needArgs(ctx, c, 1) {
					k.extra(ctx, c, 1)
					a, err := kaAddr(c.arg(0))
					if err != nil {
						k.note(c.pos(), "%s: %q: %v: ignored", ctx, c.words(), err)
						break
					}
					v.Src = a
					if kw == "mcast_src_ip" {
						k.note(c.pos(), "%s: mcast_src_ip written as unicast_src_ip: both set the one source address of the adverts, in keepalived and gvs", ctx)
					}
				}
			case "unicast_peer":
				for _, p := range c.block {
					k.noBlock(ctx, p)
					a, err := kaAddr(p.key.text)
					if err != nil {
						k.note(p.pos(), "%s: unicast_peer %q: %v: ignored", ctx, p.words(), err)
						continue
					}
					if len(p.args) > 0 {
						k.note(p.pos(), "%s: unicast_peer %q: options not translated (gvs has no per-peer TTL checks)", ctx, p.words())
					}
					v.Peers = append(v.Peers, a)
				}
			case "lvs_sync_daemon_interface":
				k.lvsSyncDaemonInterface(ctx, c, v)
			case "nopreempt":
				v.NoPreempt = k.flag(ctx, c)
				preemptPos = c.pos()
			case "preempt":
				k.note(c.pos(), "%s: preempt is keepalived's default and gvs's: nothing to write", ctx)
			case "preempt_delay":
				if k.seconds(ctx, c, &v.PreemptDelay) {
					preemptPos = c.pos()
				}
			case "garp_master_delay":
				k.seconds(ctx, c, &v.GARPDelay)
			case "garp_master_repeat":
				k.integer(ctx, c, 1, math.MaxInt32, &v.GARPRepeat)
			case "garp_master_refresh":
				k.seconds(ctx, c, &v.GARPRefresh)
			case "garp_master_refresh_repeat":
				k.integer(ctx, c, 1, math.MaxInt32, &v.GARPRefreshRepeat)
			case "notify_master":
				k.script(ctx, c, &v.NotifyMaster)
			case "notify_backup":
				k.script(ctx, c, &v.NotifyBackup)
			case "notify_fault":
				k.script(ctx, c, &v.NotifyFault)
			case "notify":
				k.script(ctx, c, &v.Notify)
			case "track_interface":
				k.trackInterface(ctx, c, v)
			case "track_script", "track_file", "track_process":
				k.trackScript(ctx, kw, c, v)
			case "strict_mode":
				strict = k.flag(ctx, c)
				k.note(c.pos(), "%s: strict_mode: gvs has no strict mode; authentication is dropped as keepalived does under it", ctx)
			default:
				return false
			}
			return true
		})
	}

	if !vrid.OK {
		v.Off = "no virtual_router_id"
		k.note(n.pos(), "%s has no valid virtual_router_id: written commented out", ctx)
	}
	v.VRID = vrid.V
	if priority.OK {
		v.Priority = priority.V
	}
	v.GARPDelay = v.GARPDelay.Or(k.garpDelay)
	v.GARPRepeat = v.GARPRepeat.Or(k.garpRepeat)
	v.GARPRefresh = v.GARPRefresh.Or(k.garpRefresh)
	v.GARPRefreshRepeat = v.GARPRefreshRepeat.Or(k.garpRefRep)

	ipv6 := len(v.VIPs) > 0 && v.VIPs[0].Is6()
	switch {
	case version.OK:
		v.Version = version.V
	case k.vrrpVersion != 0:
		v.Version = k.vrrpVersion
	}
	if ipv6 && v.Version == 2 {
		v.Version = 3
		k.note(n.pos(), "%s: IPv6 addresses need VRRPv3: version 3 written (keepalived does the same)", ctx)
	}
	effVersion := v.Version
	if effVersion == 0 {
		effVersion = 2
		if ipv6 {
			effVersion = 3
		}
	}

	if v.Advert.OK {
		d := v.Advert.V
		switch {
		case d <= 0:
			k.note(n.pos(), "%s: advert_int must be positive: the default 1s is used", ctx)
			v.Advert = importer.Opt[time.Duration]{}
		case effVersion == 2 && d%time.Second != 0:
			r := max(time.Second, d.Round(time.Second))
			k.note(n.pos(), "%s: VRRPv2 advert_int %v is not whole seconds: rounded to %v as keepalived does", ctx, d, r)
			v.Advert = importer.Some(r)
		case effVersion == 3 && d%(10*time.Millisecond) != 0:
			r := max(10*time.Millisecond, d.Round(10*time.Millisecond))
			k.note(n.pos(), "%s: VRRPv3 advert_int %v is not whole centiseconds: rounded to %v", ctx, d, r)
			v.Advert = importer.Some(r)
		}
	}

	if authType != "" || authPass != "" {
		switch {
		case effVersion == 3:
			k.note(authPos, "%s: authentication dropped: VRRPv3 has none (keepalived ignores it too)", ctx)
		case strict:
			k.note(authPos, "%s: authentication dropped: keepalived's strict mode (vrrp_strict) ignores it", ctx)
		case authType == "AH":
			k.note(authPos, "%s: auth_type AH not translated: gvs implements PASS only", ctx)
		case authType != "PASS":
			k.note(authPos, "%s: auth_type %q: want PASS: authentication dropped", ctx, authType)
		case authPass == "":
			k.note(authPos, "%s: auth_type PASS without auth_pass: authentication dropped", ctx)
		default:
			if len(authPass) > 8 {
				k.note(authPos, "%s: auth_pass is longer than 8 bytes: keepalived and gvs use the first 8 (%q)", ctx, authPass[:8])
				authPass = authPass[:8]
			}
			v.AuthType, v.AuthPass = "PASS", authPass
		}
	}

	if v.State == "MASTER" && (v.NoPreempt || v.PreemptDelay.OK) {
		k.note(preemptPos, "%s: nopreempt and preempt_delay need state BACKUP: dropped, as keepalived does", ctx)
		v.NoPreempt, v.PreemptDelay = false, importer.Opt[time.Duration]{}
	}
	if v.NoPreempt && v.Priority == 255 {
		k.note(preemptPos, "%s: nopreempt is incompatible with priority 255 (the address owner always preempts): dropped", ctx)
		v.NoPreempt = false
	}
	if v.PreemptDelay.OK && v.PreemptDelay.V > 1000*time.Second {
		k.note(preemptPos, "%s: preempt_delay above 1000s: 1000s written, keepalived's maximum", ctx)
		v.PreemptDelay = importer.Some(1000 * time.Second)
	}

	if len(v.VIPs) == 0 {
		if v.Off == "" {
			v.Off = "no virtual_ipaddress"
		}
		k.note(n.pos(), "%s has no virtual_ipaddress: gvs needs at least one; written commented out", ctx)
	}
	if v.Src.IsValid() && len(v.VIPs) > 0 && v.Src.Is6() != v.VIPs[0].Is6() {
		k.note(n.pos(), "%s: unicast_src_ip %s is of the other address family: not written", ctx, v.Src)
		v.Src = netip.Addr{}
	}
	var peers []netip.Addr
	for _, p := range v.Peers {
		switch {
		case len(v.VIPs) > 0 && p.Is6() != v.VIPs[0].Is6():
			k.note(n.pos(), "%s: unicast_peer %s is of the other address family: not written", ctx, p)
		case slices.Contains(peers, p):
			k.note(n.pos(), "%s: unicast_peer %s listed twice: written once", ctx, p)
		default:
			peers = append(peers, p)
		}
	}
	v.Peers = peers
	k.doc.VRRP = append(k.doc.VRRP, v)
}

// vips reads a virtual_ipaddress block: "IP[/len] [dev X] [label Y] [brd Z] ...".
func (k *kaImporter) vips(ctx string, n *kaNode, v *importer.VRRP) {
	k.extra(ctx, n, 0)
	for _, e := range n.block {
		k.noBlock(ctx, e)
		a, bits, err := kaVIP(e.key.text)
		if err != nil {
			k.note(e.pos(), "%s: virtual_ipaddress %q: %v: ignored", ctx, e.words(), err)
			continue
		}
		// The entry in keepalived's form, as gvs reads it (config.ParseVirtualAddress):
		// a VIP no gvs service uses goes on the kernel interface with these options
		// while the instance is master, as keepalived does.
		form := a.String()
		if bits != a.BitLen() {
			form += "/" + strconv.Itoa(bits)
		}
		var dropped []string
		for i := 0; i < len(e.args); i++ {
			w := e.args[i].text
			switch lw := strings.ToLower(w); lw {
			case "dev", "brd", "broadcast", "label", "scope":
				if i+1 < len(e.args) {
					i++
					form += " " + lw + " " + e.args[i].text
					continue
				}
			case "no_track":
				form += " no_track"
				continue
			case "preferred_lft", "valid_lft", "track_group", "peer":
				if i+1 < len(e.args) {
					dropped = append(dropped, w+" "+e.args[i+1].text)
					i++
					continue
				}
			}
			dropped = append(dropped, w)
		}
		if len(dropped) > 0 {
			k.note(e.pos(), "%s: virtual_ipaddress %s: %s not translated (gvs sets dev, brd, scope, label and no_track of a kernel VIP)", ctx, a, strings.Join(dropped, ", "))
		}
		if _, err := config.ParseVirtualAddress(form, v.Iface); err != nil {
			k.note(e.pos(), "%s: virtual_ipaddress %q: %v: written as the plain address %s", ctx, form, err, a)
			form = a.String()
		}
		switch {
		case len(v.VIPs) > 0 && a.Is6() != v.VIPs[0].Is6():
			k.note(e.pos(), "%s: virtual_ipaddress %s is of another family than %s: not written (gvs instances have one family; keepalived would move it to virtual_ipaddress_excluded)", ctx, a, v.VIPs[0])
		case slices.Contains(v.VIPs, a):
			k.note(e.pos(), "%s: virtual_ipaddress %s listed twice: written once", ctx, a)
		default:
			v.VIPs = append(v.VIPs, a)
			v.VIPForms = append(v.VIPForms, form)
		}
	}
}

// excludedVIPs reads a virtual_ipaddress_excluded block: entries of virtual_ipaddress's
// form, managed like the VIPs while master but not advertised, of either family.
func (k *kaImporter) excludedVIPs(ctx string, n *kaNode, v *importer.VRRP) {
	v.ExcludedForms = k.entries(ctx, n, "virtual_ipaddress_excluded", func(e string) error {
		a, err := config.ParseVirtualAddress(e, v.Iface)
		if err == nil && len(v.VIPs) > 0 && a.Prefix.Addr().Is6() != v.VIPs[0].Is6() {
			// keepalived takes both families here; a gvs instance has one.
			err = fmt.Errorf("of another family than %s (a gvs instance has one family: give it an instance of its own)", v.VIPs[0])
		}
		return err
	})
}

// entries reads a block of one-line entries written as keepalived writes them
// (virtual_ipaddress_excluded, virtual_routes, virtual_rules), which gvs's config
// takes in the same form: each is kept when check (the config's own parser) accepts
// it, and noted and left out when not.
func (k *kaImporter) entries(ctx string, n *kaNode, kw string, check func(string) error) []string {
	k.extra(ctx, n, 0)
	var out []string
	for _, e := range n.block {
		k.noBlock(ctx, e)
		line := e.words()
		if err := check(line); err != nil {
			k.note(e.pos(), "%s: %s %q: %v: not translated", ctx, kw, line, err)
			continue
		}
		out = append(out, line)
	}
	return out
}

// kaVIP parses "IP" or "IP/len".
func kaVIP(s string) (netip.Addr, int, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil || p.Addr().Zone() != "" {
			a, err2 := kaAddr(s)
			return a, a.BitLen(), err2
		}
		a := p.Addr().Unmap()
		bits := p.Bits()
		if p.Addr().Is4In6() {
			bits -= 96
		}
		return a, max(bits, 0), nil
	}
	a, err := kaAddr(s)
	return a, a.BitLen(), err
}

// trackInterface reads a track_interface block: one interface a line, "NAME" or
// "NAME weight W". Weights are checked against sync groups and the address owner
// later, in trackWeights.
func (k *kaImporter) trackInterface(ctx string, n *kaNode, v *importer.VRRP) {
	k.extra(ctx, n, 0)
	for _, e := range n.block {
		k.noBlock(ctx, e)
		name := e.key.text
		weight, reverse, ok := 0, false, true
		i := 0
		if i < len(e.args) && e.args[i].text == "weight" {
			w, err := strconv.Atoi(e.arg(i + 1))
			ok = err == nil
			weight = w
			i += 2
			// keepalived reads "reverse" only after a weight.
			if i < len(e.args) && e.args[i].text == "reverse" {
				reverse = true
				i++
			}
		}
		switch {
		case !ok || i < len(e.args):
			k.note(e.pos(), "%s: track_interface %q: want NAME, NAME weight W or NAME weight W reverse (W an integer): left out (keepalived ignores it too)", ctx, e.words())
			continue
		case weight == -254 || weight == 254:
			k.note(e.pos(), "%s: track_interface %q: weight %d read as %d, as keepalived does", ctx, e.words(), weight, weight/254*253)
			weight = weight / 254 * 253
		case weight < -254 || weight > 254:
			k.note(e.pos(), "%s: track_interface %q: weight %d is outside -253..253: tracked without a weight (FAULT while down), as keepalived does", ctx, e.words(), weight)
			weight = 0
		}
		switch {
		case name == "" || len(name) > 15 || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r == '/' || unicode.IsSpace(r) }):
			k.note(e.pos(), "%s: track_interface %q: %q is not an interface name: left out", ctx, e.words(), name)
		case slices.ContainsFunc(v.Track, func(t importer.Track) bool { return t.Name == name }):
			k.note(e.pos(), "%s: track_interface %s listed twice: the first is written", ctx, name)
		default:
			// weight 0 is keepalived's "no weight": down means FAULT.
			v.Track = append(v.Track, importer.Track{Pos: e.pos(), Name: name, Weight: weight, Reverse: reverse})
		}
	}
}

// kaSync is a vrrp_sync_group as read, before its members are checked.
type kaSync struct {
	g              *importer.SyncGroup
	raw            []importer.Member
	trackingWeight bool // sync_group_tracking_weight: the members keep their weights
}

var kaSyncUnsupported = func() map[string]string {
	m := map[string]string{
		"smtp_alert":              "gvs sends no email",
		"notify_priority_changes": "gvs has no notify fifo",
	}
	for _, k := range []string{"notify_master", "notify_backup", "notify_fault", "notify_stop", "notify"} {
		m[k] = "gvs has no group-level notify scripts (the members' own notify_* keys run on each instance's changes)"
	}
	for _, k := range []string{"track_interface", "track_script", "track_file", "track_process", "track_bfd"} {
		m[k] = "gvs has no group-level tracking: track it in each member instance"
	}
	return m
}()

// syncGroup reads one vrrp_sync_group block; syncMembers checks its members once
// every instance is read.
func (k *kaImporter) syncGroup(n *kaNode) {
	if !k.needArgs("vrrp_sync_group", n, 1) {
		return
	}
	ctx := "vrrp_sync_group " + n.arg(0)
	k.extra(ctx, n, 1)
	s := &kaSync{g: &importer.SyncGroup{Pos: n.pos(), Name: n.arg(0)}}
	hasGroup := false
	for _, c := range n.block {
		k.dispatch(ctx, c, kaSyncUnsupported, func(kw string) bool {
			switch kw {
			case "group":
				hasGroup = true
				k.extra(ctx, c, 0)
				// Members are words: one a line, or several on one.
				for _, m := range c.block {
					k.noBlock(ctx, m)
					s.raw = append(s.raw, importer.Member{Pos: m.pos(), Name: m.key.text})
					for _, a := range m.args {
						s.raw = append(s.raw, importer.Member{Pos: a.pos, Name: a.text})
					}
				}
			case "sync_group_tracking_weight":
				k.extra(ctx, c, 0)
				s.trackingWeight = true
			case "global_tracking":
				k.extra(ctx, c, 0)
				s.trackingWeight = true
				k.note(c.pos(), "%s: global_tracking is keepalived's deprecated spelling of sync_group_tracking_weight: read as it", ctx)
			default:
				return false
			}
			return true
		})
	}
	if !hasGroup {
		k.note(n.pos(), "%s has no group block listing its instances", ctx)
	}
	k.syncs = append(k.syncs, s)
}

// syncMembers keeps the sync group members that name a vrrp_instance, each in one
// group (the first that lists it), and adds the groups to the document.
func (k *kaImporter) syncMembers() {
	names := map[string]bool{}
	for _, v := range k.doc.VRRP {
		names[v.Name] = true
	}
	k.syncOf = map[string]*kaSync{}
	for _, s := range k.syncs {
		g := s.g
		for _, m := range s.raw {
			g.Listed = append(g.Listed, m.Name)
			switch other := k.syncOf[m.Name]; {
			case !names[m.Name]:
				k.note(m.Pos, "vrrp_sync_group %s: member %s is dropped: no vrrp_instance has that name", g.Name, m.Name)
			case other == s:
				k.note(m.Pos, "vrrp_sync_group %s: member %s listed twice: written once", g.Name, m.Name)
			case other != nil:
				k.note(m.Pos, "vrrp_sync_group %s: member %s is dropped: it is already in vrrp_sync_group %s (an instance is in one group at most)", g.Name, m.Name, other.g.Name)
			default:
				k.syncOf[m.Name] = s
				g.Members = append(g.Members, m)
			}
		}
		k.doc.Groups = append(k.doc.Groups, g)
	}
}

// trackWeights applies keepalived's two rules for tracking weights: in a sync group
// without sync_group_tracking_weight a weight is ignored (the interface going down
// means FAULT), and the address owner (priority 255, whose priority never changes)
// stops tracking a weighted interface altogether. gvs refuses weights on the owner.
func (k *kaImporter) trackWeights() {
	for _, v := range k.doc.VRRP {
		ctx := "vrrp_instance " + v.Name
		s := k.syncOf[v.Name]
		owner := v.Priority == 255 || (v.Priority == 0 && v.State == "MASTER")
		var kept []importer.Track
		for _, t := range v.Track {
			switch {
			case t.Weight == 0:
			case s != nil && !s.trackingWeight:
				k.note(t.Pos, "%s: track_interface %s: weight %d dropped: keepalived ignores tracking weights in a sync group (%s) without sync_group_tracking_weight, so %s going down means FAULT", ctx, t.Name, t.Weight, s.g.Name, t.Name)
				t.Weight = 0
			case owner:
				k.note(t.Pos, "%s: track_interface %s weight %d left out: keepalived ignores weights on the address owner (priority 255) and stops tracking the interface; gvs refuses them", ctx, t.Name, t.Weight)
				continue
			}
			kept = append(kept, t)
		}
		v.Track = kept
		k.trackScripts(v, owner, s)
	}
}
