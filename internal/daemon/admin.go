package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
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
	return ipvsadm.ExitStatus(err)
}

func (a *Admin) exec(ctx context.Context, args []string, stdin string, out *bytes.Buffer) error {
	if len(args) > 0 && args[0] == "--vrrp" {
		return a.listVRRP(args[1:], out) // admin_vrrp.go
	}
	c, err := a.parser.Parse(args)
	if err != nil {
		return err
	}
	switch c.Op {
	case ipvsadm.OpAddService, ipvsadm.OpEditService, ipvsadm.OpDeleteService, ipvsadm.OpClear,
		ipvsadm.OpAddServer, ipvsadm.OpEditServer, ipvsadm.OpDeleteServer:
		return a.change(ctx, args, []*ipvsadm.Command{c}, nil)
	case ipvsadm.OpRestore:
		cmds, err := a.parser.ParseRestore(strings.NewReader(stdin))
		if err != nil {
			return err
		}
		return a.change(ctx, args, cmds, commandLines(stdin))
	case ipvsadm.OpSetTimeouts:
		return a.change(ctx, args, []*ipvsadm.Command{c}, nil)
	case ipvsadm.OpList:
		return a.list(ctx, c, out)
	case ipvsadm.OpSave:
		return ipvsadm.FormatSave(out, a.services(false), c.Format, a.res)
	case ipvsadm.OpZero:
		return a.zeroCounters(c)
	case ipvsadm.OpHelp:
		return ipvsadm.FormatUsage(out, a.parser.Program)
	case ipvsadm.OpVersion:
		return ipvsadm.FormatVersion(out)
	case ipvsadm.OpStartDaemon, ipvsadm.OpStopDaemon:
		return unsupported("gvs has no connection synchronisation daemon; pair directors with VRRP ([[vrrp]]) instead")
	}
	return unsupported("command " + c.Op.String() + " is not supported")
}

// change hands table commands (one, or a restore stream whose lines are lines) to
// the controller and waits until the Director runs the result, or the controller
// refused it.
func (a *Admin) change(ctx context.Context, args []string, cmds []*ipvsadm.Command, lines []int) error {
	reply := make(chan error, 1)
	err := a.dm.request(ctx, admEvent{args: args, cmds: cmds, lines: lines, reply: reply}, reply)
	switch {
	case errors.Is(err, ErrStopped):
		return unsupported("the director is stopping; the change was not made")
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		// The controller may still carry it out.
		return unsupported("the request was cancelled before the director answered; list the table to see whether the change was made")
	}
	return err
}

// commandLines returns the 1-based numbers of the lines of a restore stream that
// hold a command, splitting as ipvsadm.ParseRestore does: a '#' starts a comment,
// words are separated by blanks, tabs and carriage returns, and the word "ipvsadm"
// is dropped.
func commandLines(stream string) []int {
	var lines []int
	for i, line := range strings.Split(stream, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, w := range strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' }) {
			if w != "ipvsadm" {
				lines = append(lines, i+1)
				break
			}
		}
	}
	return lines
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
