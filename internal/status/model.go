// Package status serves a director's live status page: one embedded HTML
// document and the JSON snapshot it polls (docs/status.md).
package status

import "time"

// Snapshot is what /status.json returns: the director's state at one instant.
// The daemon builds it (Source); the handler only encodes and shares it.
type Snapshot struct {
	Taken    time.Time `json:"taken"`
	Version  string    `json:"version,omitempty"`
	Actions  bool      `json:"actions"` // drain and undrain are enabled
	Services []Service `json:"services"`
	VRRP     []VRRP    `json:"vrrp"`
	Cluster  *Cluster  `json:"cluster,omitempty"` // nil without cluster mode
	Drops    []Count   `json:"drops"`             // frames dropped, by reason (only reasons seen)
	Frames   Frames    `json:"frames"`
	Conns    Conntrack `json:"conntrack"`
}

// Service is one virtual service as the data path runs it.
type Service struct {
	Name      string   `json:"name"` // "TCP/198.18.0.100:80", "FWM/7": the metrics' service label
	Scheduler string   `json:"scheduler"`
	Flags     string   `json:"flags,omitempty"`
	Persist   int      `json:"persistent_seconds,omitempty"`
	Stats     Stats    `json:"stats"`
	Rates     Rates    `json:"rates"`
	Servers   []Server `json:"servers"`
}

// Server is one real server of a service. InTable is false for a configured
// server the data path does not hold now (a failed health check removed it):
// gvs adm -Ln lists exactly the servers with InTable true.
type Server struct {
	Address  string  `json:"address"` // "198.18.0.5:80", the metrics' server label
	Method   string  `json:"method"`  // Route, Masq, Tunnel, Local
	Weight   int     `json:"weight"`
	Active   uint32  `json:"active"`
	Inactive uint32  `json:"inactive"`
	Persist  uint32  `json:"persistent"`
	InTable  bool    `json:"in_table"`
	State    string  `json:"state"` // "up", "down" (health), "drained" (weight 0)
	Health   *Health `json:"health,omitempty"`
	Stats    Stats   `json:"stats"`
	Rates    Rates   `json:"rates"`
}

// Health is the last result of a real server's checks (the worst of them when
// it has several).
type Health struct {
	Up         bool      `json:"up"`
	LastCheck  time.Time `json:"last_check,omitzero"`
	LastChange time.Time `json:"last_change,omitzero"`
	Reason     string    `json:"reason,omitempty"`
	Checks     uint64    `json:"checks"`
	Failures   uint64    `json:"failures"`
}

// Stats are counters since the last gvs adm -Z, as gvs adm -Ln --stats shows them.
type Stats struct {
	Conns    uint64 `json:"conns"`
	InPkts   uint64 `json:"in_packets"`
	OutPkts  uint64 `json:"out_packets"`
	InBytes  uint64 `json:"in_bytes"`
	OutBytes uint64 `json:"out_bytes"`
}

// Rates are the estimator's per-second rates, as gvs adm -Ln --rate shows them.
type Rates struct {
	CPS    uint64 `json:"cps"`
	InPPS  uint64 `json:"in_pps"`
	OutPPS uint64 `json:"out_pps"`
	InBPS  uint64 `json:"in_bps"`
	OutBPS uint64 `json:"out_bps"`
}

// VRRP is one VRRP instance, as gvs adm --vrrp shows it.
type VRRP struct {
	Name           string    `json:"name"`
	VRID           int       `json:"vrid"`
	Interface      string    `json:"interface"`
	State          string    `json:"state"`
	Configured     int       `json:"priority_configured"`
	Priority       int       `json:"priority"`
	Master         string    `json:"master,omitempty"`
	MasterPriority int       `json:"master_priority,omitempty"`
	Since          time.Time `json:"since,omitzero"`
	From           string    `json:"from,omitempty"`
	Reason         string    `json:"reason,omitempty"`
	Tracks         []string  `json:"tracks,omitempty"`
}

// Cluster is this director in cluster mode, as gvs adm --cluster shows it.
type Cluster struct {
	Node    string       `json:"node"`
	State   string       `json:"state"` // COLD, SYNCING, READY, ANNOUNCED, DRAINING
	Peers   []Peer       `json:"peers"`
	VIPs    []ClusterVIP `json:"vips"`
	Bird    string       `json:"bird,omitempty"` // what is wrong with BIRD ("" when it exports the routes)
	Digest  string       `json:"digest"`         // the config digest, hex
	Matches bool         `json:"digest_matches"` // every live peer has it
}

// Peer is another director of the cluster.
type Peer struct {
	Node        string    `json:"node"`
	Address     string    `json:"address"`
	State       string    `json:"state"`
	Live        bool      `json:"live"`
	LastHeard   time.Time `json:"last_heard,omitzero"`
	DigestMatch bool      `json:"digest_match"`
	Sent        uint64    `json:"sent_records"`     // as it reports
	Received    uint64    `json:"received_records"` // from it, here
	Lost        uint64    `json:"lost_records"`     // current estimate
}

// ClusterVIP is one VIP's announcement.
type ClusterVIP struct {
	VIP       string `json:"vip"`
	Announced bool   `json:"announced"`
	Reason    string `json:"reason,omitempty"` // the failing gate condition
}

// Count is one named counter.
type Count struct {
	Name  string `json:"name"`
	Value uint64 `json:"value"`
}

// Frames are the data path's frame counters.
type Frames struct {
	In        uint64 `json:"in"`
	Forwarded uint64 `json:"forwarded"`
}

// Conntrack is the connection table's size.
type Conntrack struct {
	Entries int `json:"entries"`
	Max     int `json:"max"`
}
