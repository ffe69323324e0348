package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gvs-lb/gvs/vrrp"
)

// Dump kinds, as keepalived's signals: SIGUSR1 writes its data, SIGUSR2 its
// statistics, its JSON signal both as JSON.
const (
	DumpData  = "data"
	DumpStats = "stats"
	DumpJSON  = "json"
)

// dumpPath is where a dump of kind goes: beside the control socket, named after it
// (/run/gvs/gvs.sock: /run/gvs/gvs.vrrp.data), as the record of kernel addresses.
func (m *vrrpManager) dumpPath(kind string) string {
	return strings.TrimSuffix(m.record, ".kernel-addrs.json") + ".vrrp." + kind
}

// vrrpDump is one instance in the JSON dump.
type vrrpDump struct {
	Name           string    `json:"name"`
	VRID           uint8     `json:"vrid"`
	Interface      string    `json:"interface"`
	State          string    `json:"state"`
	Priority       uint8     `json:"priority"`
	Effective      uint8     `json:"effective_priority"`
	Master         string    `json:"master,omitempty"`
	MasterPriority uint8     `json:"master_priority,omitempty"`
	Since          time.Time `json:"last_transition,omitzero"`
	From           string    `json:"from,omitempty"`
	Reason         string    `json:"reason,omitempty"`
	Tracks         []string  `json:"tracks,omitempty"`
	PreemptHeld    string    `json:"preempt_held,omitempty"` // why this backup does not preempt (docs/cluster.md §14)
	VIPs           []string  `json:"virtual_ipaddress"`
	KernelHeld     []string  `json:"kernel_addresses,omitempty"`
}

// DumpVRRP writes the VRRP dump of kind (DumpData, DumpStats, DumpJSON) to its
// file and returns the path: what keepalived writes on SIGUSR1, SIGUSR2 and its
// JSON signal, in gvs's words.
func (d *Daemon) DumpVRRP(kind string) (string, error) {
	m := d.vrrp
	if m == nil {
		return "", fmt.Errorf("no [[vrrp]] instances to dump")
	}
	var b bytes.Buffer
	switch kind {
	case DumpData:
		fmt.Fprintf(&b, "gvs VRRP data, %s\n\n", d.clock.Now().UTC().Format(time.RFC3339))
		if err := d.admin.listVRRP(nil, &b); err != nil {
			return "", err
		}
		for _, st := range m.runner.Status() {
			in := m.byName(st.Name)
			if in == nil {
				continue
			}
			fmt.Fprintf(&b, "\n%s: virtual_ipaddress %s", st.Name, joinStrings(in.cfg.VIPs))
			if kv := m.kernel(); kv != nil {
				fmt.Fprintf(&b, "; on the kernel now: %s", joinStrings(kv.heldAddrs(st.Name)))
			}
			b.WriteString("\n")
		}
	case DumpStats:
		rx, tx, txErr := m.runner.Counters()
		fmt.Fprintf(&b, "gvs VRRP statistics, %s\n\nadverts received %d\nadverts sent %d\nsend errors %d\n", d.clock.Now().UTC().Format(time.RFC3339), rx, tx, txErr)
		for r, n := range m.runner.Drops() {
			if n > 0 {
				fmt.Fprintf(&b, "dropped, %s: %d\n", vrrp.Reason(r), n)
			}
		}
		if kv := m.kernel(); kv != nil {
			fmt.Fprintf(&b, "kernel addresses refused (held by another) %d\nkernel address errors %d\n", kv.refused.Load(), kv.failed.Load())
		}
	case DumpJSON:
		var out []vrrpDump
		for _, st := range m.runner.Status() {
			x := vrrpDump{Name: st.Name, State: st.State.String(), Priority: st.Configured, Effective: st.Priority,
				MasterPriority: st.MasterPriority, Since: st.Since, Reason: st.Reason, Tracks: st.Tracks, PreemptHeld: st.PreemptHeld}
			if st.Master.IsValid() {
				x.Master = st.Master.String()
			}
			if !st.Since.IsZero() {
				x.From = st.From.String()
			}
			if in := m.byName(st.Name); in != nil {
				x.VRID, x.Interface = in.cfg.VirtualRouterID, in.cfg.Interface
				for _, a := range in.cfg.VIPs {
					x.VIPs = append(x.VIPs, a.String())
				}
				if kv := m.kernel(); kv != nil {
					for _, a := range kv.heldAddrs(st.Name) {
						x.KernelHeld = append(x.KernelHeld, a.Prefix.String())
					}
				}
			}
			out = append(out, x)
		}
		enc := json.NewEncoder(&b)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("unknown VRRP dump %q (data, stats or json)", kind)
	}
	path := m.dumpPath(kind)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// joinStrings formats a list of Stringers, "-" when empty.
func joinStrings[T fmt.Stringer](xs []T) string {
	if len(xs) == 0 {
		return "-"
	}
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = x.String()
	}
	return strings.Join(slices.Clip(s), ", ")
}
