package ipvsadm

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/gvs-lb/gvs/ipvs"
)

// Options are gvs adm's own options. They may stand anywhere among ipvsadm's
// arguments; SplitOptions takes them out before Parse, which knows ipvsadm's
// options only (so its messages stay ipvsadm's).
type Options struct {
	// Atomic is --atomic: -R applies the whole stream or, at the first line
	// that fails, nothing. Without it -R runs line by line, as ipvsadm does.
	Atomic bool
	// Match holds the --match rules, as written: which packets carry the mark
	// of the fwmark service that -A or -E names (gvs has no netfilter to set
	// marks). ApplyOptions reads them in the service's family.
	Match []string
}

// MatchSyntax is the form of a --match rule: the keys of a [[service.match]]
// table of the configuration, comma-separated.
const MatchSyntax = "address=ADDR[,protocol=tcp|udp][,port=N|N-M]"

// SplitOptions takes gvs adm's options (--atomic, --match RULE or
// --match=RULE) out of args and returns them with the ipvsadm arguments.
func SplitOptions(args []string) (Options, []string, error) {
	var o Options
	if !slices.ContainsFunc(args, isOption) {
		return o, args, nil // as a rule: no copy
	}
	rest := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch optionOf(a) {
		case optAtomic:
			o.Atomic = true
		case optMatch:
			if i+1 == len(args) {
				return o, nil, failf("--match needs a rule: --match " + MatchSyntax)
			}
			i++
			o.Match = append(o.Match, args[i])
		case optMatchEq:
			o.Match = append(o.Match, strings.TrimPrefix(a, "--match="))
		default:
			rest = append(rest, a)
		}
	}
	return o, rest, nil
}

// gvsOption is which of gvs adm's options an argument is (optionOf).
type gvsOption uint8

const (
	optNone    gvsOption = iota // an ipvsadm argument
	optAtomic                   // --atomic
	optMatch                    // --match, its rule in the next argument
	optMatchEq                  // --match=RULE
)

// optionOf tells which of gvs adm's options a is, or starts: the one list of their
// names, which SplitOptions' test for any and its loop both read.
func optionOf(a string) gvsOption {
	switch {
	case a == "--atomic":
		return optAtomic
	case a == "--match":
		return optMatch
	case strings.HasPrefix(a, "--match="):
		return optMatchEq
	}
	return optNone
}

// isOption reports whether a is one of gvs adm's options, or starts one.
func isOption(a string) bool { return optionOf(a) != optNone }

// ApplyOptions checks o against the command c that Parse read from the rest
// of the arguments, and gives c its match rules. Errors are *Error with
// StatusFail, as ipvsadm's own argument checks.
func ApplyOptions(c *Command, o Options) error {
	if o.Atomic && c.Op != OpRestore {
		return failf("--atomic goes with -R only: it makes a restore all or nothing")
	}
	if len(o.Match) == 0 {
		return nil
	}
	if (c.Op != OpAddService && c.Op != OpEditService) || c.Service.FWMark == 0 {
		return failf("--match goes with -A or -E of an fwmark service (-f MARK): it says which packets carry the mark")
	}
	c.Match = make([]ipvs.Match, 0, len(o.Match))
	for _, spec := range o.Match {
		m, err := ParseMatch(spec, c.Service.IPv6)
		if err != nil {
			return err
		}
		if slices.Contains(c.Match, m) {
			return failf("--match " + spec + " is given twice: the second would never match")
		}
		c.Match = append(c.Match, m)
	}
	return nil
}

// ParseMatch reads one --match rule in the family of its service (ipv6): the
// keys of a [[service.match]] table, comma-separated. address is required;
// protocol (tcp or udp) and port (a port or a range N-M, or N:M as iptables
// writes it) default to every protocol and port.
func ParseMatch(spec string, ipv6 bool) (ipvs.Match, error) {
	var m ipvs.Match
	bad := func(why string) (ipvs.Match, error) {
		return ipvs.Match{}, failf("--match " + spec + ": " + why + " (want --match " + MatchSyntax + ")")
	}
	seen := map[string]bool{}
	for kv := range strings.SplitSeq(spec, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || v == "" {
			return bad("\"" + kv + "\" is not key=value")
		}
		if seen[k] {
			return bad(k + " is given twice")
		}
		seen[k] = true
		switch k {
		case "address":
			a, err := netip.ParseAddr(v)
			switch {
			case err != nil || a.Zone() != "":
				return bad("address " + v + " is not an IP address")
			case a.Is4In6():
				a = a.Unmap()
			}
			switch {
			case a.Is6() != ipv6:
				fam := "IPv4"
				if ipv6 {
					fam = "IPv6 (-6)"
				}
				return bad("address " + v + " is not in the service's family, " + fam)
			case a.IsUnspecified() || a.IsMulticast():
				return bad("address " + v + " is not a unicast address")
			}
			m.Addr = a
		case "protocol":
			switch v {
			case "tcp":
				m.Protocol = ipvs.TCP
			case "udp":
				m.Protocol = ipvs.UDP
			default:
				return bad("protocol " + v + " is neither tcp nor udp")
			}
		case "port":
			lo, hi, isRange := strings.Cut(v, "-")
			if !isRange {
				lo, hi, isRange = strings.Cut(v, ":")
			}
			if !isRange {
				hi = lo
			}
			l, err1 := strconv.ParseUint(lo, 10, 16)
			h, err2 := strconv.ParseUint(hi, 10, 16)
			switch {
			case err1 != nil || err2 != nil:
				return bad("port " + v + " is neither a port nor a range N-M")
			case l == 0:
				return bad("port 0 is not a port (leave port out to match every port)")
			case l > h:
				return bad("port range " + v + " is empty")
			}
			m.PortLo, m.PortHi = uint16(l), uint16(h)
		default:
			return bad("unknown key " + k)
		}
	}
	if !m.Addr.IsValid() {
		return bad("address is missing")
	}
	return m, nil
}

// FormatMatch writes a rule as ParseMatch reads it.
func FormatMatch(m ipvs.Match) string {
	s := "address=" + m.Addr.String()
	switch m.Protocol {
	case ipvs.TCP:
		s += ",protocol=tcp"
	case ipvs.UDP:
		s += ",protocol=udp"
	}
	switch {
	case m.PortLo == 0:
	case m.PortLo == m.PortHi:
		s += ",port=" + strconv.Itoa(int(m.PortLo))
	default:
		s += ",port=" + strconv.Itoa(int(m.PortLo)) + "-" + strconv.Itoa(int(m.PortHi))
	}
	return s
}

// directiveWord is the second word of a restore line that carries gvs adm
// options for the command on the next line: "# gvs: --match …". -S writes one
// before each fwmark service with match rules. To ipvsadm -R it is a line of
// words that are not options, which it refuses with its help hint and stops
// (its comment handling never sees a '#'); Debian's init script and gvs's
// importers drop such comment lines first.
const directiveWord = "gvs:"

// matchDirective returns the line -S writes before the -A of a service with
// match rules, without its newline.
func matchDirective(match []ipvs.Match) string {
	var b strings.Builder
	b.WriteString("# " + directiveWord)
	for _, m := range match {
		b.WriteString(" --match " + FormatMatch(m))
	}
	return b.String()
}

// isDirective reports whether a restore line's words are a "# gvs:" line.
func isDirective(words []string) bool {
	return len(words) >= 2 && words[0] == "#" && words[1] == directiveWord
}
