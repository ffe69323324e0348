// Package kaddr adds and removes the kernel's interface addresses that VRRP
// manages (keepalived's virtual_ipaddress and virtual_ipaddress_excluded), over
// rtnetlink on Linux, behind the Handle interface so that the daemon can be tested
// with Fake.
package kaddr

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Scope is an address's rtnetlink scope (ip-address(8) "scope").
type Scope uint8

// The scopes with names (rtnetlink's RT_SCOPE_*).
const (
	ScopeGlobal  Scope = 0
	ScopeSite    Scope = 200
	ScopeLink    Scope = 253
	ScopeHost    Scope = 254
	ScopeNowhere Scope = 255
)

// ParseScope reads a scope as ip-address(8) writes it: global, site, link, host,
// nowhere, or a number 0–255.
func ParseScope(s string) (Scope, error) {
	switch s {
	case "global":
		return ScopeGlobal, nil
	case "site":
		return ScopeSite, nil
	case "link":
		return ScopeLink, nil
	case "host":
		return ScopeHost, nil
	case "nowhere":
		return ScopeNowhere, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("scope %q: want global, site, link, host, nowhere or 0-255", s)
	}
	return Scope(n), nil
}

// String returns the scope's name, or its number.
func (s Scope) String() string {
	switch s {
	case ScopeGlobal:
		return "global"
	case ScopeSite:
		return "site"
	case ScopeLink:
		return "link"
	case ScopeHost:
		return "host"
	case ScopeNowhere:
		return "nowhere"
	}
	return strconv.Itoa(int(s))
}

// Addr is one interface address.
type Addr struct {
	// Prefix is the address with its prefix length (keepalived's default: /32,
	// /128).
	Prefix netip.Prefix
	// Index is the interface's index.
	Index int
	// Label is the IPv4 address label ("eth0:1"); "" is the interface's name.
	Label string
	Scope Scope
	// Broadcast is the IPv4 broadcast address; invalid: none.
	Broadcast netip.Addr
}

// String formats a as ip-address(8) would take it: "198.18.0.100/24 dev#3 label
// eth0:1".
func (a Addr) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v if#%d", a.Prefix, a.Index)
	if a.Broadcast.IsValid() {
		fmt.Fprintf(&b, " brd %v", a.Broadcast)
	}
	if a.Scope != ScopeGlobal {
		fmt.Fprintf(&b, " scope %v", a.Scope)
	}
	if a.Label != "" {
		fmt.Fprintf(&b, " label %s", a.Label)
	}
	return b.String()
}

// Handle changes and lists the kernel's addresses. Implementations are safe for
// concurrent use.
type Handle interface {
	// Add adds a. It returns an error wrapping ErrExists when the interface
	// already has that address with that prefix length. (The kernel takes one IPv4
	// address twice with two prefix lengths: who must not take an address another
	// holds checks List first.)
	Add(a Addr) error
	// Delete removes a (matched by address, prefix length and interface). It
	// returns an error wrapping ErrNotFound when it is not there.
	Delete(a Addr) error
	// List returns the addresses of every interface.
	List() ([]Addr, error)
	// AddRoute adds r; an error wrapping ErrExists if that route is there.
	AddRoute(r Route) error
	// DeleteRoute removes r; an error wrapping ErrNotFound if it is not there.
	DeleteRoute(r Route) error
	// AddRule adds the policy-routing rule r; an error wrapping ErrExists if an
	// identical rule is there (any priority when r has none).
	AddRule(r Rule) error
	// DeleteRule removes r; an error wrapping ErrNotFound if it is not there.
	DeleteRule(r Rule) error
	Close() error
}

// RouteType is a route's kind (rtnetlink's RTN_*).
type RouteType uint8

// The route types keepalived's virtual_routes take.
const (
	RouteUnicast     RouteType = 1
	RouteBlackhole   RouteType = 6
	RouteUnreachable RouteType = 7
	RouteProhibit    RouteType = 8
)

// Route is one route (keepalived's virtual_routes entry).
type Route struct {
	Dst   netip.Prefix
	Src   netip.Addr // preferred source; invalid: none
	Via   netip.Addr // gateway; invalid: none (on-link)
	Index int        // output interface; 0: none (blackhole and the like)
	// Metric is the route's priority; Table its table (0: main).
	Metric, Table uint32
	Scope         Scope
	Type          RouteType // 0: unicast
}

// String formats r as ip-route(8) would show it.
func (r Route) String() string {
	var b strings.Builder
	switch r.Type {
	case RouteBlackhole:
		b.WriteString("blackhole ")
	case RouteUnreachable:
		b.WriteString("unreachable ")
	case RouteProhibit:
		b.WriteString("prohibit ")
	}
	b.WriteString(r.Dst.String())
	if r.Via.IsValid() {
		fmt.Fprintf(&b, " via %v", r.Via)
	}
	if r.Index != 0 {
		fmt.Fprintf(&b, " if#%d", r.Index)
	}
	if r.Src.IsValid() {
		fmt.Fprintf(&b, " src %v", r.Src)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	if r.Table != 0 {
		fmt.Fprintf(&b, " table %d", r.Table)
	}
	return b.String()
}

// Rule is one policy-routing rule (ip-rule(8); keepalived's virtual_rules entry):
// packets matching every selector set look the route up in Table.
type Rule struct {
	// IPv6 is the rule's family, which From and To, when set, are of.
	IPv6     bool
	From, To netip.Prefix // invalid: any
	IIF, OIF string       // input/output interface name; "": any
	// Mark selects packets whose firewall mark, masked with Mask, is Mark
	// (HasMark); Mask 0 is the kernel's default, all bits.
	Mark, Mask uint32
	HasMark    bool
	// Priority orders the rule (lower first); without HasPriority the kernel
	// picks one below the first rule's.
	Priority    uint32
	HasPriority bool
	Table       uint32 // the table looked up (1–2^32-1; 254 is main)
}

// String formats r as ip-rule(8) would show it.
func (r Rule) String() string {
	var b strings.Builder
	if r.HasPriority {
		fmt.Fprintf(&b, "%d: ", r.Priority)
	}
	if r.From.IsValid() {
		fmt.Fprintf(&b, "from %v ", r.From)
	} else {
		b.WriteString("from all ")
	}
	if r.To.IsValid() {
		fmt.Fprintf(&b, "to %v ", r.To)
	}
	if r.HasMark {
		fmt.Fprintf(&b, "fwmark %#x", r.Mark)
		if r.Mask != 0 {
			fmt.Fprintf(&b, "/%#x", r.Mask)
		}
		b.WriteByte(' ')
	}
	if r.IIF != "" {
		fmt.Fprintf(&b, "iif %s ", r.IIF)
	}
	if r.OIF != "" {
		fmt.Fprintf(&b, "oif %s ", r.OIF)
	}
	fmt.Fprintf(&b, "lookup %d", r.Table)
	if r.IPv6 {
		b.WriteString(" (inet6)")
	}
	return b.String()
}

// sameSelectors reports whether a and b match the same packets into the same
// table, priority aside (when either has none).
func (a Rule) sameSelectors(b Rule) bool {
	if a.HasPriority && b.HasPriority && a.Priority != b.Priority {
		return false
	}
	a.Priority, a.HasPriority, b.Priority, b.HasPriority = 0, false, 0, false
	return a == b
}

var (
	// ErrExists: the address is already on the interface.
	ErrExists = errors.New("address already present")
	// ErrNotFound: the address is not on the interface.
	ErrNotFound = errors.New("address not present")
)

// Fake is an in-memory Handle with the kernel's rules for Add and Delete. The zero
// value is an empty host. Fail, when set, is returned by every call.
type Fake struct {
	mu     sync.Mutex
	addrs  []Addr
	routes []Route
	rules  []Rule
	ops    []string // what succeeded, in order: "add addr …", "delete rule …"
	Fail   error
}

// Ops returns the changes made so far, in order ("add addr P", "add route R",
// "add rule R", "delete …"), for tests of the order of changes.
func (f *Fake) Ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ops)
}

// Add implements Handle.
func (f *Fake) Add(a Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return f.Fail
	}
	for _, x := range f.addrs {
		if x.Index == a.Index && x.Prefix == a.Prefix {
			return fmt.Errorf("add %v: %w", a, ErrExists)
		}
	}
	f.addrs = append(f.addrs, a)
	f.ops = append(f.ops, "add addr "+a.Prefix.String())
	return nil
}

// Delete implements Handle.
func (f *Fake) Delete(a Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return f.Fail
	}
	for i, x := range f.addrs {
		if x.Index == a.Index && x.Prefix == a.Prefix {
			f.addrs = append(f.addrs[:i], f.addrs[i+1:]...)
			f.ops = append(f.ops, "delete addr "+a.Prefix.String())
			return nil
		}
	}
	return fmt.Errorf("delete %v: %w", a, ErrNotFound)
}

// List implements Handle.
func (f *Fake) List() ([]Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return nil, f.Fail
	}
	return append([]Addr(nil), f.addrs...), nil
}

// AddRoute implements Handle.
func (f *Fake) AddRoute(r Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return f.Fail
	}
	if slices.Contains(f.routes, r) {
		return fmt.Errorf("add route %v: %w", r, ErrExists)
	}
	f.routes = append(f.routes, r)
	f.ops = append(f.ops, "add route "+r.String())
	return nil
}

// DeleteRoute implements Handle.
func (f *Fake) DeleteRoute(r Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return f.Fail
	}
	i := slices.Index(f.routes, r)
	if i < 0 {
		return fmt.Errorf("delete route %v: %w", r, ErrNotFound)
	}
	f.routes = slices.Delete(f.routes, i, i+1)
	f.ops = append(f.ops, "delete route "+r.String())
	return nil
}

// Routes returns the routes added (for tests).
func (f *Fake) Routes() []Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.routes)
}

// AddRule implements Handle: like the kernel's, a rule with the same selectors
// (and priority, when both have one) is ErrExists.
func (f *Fake) AddRule(r Rule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return f.Fail
	}
	if slices.ContainsFunc(f.rules, r.sameSelectors) {
		return fmt.Errorf("add rule %v: %w", r, ErrExists)
	}
	f.rules = append(f.rules, r)
	f.ops = append(f.ops, "add rule "+r.String())
	return nil
}

// DeleteRule implements Handle.
func (f *Fake) DeleteRule(r Rule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Fail != nil {
		return f.Fail
	}
	i := slices.IndexFunc(f.rules, r.sameSelectors)
	if i < 0 {
		return fmt.Errorf("delete rule %v: %w", r, ErrNotFound)
	}
	f.rules = slices.Delete(f.rules, i, i+1)
	f.ops = append(f.ops, "delete rule "+r.String())
	return nil
}

// Rules returns the rules added (for tests).
func (f *Fake) Rules() []Rule {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rules)
}

// Close implements Handle.
func (f *Fake) Close() error { return nil }
