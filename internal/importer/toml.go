package importer

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/gvs-lb/gvs/internal/config"
)

// The TOML shape of a gvs config file: these types carry config's key names as
// struct tags, and the encoder writes them. Values a source did not set are nil,
// zero or empty and left out, so config's defaults apply. They are the one place
// the importers spell a key.
type (
	tomlFile struct {
		Director   *tomlDirector    `toml:"director,omitempty"`
		Scripts    *tomlScripts     `toml:"scripts,omitempty"`
		VRRPScript []tomlVRRPScript `toml:"vrrp_script,omitempty"`
		TrackFile  []tomlTrackFile  `toml:"vrrp_track_file,omitempty"`
		TrackProc  []tomlTrackProc  `toml:"vrrp_track_process,omitempty"`
		VRRP       []tomlVRRP       `toml:"vrrp,omitempty"`
		SyncGroup  []tomlSyncGroup  `toml:"vrrp_sync_group,omitempty"`
		Service    []tomlService    `toml:"service,omitempty"`
		Cluster    *tomlCluster     `toml:"cluster,omitempty"`
	}
	tomlCluster struct {
		Enabled       bool   `toml:"enabled"`
		NodeID        string `toml:"node_id,omitempty"`
		Announce      string `toml:"announce"`
		SyncInterface string `toml:"sync_interface,omitempty"`
		SyncGroup     string `toml:"sync_group,omitempty"`
		SyncPort      *int   `toml:"sync_port,omitempty"`
		SyncTTL       *int   `toml:"sync_ttl,omitempty"`
		SyncID        *int   `toml:"sync_id,omitempty"`
		SyncMaxLen    *int   `toml:"sync_maxlen,omitempty"`
		ControlPort   *int   `toml:"control_port,omitempty"`
	}
	tomlDirector struct {
		Interface     string    `toml:"interface,omitempty"`
		TCPTimeout    *duration `toml:"tcp_timeout,omitempty"`
		TCPFinTimeout *duration `toml:"tcpfin_timeout,omitempty"`
		UDPTimeout    *duration `toml:"udp_timeout,omitempty"`
	}
	tomlScripts struct {
		ScriptUser           string `toml:"script_user,omitempty"`
		EnableScriptSecurity bool   `toml:"enable_script_security,omitempty"`
	}
	tomlVRRPScript struct {
		Name     string    `toml:"name"`
		Script   []string  `toml:"script"`
		Interval *duration `toml:"interval,omitempty"`
		Timeout  *duration `toml:"timeout,omitempty"`
		Weight   int       `toml:"weight,omitzero"`
		Reverse  bool      `toml:"reverse,omitempty"`
		Rise     *int      `toml:"rise,omitempty"`
		Fall     *int      `toml:"fall,omitempty"`
		User     string    `toml:"user,omitempty"`
		InitFail bool      `toml:"init_fail,omitempty"`
	}
	tomlTrackFile struct {
		Name    string `toml:"name"`
		File    string `toml:"file"`
		Weight  *int   `toml:"weight,omitempty"`
		Reverse bool   `toml:"reverse,omitempty"`
	}
	tomlTrackProc struct {
		Name           string    `toml:"name"`
		Process        string    `toml:"process"`
		Params         []string  `toml:"params,omitempty"`
		ParamMatch     string    `toml:"param_match,omitempty"`
		FullCommand    bool      `toml:"full_command,omitempty"`
		Weight         int       `toml:"weight,omitzero"`
		Reverse        bool      `toml:"reverse,omitempty"`
		Quorum         *int      `toml:"quorum,omitempty"`
		QuorumMax      *int      `toml:"quorum_max,omitempty"`
		ForkDelay      *duration `toml:"fork_delay,omitempty"`
		TerminateDelay *duration `toml:"terminate_delay,omitempty"`
	}
	tomlVRRP struct {
		Name                    string       `toml:"name"`
		Interface               string       `toml:"interface,omitempty"`
		State                   string       `toml:"state,omitempty"`
		VirtualRouterID         int          `toml:"virtual_router_id"`
		Priority                int          `toml:"priority,omitzero"`
		AdvertInt               *duration    `toml:"advert_int,omitempty"`
		Version                 int          `toml:"version,omitzero"`
		AuthType                string       `toml:"auth_type,omitempty"`
		AuthPass                *string      `toml:"auth_pass,omitempty"`
		VirtualIPAddress        []string     `toml:"virtual_ipaddress"` // never nil: gvs requires it
		UnicastSrcIP            netip.Addr   `toml:"unicast_src_ip,omitempty"`
		UnicastPeer             []netip.Addr `toml:"unicast_peer,omitempty"`
		NoPreempt               bool         `toml:"nopreempt,omitempty"`
		PreemptDelay            *duration    `toml:"preempt_delay,omitempty"`
		GARPMasterDelay         *duration    `toml:"garp_master_delay,omitempty"`
		GARPMasterRepeat        *int         `toml:"garp_master_repeat,omitempty"`
		GARPMasterRefresh       *duration    `toml:"garp_master_refresh,omitempty"`
		GARPMasterRefreshRepeat *int         `toml:"garp_master_refresh_repeat,omitempty"`
		GARPLowerPrioDelay      *duration    `toml:"garp_lower_prio_delay,omitempty"`
		GARPLowerPrioRepeat     *int         `toml:"garp_lower_prio_repeat,omitempty"`
		Excluded                []string     `toml:"virtual_ipaddress_excluded,omitempty"`
		Routes                  []string     `toml:"virtual_routes,omitempty"`
		Rules                   []string     `toml:"virtual_rules,omitempty"`
		NotifyMaster            string       `toml:"notify_master,omitempty"`
		NotifyBackup            string       `toml:"notify_backup,omitempty"`
		NotifyFault             string       `toml:"notify_fault,omitempty"`
		Notify                  string       `toml:"notify,omitempty"`
		TrackInterface          []string     `toml:"track_interface,omitempty"`
		TrackScript             []string     `toml:"track_script,omitempty"`
		TrackFile               []string     `toml:"track_file,omitempty"`
		TrackProcess            []string     `toml:"track_process,omitempty"`
	}
	tomlSyncGroup struct {
		Name  string   `toml:"name"`
		Group []string `toml:"group"` // never nil
	}
	tomlService struct {
		FWMark           uint32           `toml:"fwmark,omitzero"`
		Family           string           `toml:"family,omitempty"`
		Address          string           `toml:"address,omitempty"`
		Protocol         string           `toml:"protocol,omitempty"`
		Scheduler        string           `toml:"scheduler,omitempty"`
		SchedulerFlags   []string         `toml:"scheduler_flags,omitempty"`
		Method           string           `toml:"method,omitempty"`
		Persistence      *duration        `toml:"persistence,omitempty"`
		Netmask          any              `toml:"netmask,omitempty"`
		OPS              bool             `toml:"ops,omitempty"`
		InhibitOnFailure bool             `toml:"inhibit_on_failure,omitempty"`
		SorryServer      string           `toml:"sorry_server,omitempty"`
		Quorum           *int             `toml:"quorum,omitempty"`
		Hysteresis       *int             `toml:"hysteresis,omitempty"`
		QuorumUp         string           `toml:"quorum_up,omitempty"`
		QuorumDown       string           `toml:"quorum_down,omitempty"`
		Check            *tomlCheck       `toml:"check,omitempty"`
		RealServer       []tomlRealServer `toml:"real_server,omitempty"`
	}
	tomlCheck struct {
		Type        string     `toml:"type"`
		Interval    *duration  `toml:"interval,omitempty"`
		Timeout     *duration  `toml:"timeout,omitempty"`
		Retries     *int       `toml:"retries,omitempty"`
		RetryDelay  *duration  `toml:"retry_delay,omitempty"`
		Path        string     `toml:"path,omitempty"`
		StatusCodes []int      `toml:"status_codes,omitempty"`
		Expect      string     `toml:"expect,omitempty"`
		Digest      string     `toml:"digest,omitempty"`
		Host        string     `toml:"host,omitempty"`
		SNI         string     `toml:"sni,omitempty"`
		Payload     *string    `toml:"payload,omitempty"`
		Command     []string   `toml:"command,omitempty"`
		ConnectIP   netip.Addr `toml:"connect_ip,omitempty"`
		ConnectPort uint16     `toml:"connect_port,omitzero"`
		Alpha       bool       `toml:"alpha,omitempty"`
		Omega       bool       `toml:"omega,omitempty"`
	}
	tomlRealServer struct {
		Address          string      `toml:"address"`
		Weight           *int        `toml:"weight,omitempty"`
		Method           string      `toml:"method,omitempty"`
		UpperThreshold   uint32      `toml:"upper_threshold,omitzero"`
		LowerThreshold   uint32      `toml:"lower_threshold,omitzero"`
		InhibitOnFailure *bool       `toml:"inhibit_on_failure,omitempty"`
		Check            []tomlCheck `toml:"check,omitempty"`
	}
)

// duration is a time.Duration as config reads it: "6s" for whole seconds, else Go
// syntax ("1.5s", "250ms").
type duration time.Duration

func (d duration) MarshalText() ([]byte, error) {
	if time.Duration(d)%time.Second == 0 {
		return []byte(strconv.FormatInt(int64(time.Duration(d)/time.Second), 10) + "s"), nil
	}
	return []byte(time.Duration(d).String()), nil
}

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = duration(v)
	return err
}

// optional returns a pointer to o's value, or nil when o is not set; conv converts
// the value.
func optional[T, U any](o Opt[T], conv func(T) U) *U {
	if !o.OK {
		return nil
	}
	v := conv(o.V)
	return &v
}

func dur(d time.Duration) duration { return duration(d) }
func same[T any](v T) T            { return v }

// text makes s valid UTF-8 (a TOML document is UTF-8; the encoder escapes control
// characters itself).
func text(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func texts(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = text(s)
	}
	return out
}

func (d *Director) toml() *tomlDirector {
	if d.Iface == "" && !d.TCP.OK && !d.TCPFin.OK && !d.UDP.OK {
		return nil
	}
	return &tomlDirector{
		Interface:     text(d.Iface),
		TCPTimeout:    optional(d.TCP, dur),
		TCPFinTimeout: optional(d.TCPFin, dur),
		UDPTimeout:    optional(d.UDP, dur),
	}
}

func (v *VRRP) toml() tomlVRRP {
	t := tomlVRRP{
		Name:                    text(v.Name),
		Interface:               text(v.Iface),
		State:                   text(v.State),
		VirtualRouterID:         v.VRID,
		Priority:                v.Priority,
		AdvertInt:               optional(v.Advert, dur),
		Version:                 v.Version,
		AuthType:                text(v.AuthType),
		VirtualIPAddress:        []string{},
		UnicastSrcIP:            v.Src,
		UnicastPeer:             v.Peers,
		NoPreempt:               v.NoPreempt,
		PreemptDelay:            optional(v.PreemptDelay, dur),
		GARPMasterDelay:         optional(v.GARPDelay, dur),
		GARPMasterRepeat:        optional(v.GARPRepeat, same),
		GARPMasterRefresh:       optional(v.GARPRefresh, dur),
		GARPMasterRefreshRepeat: optional(v.GARPRefreshRepeat, same),
		GARPLowerPrioDelay:      optional(v.GARPLowerPrioDelay, dur),
		GARPLowerPrioRepeat:     optional(v.GARPLowerPrioRepeat, same),
		Excluded:                texts(v.ExcludedForms),
		Routes:                  texts(v.Routes),
		Rules:                   texts(v.Rules),
		NotifyMaster:            text(v.NotifyMaster),
		NotifyBackup:            text(v.NotifyBackup),
		NotifyFault:             text(v.NotifyFault),
		Notify:                  text(v.Notify),
	}
	if v.AuthType != "" {
		p := text(v.AuthPass) // written even when empty, so gvs names what is wrong with it
		t.AuthPass = &p
	}
	for i, a := range v.VIPs {
		if i < len(v.VIPForms) {
			t.VirtualIPAddress = append(t.VirtualIPAddress, text(v.VIPForms[i]))
		} else {
			t.VirtualIPAddress = append(t.VirtualIPAddress, a.String())
		}
	}
	for _, tr := range v.Track {
		t.TrackInterface = append(t.TrackInterface, text(tr.String()))
	}
	t.TrackScript = texts(v.TrackScript)
	t.TrackFile = texts(v.TrackFile)
	t.TrackProcess = texts(v.TrackProcess)
	return t
}

func (f *TrackFile) toml() tomlTrackFile {
	return tomlTrackFile{Name: text(f.Name), File: text(f.File), Weight: optional(f.Weight, same), Reverse: f.Reverse}
}

func (p *TrackProcess) toml() tomlTrackProc {
	return tomlTrackProc{
		Name:           text(p.Name),
		Process:        text(p.Process),
		Params:         texts(p.Params),
		ParamMatch:     text(p.ParamMatch),
		FullCommand:    p.FullCommand,
		Weight:         p.Weight,
		Reverse:        p.Reverse,
		Quorum:         optional(p.Quorum, same),
		QuorumMax:      optional(p.QuorumMax, same),
		ForkDelay:      optional(p.ForkDelay, dur),
		TerminateDelay: optional(p.TerminateDelay, dur),
	}
}

func (s *Scripts) toml() *tomlScripts {
	if *s == (Scripts{}) {
		return nil
	}
	return &tomlScripts{ScriptUser: text(s.User), EnableScriptSecurity: s.Security}
}

func (s *VRRPScript) toml() tomlVRRPScript {
	return tomlVRRPScript{
		Name:     text(s.Name),
		Script:   append([]string{}, texts(s.Script)...),
		Interval: optional(s.Interval, dur),
		Timeout:  optional(s.Timeout, dur),
		Weight:   s.Weight,
		Reverse:  s.Reverse,
		Rise:     optional(s.Rise, same),
		Fall:     optional(s.Fall, same),
		User:     text(s.User),
		InitFail: s.InitFail,
	}
}

func (g *SyncGroup) toml() tomlSyncGroup {
	members := g.group
	if g.Off != "" {
		members = g.Listed
	}
	return tomlSyncGroup{Name: text(g.Name), Group: append([]string{}, texts(members)...)}
}

// toml returns the service's own keys, without its check and real servers.
func (s *Service) toml() tomlService {
	t := tomlService{
		FWMark:           s.FWMark,
		Protocol:         text(s.Proto),
		Scheduler:        text(s.Sched),
		SchedulerFlags:   texts(s.Flags),
		Method:           text(s.Method),
		Persistence:      optional(s.Persist, dur),
		Netmask:          s.Netmask,
		OPS:              s.OPS,
		InhibitOnFailure: s.Inhibit,
		Quorum:           optional(s.Quorum, same),
		Hysteresis:       optional(s.Hysteresis, same),
		QuorumUp:         text(s.QuorumUp),
		QuorumDown:       text(s.QuorumDown),
	}
	if len(t.SchedulerFlags) == 0 {
		t.SchedulerFlags = nil
	}
	if m, ok := s.Netmask.(string); ok {
		t.Netmask = text(m)
	}
	if s.FWMark != 0 {
		if s.Inet6 {
			t.Family = "inet6"
		}
	} else {
		t.Address = s.Addr.String()
	}
	if s.Sorry.OK {
		// "IP" takes the service's port, as gvs reads it.
		t.SorryServer = s.Sorry.V.String()
		if s.Sorry.V.Port() == 0 {
			t.SorryServer = s.Sorry.V.Addr().String()
		}
	}
	return t
}

func (c *Check) toml() tomlCheck {
	return tomlCheck{
		Type:        text(c.Type),
		Interval:    optional(c.Interval, dur),
		Timeout:     optional(c.Timeout, dur),
		Retries:     optional(c.Retries, same),
		RetryDelay:  optional(c.RetryDelay, dur),
		Path:        text(c.Path),
		StatusCodes: c.Codes,
		Expect:      text(c.Expect),
		Digest:      text(c.Digest),
		Host:        text(c.Host),
		SNI:         text(c.SNI),
		Payload:     optional(c.Payload, text),
		Command:     texts(c.Command),
		ConnectIP:   c.ConnectIP,
		ConnectPort: c.ConnectPort,
		Alpha:       c.Alpha,
		Omega:       c.Omega,
	}
}

func (r *RealServer) toml() tomlRealServer {
	t := tomlRealServer{
		Address:          r.Label(),
		Weight:           optional(r.Weight, same),
		Method:           text(r.Method),
		UpperThreshold:   r.Upper,
		LowerThreshold:   r.Lower,
		InhibitOnFailure: optional(r.Inhibit, same),
	}
	for _, c := range r.Checks {
		t.Check = append(t.Check, c.toml())
	}
	return t
}

// marshal encodes v, a tomlFile, without indentation.
func marshal(v tomlFile) []string {
	var b bytes.Buffer
	enc := toml.NewEncoder(&b)
	enc.Indent = ""
	if err := enc.Encode(v); err != nil {
		// Every value is built above from strings, numbers, addresses and
		// durations, which the encoder always takes.
		panic("importer: the TOML encoder refused a config value: " + err.Error())
	}
	return strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
}

// subTable returns the lines of the one sub-table of a [[service]] that has only it
// (its check or one real server): the encoder's output without the [[service]]
// header it writes first.
func subTable(s tomlService) []string {
	lines := marshal(tomlFile{Service: []tomlService{s}})
	if lines[0] != "[[service]]" {
		panic("importer: the TOML encoder wrote " + strconv.Quote(lines[0]) + " before a sub-table, not [[service]]")
	}
	lines = lines[1:]
	for len(lines) > 0 && lines[0] == "" {
		lines = lines[1:]
	}
	return lines
}

// Lines returns the check's key lines, `key = value` as they are written; two
// checks are the same when these are.
func (c *Check) Lines() []string {
	t := c.toml()
	return subTable(tomlService{Check: &t})[1:]
}

// tomlWriter writes TOML lines, optionally all commented out.
type tomlWriter struct {
	b         strings.Builder
	lines     int
	commented bool
}

func (w *tomlWriter) line(s string) {
	if w.commented && s != "" {
		w.b.WriteString("# ")
	}
	w.b.WriteString(s)
	w.b.WriteByte('\n')
	w.lines++
}

// block writes the lines of a marshalled block, each after indent.
func (w *tomlWriter) block(indent string, lines []string) {
	for _, l := range lines {
		if l == "" {
			w.line("")
			continue
		}
		w.line(indent + l)
	}
}

// comment writes s as comment lines (s may hold several lines).
func (w *tomlWriter) comment(indent, s string) {
	for l := range strings.SplitSeq(s, "\n") {
		w.line(indent + "# " + CommentText(l))
	}
}

// CommentText makes s safe inside a TOML comment: valid UTF-8 without control
// characters other than tab (those are written as \xNN).
func CommentText(s string) string {
	s = text(s)
	if strings.IndexFunc(s, func(r rune) bool { return r != '\t' && (r < 0x20 || r == 0x7f) }) < 0 {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r != '\t' && (r < 0x20 || r == 0x7f) {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// A span is the lines [start, end] one block was written on, so that a problem
// config.Parse reports can be traced back to the block that caused it.
type span struct {
	start, end int
	off        *string
	what       string
	pos        Pos
}

// render writes the document and returns the spans of its blocks. Each block is
// marshalled on its own, so that it can be preceded by a comment naming its source
// and written commented out when gvs would refuse it.
func (d *Doc) render(notes []Note) ([]byte, []span) {
	w := &tomlWriter{}
	var spans []span
	w.comment("", "gvs configuration written by `gvs import "+d.Tool+"`.")
	for _, s := range d.Summary {
		w.comment("", s)
	}
	w.comment("", "Check it with `gvs check -c FILE`. Each note below is something that was not")
	w.comment("", "translated exactly (the same notes are printed on stderr); blocks gvs would")
	w.comment("", "refuse are written commented out.")
	if len(notes) > 0 {
		w.line("#")
		for _, n := range notes {
			w.comment("", "note: "+n.String())
		}
	}

	if dir := d.Dir.toml(); dir != nil {
		w.line("")
		w.block("", marshal(tomlFile{Director: dir}))
	}
	if sc := d.Scripts.toml(); sc != nil {
		w.line("")
		w.block("", marshal(tomlFile{Scripts: sc}))
	}
	// block writes one top-level block, commented out when *off is set.
	block := func(pos Pos, what string, off *string, write func()) {
		w.line("")
		w.comment("", originText(pos, what))
		w.commented = *off != ""
		start := w.lines + 1
		write()
		spans = append(spans, span{start, w.lines, off, what, pos})
		w.commented = false
	}
	for _, vs := range d.VRRPScripts {
		block(vs.Pos, "vrrp_script "+vs.Name, &vs.Off, func() {
			w.block("", marshal(tomlFile{VRRPScript: []tomlVRRPScript{vs.toml()}}))
		})
	}
	for _, f := range d.TrackFiles {
		block(f.Pos, "vrrp_track_file "+f.Name, &f.Off, func() {
			w.block("", marshal(tomlFile{TrackFile: []tomlTrackFile{f.toml()}}))
		})
	}
	for _, p := range d.TrackProcesses {
		block(p.Pos, "vrrp_track_process "+p.Name, &p.Off, func() {
			w.block("", marshal(tomlFile{TrackProc: []tomlTrackProc{p.toml()}}))
		})
	}
	for _, v := range d.VRRP {
		block(v.Pos, "vrrp_instance "+v.Name, &v.Off, func() {
			w.block("", marshal(tomlFile{VRRP: []tomlVRRP{v.toml()}}))
		})
	}
	for _, g := range d.Groups {
		block(g.Pos, "vrrp_sync_group "+g.Name, &g.Off, func() {
			w.block("", marshal(tomlFile{SyncGroup: []tomlSyncGroup{g.toml()}}))
		})
	}
	for _, s := range d.Services {
		block(s.Pos, s.What, &s.Off, func() { spans = append(spans, s.render(w)...) })
	}
	if c := d.Cluster; c != nil {
		block(c.Pos, "lvs_sync_daemon", &c.Off, func() {
			w.block("", marshal(tomlFile{Cluster: c.toml()}))
		})
	}
	return []byte(w.b.String()), spans
}

func (c *Cluster) toml() *tomlCluster {
	t := &tomlCluster{Enabled: true, NodeID: c.NodeID, Announce: "vrrp", SyncInterface: c.Interface,
		SyncPort: optional(c.Port, same[int]), SyncTTL: optional(c.TTL, same[int]), SyncID: optional(c.SyncID, same[int]),
		SyncMaxLen: optional(c.MaxLen, same[int]), ControlPort: optional(c.ControlPort, same[int])}
	if c.Group.IsValid() {
		t.SyncGroup = c.Group.String()
	}
	return t
}

func originText(p Pos, what string) string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, what)
	}
	return p.File + ": " + what
}

// render writes the service, its check and its real servers, each of those
// commented out on its own when gvs would refuse it, and returns their spans.
func (s *Service) render(w *tomlWriter) []span {
	var spans []span
	w.block("", marshal(tomlFile{Service: []tomlService{s.toml()}}))
	if s.FWMark != 0 {
		w.line("")
		w.comment("  ", "gvs needs the packets that carry the mark, e.g.:")
		w.comment("  ", "[[service.match]]")
		w.comment("  ", `address = "VIP"`)
		w.comment("  ", `protocol = "tcp"`)
		w.comment("  ", `port = "80"`)
	}
	sub := func(lines []string, off *string, what string, pos Pos) {
		w.line("")
		outer := w.commented
		w.commented = outer || *off != ""
		start := w.lines + 1
		w.block("  ", lines)
		spans = append(spans, span{start, w.lines, off, what, pos})
		w.commented = outer
	}
	if c := s.Check; c != nil {
		t := c.toml()
		sub(subTable(tomlService{Check: &t}), &c.Off, s.What+": the health check ("+c.Type+")", c.Pos)
	}
	for _, r := range s.Reals {
		sub(subTable(tomlService{RealServer: []tomlRealServer{r.toml()}}), &r.Off, s.What+": real_server "+r.Label(), r.Pos)
	}
	return spans
}

// Finish writes the document and proves it with config.Parse. A block Parse refuses
// is written commented out, with a note quoting gvs's reason, and the document is
// written again, until Parse accepts it; name is used for the parse.
func (d *Doc) Finish(name string) (*Imported, error) {
	d.tunnelSources()
	for range 1000 {
		d.syncGroupMembers()
		text, spans := d.render(nil)
		_, err := config.Parse(name, text)
		if err == nil {
			notes := d.sortedNotes()
			text, _ = d.render(notes)
			cfg, err := config.Parse(name, text)
			if err != nil {
				// Comments cannot change what Parse sees.
				return nil, fmt.Errorf("import: notes changed the output: %w", err)
			}
			return &Imported{TOML: text, Notes: notes, Config: cfg}, nil
		}
		var es config.Errors
		if !errors.As(err, &es) {
			return nil, fmt.Errorf("import: %w", err)
		}
		why := map[*string][]string{}
		var order []*span
		for _, e := range es {
			sp := innermost(spans, e.Line)
			if sp == nil {
				return nil, fmt.Errorf("import: the translation is not a valid gvs config: %w", err)
			}
			if _, seen := why[sp.off]; !seen {
				order = append(order, sp)
			}
			why[sp.off] = append(why[sp.off], errorText(e))
		}
		for _, sp := range order {
			msgs := slices.Compact(why[sp.off])
			*sp.off = strings.Join(msgs, "; ")
			d.Note(sp.pos, "%s is written commented out: gvs would refuse it: %s", sp.what, *sp.off)
		}
	}
	return nil, errors.New("import: could not produce a valid config")
}

// tunnelSources applies the one rule gvs check adds to Parse that an import can
// break (the dataplane's Apply): a TUN real server needs the director's own address
// of its family, the tunnel's outer source, which neither keepalived.conf nor an
// ipvsadm dump holds. cmd/gvs's import test runs the real gvs check on every
// importer input, so a new dataplane rule shows up there.
func (d *Doc) tunnelSources() {
	for _, s := range d.Services {
		for _, r := range s.Reals {
			m := r.Method
			if m == "" {
				m = s.Method
			}
			if m != "tun" || r.Off != "" {
				continue
			}
			key, fam := "address", "IPv4"
			if r.Addr.Is6() {
				key, fam = "address6", "IPv6"
			}
			if (key == "address" && d.Dir.Addr4) || (key == "address6" && d.Dir.Addr6) {
				continue
			}
			r.Off = "TUN needs [director] " + key
			d.Note(r.Pos, "%s: real_server %s is written commented out: TUN needs the director's own %s address as the tunnel's outer source: set [director] %s and uncomment it", s.What, r.Label(), fam, key)
		}
	}
}

// syncGroupMembers sets each sync group's members to those whose instance is
// written live: gvs refuses a group naming an instance it does not run. Finish
// calls it before each try, as a try may comment out an instance; a group left
// without members is written commented out.
func (d *Doc) syncGroupMembers() {
	live := map[string]bool{}
	for _, v := range d.VRRP {
		if v.Off == "" {
			live[v.Name] = true
		}
	}
	for _, g := range d.Groups {
		if g.Off != "" {
			continue
		}
		g.group = nil
		for _, m := range g.Members {
			if live[m.Name] {
				g.group = append(g.group, m.Name)
			} else {
				d.Note(m.Pos, "vrrp_sync_group %s: member %s is dropped: its vrrp_instance is written commented out", g.Name, m.Name)
			}
		}
		if len(g.group) == 0 {
			g.Off = "no member"
			d.Note(g.Pos, "vrrp_sync_group %s has no member gvs runs: written commented out", g.Name)
		}
	}
}

// innermost returns the smallest enabled span holding line l.
func innermost(spans []span, l int) *span {
	var best *span
	for i := range spans {
		sp := &spans[i]
		if l < sp.start || l > sp.end || *sp.off != "" {
			continue
		}
		if best == nil || sp.end-sp.start < best.end-best.start {
			best = sp
		}
	}
	return best
}

// errorText is a Parse error without the file and line of the TOML, which the user
// never saw: the last part of the field, then the message.
func errorText(e *config.Error) string {
	f := e.Field
	if i := strings.LastIndexByte(f, '.'); i >= 0 {
		f = f[i+1:]
	} else if strings.HasSuffix(f, "]") {
		f = ""
	}
	if f == "" {
		return e.Err.Error()
	}
	return f + ": " + e.Err.Error()
}
