package daemon

import (
	"bytes"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gvs-lb/gvs/vrrp"
)

// vrrpUsage is the help of gvs adm --vrrp.
const vrrpUsage = "usage: gvs adm --vrrp: lists the VRRP instances (state, configured and effective priority, master, last transition and its reason)"

// listVRRP writes gvs adm --vrrp: one line per VRRP instance with its state, its
// configured and effective priority (and the tracked objects that move it), the
// master as last heard, and when and why it last changed state.
func (a *Admin) listVRRP(args []string, out *bytes.Buffer) error {
	if len(args) > 0 {
		return unsupported(fmt.Sprintf("--vrrp takes no arguments (got %q); %s", strings.Join(args, " "), vrrpUsage))
	}
	m := a.dm.vrrp
	if m == nil {
		fmt.Fprintln(out, "no [[vrrp]] instances")
		return nil
	}
	now := a.dm.clock.Now()
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tVRID\tINTERFACE\tSTATE\tPRIORITY\tMASTER\tSINCE\tREASON")
	for _, st := range m.runner.Status() {
		vrid, ifname := "-", "-"
		if in := m.byName(st.Name); in != nil {
			vrid = fmt.Sprint(in.cfg.VirtualRouterID)
			ifname = in.cfg.Interface
		}
		prio := fmt.Sprintf("%d", st.Configured)
		if st.Priority != st.Configured {
			prio = fmt.Sprintf("%d (effective %d)", st.Configured, st.Priority)
		}
		if len(st.Tracks) > 0 {
			prio += " [" + strings.Join(st.Tracks, ", ") + "]"
		}
		master := "-"
		switch {
		case st.State == vrrp.StateMaster:
			master = fmt.Sprintf("this node (%v)", st.Master)
		case st.Master.IsValid():
			master = fmt.Sprintf("%v (priority %d)", st.Master, st.MasterPriority)
		}
		since, reason := "-", "-"
		if !st.Since.IsZero() {
			since = fmt.Sprintf("%s (%s ago, from %s)", st.Since.UTC().Format(time.RFC3339), now.Sub(st.Since).Truncate(time.Second), st.From)
			reason = st.Reason
		}
		state := st.State.String()
		if st.PreemptHeld != "" {
			state += " (preempt held: " + st.PreemptHeld + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Name, vrid, ifname, state, prio, master, since, reason)
	}
	return tw.Flush()
}

// byName returns what the manager keeps of the instance named name, or nil.
func (m *vrrpManager) byName(name string) *vrrpInst {
	m.imu.RLock()
	defer m.imu.RUnlock()
	for _, st := range m.insts {
		if st.cfg.Name == name {
			return st
		}
	}
	return nil
}
