package kaddr

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/jsimonetti/rtnetlink/v2"
	"golang.org/x/sys/unix"
)

// netlinkHandle is the rtnetlink Handle. One request runs at a time on its socket.
type netlinkHandle struct {
	mu sync.Mutex
	c  *rtnetlink.Conn
}

// Open returns the Handle of the network namespace the process runs in.
func Open() (Handle, error) {
	c, err := rtnetlink.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("kaddr: rtnetlink: %w", err)
	}
	return &netlinkHandle{c: c}, nil
}

func message(a Addr) *rtnetlink.AddressMessage {
	ip := a.Prefix.Addr()
	fam := uint8(unix.AF_INET)
	var flags uint32
	if ip.Is6() {
		fam = unix.AF_INET6
		// As keepalived: a VIP is usable at once, without duplicate address
		// detection (which would hold it "tentative" for a second or more).
		flags = unix.IFA_F_NODAD
	}
	attrs := &rtnetlink.AddressAttributes{Address: net.IP(ip.AsSlice()), Label: a.Label, Flags: flags}
	if ip.Is4() {
		attrs.Local = attrs.Address
	}
	if a.Broadcast.IsValid() {
		attrs.Broadcast = net.IP(a.Broadcast.AsSlice())
	}
	return &rtnetlink.AddressMessage{Family: fam, PrefixLength: uint8(a.Prefix.Bits()), Scope: uint8(a.Scope),
		Index: uint32(a.Index), Attributes: attrs}
}

// Add implements Handle.
func (h *netlinkHandle) Add(a Addr) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.c.Address.New(message(a)); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add %v: %w", a, ErrExists)
		}
		return fmt.Errorf("add %v: %w", a, err)
	}
	return nil
}

// Delete implements Handle.
func (h *netlinkHandle) Delete(a Addr) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.c.Address.Delete(message(a)); err != nil {
		if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("delete %v: %w", a, ErrNotFound)
		}
		return fmt.Errorf("delete %v: %w", a, err)
	}
	return nil
}

// List implements Handle.
func (h *netlinkHandle) List() ([]Addr, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	msgs, err := h.c.Address.List()
	if err != nil {
		return nil, fmt.Errorf("kaddr: list addresses: %w", err)
	}
	names := map[int]string{}
	out := make([]Addr, 0, len(msgs))
	for _, m := range msgs {
		if m.Attributes == nil {
			continue
		}
		ipb := m.Attributes.Local
		if ipb == nil {
			ipb = m.Attributes.Address
		}
		ip, ok := netip.AddrFromSlice(ipb)
		if !ok {
			continue
		}
		if m.Family == unix.AF_INET {
			ip = ip.Unmap()
		}
		a := Addr{Prefix: netip.PrefixFrom(ip, int(m.PrefixLength)), Index: int(m.Index), Label: m.Attributes.Label, Scope: Scope(m.Scope)}
		if a.Label == h.linkName(names, a.Index) {
			a.Label = "" // the kernel's default label is the interface's name
		}
		if b, ok := netip.AddrFromSlice(m.Attributes.Broadcast); ok {
			a.Broadcast = b.Unmap()
		}
		out = append(out, a)
	}
	return out, nil
}

// Close implements Handle.
func (h *netlinkHandle) Close() error { return h.c.Close() }

// linkName returns the name of interface index as the socket's namespace knows it,
// remembering it in names. Precondition: h.mu is held.
func (h *netlinkHandle) linkName(names map[int]string, index int) string {
	if n, ok := names[index]; ok {
		return n
	}
	var n string
	if l, err := h.c.Link.Get(uint32(index)); err == nil && l.Attributes != nil {
		n = l.Attributes.Name
	}
	names[index] = n
	return n
}

func routeMessage(r Route) *rtnetlink.RouteMessage {
	fam := uint8(unix.AF_INET)
	if r.Dst.Addr().Is6() {
		fam = unix.AF_INET6
	}
	typ := r.Type
	if typ == 0 {
		typ = RouteUnicast
	}
	table := uint8(unix.RT_TABLE_MAIN)
	if r.Table != 0 && r.Table < 256 {
		table = uint8(r.Table)
	} else if r.Table >= 256 {
		table = unix.RT_TABLE_UNSPEC // the table goes in RTA_TABLE
	}
	m := &rtnetlink.RouteMessage{Family: fam, DstLength: uint8(r.Dst.Bits()), Table: table, Protocol: unix.RTPROT_STATIC,
		Scope: uint8(r.Scope), Type: uint8(typ),
		Attributes: rtnetlink.RouteAttributes{Dst: net.IP(r.Dst.Masked().Addr().AsSlice()), OutIface: uint32(r.Index), Priority: r.Metric}}
	if r.Table >= 256 {
		m.Attributes.Table = r.Table
	}
	if r.Src.IsValid() {
		m.Attributes.Src = net.IP(r.Src.AsSlice())
	}
	if r.Via.IsValid() {
		m.Attributes.Gateway = net.IP(r.Via.AsSlice())
	}
	return m
}

// AddRoute implements Handle.
func (h *netlinkHandle) AddRoute(r Route) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.c.Route.Add(routeMessage(r)); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add route %v: %w", r, ErrExists)
		}
		return fmt.Errorf("add route %v: %w", r, err)
	}
	return nil
}

// DeleteRoute implements Handle.
func (h *netlinkHandle) DeleteRoute(r Route) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.c.Route.Delete(routeMessage(r)); err != nil {
		if errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delete route %v: %w", r, ErrNotFound)
		}
		return fmt.Errorf("delete route %v: %w", r, err)
	}
	return nil
}

// ruleMessage encodes r as an FR_ACT_TO_TBL rule.
func ruleMessage(r Rule) *rtnetlink.RuleMessage {
	fam := uint8(unix.AF_INET)
	if r.IPv6 {
		fam = unix.AF_INET6
	}
	m := &rtnetlink.RuleMessage{Family: fam, Action: unix.FR_ACT_TO_TBL, Attributes: &rtnetlink.RuleAttributes{}}
	a := m.Attributes
	if r.Table < 256 {
		m.Table = uint8(r.Table)
	} else {
		m.Table = unix.RT_TABLE_UNSPEC
	}
	table := r.Table
	a.Table = &table
	if r.From.IsValid() {
		ip := net.IP(r.From.Masked().Addr().AsSlice())
		a.Src, m.SrcLength = &ip, uint8(r.From.Bits())
	}
	if r.To.IsValid() {
		ip := net.IP(r.To.Masked().Addr().AsSlice())
		a.Dst, m.DstLength = &ip, uint8(r.To.Bits())
	}
	if r.IIF != "" {
		s := r.IIF
		a.IIFName = &s
	}
	if r.OIF != "" {
		s := r.OIF
		a.OIFName = &s
	}
	if r.HasMark {
		mark, mask := r.Mark, r.Mask
		if mask == 0 {
			mask = 0xffffffff
		}
		a.FwMark, a.FwMask = &mark, &mask
	}
	if r.HasPriority {
		p := r.Priority
		a.Priority = &p
	}
	return m
}

// ruleOf decodes a rule the kernel lists; ok is false for one that is no
// FR_ACT_TO_TBL rule (gvs adds no other).
func ruleOf(m *rtnetlink.RuleMessage) (r Rule, ok bool) {
	if m.Action != unix.FR_ACT_TO_TBL || m.Attributes == nil {
		return Rule{}, false
	}
	a := m.Attributes
	r.IPv6 = m.Family == unix.AF_INET6
	r.Table = uint32(m.Table)
	if a.Table != nil {
		r.Table = *a.Table
	}
	pfx := func(ip *net.IP, bits uint8) netip.Prefix {
		if ip == nil {
			return netip.Prefix{}
		}
		addr, _ := netip.AddrFromSlice(*ip)
		return netip.PrefixFrom(addr.Unmap(), int(bits))
	}
	r.From, r.To = pfx(a.Src, m.SrcLength), pfx(a.Dst, m.DstLength)
	if a.IIFName != nil {
		r.IIF = *a.IIFName
	}
	if a.OIFName != nil {
		r.OIF = *a.OIFName
	}
	if a.FwMark != nil {
		r.HasMark, r.Mark = true, *a.FwMark
		if a.FwMask != nil && *a.FwMask != 0xffffffff {
			r.Mask = *a.FwMask
		}
	}
	if a.Priority != nil {
		r.HasPriority, r.Priority = true, *a.Priority
	}
	return r, true
}

// AddRule implements Handle. The kernel refuses an identical rule only when the
// priorities are equal, and picks a fresh one for a rule without: such a rule is
// first looked for among the rules listed.
func (h *netlinkHandle) AddRule(r Rule) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !r.HasPriority {
		msgs, err := h.c.Rule.List()
		if err != nil {
			return fmt.Errorf("add rule %v: list the rules: %w", r, err)
		}
		for i := range msgs {
			if k, ok := ruleOf(&msgs[i]); ok && k.sameSelectors(r) {
				return fmt.Errorf("add rule %v: %w", r, ErrExists)
			}
		}
	}
	if err := h.c.Rule.Add(ruleMessage(r)); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add rule %v: %w", r, ErrExists)
		}
		return fmt.Errorf("add rule %v: %w", r, err)
	}
	return nil
}

// DeleteRule implements Handle.
func (h *netlinkHandle) DeleteRule(r Rule) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.c.Rule.Delete(ruleMessage(r)); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("delete rule %v: %w", r, ErrNotFound)
		}
		return fmt.Errorf("delete rule %v: %w", r, err)
	}
	return nil
}
