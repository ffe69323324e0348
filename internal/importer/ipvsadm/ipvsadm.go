package ipvsadm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/importer"
	adm "github.com/gvs-lb/gvs/internal/ipvsadm"
	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/sched"
)

// Options configure Import.
type Options struct {
	// Names resolves the host and service names of a dump made without -n, as
	// ipvsadm -R would with /etc/hosts and /etc/services; nil accepts numbers only.
	Names adm.Lookup
}

// maxLine bounds one line of the input, as no ipvsadm rule comes near it.
const maxLine = 1 << 20

// Import translates an ipvsadm-save dump into gvs TOML: each -A rule becomes a
// [[service]] and each -a rule a real server of it, in the dump's order (as
// ipvsadm -R would add them). Lines may also be ipvsadm commands as written in a
// shell script ("ipvsadm -A …", "/sbin/ipvsadm -A …"), with -C, -E, -e, -D, -d and
// --set applied in order, exactly as ipvsadm applies them. name is used in notes
// and errors.
//
// A line ipvsadm -R would refuse to parse is an error with its line (a
// config.Errors), as ipvsadm -R stops there. A rule the table refuses (a service
// added twice, a real server of no service) is left out with a note, as are
// options gvs has no equivalent for; an fwmark service is written commented out,
// since gvs needs to be told which packets carry the mark.
func Import(r io.Reader, name string, opt Options) (*importer.Imported, error) {
	data, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("import: %s: %w", name, err)
	}
	p := adm.Parser{Names: opt.Names}
	cmds, lines, err := p.ParseRestoreLines(bytes.NewReader(scriptLines(data)))
	if err != nil {
		var le *adm.LineError
		if !errors.As(err, &le) {
			return nil, fmt.Errorf("import: %s: %w", name, err)
		}
		return nil, config.Errors{{File: name, Line: le.Line, Err: fmt.Errorf("%w: %s", config.ErrSyntax, hint(le.Err))}}
	}
	im := &ipvsImporter{
		doc:   &importer.Doc{Tool: "ipvsadm"},
		file:  name,
		added: map[ipvs.Key]importer.Pos{},
		reals: map[realKey]importer.Pos{},
		sctp:  map[ipvs.Key]bool{},
	}
	for i, c := range cmds {
		im.apply(c, importer.Pos{File: name, Line: lines[i], Seq: lines[i]})
	}
	im.finish()
	im.doc.Summary = append(im.doc.Summary,
		"Source: "+name+" (ipvsadm-save rules).",
		"Real servers are in the dump's order, which is what ipvsadm-restore would add;",
		"ipvsadm-save lists them sorted by address, not in the order they were first added.")
	return im.doc.Finish(name + " (imported)")
}

// scriptLines makes the lines of a shell script of ipvsadm commands restore
// lines: a first word naming ipvsadm by its path ("/sbin/ipvsadm") becomes
// "ipvsadm", which the restore parser drops. Lines keep their numbers; lines over
// maxLine bytes are cut there (the parser then refuses what is left of them).
func scriptLines(data []byte) []byte {
	var out []byte
	for line := range bytes.Lines(data) {
		if len(line) > maxLine {
			line = append(line[:maxLine:maxLine], '\n')
		}
		trimmed := bytes.TrimLeft(line, " \t")
		if end := bytes.IndexAny(trimmed, " \t\r\n"); end > 0 && bytes.HasSuffix(trimmed[:end], []byte("/ipvsadm")) {
			line = append([]byte("ipvsadm"), trimmed[end:]...)
		}
		out = append(out, line...)
	}
	return out
}

// hint adds what to do to ipvsadm's messages where an import's input is the likely
// cause: names in a dump made without -n, a line of a script that is not an
// ipvsadm command, a mark ipvsadm-save printed negative.
func hint(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "address[:port] specified"):
		msg += " (a host or port name ipvsadm cannot resolve? dump with `ipvsadm-save -n` so addresses are numeric)"
	case strings.HasPrefix(msg, "Try `"):
		msg = "not an ipvsadm command line (ipvsadm: " + msg + ")"
	case strings.HasPrefix(msg, "invalid fwmark value `-"):
		// ipvsadm-save prints a mark of 2^31 or more with %d (docs/ipvsadm-format.md).
		v, perr := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(msg, "invalid fwmark value `"), "' specified"), 10, 32)
		if perr == nil {
			msg += fmt.Sprintf(" (ipvsadm-save prints marks of 2^31 and more as negative numbers: write it as %d)", uint32(int32(v)))
		}
	}
	return msg
}

type realKey struct {
	svc  ipvs.Key
	addr netip.AddrPort
}

type ipvsImporter struct {
	doc      *importer.Doc
	file     string
	services []ipvs.Service
	added    map[ipvs.Key]importer.Pos // where each service in services was added
	reals    map[realKey]importer.Pos  // where each real server was added
	sctp     map[ipvs.Key]bool         // SCTP services, left out
}

func (im *ipvsImporter) note(p importer.Pos, format string, args ...any) {
	im.doc.Note(p, format, args...)
}

// what names a service as ipvsadm's options do: "-t 198.18.0.1:80", "-f 7 -6".
func what(k ipvs.Key) string {
	switch {
	case k.IsMark() && k.IPv6:
		return "-f " + strconv.FormatUint(uint64(k.FWMark), 10) + " -6"
	case k.IsMark():
		return "-f " + strconv.FormatUint(uint64(k.FWMark), 10)
	case k.Protocol == ipvs.UDP:
		return "-u " + k.Addr.String()
	case k.Protocol == ipvs.TCP:
		return "-t " + k.Addr.String()
	}
	return "--sctp-service " + k.Addr.String()
}

// keyOf returns the key of the service c names.
func keyOf(c *adm.Command) ipvs.Key {
	s := &c.Service
	if s.FWMark != 0 {
		return ipvs.MarkKey(s.FWMark, s.IPv6)
	}
	return ipvs.AddrKey(ipvs.Protocol(s.Protocol), netip.AddrPortFrom(s.Addr, s.Port))
}

// apply carries out one command of the dump, at p.
func (im *ipvsImporter) apply(c *adm.Command, p importer.Pos) {
	switch c.Op {
	case adm.OpSetTimeouts:
		d := &im.doc.Dir
		for _, t := range []struct {
			v   time.Duration
			dst *importer.Opt[time.Duration]
		}{{c.SetTimeouts.TCP, &d.TCP}, {c.SetTimeouts.TCPFin, &d.TCPFin}, {c.SetTimeouts.UDP, &d.UDP}} {
			if t.v > 0 { // 0 leaves a timeout unchanged
				*t.dst = importer.Some(t.v)
			}
		}
		return
	case adm.OpClear:
		if len(im.services) > 0 {
			im.note(p, "-C clears the %d services defined above: they are not written", len(im.services))
		}
		im.services = nil
		return
	case adm.OpAddService, adm.OpEditService, adm.OpDeleteService, adm.OpAddServer, adm.OpEditServer, adm.OpDeleteServer:
	default:
		im.note(p, "ipvsadm %s command is not a rule: ignored", c.Op)
		return
	}

	key := keyOf(c)
	svc := what(key)
	if c.Service.Protocol == adm.SCTP || im.sctp[key] {
		if c.Op == adm.OpAddService {
			im.sctp[key] = true
			im.note(p, "%s: SCTP service not written: gvs balances tcp and udp only", svc)
		}
		return
	}
	if c.Op == adm.OpAddService || c.Op == adm.OpEditService {
		im.translatable(c, p)
	}
	if c.Op == adm.OpAddServer || c.Op == adm.OpEditServer {
		if d := &c.Dest; d.Method == adm.MethodTunnel && d.TunnelType != adm.TunnelIPIP {
			im.note(p, "--tun-type %s not translated: gvs tunnels with IPIP only", d.TunnelType)
			d.TunnelType, d.TunnelPort, d.TunnelCsum = adm.TunnelIPIP, 0, adm.TunnelNoCsum
		}
	}

	next, err := adm.Edit(im.services, c)
	if err != nil {
		im.refused(c, key, p, err)
		return
	}
	im.services = next
	rs := netip.AddrPortFrom(c.Dest.Addr.Unmap(), c.Dest.Port)
	switch c.Op {
	case adm.OpAddService:
		im.added[key] = p
	case adm.OpDeleteService:
		im.note(p, "-D deletes %s: it is not written", svc)
	case adm.OpAddServer:
		im.reals[realKey{key, rs}] = p
	case adm.OpDeleteServer:
		im.note(p, "-d deletes real server %s of %s: it is not written", rs, svc)
	}
}

// translatable adjusts what a -A or -E sets that gvs has no equivalent for, with a
// note each: a persistence engine, a scheduler gvs does not have. (The parser has
// already refused flags the scheduler does not take.)
func (im *ipvsImporter) translatable(c *adm.Command, p importer.Pos) {
	s := &c.Service
	if s.PE != "" {
		im.note(p, "--pe %s not translated: gvs has no persistence engines", s.PE)
		s.PE = ""
	}
	if !slices.Contains(config.SchedulerNames(), s.Scheduler) {
		im.note(p, "-s %s: gvs has no such scheduler: the default (%s) is used", s.Scheduler, ipvs.DefaultScheduler)
		s.Scheduler = ipvs.DefaultScheduler
	}
}

// refused notes a rule the table refused: ipvsadm -R would stop at it with err;
// the import leaves it out and goes on.
func (im *ipvsImporter) refused(c *adm.Command, key ipvs.Key, p importer.Pos, err error) {
	svc := what(key)
	rs := netip.AddrPortFrom(c.Dest.Addr.Unmap(), c.Dest.Port)
	why := fmt.Sprintf("rule ignored (ipvsadm -R would stop here: %v)", err)
	switch {
	case errors.Is(err, adm.ErrServiceExists):
		im.note(p, "service %s is already defined (line %d): %s", svc, im.added[key].Line, why)
	case errors.Is(err, adm.ErrNoSuchService), errors.Is(err, adm.ErrServiceNotDefined):
		im.note(p, "no such service %s defined above: %s", svc, why)
	case errors.Is(err, adm.ErrDestExists):
		im.note(p, "real server %s of %s is already defined (line %d): %s", rs, svc, im.reals[realKey{key, rs}].Line, why)
	case errors.Is(err, adm.ErrNoSuchDest):
		im.note(p, "no real server %s in %s: %s", rs, svc, why)
	default:
		im.note(p, "%s: %s", strings.Join(c.Args(), " "), why)
	}
}

// finish writes the services into the document, choosing each one's method: the
// method all its real servers share, else dr, with each real server's own where it
// differs.
func (im *ipvsImporter) finish() {
	anyReal := false
	for i := range im.services {
		s := &im.services[i]
		is := &importer.Service{
			Pos:     im.added[s.Key],
			What:    what(s.Key),
			Addr:    s.Addr,
			FWMark:  s.FWMark,
			Inet6:   s.IsMark() && s.IPv6,
			Sched:   s.Scheduler,
			Flags:   sched.FlagNames(s.Scheduler, s.Flags),
			Method:  ipvs.DefaultMethod.String(),
			OPS:     s.OPS,
			Persist: importer.Opt[time.Duration]{V: s.Persistence, OK: s.Persistence > 0},
			Netmask: netmask(s),
		}
		if s.Protocol == ipvs.UDP {
			is.Proto = "udp"
		}
		methods := map[ipvs.Method]bool{}
		for _, r := range s.RealServers {
			methods[r.Method] = true
		}
		if len(methods) == 1 {
			is.Method = s.RealServers[0].Method.String()
		}
		for _, r := range s.RealServers {
			anyReal = true
			ir := &importer.RealServer{
				Pos:    im.reals[realKey{s.Key, r.Addr}],
				Addr:   r.Addr.Addr(),
				Port:   r.Addr.Port(),
				Weight: importer.Some(int(r.Weight)),
				Upper:  r.UpperThreshold,
				Lower:  r.LowerThreshold,
			}
			if m := r.Method.String(); m != is.Method {
				ir.Method = m
			}
			is.Reals = append(is.Reals, ir)
		}
		if s.IsMark() {
			is.Off = fmt.Sprintf("fwmark %d: gvs needs [[service.match]] rules for the mark", s.FWMark)
			im.note(is.Pos, "%s: fwmark service written commented out: gvs sets no netfilter marks and needs [[service.match]] rules saying which packets carry mark %d (the iptables mangle rule is not in the dump): add them and uncomment", is.What, s.FWMark)
		}
		im.doc.Services = append(im.doc.Services, is)
	}
	if anyReal {
		im.note(importer.Pos{File: im.file}, "real servers' MAC addresses are not in an ipvsadm dump: `mac` is left out (gvs run finds them by ARP/ND); `gvs bench replay` needs them pinned with mac = \"...\"")
	}
	if len(im.doc.Services) > 0 {
		im.note(importer.Pos{File: im.file}, "[director] interface is not set: an ipvsadm dump does not say which interface carries the traffic; set it before `gvs run`")
	}
}

// netmask is the service's persistence granularity as written: a prefix length,
// or nil for the whole address (gvs's default).
func netmask(s *ipvs.Service) any {
	full := 32
	if s.IPv6 {
		full = 128
	}
	if !s.Netmask.IsValid() || s.Netmask.Bits() >= full {
		return nil
	}
	return s.Netmask.Bits()
}
