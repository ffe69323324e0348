package dataplane

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/gvs-lb/gvs/dataplane/header"
)

// Defense are the options that keep the Director to what Linux would forward and
// bound what a flood can make it send or create (docs/defense.md). The zero value
// accepts untagged frames only and limits nothing; DefaultDefense has Linux's
// defaults.
type Defense struct {
	// VLANs are the 802.1Q VLAN IDs (1–4094) whose tagged frames are accepted, as if
	// the data interface had a VLAN interface for each. Untagged and priority-tagged
	// (VLAN ID 0) frames are always accepted; frames with another tag, two tags or an
	// 802.1ad service tag are dropped (vlan).
	VLANs []uint16

	// ICMPRateLimit is net.ipv4.icmp_ratelimit: the space between ICMPv4 errors to one
	// destination after a burst of icmpPeerBurst; 0 = no per-destination limit.
	ICMPRateLimit time.Duration
	// ICMPRateMask is net.ipv4.icmp_ratemask: bit n set limits ICMPv4 type n
	// (fragmentation needed is never limited: path MTU discovery depends on it).
	ICMPRateMask uint32
	// ICMPv6RateLimit is net.ipv6.icmp.ratelimit, for ICMPv6 errors other than
	// packet too big (net.ipv6.icmp.ratemask's default, 0-1,3-127).
	ICMPv6RateLimit time.Duration
	// ICMPMsgsPerSec and ICMPMsgsBurst are net.ipv4.icmp_msgs_per_sec and
	// icmp_msgs_burst: every limited ICMP error of either family, to any destination,
	// takes a token from one bucket of ICMPMsgsBurst tokens refilled at
	// ICMPMsgsPerSec. ICMPMsgsPerSec 0 = no global limit.
	ICMPMsgsPerSec, ICMPMsgsBurst int

	// SourceConnRate is the number of new connections per second a client /24
	// (IPv4) or /64 (IPv6) may open, after a burst of SourceConnBurst; 0 = no limit.
	SourceConnRate, SourceConnBurst int
}

// Linux's defaults (docs/defense.md §2).
const (
	defaultICMPRateLimit  = time.Second // icmp_ratelimit 1000 (ms)
	defaultICMPRateMask   = 0x1818      // icmp_ratemask 6168: types 3, 4, 11, 12
	defaultICMPMsgsPerSec = 1000
	defaultICMPMsgsBurst  = 50
	// icmpPeerBurst is the burst of the per-destination limit: Linux's
	// XRLIM_BURST_FACTOR, six errors at once to a destination not seen for a while.
	icmpPeerBurst = 6

	icmpPeerBits  = 12 // slots of the per-destination ICMP table: 4,096 (32 KiB)
	sourceBits    = 16 // slots of the per-source table: 65,536 (512 KiB)
	maxVLANID     = 4094
	maxICMPLimit  = time.Hour
	maxSourceRate = 1_000_000_000 // one event a nanosecond: the buckets' resolution
)

// DefaultDefense returns Linux's defaults: no VLAN, ICMP errors limited as
// Linux limits them, no per-source limit.
func DefaultDefense() Defense {
	return Defense{
		ICMPRateLimit:   defaultICMPRateLimit,
		ICMPRateMask:    defaultICMPRateMask,
		ICMPv6RateLimit: defaultICMPRateLimit,
		ICMPMsgsPerSec:  defaultICMPMsgsPerSec,
		ICMPMsgsBurst:   defaultICMPMsgsBurst,
	}
}

func checkDefense(d *Defense) error {
	for _, v := range d.VLANs {
		if v < 1 || v > maxVLANID {
			return fmt.Errorf("%w: VLAN ID %d is outside 1–%d", ErrConfig, v, maxVLANID)
		}
	}
	switch {
	case d.ICMPRateLimit < 0 || d.ICMPRateLimit > maxICMPLimit:
		return fmt.Errorf("%w: icmp_ratelimit %v is outside 0–%v", ErrConfig, d.ICMPRateLimit, maxICMPLimit)
	case d.ICMPv6RateLimit < 0 || d.ICMPv6RateLimit > maxICMPLimit:
		return fmt.Errorf("%w: icmpv6_ratelimit %v is outside 0–%v", ErrConfig, d.ICMPv6RateLimit, maxICMPLimit)
	case d.ICMPMsgsPerSec < 0 || d.ICMPMsgsPerSec > maxSourceRate:
		return fmt.Errorf("%w: icmp_msgs_per_sec %d is outside 0–%d", ErrConfig, d.ICMPMsgsPerSec, maxSourceRate)
	case d.ICMPMsgsPerSec > 0 && (d.ICMPMsgsBurst < 1 || d.ICMPMsgsBurst > maxSourceRate):
		return fmt.Errorf("%w: icmp_msgs_burst %d is outside 1–%d", ErrConfig, d.ICMPMsgsBurst, maxSourceRate)
	case d.SourceConnRate < 0 || d.SourceConnRate > maxSourceRate:
		return fmt.Errorf("%w: source_conn_rate %d is outside 0–%d", ErrConfig, d.SourceConnRate, maxSourceRate)
	case d.SourceConnRate > 0 && (d.SourceConnBurst < 1 || d.SourceConnBurst > maxSourceRate):
		return fmt.Errorf("%w: source_conn_burst %d is outside 1–%d", ErrConfig, d.SourceConnBurst, maxSourceRate)
	}
	return nil
}

// vlanSet is a set of VLAN IDs, one bit each.
type vlanSet [4096 / 64]uint64

func (s *vlanSet) has(id uint16) bool { return s[id/64&63]&(1<<(id%64)) != 0 }

// bucket is the GCRA form of a rate: one event per interval, burst events at once.
// interval 0 = no limit.
type bucket struct{ interval, tolerance int64 }

func bucketOf(per time.Duration, burst int) bucket {
	if per <= 0 || burst < 1 {
		return bucket{}
	}
	return bucket{interval: int64(per), tolerance: int64(burst-1) * int64(per)}
}

// defenseSettings is Defense in the form the hot path reads.
type defenseSettings struct {
	// mac is the director's MAC as the first 8 bytes of a frame sent to it read
	// little-endian and masked with macMask; 0 (no frame's) without a MAC.
	mac          uint64
	vlans        vlanSet
	icmp4, icmp6 bucket // per destination
	icmpGlobal   bucket
	icmpMask     uint32
	source       bucket
}

func defenseSettingsOf(d *Defense) defenseSettings {
	var st defenseSettings
	for _, v := range d.VLANs {
		st.vlans[v/64&63] |= 1 << (v % 64)
	}
	st.icmp4 = bucketOf(d.ICMPRateLimit, icmpPeerBurst)
	st.icmp6 = bucketOf(d.ICMPv6RateLimit, icmpPeerBurst)
	if d.ICMPMsgsPerSec > 0 {
		st.icmpGlobal = bucketOf(time.Second/time.Duration(d.ICMPMsgsPerSec), d.ICMPMsgsBurst)
	}
	st.icmpMask = d.ICMPRateMask
	if d.SourceConnRate > 0 {
		st.source = bucketOf(time.Second/time.Duration(d.SourceConnRate), d.SourceConnBurst)
	}
	return st
}

// admit is the Director's receive filter, applied to every decoded frame before
// anything else looks at it: it returns the reason Linux would not hand the frame
// to IPVS (docs/defense.md §1), or 0.
//
// The common frame — IP, untagged, sent to the director's own MAC, no source route —
// is decided by the first test: one 8-byte load for the MAC and three flags of the
// decode; anything else takes admitSlow.
func (w *Worker) admit(st *settings, b []byte) Reason {
	if w.admitCommon(st, b) {
		return 0
	}
	return w.admitSlow(st, b)
}

// admitCommon is admit's first test: the frame is IP, untagged, sent to the
// director's own MAC and carries no source route.
func (w *Worker) admitCommon(st *settings, b []byte) bool {
	p := &w.p
	return p.IPVersion != 0 && !p.HasVLAN && !p.SourceRoute && st.toOwnMAC(b)
}

// toOwnMAC reports whether frame b (at least 8 bytes) is sent to the director's own
// MAC: admitCommon's one load, which Process asks alone of the common frame.
func (st *settings) toOwnMAC(b []byte) bool {
	return binary.LittleEndian.Uint64(b)&macMask == st.def.mac
}

func (w *Worker) admitSlow(st *settings, b []byte) Reason {
	p := &w.p
	if p.HasVLAN && p.VLAN != 0 && !st.def.vlans.has(p.VLAN) {
		return ReasonVLAN
	}
	switch p.EtherType {
	case header.EtherTypeVLAN, header.EtherTypeQinQ, etherTypeQinQLegacy:
		// A second tag, or a service tag: no VLAN interface gvs mirrors takes it.
		return ReasonVLAN
	}
	dst := header.Ethernet(b).DestinationAddress()
	if header.IsGroupMAC(dst) {
		if !groupAllowed(p) {
			return ReasonGroupMAC
		}
	} else if st.hasMAC && dst != st.mac {
		return ReasonOtherHost
	}
	if p.SourceRoute {
		return ReasonSourceRoute
	}
	return 0
}

// macMask keeps the destination MAC of a frame's first 8 bytes read little-endian.
const macMask = 1<<48 - 1

// etherTypeQinQLegacy is the TPID of stacked VLANs before 802.1ad (0x9100).
const etherTypeQinQLegacy = 0x9100

// groupAllowed reports whether a frame sent to a broadcast or multicast MAC is one
// the director takes: ARP, IPv6 neighbour discovery, VRRP. IPVS ignores every other
// packet that was not sent to the host's own MAC (ip_vs_in_hook: pkt_type is not
// PACKET_HOST).
func groupAllowed(p *header.Parsed) bool {
	switch {
	case p.EtherType == header.EtherTypeARP:
		return true
	case p.Proto == ipProtoVRRP && p.IPVersion != 0:
		return true
	case p.IPv6 && p.Proto == header.IPProtoICMPv6:
		return p.ICMPType >= icmpv6RouterSolicit && p.ICMPType <= icmpv6Redirect
	}
	return false
}

const (
	ipProtoVRRP         = 112
	icmpv6RouterSolicit = 133 // neighbour discovery: 133–137 (RFC 4861 §4)
	icmpv6Redirect      = 137
)

// icmpAllowed applies the ICMP error rate limits (docs/defense.md §2) to an error of
// kind about the current frame, sent to the frame's source; it takes the tokens when
// it allows the error.
func (w *Worker) icmpAllowed(kind header.ICMPErrorKind) bool {
	p := &w.p
	def := &w.s.set.def
	peer := def.icmp4
	if p.IPv6 {
		// ratemask 0-1,3-127: every error but packet too big.
		if kind == header.ICMPFragNeeded {
			return true
		}
		peer = def.icmp6
	} else {
		var typ uint8
		switch kind {
		case header.ICMPFragNeeded:
			return true // icmpv4_mask_allow: path MTU discovery is never limited
		case header.ICMPTimeExceeded:
			typ = icmpv4TimeExceeded
		default:
			typ = icmpv4DestUnreachable
		}
		if def.icmpMask&(1<<typ) == 0 {
			return true
		}
	}
	g := def.icmpGlobal
	if g.interval != 0 && !gcraReady(&w.d.icmpGlobal, w.now, g.interval, g.tolerance) {
		return false
	}
	if peer.interval != 0 {
		n := 4
		if p.IPv6 {
			n = 16
		}
		if !gcraAllow(w.d.icmpPeers.slot(p.Src[:n]), w.now, peer.interval, peer.tolerance) {
			return false
		}
	}
	return g.interval == 0 || gcraAllow(&w.d.icmpGlobal, w.now, g.interval, g.tolerance)
}

const (
	icmpv4DestUnreachable = 3
	icmpv4TimeExceeded    = 11
)

// sourceAllowed applies the per-source limit on new connections (docs/defense.md §3)
// to the client of w.key: its /24 for IPv4, its /64 for IPv6.
func (w *Worker) sourceAllowed(b bucket, now int64) bool {
	t := w.d.sources.Load()
	if t == nil {
		return true // SetOptions publishes the table before the limit
	}
	k := &w.key
	n := 3
	if k.IPv6 {
		n = 8
	}
	return gcraAllow(t.slot(k.CAddr[:n]), now, b.interval, b.tolerance)
}

// setLimits prepares the rate limit state for a change of limits from old to def:
// it makes the per-source table when def limits sources and there is none yet (it is
// kept when the limit is lifted, for the next time: 512 KiB), and fills the buckets
// of a limit that changes — their state means something only for the rate it was
// taken at.
func (d *Director) setLimits(old, def *Defense) {
	if def.SourceConnRate > 0 && d.sources.Load() == nil {
		d.sources.Store(newRateTable(sourceBits))
	} else if t := d.sources.Load(); t != nil && (old.SourceConnRate != def.SourceConnRate || old.SourceConnBurst != def.SourceConnBurst) {
		t.reset()
	}
	if old.ICMPRateLimit != def.ICMPRateLimit || old.ICMPv6RateLimit != def.ICMPv6RateLimit {
		d.icmpPeers.reset()
	}
	if old.ICMPMsgsPerSec != def.ICMPMsgsPerSec || old.ICMPMsgsBurst != def.ICMPMsgsBurst {
		d.icmpGlobal.Store(0)
	}
}
