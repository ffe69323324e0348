package importer

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/gvs-lb/gvs/internal/config"
)

// A Note is one thing an importer did not translate exactly: a keyword gvs has no
// equivalent for, a value it adjusted, a block it left out. Nothing is dropped
// without one.
type Note struct {
	File string // the source file (an included file's path as resolved)
	Line int    // 1-based; 0 when the note is about the input as a whole
	Msg  string
}

// String formats n as "file:line: msg", or "file: msg" without a line.
func (n Note) String() string {
	if n.Line > 0 {
		return n.File + ":" + strconv.Itoa(n.Line) + ": " + n.Msg
	}
	return n.File + ": " + n.Msg
}

// Imported is the result of translating another tool's configuration into gvs's.
type Imported struct {
	// TOML is the gvs configuration, with the notes repeated as comments at its top.
	// config.Parse accepts it: whatever gvs would refuse is written commented out,
	// with a note saying why.
	TOML []byte
	// Notes are in source order (position in the input as read, includes in place).
	Notes []Note
	// Config is TOML as config.Parse returns it.
	Config *config.Config
}

// An Opt is an optional value: OK says whether the source set it.
type Opt[T any] struct {
	V  T
	OK bool
}

// Some returns v as a set Opt.
func Some[T any](v T) Opt[T] { return Opt[T]{v, true} }

// Or returns o when it is set, otherwise d (an inherited default).
func (o Opt[T]) Or(d Opt[T]) Opt[T] {
	if o.OK {
		return o
	}
	return d
}

// Pos is where something came from; Seq orders positions across included files.
type Pos struct {
	File string
	Line int
	Seq  int
}

type noteEntry struct {
	Note
	seq int
}

// A Doc is the gvs configuration an importer builds, before Finish writes it. Its
// blocks keep their source position (for the comment naming it and for notes) and,
// in Off, why gvs would refuse them (then they are written commented out). Values
// the source did not set are left out of the TOML, so gvs's defaults apply.
//
// The zero Doc is empty; set Tool. A Doc is not safe for concurrent use.
type Doc struct {
	Tool    string   // "keepalived", "ipvsadm": named in the header
	Summary []string // header comment lines after the first
	Dir     Director
	Scripts Scripts
	// VRRPScripts, TrackFiles and TrackProcesses become [[vrrp_script]],
	// [[vrrp_track_file]] and [[vrrp_track_process]] tables, in source order.
	VRRPScripts    []*VRRPScript
	TrackFiles     []*TrackFile
	TrackProcesses []*TrackProcess
	Services       []*Service
	VRRP           []*VRRP
	Groups         []*SyncGroup
	// Cluster is [cluster], written after the services; nil: none.
	Cluster *Cluster
	notes   []noteEntry
}

// Cluster is what an import sets of [cluster]: keepalived's lvs_sync_daemon, an
// active/standby pair with connection sync, becomes announce = "vrrp"
// (docs/cluster.md §14). Options the source did not set are left out.
type Cluster struct {
	Pos         Pos
	NodeID      string // node_id; "": the host name
	Interface   string // sync_interface
	SyncID      Opt[int]
	MaxLen      Opt[int]
	Port        Opt[int]
	TTL         Opt[int]
	Group       netip.Addr // sync_group; invalid: the default
	ControlPort Opt[int]   // set only when the sync port would take gvs's default control port
	Off         string     // non-empty: written commented out, for this reason
}

// Director is what an import sets of [director].
type Director struct {
	Addr4, Addr6     bool // [director] address / address6 set (never, so far)
	Iface            string
	TCP, TCPFin, UDP Opt[time.Duration] // tcp_timeout, tcpfin_timeout, udp_timeout
}

// Scripts is what an import sets of [scripts].
type Scripts struct {
	User     string // script_user, "USER" or "USER GROUP"
	Security bool   // enable_script_security
}

// A VRRPScript becomes one [[vrrp_script]].
type VRRPScript struct {
	Pos      Pos
	Name     string
	Script   []string
	Interval Opt[time.Duration]
	Timeout  Opt[time.Duration]
	Weight   int
	Reverse  bool
	Rise     Opt[int]
	Fall     Opt[int]
	User     string
	InitFail bool
	Off      string
}

// A TrackFile becomes one [[vrrp_track_file]].
type TrackFile struct {
	Pos     Pos
	Name    string
	File    string
	Weight  Opt[int] // unset: 1
	Reverse bool
	Off     string
}

// A TrackProcess becomes one [[vrrp_track_process]].
type TrackProcess struct {
	Pos            Pos
	Name           string
	Process        string
	Params         []string
	ParamMatch     string // "", "exact", "partial", "initial"
	FullCommand    bool
	Weight         int
	Reverse        bool
	Quorum         Opt[int]
	QuorumMax      Opt[int]
	ForkDelay      Opt[time.Duration]
	TerminateDelay Opt[time.Duration]
	Off            string
}

// A Service becomes one [[service]].
type Service struct {
	Pos     Pos
	What    string // how the source names it, for comments and notes
	Addr    netip.AddrPort
	FWMark  uint32
	Inet6   bool   // fwmark services: family inet6
	Proto   string // "" (tcp), "udp"; anything else is refused by gvs check
	Sched   string // "" = gvs's default
	Flags   []string
	Method  string // "" = gvs's default
	Persist Opt[time.Duration]
	Netmask any // a mask string ("255.255.255.0") or a prefix length (int); nil = default
	OPS     bool
	// What health checks do (keepalived's names); SorryPos and QuorumPos are
	// where the source set them, for notes.
	Inhibit    bool
	Sorry      Opt[netip.AddrPort] // port 0: the service's
	SorryPos   Pos
	Quorum     Opt[int]
	Hysteresis Opt[int]
	QuorumUp   string
	QuorumDown string
	QuorumPos  []Pos
	Check      *Check
	Reals      []*RealServer
	Off        string // non-empty: written commented out, for this reason
}

// A RealServer becomes one [[service.real_server]].
type RealServer struct {
	Pos     Pos
	Addr    netip.Addr
	Port    uint16 // 0 = written without a port
	Weight  Opt[int]
	Method  string // "" = the service's
	Upper   uint32
	Lower   uint32
	Inhibit Opt[bool] // written when it differs from the service's
	// Checks are the server's own checks ([[service.real_server.check]]), which
	// replace the service's for it; nil: the service's.
	Checks []*Check
	Off    string
}

// Label is the real server's address as written: "IP" without a port, else
// "IP:port".
func (r *RealServer) Label() string {
	if r.Port != 0 {
		return netip.AddrPortFrom(r.Addr, r.Port).String()
	}
	return r.Addr.String()
}

// A Check becomes a [service.check].
type Check struct {
	Pos         Pos
	Type        string
	Interval    Opt[time.Duration]
	Timeout     Opt[time.Duration]
	Retries     Opt[int]
	RetryDelay  Opt[time.Duration]
	Path        string
	Codes       []int
	Digest      string
	Host        string
	SNI         string
	Payload     Opt[string]
	Expect      string
	Command     []string
	ConnectIP   netip.Addr
	ConnectPort uint16
	Alpha       bool
	Omega       bool
	Off         string
}

// A VRRP becomes one [[vrrp]].
type VRRP struct {
	Pos      Pos
	Name     string
	Iface    string
	State    string
	VRID     int
	Priority int // 0 = not set
	Advert   Opt[time.Duration]
	Version  int // 0 = not set
	AuthType string
	AuthPass string
	VIPs     []netip.Addr
	// VIPForms are the VIPs as virtual_ipaddress entries in keepalived's form
	// ("ADDR/LEN dev IF label L …"), one per VIP; nil: the plain addresses.
	VIPForms []string
	// ExcludedForms, Routes and Rules are virtual_ipaddress_excluded, virtual_routes
	// and virtual_rules entries in keepalived's form, which gvs's config reads as is.
	ExcludedForms       []string
	Routes              []string
	Rules               []string
	GARPLowerPrioDelay  Opt[time.Duration]
	GARPLowerPrioRepeat Opt[int]
	Src                 netip.Addr
	Peers               []netip.Addr
	NoPreempt           bool
	PreemptDelay        Opt[time.Duration]
	GARPDelay           Opt[time.Duration]
	GARPRepeat          Opt[int]
	GARPRefresh         Opt[time.Duration]
	GARPRefreshRepeat   Opt[int]
	NotifyMaster        string
	NotifyBackup        string
	NotifyFault         string
	Notify              string
	Track               []Track // track_interface
	// TrackScript, TrackFile and TrackProcess are track_script, track_file and
	// track_process entries, "NAME", "NAME weight W [reverse]".
	TrackScript, TrackFile, TrackProcess []string
	Off                                  string
}

// A Track is one track_interface entry; Weight 0 = none.
type Track struct {
	Pos     Pos
	Name    string
	Weight  int
	Reverse bool
}

// String returns the entry as track_interface takes it: "eth1", "eth1 weight -20"
// or "eth1 weight 10 reverse".
func (t Track) String() string {
	switch {
	case t.Reverse:
		return t.Name + " weight " + strconv.Itoa(t.Weight) + " reverse"
	case t.Weight == 0:
		return t.Name
	}
	return t.Name + " weight " + strconv.Itoa(t.Weight)
}

// A SyncGroup becomes one [[vrrp_sync_group]].
type SyncGroup struct {
	Pos     Pos
	Name    string
	Listed  []string // the members as written, for a group written commented out
	Members []Member // the members that name an instance, each in this group only
	group   []string // the members whose instance is written live (syncGroupMembers)
	Off     string
}

// A Member is one member of a sync group.
type Member struct {
	Pos  Pos
	Name string
}

// Note records a note at p.
func (d *Doc) Note(p Pos, format string, args ...any) {
	d.notes = append(d.notes, noteEntry{Note{File: p.File, Line: p.Line, Msg: fmt.Sprintf(format, args...)}, p.Seq})
}

// sortedNotes returns the notes in source order, without exact repeats.
func (d *Doc) sortedNotes() []Note {
	slices.SortStableFunc(d.notes, func(a, b noteEntry) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]Note, 0, len(d.notes))
	seen := map[Note]bool{}
	for _, n := range d.notes {
		if !seen[n.Note] {
			seen[n.Note] = true
			out = append(out, n.Note)
		}
	}
	return out
}
