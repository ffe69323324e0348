package daemon

import (
	"context"
	"maps"
	"reflect"
	"slices"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/vrrp"
)

// reloadVRRP applies a reload's [[vrrp]] and [[vrrp_sync_group]] changes on the
// controller's goroutine (docs/vrrp.md "Live reload"): an unchanged instance keeps
// its state; a changed priority, preemption, notify, announcement or tracking
// setting, or a change of virtual addresses, routes or rules, applies in place
// (the new priority and addresses go out with the next advert; a master adds and
// announces the new addresses and removes the dropped ones); an added instance
// starts; a removed one shuts down as keepalived does (a master advertises
// priority 0 and releases its VIPs); an instance whose identity changed
// (interface, VRID, version, address family, interval, authentication, unicast,
// priority to or from 255), whose sync group changed, or one of whose addresses
// became or stopped being a service's, is restarted: removed, then added.
func (d *Daemon) reloadVRRP(old, cur *config.Config) {
	vc := vrrpChanges(old.VRRP, cur.VRRP, old.VRRPSyncGroups, cur.VRRPSyncGroups)
	if d.mode == modeVRRPOnly && len(cur.Services) > 0 {
		d.log.Warn("reload: this gvs started with VRRP only (no data path): restart gvs to serve the [[service]] tables", "services", len(cur.Services))
	}
	if len(vc) == 0 && !servedChanged(old, cur) {
		return
	}
	if d.vrrp == nil {
		d.log.Warn("reload: gvs started without [[vrrp]]: restart gvs to run VRRP", "changed", vc)
		return
	}
	if err := d.vrrp.reload(old, cur); err != nil {
		d.log.Error("reload: VRRP changes not all applied", "err", err, "changed", vc)
		return
	}
	d.log.Info("reload: VRRP changed", "changed", vc)
}

// softVRRP returns v without what a running instance can change in place.
func softVRRP(v config.VRRP) config.VRRP {
	owner := v.Priority == 255
	v.Line, v.State, v.Priority = 0, 0, 0
	if owner {
		v.Priority = 255
	}
	v.NoPreempt, v.PreemptDelay = false, 0
	v.GARPMasterDelay, v.GARPMasterRepeat, v.GARPMasterRefresh, v.GARPMasterRefreshRepeat = 0, 0, 0, 0
	v.GARPLowerPrioDelay, v.GARPLowerPrioRepeat = 0, 0
	v.NotifyMaster, v.NotifyBackup, v.NotifyFault, v.Notify = "", "", "", ""
	v.TrackService, v.TrackInterface = nil, nil
	v.TrackScript, v.TrackFile, v.TrackProcess = nil, nil, nil
	v.VirtualIPAddress, v.VIPs, v.ExcludedVIPs = nil, nil, nil // reentered in place (entriesChanged)
	v.VirtualRoutes, v.VirtualRules = nil, nil
	return v
}

// vipsIPv6 reports the family of v's virtual addresses (all of one, and at
// least one: config checks it); it decides the instance's source address.
func vipsIPv6(v config.VRRP) bool {
	return len(v.VIPs) > 0 && v.VIPs[0].Addr().Is6()
}

// groupOf returns the members of name's sync group in gs, or nil.
func groupOf(gs []config.VRRPSyncGroup, name string) []string {
	for _, g := range gs {
		if slices.Contains(g.Group, name) {
			return g.Group
		}
	}
	return nil
}

// reload makes cur's instances the running ones (see reloadVRRP); old is the
// config they run with now.
func (m *vrrpManager) reload(old, cur *config.Config) error {
	m.imu.RLock()
	running := map[string]*vrrp.Instance{}
	oldCfg := map[string]config.VRRP{}
	for in, st := range m.insts {
		running[st.cfg.Name] = in
		oldCfg[st.cfg.Name] = st.cfg
	}
	m.imu.RUnlock()
	oldGroups := m.groups
	curCfg := map[string]config.VRRP{}
	for _, v := range cur.VRRP {
		curCfg[v.Name] = v
	}

	restart := map[string]bool{}
	var soft []string
	oldOwn, curOwn := serviceVIPs(old), serviceVIPs(cur)
	// servedMoved reports whether a VIP in both o and c is served by gvs (own) in
	// one and by the kernel in the other.
	servedMoved := func(o, c config.VRRP) bool {
		for _, a := range slices.Concat(c.VIPs, c.ExcludedVIPs) {
			in := slices.ContainsFunc(slices.Concat(o.VIPs, o.ExcludedVIPs), func(b config.VirtualAddress) bool { return b.Addr() == a.Addr() })
			if in && oldOwn[a.Addr()] != curOwn[a.Addr()] {
				return true
			}
		}
		return false
	}
	for name, c := range curCfg {
		o, ok := oldCfg[name]
		switch {
		case !ok || !reflect.DeepEqual(softVRRP(o), softVRRP(c)) || vipsIPv6(o) != vipsIPv6(c):
			restart[name] = true
		case servedMoved(o, c):
			// A VIP became, or stopped being, a service's: who serves it changes.
			restart[name] = true
		case !slices.Equal(groupOf(oldGroups, name), groupOf(cur.VRRPSyncGroups, name)):
			restart[name] = true
		default:
			o.Line, c.Line = 0, 0
			if !reflect.DeepEqual(o, c) {
				soft = append(soft, name)
			}
		}
	}
	for name := range oldCfg {
		if _, ok := curCfg[name]; !ok {
			restart[name] = true
		}
	}
	// A sync group starts and stops whole: a restarted member restarts its groups'
	// other members, old and new.
	for changed := true; changed; {
		changed = false
		for name := range restart {
			for _, other := range slices.Concat(groupOf(oldGroups, name), groupOf(cur.VRRPSyncGroups, name)) {
				if !restart[other] {
					restart[other] = true
					changed = true
				}
			}
		}
	}
	soft = slices.DeleteFunc(soft, func(n string) bool { return restart[n] })

	var u vrrp.Update
	var add []config.VRRP
	for _, v := range cur.VRRP {
		if restart[v.Name] {
			add = append(add, v)
		}
	}
	for name := range restart {
		if in := running[name]; in != nil {
			u.Remove = append(u.Remove, in)
		}
	}
	members, built, err := m.build(add, cur.VRRPSyncGroups, cur)
	if err != nil {
		return err
	}
	u.Add = members
	softSt := map[*vrrp.Instance]*vrrpInst{}
	for _, name := range soft {
		in, v := running[name], curCfg[name]
		old := m.get(in)
		if old == nil {
			continue
		}
		ifi, err := m.dm.deps.Host.Interface(v.Interface)
		if err != nil {
			return err
		}
		c, err := m.instanceConfig(v, ifi)
		if err != nil {
			return err
		}
		st := *old
		st.cfg = v
		if err := m.entries(&st, ifi, curOwn, c.Src.Is6()); err != nil {
			return err
		}
		softSt[in] = &st
		rc := vrrp.Reconfig{Instance: in, Config: c,
			LinkUp: func() bool { return m.linkUp(ifi.Name) }, Tracks: m.dm.vrrpTracks(v, m.linkUp)}
		if !slices.Equal(old.served, st.served) || !slices.Equal(old.kern, st.kern) || !slices.Equal(old.routes, st.routes) || !slices.Equal(old.rules, st.rules) {
			rc.Applied = func() { m.entriesChanged(in, old, &st) }
		}
		u.Reconfigure = append(u.Reconfigure, rc)
	}
	// The kernel handle opens for the first instance that needs it, restarted or
	// changed in place.
	needKernel := maps.Clone(built)
	maps.Copy(needKernel, softSt)
	if err := m.openKernel(needKernel); err != nil {
		return err
	}
	u.Prepare = func() {
		m.imu.Lock()
		defer m.imu.Unlock()
		for in, st := range built {
			m.insts[in] = st
		}
		for in, st := range softSt {
			if m.insts[in] != nil {
				m.insts[in] = st
			}
		}
	}
	for _, v := range add {
		m.dm.metrics.SetVRRPState(v.Name, "INIT")
	}
	err = m.runner.Update(context.Background(), u)
	// The removed instances have shut down: forget them, and the transports no
	// instance uses any more (the Runner closed them).
	m.imu.Lock()
	for _, in := range u.Remove {
		delete(m.insts, in)
	}
	used := map[vrrp.Transport]bool{}
	for _, st := range m.insts {
		used[st.tr] = true
	}
	m.imu.Unlock()
	for k, tr := range m.shared {
		if !used[tr] {
			tr.Close()
			delete(m.shared, k)
		}
	}
	m.groups = slices.Clone(cur.VRRPSyncGroups)
	return err
}

// servedChanged reports whether a VIP of cur's instances became, or stopped being,
// a service's address: who serves it (gvs or the kernel) changes.
func servedChanged(old, cur *config.Config) bool {
	oldOwn, curOwn := serviceVIPs(old), serviceVIPs(cur)
	for _, v := range cur.VRRP {
		for _, a := range slices.Concat(v.VIPs, v.ExcludedVIPs) {
			if oldOwn[a.Addr()] != curOwn[a.Addr()] {
				return true
			}
		}
	}
	return false
}
