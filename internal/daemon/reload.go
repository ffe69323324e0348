package daemon

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/ipvs"
)

// A reload applies what changed between the previous file and the new one, as
// keepalived's does against the kernel's table: a service or real server the two
// files describe alike keeps whatever gvs adm made of it; one the new file adds,
// removes or changes becomes what the file says, and when gvs adm had changed it
// too, the reload logs the override, naming the adm command.

// target is what one adm change touches: a service (rs zero) or one of its real
// servers.
type target struct {
	svc ipvs.Key
	rs  netip.AddrPort
}

func (t target) String() string {
	if !t.rs.IsValid() {
		return t.svc.String()
	}
	return t.svc.String() + " real server " + t.rs.String()
}

// override is an adm change a reload replaced with the file's version.
type override struct {
	target
	adm  string // what adm made of it: "edited", "deleted", "added"
	file string // what the file does: "changed", "removed", "added"
}

// mergeReload returns the configured services after a reload from oldFile to
// newFile, cur being the services configured before it (oldFile ⊕ adm changes), and
// the adm changes the reload overrode. Services keep cur's order; the ones the file
// adds (or restores) follow in file order. Real servers likewise. None of the inputs
// is modified.
func mergeReload(oldFile, newFile, cur []ipvs.Service) ([]ipvs.Service, []override) {
	index := func(list []ipvs.Service) map[ipvs.Key]*ipvs.Service {
		m := make(map[ipvs.Key]*ipvs.Service, len(list))
		for i := range list {
			m[list[i].Key] = &list[i]
		}
		return m
	}
	olds, news := index(oldFile), index(newFile)
	var out []ipvs.Service
	var ovs []override
	done := map[ipvs.Key]bool{}
	for i := range cur {
		c := &cur[i]
		k := c.Key
		done[k] = true
		o, n := olds[k], news[k]
		switch {
		case o == nil && n == nil:
			// Added with gvs adm; no file ever had it.
			out = append(out, cloneServices(cur[i:i+1])...)
		case n == nil:
			// The file removed it.
			if !sameService(o, c) {
				ovs = append(ovs, override{target{svc: k}, "edited", "removed"})
			}
		case o == nil:
			// The file adds a service adm had added too: the file's wins.
			if !sameService(n, c) {
				ovs = append(ovs, override{target{svc: k}, "added", "added"})
			}
			out = append(out, cloneServices([]ipvs.Service{*n})...)
		default:
			s, sv := mergeService(o, n, c)
			out = append(out, s)
			ovs = append(ovs, sv...)
		}
	}
	for i := range newFile {
		n := &newFile[i]
		k := n.Key
		if done[k] {
			continue
		}
		o := olds[k]
		switch {
		case o == nil:
			// New in the file.
		case sameService(o, n):
			// Deleted with gvs adm and untouched by the file: it stays deleted.
			continue
		default:
			ovs = append(ovs, override{target{svc: k}, "deleted", "changed"})
		}
		out = append(out, cloneServices(newFile[i:i+1])...)
	}
	return out, ovs
}

// mergeService merges one service the old file, the new file and the running
// configuration all have.
func mergeService(o, n, c *ipvs.Service) (ipvs.Service, []override) {
	k := c.Key
	var ovs []override
	s := cloneServices([]ipvs.Service{*c})[0]
	if !sameSettings(o, n) {
		if !sameSettings(o, c) {
			ovs = append(ovs, override{target{svc: k}, "edited", "changed"})
		}
		rs := s.RealServers
		s = cloneServices([]ipvs.Service{*n})[0]
		s.RealServers = rs
	}
	find := func(list []ipvs.RealServer, a netip.AddrPort) *ipvs.RealServer {
		for i := range list {
			if list[i].Addr == a {
				return &list[i]
			}
		}
		return nil
	}
	seen := map[netip.AddrPort]bool{}
	addrs := make([]netip.AddrPort, 0, len(o.RealServers)+len(n.RealServers))
	for _, list := range [][]ipvs.RealServer{o.RealServers, n.RealServers} {
		for _, r := range list {
			if !seen[r.Addr] {
				seen[r.Addr] = true
				addrs = append(addrs, r.Addr)
			}
		}
	}
	for _, a := range addrs {
		or, nr := find(o.RealServers, a), find(n.RealServers, a)
		if or != nil && nr != nil && *or == *nr {
			continue // the file did not touch it: adm's version (or deletion) stays
		}
		cr := find(s.RealServers, a)
		t := target{svc: k, rs: a}
		switch {
		case nr == nil: // the file removed it
			if cr != nil {
				if *cr != *or {
					ovs = append(ovs, override{t, "edited", "removed"})
				}
				s.RealServers = slices.DeleteFunc(s.RealServers, func(r ipvs.RealServer) bool { return r.Addr == a })
			}
		case cr == nil: // the file adds or changes one that is not there
			if or != nil {
				ovs = append(ovs, override{t, "deleted", "changed"})
			}
			s.RealServers = append(s.RealServers, *nr)
		default: // the file adds or changes one that is there
			switch {
			case or == nil && *cr != *nr:
				ovs = append(ovs, override{t, "added", "added"})
			case or != nil && *cr != *or:
				ovs = append(ovs, override{t, "edited", "changed"})
			}
			*cr = *nr
		}
	}
	return s, ovs
}

// sameSettings reports whether two services are configured alike apart from their
// real servers.
func sameSettings(a, b *ipvs.Service) bool {
	if !slices.Equal(a.Match, b.Match) {
		return false
	}
	x, y := *a, *b
	x.RealServers, y.RealServers = nil, nil
	x.Match, y.Match = nil, nil
	return reflect.DeepEqual(x, y)
}

// sameService reports whether two services are configured alike, real servers
// (and their order) included.
func sameService(a, b *ipvs.Service) bool {
	return sameSettings(a, b) && slices.Equal(a.RealServers, b.RealServers)
}

// directorChanges names the [director] keys whose values differ between a and b,
// in the file's order of the table.
func directorChanges(a, b *config.Director) []string {
	var out []string
	add := func(changed bool, key string) {
		if changed {
			out = append(out, key)
		}
	}
	add(a.Interface != b.Interface, "interface")
	add(a.MAC != b.MAC, "mac")
	add(a.Address != b.Address, "address")
	add(a.Address6 != b.Address6, "address6")
	add(a.GatewayMAC != b.GatewayMAC, "gateway_mac")
	add(a.MTU != b.MTU, "mtu")
	add(a.ConnMax != b.ConnMax, "conn_max")
	add(a.ConnShards != b.ConnShards, "conn_shards")
	add(a.ConnUnconfirmedMax != b.ConnUnconfirmedMax, "conn_unconfirmed_max")
	add(a.ConnUnconfirmedPerService != b.ConnUnconfirmedPerService, "conn_unconfirmed_max_per_service")
	add(a.ControlSocket != b.ControlSocket, "control_socket")
	add(a.MetricsListen != b.MetricsListen, "metrics_listen")
	add(a.MetricsWebConfig != b.MetricsWebConfig, "metrics_web_config")
	add(a.MetricsNodeIPVS != b.MetricsNodeIPVS, "metrics_node_ipvs")
	add(a.MetricsGVS != b.MetricsGVS, "metrics_gvs")
	add(a.StatusListen != b.StatusListen, "status_listen")
	add(a.StatusActions != b.StatusActions, "status_actions")
	add(a.IngressDrop != b.IngressDrop, "ingress_drop")
	add(a.IO != b.IO, "io")
	add(a.XDPReplaceForeign != b.XDPReplaceForeign, "xdp_replace_foreign")
	add(a.RxSpin != b.RxSpin, "rx_spin")
	s, t := &a.Sysctl, &b.Sysctl
	add(s.ConnReuseMode != t.ConnReuseMode, "conn_reuse_mode")
	add(s.ExpireNodestConn != t.ExpireNodestConn, "expire_nodest_conn")
	add(s.ExpireQuiescentTemplate != t.ExpireQuiescentTemplate, "expire_quiescent_template")
	add(s.PMTUDisc != t.PMTUDisc, "pmtu_disc")
	add(s.SloppyTCP != t.SloppyTCP, "sloppy_tcp")
	add(s.ScheduleICMP != t.ScheduleICMP, "schedule_icmp")
	add(s.DropEntry != t.DropEntry, "drop_entry")
	add(s.SecureTCP != t.SecureTCP, "secure_tcp")
	add(s.AMemThresh != t.AMemThresh, "amemthresh")
	add(a.Timeouts.TCP != b.Timeouts.TCP, "tcp_timeout")
	add(a.Timeouts.TCPFin != b.Timeouts.TCPFin, "tcpfin_timeout")
	add(a.Timeouts.UDP != b.Timeouts.UDP, "udp_timeout")
	return append(out, defenseChanges(&a.Defense, &b.Defense)...)
}

// restartKeys are the [director] keys a running director cannot change: the
// interface its links are open on and their backend (io, whether it may replace a
// foreign XDP program, the rings' rx_spin), the connection table's shards, the control socket gvs
// adm already talks to, and the status page's listener and actions (status.go).
var restartKeys = []string{"interface", "io", "xdp_replace_foreign", "rx_spin", "conn_shards", "control_socket", "status_listen", "status_actions"}

// needsRestart returns the keys of changed that only a restart applies.
func needsRestart(changed []string) []string {
	var out []string
	for _, k := range changed {
		if slices.Contains(restartKeys, k) {
			out = append(out, k)
		}
	}
	return out
}

// vrrpChanges names what differs between two sets of VRRP settings, ignoring where
// in the file they are: "vrrp VI_1", "vrrp_sync_group VG_1" (changed, added or
// removed), in the new file's order, then the removed ones.
func vrrpChanges(old, cur []config.VRRP, oldG, curG []config.VRRPSyncGroup) []string {
	var out []string
	type key struct{ kind, name string }
	seen := map[key]bool{}
	for _, v := range cur {
		seen[key{"vrrp", v.Name}] = true
		i := slices.IndexFunc(old, func(o config.VRRP) bool { return o.Name == v.Name })
		if i < 0 {
			out = append(out, "vrrp "+v.Name+" (added)")
			continue
		}
		a, b := old[i], v
		a.Line, b.Line = 0, 0
		if !reflect.DeepEqual(a, b) {
			out = append(out, "vrrp "+v.Name)
		}
	}
	for _, g := range curG {
		seen[key{"group", g.Name}] = true
		i := slices.IndexFunc(oldG, func(o config.VRRPSyncGroup) bool { return o.Name == g.Name })
		switch {
		case i < 0:
			out = append(out, "vrrp_sync_group "+g.Name+" (added)")
		case !slices.Equal(oldG[i].Group, g.Group):
			out = append(out, "vrrp_sync_group "+g.Name)
		}
	}
	for _, v := range old {
		if !seen[key{"vrrp", v.Name}] {
			out = append(out, "vrrp "+v.Name+" (removed)")
		}
	}
	for _, g := range oldG {
		if !seen[key{"group", g.Name}] {
			out = append(out, "vrrp_sync_group "+g.Name+" (removed)")
		}
	}
	return out
}

// joinArgs prints an adm command line for the log.
func joinArgs(args []string) string { return strings.Join(args, " ") }
