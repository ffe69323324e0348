package lab

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// A Report is what Status finds of a lab: its namespaces, their addresses, and
// its processes, each checked against the system now.
type Report struct {
	Spec       Spec // resolved, from the state file
	StateFile  string
	Created    time.Time
	Owner      int  // PID of the process that ran Up
	OwnerAlive bool // that process still runs
	Stale      bool // DownStale would remove the lab
	Hosts      []HostStatus
	Procs      []ProcStatus
}

// A HostStatus is one namespace of a lab.
type HostStatus struct {
	Host
	Present bool     // the namespace exists
	Addrs   []string // "eth0 198.18.0.5/24", "lo 198.18.0.100/32": IPv4 addresses but 127.0.0.1
}

// A ProcStatus is one process of a lab.
type ProcStatus struct {
	Proc
	Running bool // the PID runs and is still the process the lab started
}

// Status reports on the lab with this prefix from its state file in dir ("" =
// DefaultStateDir); ErrNotFound if there is none.
func Status(dir, prefix string) (*Report, error) {
	l, err := Open(dir, prefix)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	have, err := namespaces(ctx)
	if err != nil {
		return nil, err
	}
	st := l.st
	r := &Report{
		Spec: l.spec, StateFile: l.StatePath(), Created: st.Created,
		Owner: st.Owner.PID, OwnerAlive: alive(st.Owner), Stale: stale(st, have),
	}
	for _, h := range l.hosts {
		hs := HostStatus{Host: h, Present: have[h.NS]}
		if hs.Present {
			hs.Addrs, err = addrs(ctx, h.NS)
			if err != nil {
				return nil, err
			}
		}
		r.Hosts = append(r.Hosts, hs)
	}
	for _, p := range st.Procs {
		r.Procs = append(r.Procs, ProcStatus{Proc: p, Running: alive(procID{PID: p.PID, Start: p.Start})})
	}
	return r, nil
}

// addrs lists a namespace's IPv4 addresses as "dev addr/len", loopback's own
// 127.0.0.1 left out.
func addrs(ctx context.Context, ns string) ([]string, error) {
	out, err := output(ctx, "ip", "-n", ns, "-o", "-4", "address", "show")
	if err != nil {
		return nil, err
	}
	var list []string
	for line := range strings.Lines(string(out)) {
		// "2: eth0    inet 198.18.0.5/24 brd ... scope global eth0\ ..."
		f := strings.Fields(line)
		if len(f) < 4 || f[2] != "inet" || strings.HasPrefix(f[3], "127.") {
			continue
		}
		dev, _, _ := strings.Cut(f[1], "@")
		list = append(list, dev+" "+f[3])
	}
	return list, nil
}

// WriteTo prints the report as `gvs lab status` shows it.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	s := r.Spec
	owner := "exited"
	if r.OwnerAlive {
		owner = "running"
	}
	fmt.Fprintf(&b, "lab %s: mode %v, %d director(s), %d real server(s), VIP %v; created %s by pid %d (%s)",
		s.Prefix, s.Mode, s.Directors, s.RealServers, s.VIP, r.Created.Local().Format(time.DateTime), r.Owner, owner)
	if r.Stale {
		b.WriteString("; STALE (gvs lab down --all-stale removes it)")
	}
	fmt.Fprintf(&b, "\nstate: %s\n\n", r.StateFile)
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tROLE\tADDRESSES")
	for _, h := range r.Hosts {
		a := strings.Join(h.Addrs, ", ")
		if !h.Present {
			a = "MISSING"
		} else if a == "" {
			a = "-"
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\n", h.NS, h.Role, a)
	}
	tw.Flush()
	if len(r.Procs) > 0 {
		b.WriteString("\n")
		tw = tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "PROCESS\tPID\tSTATE\tLOG")
		for _, p := range r.Procs {
			state := "exited"
			if p.Running {
				state = "running"
			}
			fmt.Fprintf(tw, "%s %s\t%d\t%s\t%s\n", p.Host, p.Name, p.PID, state, p.Log)
		}
		tw.Flush()
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}
