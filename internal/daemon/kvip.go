package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/kaddr"
	"github.com/gvs-lb/gvs/vrrp"
)

// serviceVIPs returns the addresses gvs serves itself: every [[service]] address
// and the addresses of fwmark services' match rules. A VRRP virtual address among
// them is owned in userspace (the Director answers ARP/ND for it); any other goes to
// the kernel (docs/vrrp.md "Kernel addresses").
func serviceVIPs(cfg *config.Config) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for i := range cfg.Services {
		s := &cfg.Services[i]
		if s.FWMark == 0 {
			out[s.Addr.Addr()] = true
		}
		for _, m := range s.Match {
			if m.Addr.IsValid() {
				out[m.Addr] = true
			}
		}
	}
	return out
}

// kernelAddr is one virtual address an instance puts on the kernel while MASTER.
type kernelAddr struct {
	kaddr.Addr
	Dev string // the interface's name, for logs and the record
}

// recordEntry is one line of the record of what gvs added, kept so that a restart
// after SIGKILL removes what the killed process left.
type recordEntry struct {
	Instance  string `json:"instance"`
	Prefix    string `json:"prefix"`
	Dev       string `json:"dev"`
	Label     string `json:"label,omitempty"`
	Scope     uint8  `json:"scope,omitempty"`
	Broadcast string `json:"brd,omitempty"`
	// A route (virtual_routes) has Route set; Prefix is its destination.
	Route  bool   `json:"route,omitempty"`
	Src    string `json:"src,omitempty"`
	Via    string `json:"via,omitempty"`
	Metric uint32 `json:"metric,omitempty"`
	Table  uint32 `json:"table,omitempty"`
	Type   uint8  `json:"type,omitempty"`
	// A policy-routing rule (virtual_rules) has Rule set; Prefix is its text.
	Rule *kaddr.Rule `json:"rule,omitempty"`
}

// kernelRoute is one virtual route an instance puts on the kernel while MASTER.
type kernelRoute struct {
	kaddr.Route
	Dev string // the output interface's name; "" for none
}

// entry records r.
func (r kernelRoute) entry(instance string) recordEntry {
	e := recordEntry{Instance: instance, Prefix: r.Dst.String(), Dev: r.Dev, Scope: uint8(r.Scope), Route: true,
		Metric: r.Metric, Table: r.Table, Type: uint8(r.Type)}
	if r.Src.IsValid() {
		e.Src = r.Src.String()
	}
	if r.Via.IsValid() {
		e.Via = r.Via.String()
	}
	return e
}

// routeOf reads a recorded route back; index resolves its interface.
func routeOf(e recordEntry, index func(string) (int, bool)) (kaddr.Route, bool) {
	p, err := netip.ParsePrefix(e.Prefix)
	if err != nil {
		return kaddr.Route{}, false
	}
	r := kaddr.Route{Dst: p, Metric: e.Metric, Table: e.Table, Scope: kaddr.Scope(e.Scope), Type: kaddr.RouteType(e.Type)}
	if e.Dev != "" {
		idx, ok := index(e.Dev)
		if !ok {
			return kaddr.Route{}, false
		}
		r.Index = idx
	}
	r.Src, _ = netip.ParseAddr(e.Src)
	r.Via, _ = netip.ParseAddr(e.Via)
	return r, true
}

// entryTracks returns, as keepalived tracks them, the interfaces a virtual address
// or virtual route of v is on (its dev) other than the instance's own (the
// Member's LinkUp) and those track_interface already names: each puts the instance
// in FAULT while it is down or gone, unless every entry on it says no_track
// (docs/vrrp.md "Kernel addresses"). Rules are not tracked: see there.
func entryTracks(v config.VRRP, linkUp func(string) bool) []vrrp.Track {
	var devs []string
	add := func(dev string, noTrack bool) {
		if dev == "" || dev == v.Interface || noTrack || slices.Contains(devs, dev) ||
			slices.ContainsFunc(v.TrackInterface, func(t config.TrackedInterface) bool { return t.Name == dev }) {
			return
		}
		devs = append(devs, dev)
	}
	for _, a := range slices.Concat(v.VIPs, v.ExcludedVIPs) {
		add(a.Dev, a.NoTrack)
	}
	for _, rt := range v.VirtualRoutes {
		add(rt.Dev, rt.NoTrack)
	}
	var out []vrrp.Track
	for _, dev := range devs {
		out = append(out, vrrp.WeightedTrack("interface "+dev+" (of a virtual address or route)", 0, false, func() bool { return linkUp(dev) }))
	}
	return out
}

// kernelVIPs adds and removes the kernel addresses of the VRRP instances in MASTER.
// Its methods run on the controller's effects goroutine (take, release) and, at
// stop, on the VRRP goroutine once the Runner has stopped (releaseAll); mu
// serialises them and is never held by anyone else, so a slow netlink call delays
// nothing but the next address change.
type kernelVIPs struct {
	log    *slog.Logger
	h      kaddr.Handle
	record string // "" keeps no record

	mu     sync.Mutex
	held   map[string][]kernelAddr  // by instance, in the order added
	routes map[string][]kernelRoute // by instance, in the order added
	rules  map[string][]kaddr.Rule  // by instance, in the order added
	closed bool

	// refused counts addresses not taken because something else holds them;
	// failed counts netlink errors.
	refused, failed atomic.Uint64
}

// recordPath is where the record of added addresses lives: beside the control
// socket, named after it (each director of a lab has its own).
func recordPath(cfg *config.Config) string {
	sock := cfg.Director.ControlSocket
	if sock == "" {
		sock = "/run/gvs/gvs.sock"
	}
	return strings.TrimSuffix(sock, filepath.Ext(sock)) + ".kernel-addrs.json"
}

func newKernelVIPs(log *slog.Logger, h kaddr.Handle, record string) *kernelVIPs {
	return &kernelVIPs{log: log, h: h, record: record, held: map[string][]kernelAddr{}, routes: map[string][]kernelRoute{},
		rules: map[string][]kaddr.Rule{}}
}

// cleanup removes the addresses a previous run recorded and did not remove (it was
// killed), if they are still there, then forgets the record. index resolves an
// interface name to its index now.
func (k *kernelVIPs) cleanup(index func(dev string) (int, bool)) {
	if k.record == "" {
		return
	}
	data, err := os.ReadFile(k.record)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		k.log.Warn("VRRP kernel addresses: cannot read the record of a previous run", "file", k.record, "err", err)
		return
	}
	var entries []recordEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		k.log.Warn("VRRP kernel addresses: the record of a previous run is damaged; remove what it added by hand (ip addr del)", "file", k.record, "err", err)
		return
	}
	present, err := k.h.List()
	if err != nil {
		k.failed.Add(1)
		k.log.Warn("VRRP kernel addresses: cannot list addresses to clean up after a previous run", "err", err)
		return
	}
	// Rules, then routes, then addresses: the order of a release.
	for _, e := range entries {
		if e.Rule == nil {
			continue
		}
		if err := k.h.DeleteRule(*e.Rule); err == nil {
			k.log.Info("VRRP kernel rules: removed a rule a previous run left (it did not stop cleanly)", "instance", e.Instance, "rule", e.Rule.String())
		} else if !errors.Is(err, kaddr.ErrNotFound) {
			k.failed.Add(1)
			k.log.Warn("VRRP kernel rules: cannot remove a rule a previous run left", "rule", e.Rule.String(), "err", err)
		}
	}
	for _, e := range entries {
		if !e.Route {
			continue
		}
		r, ok := routeOf(e, index)
		if !ok {
			continue
		}
		if err := k.h.DeleteRoute(r); err == nil {
			k.log.Info("VRRP kernel routes: removed a route a previous run left (it did not stop cleanly)", "instance", e.Instance, "route", r)
		} else if !errors.Is(err, kaddr.ErrNotFound) {
			k.failed.Add(1)
			k.log.Warn("VRRP kernel routes: cannot remove a route a previous run left", "route", r, "err", err)
		}
	}
	for _, e := range entries {
		if e.Route || e.Rule != nil {
			continue
		}
		p, err := netip.ParsePrefix(e.Prefix)
		idx, ok := index(e.Dev)
		if err != nil || !ok {
			continue
		}
		a := kaddr.Addr{Prefix: p, Index: idx, Label: e.Label, Scope: kaddr.Scope(e.Scope)}
		if !slices.ContainsFunc(present, func(x kaddr.Addr) bool { return x.Index == idx && x.Prefix == p }) {
			continue
		}
		if err := k.h.Delete(a); err != nil {
			k.failed.Add(1)
			k.log.Warn("VRRP kernel addresses: cannot remove an address a previous run left", "address", p, "dev", e.Dev, "err", err)
			continue
		}
		k.log.Info("VRRP kernel addresses: removed an address a previous run left (it did not stop cleanly)", "instance", e.Instance, "address", p, "dev", e.Dev)
	}
	if err := os.Remove(k.record); err != nil && !errors.Is(err, os.ErrNotExist) {
		k.log.Warn("VRRP kernel addresses: cannot remove the record", "file", k.record, "err", err)
	}
}

// take adds instance's addresses that nothing else holds and returns those it now
// holds. An address already on any interface that gvs did not add, or that another
// instance holds, is refused with a warning and counted: gvs never takes over, nor
// later deletes, an address it did not add.
func (k *kernelVIPs) take(instance string, addrs []kernelAddr) []kernelAddr {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed || len(addrs) == 0 {
		return nil
	}
	present, err := k.h.List()
	if err != nil {
		k.failed.Add(1)
		k.log.Error("VRRP kernel addresses: cannot list the interfaces' addresses; not adding the VIPs", "instance", instance, "err", err)
		return nil
	}
	mine := k.held[instance]
	changed := false
	for _, a := range addrs {
		ip := a.Prefix.Addr()
		if slices.ContainsFunc(mine, func(x kernelAddr) bool { return x.Prefix.Addr() == ip }) {
			continue // already ours (a repeated take)
		}
		if other := k.holderLocked(ip); other != "" {
			k.refused.Add(1)
			k.log.Warn(fmt.Sprintf("VRRP (%s) %v: instance %s already holds this address; not adding it twice (list each VIP in one instance)", instance, ip, other),
				"instance", instance, "address", ip, "held_by", other)
			continue
		}
		if slices.ContainsFunc(present, func(x kaddr.Addr) bool { return x.Prefix.Addr() == ip }) {
			k.refused.Add(1)
			k.log.Warn(fmt.Sprintf("VRRP (%s) %v is already on this host and gvs did not add it: not taking it (remove it with ip addr del, or drop it from virtual_ipaddress)", instance, ip),
				"instance", instance, "address", ip)
			continue
		}
		if err := k.h.Add(a.Addr); err != nil {
			k.failed.Add(1)
			k.log.Error(fmt.Sprintf("VRRP (%s) cannot add %v to %s", instance, a.Prefix, a.Dev), "instance", instance, "address", a.Prefix, "dev", a.Dev, "err", err)
			continue
		}
		mine = append(mine, a)
		changed = true
		k.log.Info("VRRP kernel address added", "instance", instance, "address", a.Prefix, "dev", a.Dev, "label", a.Label)
	}
	k.held[instance] = mine
	if changed {
		k.saveLocked()
	}
	return slices.Clone(mine)
}

// takeRoutes adds instance's virtual routes (after its addresses, as keepalived).
// A route already there is left alone and not held: gvs never removes a route it
// did not add.
func (k *kernelVIPs) takeRoutes(instance string, routes []kernelRoute) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed || len(routes) == 0 {
		return
	}
	mine := k.routes[instance]
	for _, r := range routes {
		if slices.Contains(mine, r) {
			continue
		}
		if err := k.h.AddRoute(r.Route); err != nil {
			if errors.Is(err, kaddr.ErrExists) {
				k.refused.Add(1)
				k.log.Warn(fmt.Sprintf("VRRP (%s) route %v is already there and gvs did not add it: leaving it alone", instance, r.Route), "instance", instance)
				continue
			}
			k.failed.Add(1)
			k.log.Error(fmt.Sprintf("VRRP (%s) cannot add route %v", instance, r.Route), "instance", instance, "err", err)
			continue
		}
		mine = append(mine, r)
		k.log.Info("VRRP kernel route added", "instance", instance, "route", r.Route.String(), "dev", r.Dev)
	}
	k.routes[instance] = mine
	k.saveLocked()
}

// takeRules adds instance's virtual rules (after its routes, as keepalived). A
// rule already there is left alone and not held: gvs never removes a rule it did
// not add.
func (k *kernelVIPs) takeRules(instance string, rules []kaddr.Rule) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed || len(rules) == 0 {
		return
	}
	mine := k.rules[instance]
	for _, r := range rules {
		if slices.Contains(mine, r) {
			continue
		}
		if err := k.h.AddRule(r); err != nil {
			if errors.Is(err, kaddr.ErrExists) {
				k.refused.Add(1)
				k.log.Warn(fmt.Sprintf("VRRP (%s) rule %v is already there and gvs did not add it: leaving it alone", instance, r), "instance", instance)
				continue
			}
			k.failed.Add(1)
			k.log.Error(fmt.Sprintf("VRRP (%s) cannot add rule %v", instance, r), "instance", instance, "err", err)
			continue
		}
		mine = append(mine, r)
		k.log.Info("VRRP kernel rule added", "instance", instance, "rule", r.String())
	}
	k.rules[instance] = mine
	k.saveLocked()
}

// dropRulesLocked removes the held rules of instance that keep(r) does not
// keep, in the reverse order of their adding. Precondition: k.mu is held.
func (k *kernelVIPs) dropRulesLocked(instance string, keep func(kaddr.Rule) bool) {
	list := k.rules[instance]
	for i := len(list) - 1; i >= 0; i-- {
		r := list[i]
		if keep(r) {
			continue
		}
		if err := k.h.DeleteRule(r); err != nil && !errors.Is(err, kaddr.ErrNotFound) {
			k.failed.Add(1)
			k.log.Error(fmt.Sprintf("VRRP (%s) cannot remove rule %v", instance, r), "instance", instance, "err", err)
		} else {
			k.log.Info("VRRP kernel rule removed", "instance", instance, "rule", r.String())
		}
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(k.rules, instance)
	} else {
		k.rules[instance] = list
	}
}

// holderLocked returns the instance holding ip, or "". Precondition: k.mu is held.
func (k *kernelVIPs) holderLocked(ip netip.Addr) string {
	for in, list := range k.held {
		if slices.ContainsFunc(list, func(x kernelAddr) bool { return x.Prefix.Addr() == ip }) {
			return in
		}
	}
	return ""
}

// release removes the addresses instance holds.
func (k *kernelVIPs) release(instance string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.releaseLocked(instance)
	k.saveLocked()
}

// Precondition: k.mu is held.
func (k *kernelVIPs) releaseLocked(instance string) {
	// Rules, then routes, then addresses: the reverse of keepalived's adding
	// order; a route may use an address about to go.
	k.dropRulesLocked(instance, func(kaddr.Rule) bool { return false })
	k.dropRoutesLocked(instance, func(kernelRoute) bool { return false })
	k.dropAddrsLocked(instance, func(kernelAddr) bool { return false })
}

// dropRoutesLocked removes the held routes of instance that keep does not keep,
// in the reverse order of their adding. Precondition: k.mu is held.
func (k *kernelVIPs) dropRoutesLocked(instance string, keep func(kernelRoute) bool) {
	list := k.routes[instance]
	for i := len(list) - 1; i >= 0; i-- {
		r := list[i]
		if keep(r) {
			continue
		}
		if err := k.h.DeleteRoute(r.Route); err != nil && !errors.Is(err, kaddr.ErrNotFound) {
			k.failed.Add(1)
			k.log.Error(fmt.Sprintf("VRRP (%s) cannot remove route %v", instance, r.Route), "instance", instance, "err", err)
		} else {
			k.log.Info("VRRP kernel route removed", "instance", instance, "route", r.Route.String())
		}
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(k.routes, instance)
	} else {
		k.routes[instance] = list
	}
}

// dropAddrsLocked removes the held addresses of instance that keep does not
// keep. Precondition: k.mu is held.
func (k *kernelVIPs) dropAddrsLocked(instance string, keep func(kernelAddr) bool) {
	list := k.held[instance]
	for i := len(list) - 1; i >= 0; i-- {
		a := list[i]
		if keep(a) {
			continue
		}
		if err := k.h.Delete(a.Addr); err != nil && !errors.Is(err, kaddr.ErrNotFound) {
			k.failed.Add(1)
			k.log.Error(fmt.Sprintf("VRRP (%s) cannot remove %v from %s", instance, a.Prefix, a.Dev), "instance", instance, "err", err)
		} else {
			k.log.Info("VRRP kernel address removed", "instance", instance, "address", a.Prefix, "dev", a.Dev)
		}
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(k.held, instance)
	} else {
		k.held[instance] = list
	}
}

// update makes what a master instance holds on the kernel follow a reload that
// changed its virtual addresses, routes or rules, with no release of the rest:
// what is no longer configured goes first (rules, routes, then addresses), then
// what is new is added (addresses, routes, then rules) with take's checks. It
// returns the addresses added now: the ones to announce.
func (k *kernelVIPs) update(instance string, addrs []kernelAddr, routes []kernelRoute, rules []kaddr.Rule) []kernelAddr {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.dropRulesLocked(instance, func(r kaddr.Rule) bool { return slices.Contains(rules, r) })
	k.dropRoutesLocked(instance, func(r kernelRoute) bool { return slices.Contains(routes, r) })
	k.dropAddrsLocked(instance, func(a kernelAddr) bool { return slices.Contains(addrs, a) })
	before := slices.Clone(k.held[instance])
	k.saveLocked()
	k.mu.Unlock()
	held := k.take(instance, addrs)
	k.takeRoutes(instance, routes)
	k.takeRules(instance, rules)
	return slices.DeleteFunc(held, func(a kernelAddr) bool { return slices.Contains(before, a) })
}

// releaseAll removes every address gvs added and refuses any take after it: gvs
// is stopping.
func (k *kernelVIPs) releaseAll() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.closed = true
	for in := range k.held {
		k.releaseLocked(in)
	}
	for in := range k.routes {
		k.releaseLocked(in)
	}
	for in := range k.rules {
		k.releaseLocked(in)
	}
	k.saveLocked()
}

// heldAddrs returns the addresses instance holds now.
func (k *kernelVIPs) heldAddrs(instance string) []kernelAddr {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.held[instance])
}

// saveLocked writes the record of what is held (atomically: a new file renamed
// over the old one), or removes it when nothing is. Precondition: k.mu is held.
func (k *kernelVIPs) saveLocked() {
	if k.record == "" {
		return
	}
	var entries []recordEntry
	for in, list := range k.held {
		for _, a := range list {
			e := recordEntry{Instance: in, Prefix: a.Prefix.String(), Dev: a.Dev, Label: a.Label, Scope: uint8(a.Scope)}
			if a.Broadcast.IsValid() {
				e.Broadcast = a.Broadcast.String()
			}
			entries = append(entries, e)
		}
	}
	for in, list := range k.routes {
		for _, r := range list {
			entries = append(entries, r.entry(in))
		}
	}
	for in, list := range k.rules {
		for _, r := range list {
			entries = append(entries, recordEntry{Instance: in, Prefix: r.String(), Rule: &r})
		}
	}
	if len(entries) == 0 {
		if err := os.Remove(k.record); err != nil && !errors.Is(err, os.ErrNotExist) {
			k.log.Warn("VRRP kernel addresses: cannot remove the record", "file", k.record, "err", err)
		}
		return
	}
	slices.SortFunc(entries, func(a, b recordEntry) int { return strings.Compare(a.Instance+a.Prefix, b.Instance+b.Prefix) })
	data, _ := json.MarshalIndent(entries, "", "  ")
	tmp := k.record + ".tmp"
	err := os.MkdirAll(filepath.Dir(k.record), 0o755)
	if err == nil {
		err = os.WriteFile(tmp, append(data, '\n'), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, k.record)
	}
	if err != nil {
		k.log.Warn("VRRP kernel addresses: cannot write the record; after a crash remove the VIPs by hand", "file", k.record, "err", err)
	}
}
