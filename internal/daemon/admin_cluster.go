package daemon

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gvs-lb/gvs/internal/cluster"
	"github.com/gvs-lb/gvs/internal/ipvsadm"
	"github.com/gvs-lb/gvs/internal/status"
	"github.com/gvs-lb/gvs/vrrp"
)

// clusterUsage is the help of gvs adm's cluster options.
const clusterUsage = "usage: gvs adm --cluster: the cluster node, its peers, sync counters, bulk sync and announced VIPs; --cluster-drain / --cluster-undrain: withdraw the VIPs (forwarding and sync go on) / let the gates open again"

// clusterOff is the answer to a cluster command on a director without cluster mode.
const clusterOff = "cluster mode is off on this director ([cluster] enabled = true turns it on; see docs/cluster.md)"

// clusterCommand runs gvs adm --cluster, --cluster-drain or --cluster-undrain.
func (a *Admin) clusterCommand(op string, args []string, out *bytes.Buffer) error {
	if len(args) > 0 {
		return unsupported(fmt.Sprintf("%s takes no arguments (got %q); %s", op, strings.Join(args, " "), clusterUsage))
	}
	c := a.dm.cl
	if c == nil {
		if op == "--cluster" {
			fmt.Fprintln(out, clusterOff)
			return nil
		}
		return unsupported(clusterOff)
	}
	if op != "--cluster" && c.vrrpMode() {
		return unsupported(op + ": with [cluster] announce = \"vrrp\" the VIPs move with VRRP, not with routes: stop this director (SIGTERM: its instances advertise priority 0 and forwarding goes on for drain_time) or lower its VRRP priority")
	}
	switch op {
	case "--cluster-drain":
		c.drain("gvs adm --cluster-drain")
		fmt.Fprintln(out, "draining: every VIP route withdrawn; forwarding and sync go on until gvs adm --cluster-undrain or the director stops")
		return nil
	case "--cluster-undrain":
		if c.undrain() {
			fmt.Fprintf(out, "drain ended: each VIP is announced again after %d passing gate checks\n", c.cfg.AnnounceRise)
		} else {
			fmt.Fprintln(out, "not draining: nothing to do")
		}
		return nil
	}
	var vr []vrrp.Status
	if a.dm.vrrp != nil {
		vr = a.dm.vrrp.runner.Status()
	}
	c.writeStatus(out, a.dm.clock.Now(), vr)
	return nil
}

// writeStatus writes gvs adm --cluster: this node, its sync counters, the bulk sync
// in progress, BIRD, the peers and every VIP's announcement and why — or, with
// announce = "vrrp", the VRRP instances vr that hold the VIPs, with their
// preemption hold.
func (c *clusterRun) writeStatus(out *bytes.Buffer, now time.Time, vr []vrrp.Status) {
	n := c.node
	st := n.Stats()
	peers := n.Peers(now)
	where := fmt.Sprintf("group %v, sync port %d", c.cfg.SyncGroup, c.cfg.SyncPort)
	if len(c.cfg.SyncPeers) > 0 {
		where = fmt.Sprintf("unicast to %d peers, sync port %d", len(c.cfg.SyncPeers), c.cfg.SyncPort)
	}
	if c.cfg.SyncPorts > 1 {
		where += fmt.Sprintf("–%d", c.cfg.SyncPort+c.cfg.SyncPorts-1)
	}
	fmt.Fprintf(out, "node %s  state %s  incarnation %#x\n", c.ccfg.NodeID, n.State(), n.Incarnation())
	fmt.Fprintf(out, "sync: %s on %s, control port %d, syncid %d\n", where, c.iface, c.cfg.ControlPort, c.cfg.SyncID)
	var differ []string
	for _, p := range peers {
		if p.Live && !p.DigestMatch {
			differ = append(differ, p.NodeID)
		}
	}
	match := "matches every live peer"
	if len(differ) > 0 {
		match = "DIFFERS from " + strings.Join(differ, ", ")
		if c.cfg.RequireSameConfig {
			match += " (require_same_config: gates closed)"
		}
	}
	fmt.Fprintf(out, "config digest %x: %s\n", c.digest(), match)
	if c.draining.Load() {
		why := "?"
		if p := c.drainWhy.Load(); p != nil {
			why = *p
		}
		fmt.Fprintf(out, "draining (%s): VIPs withdrawn, forwarding and sync go on\n", why)
	}
	fmt.Fprintf(out, "sent: %d messages, %d records, %d bytes (refreshed %d, bulk %d)\n",
		st.SentMessages, st.SentRecords, st.SentBytes, st.Swept, st.BulkSent)
	fmt.Fprintf(out, "received: %d messages, %d records, %d bytes\n", st.RecvMessages, st.RecvRecords, st.RecvBytes)
	fmt.Fprintf(out, "dropped: %s; decode: %s\n", counts(st.Drops), counts(st.DecodeDrops))
	if j := n.Join(now); j != nil {
		var ps []string
		for _, p := range j.Peers {
			switch {
			case p.Complete:
				ps = append(ps, fmt.Sprintf("%s complete (%d records)", p.NodeID, p.Received))
			case p.Done:
				ps = append(ps, fmt.Sprintf("%s done, %d of %d records", p.NodeID, p.Received, p.Sent))
			default:
				ps = append(ps, fmt.Sprintf("%s pushing, %d records so far", p.NodeID, p.Received))
			}
		}
		if len(ps) == 0 {
			ps = append(ps, "no peer heard yet")
		}
		wait := "forever"
		if c.cfg.JoinWait > 0 {
			wait = c.cfg.JoinWait.String()
		}
		fmt.Fprintf(out, "bulk sync: joining for %v (join_wait %s): %s\n", j.Since.Truncate(time.Millisecond), wait, strings.Join(ps, "; "))
	} else {
		fmt.Fprintf(out, "bulk sync: done (joins ended by join_wait: %d)\n", st.JoinIncomplete)
	}
	if c.vrrpMode() {
		fmt.Fprintln(out, "announce: vrrp (the [[vrrp]] instances hold the VIPs; preemption waits for the bulk sync)")
	} else {
		fmt.Fprintf(out, "BIRD (%s): %s\n", c.cfg.BirdSocket, c.birdLine())
	}
	writePeers(out, now, peers)
	if c.vrrpMode() {
		writeVRRPHold(out, vr)
		return
	}

	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VIP\tGATE\tROUTE\tWHY")
	vips := c.ann.Status()
	for _, v := range vips {
		why := v.Reason
		switch {
		case why == "" && v.Open && v.Announced:
			why = "all conditions hold"
		case why == "" && v.Open:
			why = "route not in place yet (retried at the next check)"
		case why == "":
			why = fmt.Sprintf("rising (announce_rise %d)", c.cfg.AnnounceRise)
		}
		fmt.Fprintf(tw, "%v\t%s\t%s\t%s\n", v.VIP, map[bool]string{true: "open", false: "closed"}[v.Open],
			map[bool]string{true: "announced", false: "withdrawn"}[v.Announced], why)
	}
	if len(vips) == 0 {
		fmt.Fprintln(tw, "(no service VIP)")
	}
	tw.Flush()
}

// writePeers writes gvs adm --cluster's table of peers.
func writePeers(out *bytes.Buffer, now time.Time, peers []cluster.PeerInfo) {
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PEER\tADDRESS\tLIVE\tSTATE\tINCARNATION\tLAST HEARD\tDIGEST\tSENT\tRECEIVED\tLOST\tRESYNCS")
	for _, p := range peers {
		heard := "never"
		if !p.LastHeard.IsZero() {
			heard = now.Sub(p.LastHeard).Truncate(time.Millisecond).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%#x\t%s\t%s\t%d\t%d\t%d\t%d\n", p.NodeID, p.Addr, yesNo(p.Live), p.State, p.Incarnation,
			heard, map[bool]string{true: "match", false: "DIFFERS"}[p.DigestMatch], p.SentRecords, p.RecvRecords, p.Lost, p.Resyncs)
	}
	if len(peers) == 0 {
		fmt.Fprintln(tw, "(none heard)")
	}
	tw.Flush()
}

// writeVRRPHold ends gvs adm --cluster with announce = "vrrp": the VRRP instances
// that hold the VIPs, their state, and why preemption is held while this
// director's bulk sync runs (docs/cluster.md §14).
func writeVRRPHold(out *bytes.Buffer, vr []vrrp.Status) {
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VRRP INSTANCE\tSTATE\tPRIORITY\tMASTER\tPREEMPT")
	for _, st := range vr {
		master, preempt := "-", "free"
		switch {
		case st.State == vrrp.StateMaster:
			master = "this node"
		case st.Master.IsValid():
			master = fmt.Sprintf("%v (priority %d)", st.Master, st.MasterPriority)
		}
		if st.PreemptHeld != "" {
			preempt = "held: " + st.PreemptHeld
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", st.Name, st.State, st.Priority, master, preempt)
	}
	if len(vr) == 0 {
		fmt.Fprintln(tw, "(no [[vrrp]] instance)")
	}
	tw.Flush()
}

// annStatus is every VIP's announcement; none with announce = "vrrp".
func (c *clusterRun) annStatus() []cluster.VIPStatus {
	if c.ann == nil {
		return nil
	}
	return c.ann.Status()
}

// birdLine says how BIRD was at the last look.
func (c *clusterRun) birdLine() string {
	if c.bird == nil {
		return "not checked"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.birdAt.IsZero():
		return "not asked yet"
	case c.birdErr != nil:
		return c.birdErr.Error() + " — gvs serves, but no router learns its VIPs"
	}
	return fmt.Sprintf("runs gvs's configuration, %d of %d sessions established", c.birdState.Established, len(c.birdState.Speakers))
}

// counts writes a counter map as "reason=n …" sorted by reason, or "none".
func counts(m map[string]uint64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// syncDaemons are gvs adm -L --daemon's lines: in cluster mode every director is
// both a master (it sends) and a backup (it receives), as the kernel's two sync
// daemons on one interface would be; without it there are none.
func (a *Admin) syncDaemons() []ipvsadm.SyncDaemon {
	c := a.dm.cl
	if c == nil {
		return nil
	}
	d := ipvsadm.SyncDaemon{McastIfn: c.iface, SyncID: uint8(c.cfg.SyncID), MaxLen: uint16(c.ccfg.SyncMaxLen),
		Port: uint16(c.cfg.SyncPort), TTL: uint8(c.cfg.SyncTTL)}
	if len(c.cfg.SyncPeers) == 0 {
		d.Group = c.cfg.SyncGroup
	}
	master, backup := d, d
	master.State, backup.State = ipvsadm.SyncMaster, ipvsadm.SyncBackup
	return []ipvsadm.SyncDaemon{master, backup}
}

// status is cluster mode on the status page (internal/status): the node, its peers
// and every VIP's announcement, as gvs adm --cluster shows them.
func (c *clusterRun) status(now time.Time) *status.Cluster {
	s := &status.Cluster{Node: c.ccfg.NodeID, State: c.node.State().String(), Peers: []status.Peer{}, VIPs: []status.ClusterVIP{},
		Digest: fmt.Sprintf("%x", c.digest()), Matches: true}
	for _, p := range c.node.Peers(now) {
		s.Peers = append(s.Peers, status.Peer{Node: p.NodeID, Address: p.Addr.String(), State: p.State.String(), Live: p.Live,
			LastHeard: p.LastHeard, DigestMatch: p.DigestMatch, Sent: p.SentRecords, Received: p.RecvRecords, Lost: p.Lost})
		if p.Live && !p.DigestMatch {
			s.Matches = false
		}
	}
	for _, v := range c.annStatus() {
		s.VIPs = append(s.VIPs, status.ClusterVIP{VIP: v.VIP.String(), Announced: v.Announced, Reason: v.Reason})
	}
	c.mu.Lock()
	if c.birdErr != nil {
		s.Bird = c.birdErr.Error()
	}
	c.mu.Unlock()
	return s
}
