package ipvsadm

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// Widths of ipvsadm's listing columns.
const (
	svcLabelWidth  = 33 // "Prot LocalAddress:Port" column; IPv4 labels are cut to it
	destAddrWidth  = 28 // real-server addr:port column; IPv4 names are cut to it
	addrPortMaxLen = 59 // addrport_to_anyname's 60-byte buffer
)

// printer builds one listing. It appends to b and writes once at the end, so
// a failed write leaves no partial table behind the error.
type printer struct {
	b     []byte
	f     Format
	r     Resolver // nil when numeric
	rules bool     // -S
}

func newPrinter(f Format, r Resolver) *printer {
	p := &printer{f: f}
	if !f.Numeric {
		p.r = r
	}
	return p
}

func (p *printer) flush(w io.Writer) error {
	if _, err := w.Write(p.b); err != nil {
		return fmt.Errorf("ipvsadm: write listing: %w", err)
	}
	return nil
}

func (p *printer) str(s string) { p.b = append(p.b, s...) }

// left appends s padded with blanks to at least n bytes (printf "%-Ns").
// Padding counts bytes, as C's printf does, not runes.
func (p *printer) left(s string, n int) {
	p.b = append(p.b, s...)
	for i := len(s); i < n; i++ {
		p.b = append(p.b, ' ')
	}
}

// right appends s right-justified in n bytes (printf "%Ns").
func (p *printer) right(s string, n int) {
	for i := len(s); i < n; i++ {
		p.b = append(p.b, ' ')
	}
	p.b = append(p.b, s...)
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

// largenum appends v as ipvsadm's print_largenum: at least 9 columns, scaled
// by powers of 1000 when it has more than 8 digits, unless --exact.
func (p *printer) largenum(v uint64) {
	if p.f.Exact {
		s := u64(v)
		w := 9
		if len(s) > 8 {
			w = len(s) + 1
		}
		p.right(s, w)
		return
	}
	switch {
	case v < 100_000_000:
		p.right(u64(v), 9)
	case v < 1_000_000_000:
		p.right(u64(v/1_000), 8)
		p.str("K")
	case v < 100_000_000_000:
		p.right(u64(v/1_000_000), 8)
		p.str("M")
	case v < 100_000_000_000_000:
		p.right(u64(v/1_000_000_000), 8)
		p.str("G")
	default:
		p.right(u64(v/1_000_000_000_000), 8)
		p.str("T")
	}
}

// ntop formats an address as glibc's inet_ntop: IPv6 as RFC 5952 except that
// an IPv4-compatible address (::a.b.c.d, a.b.c.d not 0.0.0.x) keeps the
// dotted tail, as glibc still prints it.
func ntop(a netip.Addr) string {
	if !a.IsValid() {
		return "0.0.0.0"
	}
	if a.Is6() && !a.Is4In6() && a.Zone() == "" {
		b := a.As16()
		zero12 := true
		for _, x := range b[:12] {
			if x != 0 {
				zero12 = false
				break
			}
		}
		if zero12 && (b[12] != 0 || b[13] != 0) {
			return "::" + netip.AddrFrom4([4]byte(b[12:])).String()
		}
	}
	return a.WithZone("").String()
}

// addrPortNumeric is "a.b.c.d:port" or "[v6]:port".
func addrPortNumeric(a netip.Addr, port uint16) string {
	if a.Is6() {
		return "[" + ntop(a) + "]:" + strconv.Itoa(int(port))
	}
	return ntop(a) + ":" + strconv.Itoa(int(port))
}

// addrPort is ipvsadm's addrport_to_anyname: names unless numeric, brackets
// around IPv6, and at most 59 bytes.
func (p *printer) addrPort(a netip.Addr, port uint16, proto Protocol) string {
	var s string
	if p.r == nil {
		s = addrPortNumeric(a, port)
	} else {
		host, ok := p.r.HostName(a)
		if !ok {
			host = ntop(a)
		}
		var svc string
		if proto == TCP || proto == UDP || proto == SCTP {
			svc, ok = p.r.ServiceName(port, proto)
		} else {
			ok = false
		}
		if !ok {
			svc = strconv.Itoa(int(port))
		}
		if a.Is6() {
			s = "[" + host + "]:" + svc
		} else {
			s = host + ":" + svc
		}
	}
	return truncate(s, addrPortMaxLen)
}

// maskString is a persistence netmask as ipvsadm prints it: dotted for IPv4,
// a prefix length for IPv6. "" when the mask is the whole address.
func maskString(s *Service) string {
	n := s.Netmask
	if s.is6() {
		if n <= 0 || n >= 128 {
			return ""
		}
		return strconv.Itoa(n)
	}
	if n == NetmaskAll {
		return "0.0.0.0"
	}
	if n <= 0 || n >= 32 {
		return ""
	}
	m := ^uint32(0) << (32 - n)
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}

// schedFlags is print_sched_flags: the names ipvsadm knows for the
// scheduler's bits, comma-joined. sh and mh show only their two flags.
func schedFlags(s *Service) string {
	bits := flagBits(s.Flags)
	var out string
	add := func(name string) {
		if out != "" {
			out += ","
		}
		out += name
	}
	switch s.Scheduler {
	case "sh", "mh":
		if bits&sched1 != 0 {
			add(s.Scheduler + "-fallback")
		}
		if bits&sched2 != 0 {
			add(s.Scheduler + "-port")
		}
	default:
		if bits&sched1 != 0 {
			add("flag-1")
		}
		if bits&sched2 != 0 {
			add("flag-2")
		}
		if bits&sched3 != 0 {
			add("flag-3")
		}
	}
	return out
}

// FormatList writes the whole table as ipvsadm -L with the options in f:
// the version line, the column titles, and each service with its real
// servers. Without f.Numeric, r names addresses and ports (nil prints
// numbers). svcs is not modified; the listing is sorted unless f.NoSort.
func FormatList(w io.Writer, info Info, svcs []Service, f Format, r Resolver) error {
	p := newPrinter(f, r)
	v := info.Version
	if v == "" {
		v = "0.0.0"
	}
	p.str("IP Virtual Server version " + v + " (size=" + strconv.Itoa(info.ConnTableSize) + ")\n")
	p.title()
	for _, s := range p.sortedServices(svcs) {
		p.service(s)
	}
	return p.flush(w)
}

// FormatService writes one service as ipvsadm -L -t|-u|-f …: the column
// titles and the service, without the version line.
func FormatService(w io.Writer, svc *Service, f Format, r Resolver) error {
	p := newPrinter(f, r)
	p.title()
	p.service(svc)
	return p.flush(w)
}

// FormatSave writes the table as ipvsadm -S (ipvsadm-save): one -A line per
// service and one -a line per real server, sorted, without titles. Only
// f.Numeric is used; r names addresses and ports otherwise.
//
// It reproduces ipvsadm 1.31 (Debian), including an fwmark of 2^31 or more
// written as a negative number, which -R then refuses.
func FormatSave(w io.Writer, svcs []Service, f Format, r Resolver) error {
	f = Format{Numeric: f.Numeric}
	p := newPrinter(f, r)
	p.rules = true
	for _, s := range p.sortedServices(svcs) {
		p.service(s)
	}
	return p.flush(w)
}

func (p *printer) sortedServices(svcs []Service) []*Service {
	ps := make([]*Service, len(svcs))
	for i := range svcs {
		ps[i] = &svcs[i]
	}
	if !p.f.NoSort {
		mergeSort(ps, compareServices)
	}
	return ps
}

// title is print_title. The first matching format wins.
func (p *printer) title() {
	f := p.f
	switch {
	case p.rules:
	case f.Stats:
		p.statsTitle("Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	case f.Rate:
		p.statsTitle("CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
	case f.Thresholds:
		p.left("Prot LocalAddress:Port", svcLabelWidth)
		for _, t := range []string{"Uthreshold", "Lthreshold", "ActiveConn", "InActConn"} {
			p.str(" ")
			p.left(t, 10)
		}
		p.str("\n  -> RemoteAddress:Port\n")
	case f.PersistentConn:
		p.left("Prot LocalAddress:Port", svcLabelWidth)
		p.str(" ")
		p.left("Weight", 9)
		p.str(" ")
		p.left("PersistConn", 11)
		p.str(" ")
		p.left("ActiveConn", 10)
		p.str(" ")
		p.left("InActConn", 10)
		p.str("\n  -> RemoteAddress:Port\n")
	case f.TunInfo:
		p.str("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n")
	default:
		p.str("Prot LocalAddress:Port Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	}
}

func (p *printer) statsTitle(cols ...string) {
	p.left("Prot LocalAddress:Port", svcLabelWidth)
	for _, c := range cols {
		p.str(" ")
		p.right(c, 8)
	}
	p.str("\n  -> RemoteAddress:Port\n")
}

// serviceProto is the protocol IPVS reports: none for an fwmark service, so
// its real servers' ports are never named.
func serviceProto(s *Service) Protocol {
	if s.FWMark != 0 {
		return 0
	}
	return s.Protocol
}

// serviceName is the service's label: "TCP  10.0.0.1:80", "FWM  7 IPv6", or
// for -S "-t 10.0.0.1:80", "-f 7 -6".
func (p *printer) serviceName(s *Service) string {
	if s.FWMark != 0 {
		// The Debian 1.31 binary prints the mark with %d.
		mark := strconv.Itoa(int(int32(s.FWMark)))
		switch {
		case p.rules && s.IPv6:
			return "-f " + mark + " -6"
		case p.rules:
			return "-f " + mark
		case s.IPv6:
			return "FWM  " + mark + " IPv6"
		}
		return "FWM  " + mark
	}
	v := p.addrPort(s.Addr, s.Port, s.Protocol)
	if p.rules {
		return protocolSwitch(s.Protocol) + " " + v
	}
	proto := s.Protocol.String()
	label := proto + " "
	if len(proto) < 4 {
		label = proto + "     "[:4-len(proto)+1]
	}
	label += v
	if !s.Addr.Is6() {
		label = truncate(label, svcLabelWidth)
	}
	return label
}

// service is print_service_entry.
func (p *printer) service(s *Service) {
	name := p.serviceName(s)
	f := p.f
	switch {
	case p.rules:
		if len(s.Match) > 0 && s.FWMark != 0 {
			p.str(matchDirective(s.Match) + "\n")
		}
		p.str("-A " + name + " -s " + s.Scheduler)
		if s.Persistent {
			p.str(" -p " + seconds(s.Timeout))
			if m := maskString(s); m != "" {
				p.str(" -M " + m)
			}
		}
		if s.PE != "" {
			p.str(" --pe " + s.PE)
		}
		if s.OPS {
			p.str(" -o")
		}
		if flagBits(s.Flags) != 0 {
			p.str(" -b " + schedFlags(s))
		}
	case f.Stats:
		p.left(name, svcLabelWidth)
		st := s.Stats
		for _, v := range []uint64{st.Conns, st.InPkts, st.OutPkts, st.InBytes, st.OutBytes} {
			p.largenum(v)
		}
	case f.Rate:
		p.left(name, svcLabelWidth)
		rt := s.Rates
		for _, v := range []uint64{rt.CPS, rt.InPPS, rt.OutPPS, rt.InBPS, rt.OutBPS} {
			p.largenum(v)
		}
	default:
		p.str(name + " " + s.Scheduler)
		if flagBits(s.Flags) != 0 {
			p.str(" (" + schedFlags(s) + ")")
		}
		if s.Persistent {
			p.str(" persistent " + seconds(s.Timeout))
			if m := maskString(s); m != "" {
				p.str(" mask " + m)
			}
			if s.PE != "" {
				p.str(" pe " + s.PE)
			}
		}
		if s.OPS {
			p.str(" ops")
		}
	}
	p.str("\n")

	dests := make([]*Dest, len(s.Dests))
	for i := range s.Dests {
		dests[i] = &s.Dests[i]
	}
	if !f.NoSort {
		mergeSort(dests, compareDests)
	}
	for _, d := range dests {
		p.dest(s, name, d)
	}
}

// dest is one real-server line of print_service_entry.
func (p *printer) dest(s *Service, svcName string, d *Dest) {
	dn := p.addrPort(d.Addr, d.Port, serviceProto(s))
	if !p.rules && !d.Addr.Is6() {
		dn = truncate(dn, destAddrWidth)
	}
	f := p.f
	switch {
	case p.rules:
		p.str("-a " + svcName + " -r " + dn + " " + methodSwitch(d.Method) + " -w " + strconv.Itoa(d.Weight))
		if d.Method == MethodTunnel {
			for _, a := range tunnelArgs(d) {
				p.str(" " + a)
			}
		}
	case f.Stats:
		p.str("  -> ")
		p.left(dn, destAddrWidth)
		st := d.Stats
		for _, v := range []uint64{st.Conns, st.InPkts, st.OutPkts, st.InBytes, st.OutBytes} {
			p.largenum(v)
		}
	case f.Rate:
		p.str("  -> ")
		p.left(dn, destAddrWidth)
		// A real server's CPS and packet rates are never scaled.
		for _, v := range []uint64{d.Rates.CPS, d.Rates.InPPS, d.Rates.OutPPS} {
			p.str(" ")
			p.right(u64(v), 8)
		}
		p.largenum(d.Rates.InBPS)
		p.largenum(d.Rates.OutBPS)
	case f.Thresholds:
		p.str("  -> ")
		p.left(dn, destAddrWidth)
		for _, v := range []uint32{d.UThreshold, d.LThreshold, d.ActiveConns, d.InactConns} {
			p.str(" ")
			p.left(u64(uint64(v)), 10)
		}
	case f.PersistentConn:
		p.str("  -> ")
		p.left(dn, destAddrWidth)
		p.str(" ")
		p.left(u64(uint64(uint32(d.Weight))), 9)
		p.str(" ")
		p.left(u64(uint64(d.PersistConns)), 11)
		p.str(" ")
		p.left(u64(uint64(d.ActiveConns)), 10)
		p.str(" ")
		p.left(u64(uint64(d.InactConns)), 10)
	default:
		p.str("  -> ")
		p.left(dn, destAddrWidth)
		p.str(" ")
		p.left(d.Method.String(), 7)
		if f.TunInfo {
			p.str(" ")
			p.left(tunInfo(d), 13)
		}
		p.str(" ")
		p.left(strconv.Itoa(d.Weight), 6)
		p.str(" ")
		p.left(u64(uint64(d.ActiveConns)), 10)
		p.str(" ")
		p.left(u64(uint64(d.InactConns)), 10)
	}
	p.str("\n")
}

// tunInfo is the --tun-info column.
func tunInfo(d *Dest) string {
	if d.Method != MethodTunnel {
		return "n/a"
	}
	switch d.TunnelType {
	case TunnelIPIP:
		return "ipip"
	case TunnelGUE:
		return "gue:" + strconv.Itoa(int(d.TunnelPort)) + ":" + csumName(d.TunnelCsum)
	case TunnelGRE:
		return "gre:" + csumName(d.TunnelCsum)
	}
	return "n/a"
}

func csumName(c TunnelCsum) string {
	switch c {
	case TunnelNoCsum:
		return "-c"
	case TunnelCsumOn:
		return "+c"
	case TunnelRemCsum:
		return "r+c"
	}
	return "?"
}
