package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/vrrp"
)

// VRRPConfig maps one [[vrrp]] section onto the state machine's configuration. src
// is the address adverts go out from when unicast_src_ip is not set: the
// interface's primary IPv4 address, or its IPv6 link-local address.
func VRRPConfig(v config.VRRP, src netip.Addr) (vrrp.Config, error) {
	c := vrrp.Config{
		VRID:         v.VirtualRouterID,
		Version:      vrrp.Version(v.Version),
		Priority:     v.Priority,
		Interval:     v.AdvertInt,
		Src:          src,
		Addrs:        slices.Clone(v.VirtualIPAddress),
		NoPreempt:    v.NoPreempt,
		PreemptDelay: v.PreemptDelay,
		Peers:        slices.Clone(v.UnicastPeer),
	}
	if v.UnicastSrcIP.IsValid() {
		c.Src = v.UnicastSrcIP
	}
	if v.AuthType == "PASS" && c.Version == vrrp.Version2 {
		c.AuthType = vrrp.AuthPassword
		copy(c.AuthData[:], v.AuthPass) // keepalived uses the first 8 bytes
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("[[vrrp]] %q: %w", v.Name, err)
	}
	return c, nil
}

// vrrpSource finds the address an instance on ifi advertises from: the first
// (primary) IPv4 address, or the IPv6 link-local address.
func vrrpSource(ifi *net.Interface, ipv6 bool) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if !ipv6 && ip.Is4() {
			return ip, nil
		}
		if ipv6 && ip.Is6() && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	fam := "IPv4"
	if ipv6 {
		fam = "IPv6 link-local"
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no %s address to send VRRP adverts from", ifi.Name, fam)
}

// vrrpManager is the daemon's side of VRRP: it runs a vrrp.Runner over raw sockets
// and turns its decisions into the Director's owned VIP set and gratuitous ARP /
// unsolicited NA bursts (keepalived's garp_master_repeat, garp_master_delay and
// garp_master_refresh).
type vrrpManager struct {
	log      *slog.Logger
	d        *dataplane.Director
	garps    map[*vrrp.Instance]*garpSender
	allGARPs []*garpSender
	runner   *vrrp.Runner
	trs      []vrrp.Transport
	cfgs     map[*vrrp.Instance]config.VRRP

	// onState, when set before run, hears every state change (metrics).
	onState func(instance, state string)

	// notify runs the notify commands, one queue per instance so that they run in
	// order without ever blocking the runner.
	notify *notifier

	mu     sync.Mutex
	owned  map[*vrrp.Instance][]netip.Addr // VIPs of the instances in MASTER
	timers map[*vrrp.Instance][]*time.Timer
}

// newVRRP builds the instances and their sync groups and opens their sockets in the
// current network namespace. serviceUp answers track_service (nil: no service is
// up).
func newVRRP(log *slog.Logger, d *dataplane.Director, vs []config.VRRP, groups []config.VRRPSyncGroup,
	serviceUp func(netip.AddrPort) bool) (*vrrpManager, error) {
	m := &vrrpManager{log: log, d: d, cfgs: map[*vrrp.Instance]config.VRRP{}, garps: map[*vrrp.Instance]*garpSender{},
		owned: map[*vrrp.Instance][]netip.Addr{}, timers: map[*vrrp.Instance][]*time.Timer{},
		notify: newNotifier(log, notifyTimeout)}
	byName := map[string]*vrrp.Instance{}
	garpByIf := map[string]*garpSender{}
	type trKey struct {
		ifname       string
		ipv6, unicst bool
	}
	shared := map[trKey]vrrp.Transport{}
	var members []vrrp.Member
	for _, v := range vs {
		ifi, err := net.InterfaceByName(v.Interface)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("[[vrrp]] %q: %w", v.Name, err)
		}
		src := v.UnicastSrcIP
		if !src.IsValid() {
			if src, err = vrrpSource(ifi, v.IPv6()); err != nil {
				m.close()
				return nil, fmt.Errorf("[[vrrp]] %q: %w", v.Name, err)
			}
		}
		c, err := VRRPConfig(v, src)
		if err != nil {
			m.close()
			return nil, err
		}
		in, err := vrrp.NewInstance(c)
		if err != nil {
			m.close()
			return nil, fmt.Errorf("[[vrrp]] %q: %w", v.Name, err)
		}
		k := trKey{ifi.Name, c.Src.Is6(), len(c.Peers) > 0}
		tr := shared[k]
		if tr == nil {
			if tr, err = vrrp.OpenTransport(vrrp.TransportConfig{Interface: k.ifname, IPv6: k.ipv6, Unicast: k.unicst}); err != nil {
				m.close()
				return nil, fmt.Errorf("[[vrrp]] %q: %w", v.Name, err)
			}
			shared[k] = tr
			m.trs = append(m.trs, tr)
		}
		m.cfgs[in] = v
		byName[v.Name] = in
		g := garpByIf[ifi.Name]
		if g == nil {
			if g, err = openGARP(ifi); err != nil {
				m.close()
				return nil, fmt.Errorf("[[vrrp]] %q: %w", v.Name, err)
			}
			garpByIf[ifi.Name] = g
			m.allGARPs = append(m.allGARPs, g)
		}
		m.garps[in] = g
		tracked := []string{ifi.Name}
		var faultServices []netip.AddrPort
		var weights []vrrp.Weight
		for _, ti := range v.TrackInterface {
			if ti.Weight == 0 {
				tracked = append(tracked, ti.Name)
				continue
			}
			weights = append(weights, vrrp.Weight{Name: "interface " + ti.Name, Weight: int(ti.Weight), Up: func() bool { return linkUp(ti.Name) }})
		}
		for _, ts := range v.TrackService {
			if ts.Weight == 0 {
				faultServices = append(faultServices, ts.Addr)
				continue
			}
			weights = append(weights, vrrp.Weight{Name: "service " + ts.Addr.String(), Weight: int(ts.Weight), Up: func() bool { return serviceUp != nil && serviceUp(ts.Addr) }})
		}
		members = append(members, vrrp.Member{Name: v.Name, Instance: in, Transport: tr, LinkUp: func() bool {
			// The instance's own interface, as keepalived tracks it, and its
			// track_interface entries without weight: any of them down means FAULT.
			for _, name := range tracked {
				if !linkUp(name) {
					return false
				}
			}
			return true
		}, Tracked: trackedFunc(faultServices, serviceUp), Weights: weights})
		log.Info("VRRP instance", "instance", v.Name, "interface", ifi.Name, "vrid", c.VRID, "version", c.Version, "priority", c.Priority,
			"advert_int", c.Interval, "src", c.Src, "vips", c.Addrs, "unicast_peers", c.Peers)
	}
	for _, sg := range groups {
		var ins []*vrrp.Instance
		for _, n := range sg.Group {
			ins = append(ins, byName[n])
		}
		if _, err := vrrp.NewGroup(ins...); err != nil {
			m.close()
			return nil, fmt.Errorf("[[vrrp_sync_group]] %q: %w", sg.Name, err)
		}
		log.Info("VRRP sync group", "group", sg.Name, "instances", sg.Group)
	}
	r, err := vrrp.NewRunner(members, vrrp.RunnerOptions{
		Logger:       log,
		BecomeMaster: m.becomeMaster,
		LeaveMaster:  m.leaveMaster,
		Gratuitous: func(mb *vrrp.Member) {
			v := m.cfgs[mb.Instance]
			m.burst(mb.Instance, v.VirtualIPAddress, v.GARPMasterRepeat)
		},
		StateChange: func(tr vrrp.Transition) {
			if m.onState != nil {
				m.onState(tr.Name, tr.To.String())
			}
			if cmds := notifyCommands(m.cfgs[tr.Instance], tr.To, tr.Instance.Priority()); len(cmds) > 0 {
				m.notify.enqueue(tr.Name, cmds)
			}
		},
	})
	if err != nil {
		m.close()
		return nil, err
	}
	m.runner = r
	return m, nil
}

// run drives VRRP until ctx ends, then shuts the instances down (a master
// advertises priority 0 and releases its VIPs).
func (m *vrrpManager) run(ctx context.Context) error {
	err := m.runner.Run(ctx)
	// The STOP notifications of the shutdown are queued: give them a moment.
	m.notify.close(notifyDrain)
	m.mu.Lock()
	for in, ts := range m.timers {
		for _, t := range ts {
			t.Stop()
		}
		delete(m.timers, in)
	}
	m.mu.Unlock()
	drops := m.runner.Drops()
	var attrs []any
	for r, n := range drops {
		if n > 0 {
			attrs = append(attrs, vrrp.Reason(r).String(), n)
		}
	}
	rx, tx, txErr := m.runner.Counters()
	m.log.Info("VRRP stopped", append([]any{"received", rx, "sent", tx, "send_errors", txErr}, attrs...)...)
	return err
}

// linkUp reports whether interface name exists and is up with carrier.
func linkUp(name string) bool {
	ifi, err := net.InterfaceByName(name)
	return err == nil && ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagRunning != 0
}

// trackedFunc returns a Member.Tracked for track_service: up while at least one of
// services has a live real server. nil without tracked services.
func trackedFunc(services []netip.AddrPort, serviceUp func(netip.AddrPort) bool) func() bool {
	if len(services) == 0 {
		return nil
	}
	return func() bool {
		if serviceUp == nil {
			return false
		}
		for _, s := range services {
			if serviceUp(s) {
				return true
			}
		}
		return false
	}
}

// close releases the sockets (run closes them too; closing twice is harmless).
func (m *vrrpManager) close() {
	for _, t := range m.trs {
		t.Close()
	}
	for _, g := range m.allGARPs {
		g.close()
	}
}

// setOwned gives the Director the union of the masters' VIPs. Called with m.mu held.
func (m *vrrpManager) setOwned() {
	vips := []netip.Addr{}
	for _, list := range m.owned {
		for _, v := range list {
			if !slices.Contains(vips, v) {
				vips = append(vips, v)
			}
		}
	}
	m.d.SetOwned(vips)
}

// owns reports, for the runner's announcements, which of vips this director serves.
func (m *vrrpManager) ownedOf(vips []netip.Addr) []netip.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []netip.Addr
	for _, v := range vips {
		for _, list := range m.owned {
			if slices.Contains(list, v) {
				out = append(out, v)
				break
			}
		}
	}
	return out
}

func (m *vrrpManager) becomeMaster(mb *vrrp.Member) {
	v := m.cfgs[mb.Instance]
	vips := slices.Clone(v.VirtualIPAddress)
	m.mu.Lock()
	m.owned[mb.Instance] = vips
	m.setOwned()
	m.stopTimersLocked(mb.Instance)
	var ts []*time.Timer
	if v.GARPMasterDelay > 0 {
		ts = append(ts, time.AfterFunc(v.GARPMasterDelay, func() { m.burstIfMaster(mb.Instance, vips, v.GARPMasterRepeat) }))
	}
	if v.GARPMasterRefresh > 0 {
		var refresh func()
		var t *time.Timer
		refresh = func() {
			if m.burstIfMaster(mb.Instance, vips, v.GARPMasterRefreshRepeat) {
				m.mu.Lock()
				t.Reset(v.GARPMasterRefresh)
				m.mu.Unlock()
			}
		}
		t = time.AfterFunc(v.GARPMasterRefresh, refresh)
		ts = append(ts, t)
	}
	m.timers[mb.Instance] = ts
	m.mu.Unlock()
	m.burst(mb.Instance, vips, v.GARPMasterRepeat)
}

func (m *vrrpManager) leaveMaster(mb *vrrp.Member) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.owned, mb.Instance)
	m.setOwned()
	m.stopTimersLocked(mb.Instance)
}

func (m *vrrpManager) stopTimersLocked(in *vrrp.Instance) {
	for _, t := range m.timers[in] {
		t.Stop()
	}
	delete(m.timers, in)
}

// burstIfMaster announces vips n times if in is still master; it reports whether it
// was.
func (m *vrrpManager) burstIfMaster(in *vrrp.Instance, vips []netip.Addr, n int) bool {
	m.mu.Lock()
	_, ok := m.owned[in]
	m.mu.Unlock()
	if ok {
		m.burst(in, vips, n)
	}
	return ok
}

// burst sends n gratuitous ARPs (unsolicited NAs) per VIP, back to back as
// keepalived does with vrrp_garp_interval 0.
func (m *vrrpManager) burst(in *vrrp.Instance, vips []netip.Addr, n int) {
	g := m.garps[in]
	for range max(n, 1) {
		if err := g.send(vips); err != nil {
			if !errors.Is(err, net.ErrClosed) {
				m.log.Warn("VRRP gratuitous ARP/NA", "instance", m.cfgs[in].Name, "err", err)
			}
			return
		}
	}
}
