package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/internal/control"
	"github.com/gvs-lb/gvs/internal/ipvsadm"
	"github.com/gvs-lb/gvs/ipvs"
)

// An Admin carries out ipvsadm commands against a running director: it is the
// control socket's Handler behind `gvs adm`. Table changes (-A -E -D -C -a -e -d -R
// --set) go to the daemon's controller, which owns the configured services, and
// come back when the Director runs them; a command that fails changes nothing.
// Listings read the Director's published generation and never wait for the
// controller.
//
// Counters listed by --stats are those of the Director minus a baseline taken at
// the last -Z, as IPVS zeroes its counters; --rate comes from an estimator that the
// controller drives every 2 seconds. Metrics see the raw counters, never zeroed.
//
// An Admin is safe for concurrent use.
type Admin struct {
	dm     *Daemon
	d      *dataplane.Director
	log    *slog.Logger
	parser ipvsadm.Parser
	res    ipvsadm.Resolver // nil: numeric

	smu  sync.Mutex // guards zero and est; never held while waiting for anything
	zero baseline
	est  estimator
}

func newAdmin(dm *Daemon) *Admin {
	a := &Admin{dm: dm, d: dm.d, log: dm.log}
	a.parser.Program = "gvs adm"
	if n := dm.deps.Names; n != nil {
		a.parser.Names = n
		a.res = n
	}
	return a
}

// LoadNames reads host and service names from files in the format of /etc/hosts
// and /etc/services (pass those for the system's names). A file that cannot be
// read is skipped: listings then print numbers, as ipvsadm does when a lookup
// fails.
func LoadNames(hostsPath, servicesPath string) *ipvsadm.Names {
	n := &ipvsadm.Names{}
	if f, err := os.Open(hostsPath); err == nil {
		_ = n.ReadHosts(f) // what was read before an error is kept
		f.Close()
	}
	if f, err := os.Open(servicesPath); err == nil {
		_ = n.ReadServices(f)
		f.Close()
	}
	return n
}

// Handle carries out one ipvsadm command line (control.Handler): what ipvsadm
// would print goes to Stdout and Stderr, and Status is the status it would exit
// with.
func (a *Admin) Handle(ctx context.Context, req control.Request) control.Response {
	var out bytes.Buffer
	err := a.exec(ctx, req.Args, req.Stdin, &out)
	resp := control.Response{Stdout: out.String(), Status: exitStatus(err)}
	if err != nil {
		resp.Stderr = err.Error() + "\n"
		a.log.Debug("adm command refused", "args", req.Args, "err", err)
	}
	return resp
}

// listError marks a failed listing: ipvsadm exits 1 then, not 255.
type listError struct{ err error }

func (e *listError) Error() string { return e.err.Error() }
func (e *listError) Unwrap() error { return e.err }

func exitStatus(err error) int {
	var le *listError
	if errors.As(err, &le) {
		return 1
	}
	var rr *restoreResult
	if errors.As(err, &rr) {
		return rr.status
	}
	return ipvsadm.ExitStatus(err)
}

func (a *Admin) exec(ctx context.Context, args []string, stdin string, out *bytes.Buffer) error {
	if len(args) > 0 && args[0] == "--vrrp" {
		return a.listVRRP(args[1:], out) // admin_vrrp.go
	}
	if len(args) > 0 && (args[0] == "--cluster" || args[0] == "--cluster-drain" || args[0] == "--cluster-undrain") {
		return a.clusterCommand(args[0], args[1:], out) // admin_cluster.go
	}
	o, args, err := ipvsadm.SplitOptions(args)
	if err != nil {
		return err
	}
	call := admCalls.Get().(*admCall)
	defer call.release()
	c := &call.cmd
	err = a.parser.ParseInto(c, args)
	if err == nil {
		err = ipvsadm.ApplyOptions(c, o)
	}
	if err != nil {
		return admError(err)
	}
	switch c.Op {
	case ipvsadm.OpAddService, ipvsadm.OpEditService, ipvsadm.OpDeleteService, ipvsadm.OpClear,
		ipvsadm.OpAddServer, ipvsadm.OpEditServer, ipvsadm.OpDeleteServer, ipvsadm.OpSetTimeouts:
		call.one[0] = c
		call.ev = admEvent{args: args, cmds: call.one[:], reply: call.reply}
		return call.change(ctx, a)
	case ipvsadm.OpRestore:
		if o.Atomic {
			cmds, lines, err := a.parser.ParseRestoreLines(strings.NewReader(stdin))
			if err != nil {
				return err
			}
			call.ev = admEvent{args: args, cmds: cmds, lines: lines, reply: call.reply}
			return call.change(ctx, a)
		}
		lines, err := a.parser.ReadRestore(strings.NewReader(stdin))
		if err != nil {
			return err
		}
		call.ev = admEvent{args: args, restore: lines, reply: call.reply}
		return call.change(ctx, a)
	case ipvsadm.OpList:
		return a.list(ctx, c, out)
	case ipvsadm.OpSave:
		return ipvsadm.FormatSave(out, a.withMatch(a.services(false)), c.Format, a.res)
	case ipvsadm.OpZero:
		return a.zeroCounters(c)
	case ipvsadm.OpHelp:
		return ipvsadm.FormatUsage(out, a.parser.Program)
	case ipvsadm.OpVersion:
		return ipvsadm.FormatVersion(out)
	case ipvsadm.OpStartDaemon, ipvsadm.OpStopDaemon:
		return unsupported("gvs runs both sync daemons (master and backup) in cluster mode, set by the config's [cluster] table; --start-daemon and --stop-daemon do not apply (gvs adm -L --daemon lists them)")
	}
	return unsupported("command " + c.Op.String() + " is not supported")
}

// withMatch gives the fwmark services of a listing their match rules, for -S.
func (a *Admin) withMatch(svcs []ipvsadm.Service) []ipvsadm.Service {
	rules := map[ipvs.Key][]ipvs.Match{}
	for _, v := range a.views() {
		if len(v.Spec.Match) > 0 {
			rules[v.Spec.Key] = v.Spec.Match
		}
	}
	for i := range svcs {
		if s := &svcs[i]; s.FWMark != 0 {
			s.Match = rules[ipvs.MarkKey(s.FWMark, s.IPv6)]
		}
	}
	return svcs
}

// An admCall is what one gvs adm command hands the controller: its parsed
// command, the event and the channel the answer comes back on. Calls are
// reused (admCalls), so that a command allocates none of them: a call goes
// back to the pool only once the controller answered it, after which nothing
// holds it (the controller copies what it keeps of a command: its services
// and real servers by value, its match rules as they were, as a parse makes
// new ones).
type admCall struct {
	cmd   ipvsadm.Command
	one   [1]*ipvsadm.Command // ev.cmds of a single command
	ev    admEvent
	reply chan error
	held  bool // the controller may still hold the call: not reused
}

var admCalls = sync.Pool{New: func() any { return &admCall{reply: make(chan error, 1)} }}

// release returns the call to the pool unless the controller may hold it.
func (c *admCall) release() {
	if c.held {
		return
	}
	c.one[0] = nil
	c.ev = admEvent{}
	admCalls.Put(c)
}

// change hands the call's table commands (one, or a restore stream) to the
// controller and waits until the Director runs the result, or the controller
// refused it.
func (c *admCall) change(ctx context.Context, a *Admin) error {
	err := a.dm.request(ctx, &c.ev, c.reply)
	switch {
	case errors.Is(err, ErrStopped):
		c.held = true // it may be in the inbox yet
		return unsupported("the director is stopping; the change was not made")
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		// The controller may still carry it out.
		c.held = true
		return unsupported("the request was cancelled before the director answered; list the table to see whether the change was made")
	}
	return err
}

// admEvent is a table change from gvs adm, for the controller: commands applied
// all or nothing (one command, or a restore stream with --atomic, whose lines
// are lines), or a restore stream run line by line as ipvsadm runs it.
type admEvent struct {
	args    []string
	cmds    []*ipvsadm.Command
	lines   []int // cmds from a restore stream: the line of each
	restore []ipvsadm.RestoreLine
	reply   chan error
}

// restoreResult is what a line-by-line restore prints on stderr, the messages of
// its failed lines in order, and the status it exits with: the last line's, as
// ipvsadm -R exits with the result of the last line it ran.
type restoreResult struct {
	msgs   []string
	status int
}

func (r *restoreResult) Error() string { return strings.Join(r.msgs, "\n") }

// admChange carries out an admEvent on the controller's goroutine: the
// commands of ev.cmds on a copy of the configured services, applied in one
// Director.Apply, all of them or, at the first failure, none; or a restore
// stream line by line (admRestore). Timeouts set by --set take effect with the
// rest.
func (d *Daemon) admChange(ev admEvent) error {
	if ev.restore != nil {
		return d.admRestore(ev)
	}
	ed := d.editorFor(ev.cmds)
	var timeouts []ipvsadm.Timeouts
	touched := map[target]bool{}
	for i, c := range ev.cmds {
		if err := d.admEdit(ed, c, touched, &timeouts); err != nil {
			if i < len(ev.lines) {
				return &ipvsadm.LineError{Line: ev.lines[i], Err: err}
			}
			return err
		}
	}
	if len(ev.cmds) > len(timeouts) {
		if err := d.admCommitEdits(ed, touched, ev.cmds); err != nil {
			return err
		}
	}
	d.admDone(ev, touched, timeouts, ed.Service)
	return nil
}

// admRestore runs a restore stream line by line, as ipvsadm -R does: a line the
// table refuses prints its message and the next line runs; a line ipvsadm's
// parser exits at ended the stream already (ReadRestore). The lines that worked
// take effect together, in one generation of the Director, and the status is
// the last line's.
func (d *Daemon) admRestore(ev admEvent) error {
	res := &restoreResult{}
	cmds := make([]*ipvsadm.Command, 0, len(ev.restore))
	for _, l := range ev.restore {
		if l.Cmd != nil {
			cmds = append(cmds, l.Cmd)
		}
	}
	ed := d.editorFor(cmds)
	var timeouts []ipvsadm.Timeouts
	touched := map[target]bool{}
	changed := false
	for _, l := range ev.restore {
		err := admError(l.Err)
		if err == nil {
			n := len(timeouts)
			err = d.admEdit(ed, l.Cmd, touched, &timeouts)
			changed = changed || (err == nil && len(timeouts) == n)
		}
		res.add(err)
	}
	if changed {
		if err := d.admCommitEdits(ed, touched, cmds); err != nil {
			// A limit of gvs's own (capacity, a tunnel without a director
			// address) that no line's edit could see: find the lines it
			// comes from, one commit per line. Rare, hence the cost.
			return d.admRestoreSlowly(ev, timeouts)
		}
	}
	d.admDone(ev, touched, timeouts, ed.Service)
	return res.err()
}

// admRestoreSlowly is admRestore committing after every line, for a stream whose
// lines together do not fit the Director: a line that does not fit fails with the
// reason, as a line the table refuses.
func (d *Daemon) admRestoreSlowly(ev admEvent, timeouts []ipvsadm.Timeouts) error {
	res := &restoreResult{}
	touched := map[target]bool{}
	for _, l := range ev.restore {
		err := admError(l.Err)
		if err == nil && l.Cmd.Op != ipvsadm.OpSetTimeouts {
			ed := d.wholeEditor()
			t := map[target]bool{}
			var none []ipvsadm.Timeouts
			if err = d.admEdit(ed, l.Cmd, t, &none); err == nil {
				if err = d.admCommit(ed.Services()); err == nil {
					maps.Copy(touched, t)
				}
			}
		}
		res.add(err)
	}
	d.admDone(ev, touched, timeouts, nil)
	return res.err()
}

// admError is err as gvs adm prints it: gvs's own refusals (an
// *ipvsadm.UnsupportedError) carry "gvs adm: ", ipvsadm's are its own.
func admError(err error) error {
	var u *ipvsadm.UnsupportedError
	if errors.As(err, &u) {
		return unsupported(u.Msg)
	}
	return err
}

// add records the result of one line.
func (r *restoreResult) add(err error) {
	r.status = exitStatus(err)
	if err != nil {
		r.msgs = append(r.msgs, err.Error())
	}
}

// err is nil for a restore whose lines all worked, else r.
func (r *restoreResult) err() error {
	if len(r.msgs) == 0 && r.status == 0 {
		return nil
	}
	return r
}

// admEdit applies one table command to ed, recording what it touched, or adds
// --set's timeouts to timeouts. An fwmark service added without match rules
// gets the ones it had last (from the config or an earlier -A), or is refused.
func (d *Daemon) admEdit(ed *tableEditor, c *ipvsadm.Command, touched map[target]bool, timeouts *[]ipvsadm.Timeouts) error {
	if c.Op == ipvsadm.OpSetTimeouts {
		*timeouts = append(*timeouts, c.SetTimeouts)
		return nil
	}
	if c.Op == ipvsadm.OpClear {
		for _, s := range ed.Services() {
			touched[target{svc: s.Key}] = true
		}
	}
	t := target{svc: keyOfCommand(&c.Service)}
	if c.Op == ipvsadm.OpAddService && t.svc.IsMark() && c.Match == nil && ed.Service(t.svc) == nil {
		rules := d.st.marks[t.svc]
		if len(rules) == 0 {
			return unsupported(noMatchMessage(c))
		}
		cc := *c
		cc.Match = slices.Clone(rules)
		c = &cc
	}
	if err := admError(ed.Edit(c)); err != nil {
		return err
	}
	switch c.Op {
	case ipvsadm.OpClear:
		return nil
	case ipvsadm.OpAddServer, ipvsadm.OpEditServer, ipvsadm.OpDeleteServer:
		t.rs = netip.AddrPortFrom(c.Dest.Addr.Unmap(), c.Dest.Port)
	}
	touched[t] = true
	return nil
}

// inFile reports whether the configuration file last loaded has the service of
// key k (an index of it made at the first question after a load).
func (d *Daemon) inFile(k ipvs.Key) bool {
	if d.st.fileKeys == nil {
		d.st.fileKeys = make(map[skey]bool, len(d.st.file))
		for i := range d.st.file {
			d.st.fileKeys[packKey(d.st.file[i].Key)] = true
		}
	}
	return d.st.fileKeys[packKey(k)]
}

// noMatchMessage is the refusal of -A -f MARK without match rules.
func noMatchMessage(c *ipvsadm.Command) string {
	mark := strconv.FormatUint(uint64(c.Service.FWMark), 10)
	six, example := "", "198.18.0.100"
	if c.Service.IPv6 {
		six, example = " -6", "2001:db8::100"
	}
	return "-A -f " + mark + six + " has no match rules: gvs has no netfilter to set marks, so no packet would ever carry mark " + mark +
		"; say which packets do with --match " + ipvsadm.MatchSyntax + " (once per rule), e.g. gvs adm -A -f " + mark + six +
		" --match address=" + example + ",protocol=tcp,port=443"
}

// admCommit gives the Director an edited table.
func (d *Daemon) admCommit(conf []ipvs.Service) error { return admCommitError(d.commit(conf)) }

// tableEditor edits the configured table for one admEvent: an ipvsadm.Editor of
// either the whole table, or (partial) only the services the event's commands
// name — the others cannot change — whose result is written into the configured
// table's pages (confTable), so that a command costs what it names, not what the
// table holds.
type tableEditor struct {
	*ipvsadm.Editor
	conf    *confTable // the configured table
	part    keySet     // with partial, the services ed was made with (those named)
	partial bool       // ed holds part of the table, not all of it
	next    *confEdit  // with partial, the edited table once made (edited)
	// unedited: ed holds configured services as they are (commitStale gives
	// the Director their new effective form): the configured table does not
	// change, and its entries are not written again.
	unedited bool
}

// confTable is the configured table: services in the order gvs adm lists them
// (pseq), by key. The index is keyed by skey, which holds no pointer (an
// ipvs.Key's netip.Addr does): its map, 10,000 entries at 10,000 services, is
// memory the collector never scans.
type confTable = pindex[skey, ipvs.Service]

type confEdit = pedit[skey, ipvs.Service]

func newConfTable(conf []ipvs.Service) confTable {
	own := slices.Clone(conf)
	packServers(own)
	return newPindexOf(own, func(s *ipvs.Service) skey { return packKey(s.Key) })
}

// confService returns the configured service of key k, or nil. The caller must
// not write through it.
func (d *Daemon) confService(k ipvs.Key) *ipvs.Service { return d.st.conf.get(packKey(k)) }

// packServers moves the real-server lists of svcs into one array, each list
// capped at its end (an append copies it, as a change of a configured service
// does anyway: nothing writes a published one): the collector marks one object
// for a table built whole, not one per service (10,000 after a restore, a
// quarter of the objects such a director keeps).
func packServers(svcs []ipvs.Service) {
	n := 0
	for i := range svcs {
		n += len(svcs[i].RealServers)
	}
	all := make([]ipvs.RealServer, 0, n)
	for i := range svcs {
		if rs := svcs[i].RealServers; len(rs) > 0 {
			at := len(all)
			all = append(all, rs...)
			svcs[i].RealServers = all[at:len(all):len(all)]
		}
	}
}

// keySet is a set of service keys, few as a rule (those a command names): a list
// scanned, cheaper than hashing.
type keySet []ipvs.Key

func (s keySet) has(k ipvs.Key) bool { return slices.Contains(s, k) }

// maxPartEdit is the most services an editor of part of the table holds (a
// restore naming more edits the whole table).
const maxPartEdit = 16

// wholeEditor is the editor of the whole configured table.
func (d *Daemon) wholeEditor() *tableEditor {
	return &tableEditor{Editor: ipvsadm.NewEditor(d.st.conf.seq.list()), conf: &d.st.conf}
}

// editorFor returns the editor for cmds: of the services they name, unless they
// clear the table or delete a service and add it again (which moves it to the
// end of the table, as ipvsadm lists it).
func (d *Daemon) editorFor(cmds []*ipvsadm.Command) *tableEditor {
	// In the controller's scratch lists: the editor lives for one event.
	sc := &d.st.scratch
	named, deleted := sc.named[:0], sc.deleted[:0]
	defer func() { sc.named, sc.deleted = named[:0], deleted[:0] }()
	for _, c := range cmds {
		switch c.Op {
		case ipvsadm.OpSetTimeouts:
			continue
		case ipvsadm.OpClear:
			return d.wholeEditor()
		}
		k := keyOfCommand(&c.Service)
		if c.Op == ipvsadm.OpDeleteService {
			deleted = append(deleted, k)
		} else if c.Op == ipvsadm.OpAddService && deleted.has(k) {
			return d.wholeEditor()
		}
		if !named.has(k) {
			named = append(named, k)
		}
		if len(named) > maxPartEdit {
			return d.wholeEditor()
		}
	}
	// The named services in table order, as a whole editor holds them.
	at := sc.at[:0]
	for _, k := range named {
		if s, ok := d.st.conf.at[packKey(k)]; ok {
			at = append(at, int(s.i))
		}
	}
	slices.Sort(at)
	sc.at = at[:0]
	some := sc.some[:0]
	for _, i := range at {
		some = append(some, **d.st.conf.seq.slot(i))
	}
	sc.editor.Reset(some)
	clear(some)
	sc.some = some[:0]
	sc.ed = tableEditor{Editor: &sc.editor, conf: &d.st.conf, part: named, partial: true}
	return &sc.ed
}

// edited returns, for a partial editor, the configured table with the named
// services as edited (in place, or gone) and the ones added at the end, in the
// order they were added. It is made once.
func (e *tableEditor) edited() *confEdit {
	if e.next != nil {
		return e.next
	}
	ce := e.conf.edit()
	if e.unedited {
		e.next = ce
		return ce
	}
	for _, k := range e.part {
		pk := packKey(k)
		if e.conf.get(pk) == nil {
			continue
		}
		if s := e.Service(k); s != nil {
			ce.put(*s)
		} else {
			ce.del(pk)
		}
	}
	for _, s := range e.Editor.Services() {
		if e.conf.get(packKey(s.Key)) == nil {
			ce.put(s)
		}
	}
	e.next = ce
	return ce
}

// size returns the number of services of the edited table.
func (e *tableEditor) size() int {
	if !e.partial {
		return len(e.Editor.Services())
	}
	return e.edited().len()
}

// Services returns the edited table, in a slice of its own for a partial
// editor (a whole commit's table).
func (e *tableEditor) Services() []ipvs.Service {
	if !e.partial {
		return e.Editor.Services()
	}
	return e.edited().s.list()
}

// lookupAs returns the service of key k in the edited table, or nil; conf is k's
// configured service (Daemon.confService), which an editor of part of the table
// keeps for the keys it was not made with.
func (e *tableEditor) lookupAs(k ipvs.Key, conf *ipvs.Service) *ipvs.Service {
	if !e.partial || e.part.has(k) {
		return e.Service(k)
	}
	return conf // not named: as configured
}

// install makes the edited table the configured one (the Director took it).
func (e *tableEditor) install(d *Daemon) {
	if !e.partial {
		d.setConf(e.Editor.Services())
		return
	}
	e.conf.apply(e.edited())
}

// admCommitEdits gives the Director the table ed holds, of which only the
// services touched names changed: it costs what they hold (commitDelta). The
// services are given in the order cmds name them (new ones are created in that
// order, as a whole commit creates them in table order), the others touched (-C)
// after them.
func (d *Daemon) admCommitEdits(ed *tableEditor, touched map[target]bool, cmds []*ipvsadm.Command) error {
	// The keys in the controller's scratch list: a command's few are compared
	// one by one; a restore's many are found in a map.
	keys := d.st.scratch.keys[:0]
	var seen map[ipvs.Key]bool
	if len(touched) > maxCandScan {
		seen = make(map[ipvs.Key]bool, len(touched))
	}
	add := func(k ipvs.Key) {
		if seen != nil {
			if seen[k] {
				return
			}
			seen[k] = true
		} else if slices.Contains(keys, k) {
			return
		}
		keys = append(keys, k)
	}
	for _, c := range cmds {
		if c.Op != ipvsadm.OpClear && c.Op != ipvsadm.OpSetTimeouts {
			add(keyOfCommand(&c.Service))
		}
	}
	n := len(keys)
	for t := range touched {
		add(t.svc)
	}
	slices.SortFunc(keys[n:], func(a, b ipvs.Key) int { return strings.Compare(a.String(), b.String()) })
	d.st.scratch.keys = keys[:0]
	return admCommitError(d.commitDelta(ed, keys))
}

// admCommitError is a commit's refusal as gvs adm prints it. ipvsadm.Edit
// checks everything ipvsadm's kernel checks, so this is a limit of gvs's own
// (tunnels without a director address, …).
func admCommitError(err error) error {
	if err != nil {
		return unsupported(strings.TrimPrefix(err.Error(), dataplane.ErrConfig.Error()+": "))
	}
	return nil
}

// ptarget is a target as the controller's record of gvs adm changes keeps it:
// without a pointer.
type ptarget struct {
	svc  skey
	rs   paddr
	port uint16
}

func packTarget(t target) ptarget {
	return ptarget{svc: packKey(t.svc), rs: packAddr(t.rs.Addr()), port: t.rs.Port()}
}

// admLine is a gvs adm command line that touched names, and how many targets
// name it.
type admLine struct {
	line string
	refs int
}

// admTouch records that the command line of id changed t last; id 0 forgets t.
//
// A service's record is kept with its entry in the configured table while it
// is there (its tag: the command that looks the service up finds the record
// in the same probe, not in a map of every service beside the table), a
// deleted service's in the table's dropped tags until admDone is through, and
// a real server's, or a service's that is not configured (a file's service
// deleted with gvs adm), in touched.
func (d *Daemon) admTouch(t target, id uint32, line string) {
	if old, ok := d.admTake(t); ok {
		if old == id {
			d.admPut(t, id)
			return
		}
		l := d.st.admLines[old]
		if l.refs--; l.refs <= 0 {
			delete(d.st.admLines, old)
		} else {
			d.st.admLines[old] = l
		}
	}
	if id == 0 {
		return
	}
	if d.st.admLines == nil {
		d.st.admLines = map[uint32]admLine{}
	}
	d.admPut(t, id)
	l := d.st.admLines[id]
	l.line = line
	l.refs++
	d.st.admLines[id] = l
}

// admRecord returns the id of the command line that last changed t.
func (d *Daemon) admRecord(t target) (uint32, bool) {
	if !t.rs.IsValid() {
		k := packKey(t.svc)
		if tag, ok := d.st.conf.tag(k); ok && tag != 0 {
			return tag, true
		}
		for _, p := range d.st.conf.dropped {
			if p.k == k {
				return p.tag, true
			}
		}
		if d.st.touchedSvcs == 0 {
			return 0, false // touched holds no service's record
		}
	}
	id, ok := d.st.touched[packTarget(t)]
	return id, ok
}

// admTake removes t's record and returns it.
func (d *Daemon) admTake(t target) (uint32, bool) {
	if !t.rs.IsValid() {
		k := packKey(t.svc)
		if tag, ok := d.st.conf.tag(k); ok && tag != 0 {
			d.st.conf.setTag(k, 0)
			return tag, true
		}
		l := d.st.conf.dropped
		for i, p := range l {
			if p.k == k {
				d.st.conf.dropped = slices.Delete(l, i, i+1)
				return p.tag, true
			}
		}
		if d.st.touchedSvcs == 0 {
			return 0, false
		}
	}
	pt := packTarget(t)
	id, ok := d.st.touched[pt]
	if ok {
		delete(d.st.touched, pt)
		if !t.rs.IsValid() {
			d.st.touchedSvcs--
		}
	}
	return id, ok
}

// admPut records id for t, which has no record.
func (d *Daemon) admPut(t target, id uint32) {
	if !t.rs.IsValid() {
		if d.st.conf.setTag(packKey(t.svc), id) {
			return
		}
		d.st.touchedSvcs++
	}
	d.st.touched[packTarget(t)] = id
}

// admUntag moves the records kept in the configured table's tags that it no
// longer holds (dropped) to touched.
func (d *Daemon) admUntag() {
	for _, p := range d.st.conf.takeDropped() {
		d.admPut(target{svc: p.k.key()}, p.tag)
	}
}

// setConf makes conf the configured table, the records of its services kept
// (admTouch): with their entries, or in touched for the ones conf does not have.
func (d *Daemon) setConf(conf []ipvs.Service) {
	old := d.st.conf
	d.st.conf = newConfTable(conf)
	d.st.conf.dropped = old.takeDropped()
	old.tags(func(k skey, tag uint32) {
		if !d.st.conf.setTag(k, tag) {
			d.st.conf.dropped = append(d.st.conf.dropped, ptag[skey]{k, tag})
		}
	})
	d.admUntag()
}

// admLineOf returns the command line that last changed t, or "".
func (d *Daemon) admLineOf(t target) string {
	id, ok := d.admRecord(t)
	if !ok {
		return ""
	}
	return d.st.admLines[id].line
}

// admDone records what an applied admEvent touched and sets its timeouts. at
// finds the services of the table by key, to remember the match rules of the
// touched ones; nil: of every service.
func (d *Daemon) admDone(ev admEvent, touched map[target]bool, timeouts []ipvsadm.Timeouts, at func(ipvs.Key) *ipvs.Service) {
	line := joinArgs(ev.args)
	find := at
	if find == nil {
		find = d.confService
	}
	d.st.lineID++
	id := d.st.lineID
	for t := range touched {
		if !d.inFile(t.svc) && (t.rs.IsValid() || find(t.svc) == nil) {
			// No file has the service: a reload can override its being there
			// (the new file adding it), never a change of its real servers,
			// and nothing once it is gone. So a churn of services added and
			// deleted keeps no record of them.
			d.admTouch(t, 0, "")
			continue
		}
		d.admTouch(t, id, line)
	}
	d.admUntag() // deleted services' records the loop did not take (none, as a rule)
	for _, t := range timeouts {
		d.setTimeouts(t)
		d.st.admTimeouts = line
	}
	for _, c := range ev.cmds {
		d.admAdded(c)
	}
	for _, l := range ev.restore {
		if l.Cmd != nil {
			d.admAdded(l.Cmd)
		}
	}
	if at == nil {
		for s := range d.st.conf.seq.all() {
			d.rememberMark(s)
		}
	} else {
		for t := range touched {
			if s := at(t.svc); s != nil && s.FWMark != 0 {
				d.rememberMarks([]ipvs.Service{*s})
			}
		}
	}
	d.log.Info("adm", "args", ev.args, "commands", len(ev.cmds)+len(ev.restore), "services", d.st.conf.seq.Len())
}

// admAdded: an operator adding a server that did not answer before means "now":
// it is resolved at once rather than at the next refresh.
func (d *Daemon) admAdded(c *ipvsadm.Command) {
	if c.Op == ipvsadm.OpAddServer {
		delete(d.st.tried, c.Dest.Addr.Unmap())
	}
}

// rememberMarks keeps the match rules of the fwmark services of conf, for an
// fwmark service added again with gvs adm without rules.
func (d *Daemon) rememberMarks(conf []ipvs.Service) {
	for i := range conf {
		d.rememberMark(&conf[i])
	}
}

func (d *Daemon) rememberMark(s *ipvs.Service) {
	if s.FWMark != 0 && len(s.Match) > 0 {
		d.st.marks[s.Key] = slices.Clone(s.Match)
	}
}

// views returns the Director's services, from its published generation.
func (a *Admin) views() []dataplane.ServiceView { return a.d.Services() }

// unsupported is the error of a command gvs does not carry out the way ipvsadm's
// kernel would. It exits with 255, as a failed kernel operation does.
func unsupported(msg string) error {
	return &ipvsadm.Error{Msg: "gvs adm: " + msg, Status: ipvsadm.StatusUsage}
}

// keyOfCommand is the key of the service an ipvsadm command (or listing) names.
func keyOfCommand(s *ipvsadm.Service) ipvs.Key {
	if s.FWMark != 0 {
		return ipvs.MarkKey(s.FWMark, s.IPv6)
	}
	return ipvs.AddrKey(ipvs.Protocol(s.Protocol), netip.AddrPortFrom(s.Addr, s.Port))
}
