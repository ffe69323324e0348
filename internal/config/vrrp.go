package config

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
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

	vips := r.addrList(t, "virtual_ipaddress", true)
	v.VirtualIPAddress = vips
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
			name, w, err := trackEntry(e, v.Priority)
			switch {
			case err != nil:
				r.add(path, err)
			case strings.ContainsAny(name, "/") || len(name) > 15:
				r.errorf(path, "want an interface name, got %q", name)
			case slices.ContainsFunc(v.TrackInterface, func(x TrackedInterface) bool { return x.Name == name }):
				r.add(path, fmt.Errorf("%w interface %s", ErrDuplicate, name))
			default:
				v.TrackInterface = append(v.TrackInterface, TrackedInterface{Name: name, Weight: w})
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
	t.done()
	return v
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
