package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// stateVersion is bumped when the state file's meaning changes.
const stateVersion = 1

// A state is what a lab's state file records: enough for another process (gvs lab
// down, status) to find every name and process the lab made. It is written before
// anything is created and rewritten after every process start, so it never knows
// less than exists.
type state struct {
	Version    int       `json:"version"`
	Prefix     string    `json:"prefix"`
	Created    time.Time `json:"created"`
	Owner      procID    `json:"owner"` // the process that ran Up
	Detach     bool      `json:"detach"`
	Spec       specJSON  `json:"spec"`
	Namespaces []string  `json:"namespaces"`
	Procs      []Proc    `json:"procs"`
	// ClusterServers (cluster labs) are the real servers the directors' services
	// list now: event rs-add and rs-del change them, and rewrite the configs so a
	// restarted director starts with the set its peers have.
	ClusterServers []string `json:"cluster_servers,omitempty"`
}

// A procID names a process across PID reuse: the PID and its start time in clock
// ticks since boot (/proc/PID/stat field 22).
type procID struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// A Proc is a process the lab started in one of its namespaces, and killed by PID
// on Down.
type Proc struct {
	Host  string   `json:"host"`  // "rs1"
	Name  string   `json:"name"`  // "serve", "rs-tun", "director"
	PID   int      `json:"pid"`   // the process (ip netns exec execs it, so this is the program itself)
	Start uint64   `json:"start"` // start time in clock ticks since boot: guards against PID reuse
	Argv  []string `json:"argv"`  // as run inside the namespace
	Log   string   `json:"log"`   // its stdout and stderr
}

type specJSON struct {
	Mode        string `json:"mode"`
	RealServers int    `json:"real_servers"`
	Directors   int    `json:"directors"`
	Subnet      string `json:"subnet"`
	Outside     string `json:"outside"`
	VIP         string `json:"vip"`
	HTTPPort    uint16 `json:"http_port"`
	UDPPort     uint16 `json:"udp_port"`
	IPv6        bool   `json:"ipv6,omitempty"`
	Cluster     int    `json:"cluster,omitempty"`
	NoSync      bool   `json:"cluster_no_sync,omitempty"`
	Scheduler   string `json:"cluster_scheduler,omitempty"`
	SyncFlush   string `json:"cluster_sync_flush,omitempty"`
	Exe         string `json:"exe"`
}

func toJSON(s Spec) specJSON {
	return specJSON{
		Mode: s.Mode.String(), RealServers: s.RealServers, Directors: s.Directors,
		Subnet: s.Subnet.String(), Outside: s.Outside.String(), VIP: s.VIP.String(),
		HTTPPort: s.HTTPPort, UDPPort: s.UDPPort, IPv6: s.IPv6, Exe: s.Exe,
		Cluster: s.Cluster, NoSync: s.ClusterNoSync, Scheduler: s.ClusterScheduler,
		SyncFlush: durationJSON(s.ClusterSyncFlush),
	}
}

// durationJSON is d as the state file keeps it: "" for 0.
func durationJSON(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func (j specJSON) spec(prefix, dir string, detach bool) (Spec, error) {
	m, err := ParseMode(j.Mode)
	if err != nil {
		return Spec{}, err
	}
	s := Spec{Prefix: prefix, Mode: m, RealServers: j.RealServers, Directors: j.Directors,
		HTTPPort: j.HTTPPort, UDPPort: j.UDPPort, IPv6: j.IPv6, StateDir: dir, Exe: j.Exe, Detach: detach,
		Cluster: j.Cluster, ClusterNoSync: j.NoSync, ClusterScheduler: j.Scheduler}
	if j.SyncFlush != "" {
		if s.ClusterSyncFlush, err = time.ParseDuration(j.SyncFlush); err != nil {
			return Spec{}, fmt.Errorf("lab state: cluster_sync_flush: %w", err)
		}
	}
	if s.Subnet, err = netip.ParsePrefix(j.Subnet); err != nil {
		return Spec{}, err
	}
	if s.Outside, err = netip.ParsePrefix(j.Outside); err != nil {
		return Spec{}, err
	}
	if s.VIP, err = netip.ParseAddr(j.VIP); err != nil {
		return Spec{}, err
	}
	return s.Resolve()
}

func stateDir(dir string) string {
	if dir == "" {
		return DefaultStateDir
	}
	return dir
}

func statePath(dir, prefix string) string { return filepath.Join(stateDir(dir), prefix+".json") }

// runDir holds a lab's logs and generated configs.
func runDir(dir, prefix string) string { return filepath.Join(stateDir(dir), prefix) }

// createState writes a new state file, failing with ErrExists if the prefix has
// one: the file is the lock that keeps two Ups from sharing a prefix.
func createState(dir string, st *state) error {
	if err := os.MkdirAll(runDir(dir, st.Prefix), 0o755); err != nil {
		return fmt.Errorf("lab: state dir: %w", err)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("lab: state: %w", err)
	}
	path := statePath(dir, st.Prefix)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("lab %s: %w (state file %s; remove it with gvs lab down --prefix %s)", st.Prefix, ErrExists, path, st.Prefix)
	}
	if err != nil {
		return fmt.Errorf("lab: state: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("lab: state: %w", err)
	}
	return nil
}

// saveState replaces a state file atomically, so a reader never sees half of one.
func saveState(dir string, st *state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("lab: state: %w", err)
	}
	path := statePath(dir, st.Prefix)
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+st.Prefix+".json.*")
	if err != nil {
		return fmt.Errorf("lab: state: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("lab: state: %w", err)
	}
	return nil
}

// loadState reads a lab's state file; ErrNotFound if it has none.
func loadState(dir, prefix string) (*state, error) {
	if !prefixRE.MatchString(prefix) {
		return nil, fmt.Errorf("lab: prefix %q: want a lowercase letter then up to 11 lowercase letters or digits", prefix)
	}
	path := statePath(dir, prefix)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("lab %s: %w (no %s)", prefix, ErrNotFound, path)
	}
	if err != nil {
		return nil, fmt.Errorf("lab: state: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("lab: state %s: %w", path, err)
	}
	if st.Version != stateVersion || st.Prefix != prefix {
		return nil, fmt.Errorf("lab: state %s: version %d prefix %q, want version %d prefix %q", path, st.Version, st.Prefix, stateVersion, prefix)
	}
	return &st, nil
}

// List returns the prefixes of the labs that have a state file in dir ("" =
// DefaultStateDir), sorted.
func List(dir string) ([]string, error) {
	ents, err := os.ReadDir(stateDir(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lab: list: %w", err)
	}
	var prefixes []string
	for _, e := range ents {
		p, ok := strings.CutSuffix(e.Name(), ".json")
		if ok && e.Type().IsRegular() && prefixRE.MatchString(p) {
			prefixes = append(prefixes, p)
		}
	}
	slices.Sort(prefixes)
	return prefixes, nil
}
