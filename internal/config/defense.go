package config

import (
	"fmt"
	"time"
)

// Defense holds the [director] keys that keep the Director to what Linux would
// forward and limit what a flood can make it send or create (docs/defense.md §4).
// Parse fills Linux's defaults: no VLAN, ICMP errors limited as Linux limits them,
// no per-source limit.
type Defense struct {
	VLANs VLANSet // vlans: tagged frames of these VLAN IDs are accepted

	ICMPRateLimit   time.Duration // icmp_ratelimit (milliseconds in the file); 0 = off
	ICMPRateMask    int           // icmp_ratemask: ICMPv4 types limited, bit n for type n
	ICMPv6RateLimit time.Duration // icmpv6_ratelimit (milliseconds); 0 = off
	ICMPMsgsPerSec  int           // icmp_msgs_per_sec: ICMP errors per second in total; 0 = off
	ICMPMsgsBurst   int           // icmp_msgs_burst

	SourceConnRate  int // source_conn_rate: new connections per second per client /24 or /64; 0 = off
	SourceConnBurst int // source_conn_burst; source_conn_rate when not given
}

// VLANSet is a set of 802.1Q VLAN IDs (1–4094), one bit each. The zero value is
// the empty set.
type VLANSet [4096 / 64]uint64

// Has reports whether id is in the set.
func (s *VLANSet) Has(id uint16) bool { return id < 4096 && s[id/64]&(1<<(id%64)) != 0 }

// Add puts id (below 4096) in the set.
func (s *VLANSet) Add(id uint16) { s[id/64&63] |= 1 << (id % 64) }

// IDs returns the set's VLAN IDs in ascending order; nil for the empty set.
func (s *VLANSet) IDs() []uint16 {
	var out []uint16
	for id := uint16(0); id < 4096; id++ {
		if s.Has(id) {
			out = append(out, id)
		}
	}
	return out
}

// Linux's defaults (net.ipv4.icmp_*, net.ipv6.icmp.ratelimit).
const (
	defaultICMPRateLimit  = time.Second
	defaultICMPRateMask   = 0x1818 // 6168: destination unreachable, source quench, time exceeded, parameter problem
	defaultICMPMsgsPerSec = 1000
	defaultICMPMsgsBurst  = 50

	maxVLANID       = 4094
	maxICMPRateMs   = 3_600_000     // an hour
	maxICMPRateMask = 1<<19 - 1     // ICMPv4 types 0–18, as the kernel's mask
	maxRate         = 1_000_000_000 // one a nanosecond, the Director's resolution
)

func defaultDefense() Defense {
	return Defense{
		ICMPRateLimit:   defaultICMPRateLimit,
		ICMPRateMask:    defaultICMPRateMask,
		ICMPv6RateLimit: defaultICMPRateLimit,
		ICMPMsgsPerSec:  defaultICMPMsgsPerSec,
		ICMPMsgsBurst:   defaultICMPMsgsBurst,
	}
}

// defense reads the Defense keys of [director] over d's defaults.
func (r *reader) defense(t *table, d *Defense) {
	if v, ok := t.get("vlans"); ok {
		r.vlans(t, v, &d.VLANs)
	}
	millis := func(k string, dst *time.Duration) {
		var ms int
		if t.intField(k, 0, maxICMPRateMs, &ms) {
			*dst = time.Duration(ms) * time.Millisecond
		}
	}
	millis("icmp_ratelimit", &d.ICMPRateLimit)
	millis("icmpv6_ratelimit", &d.ICMPv6RateLimit)
	t.intField("icmp_ratemask", 0, maxICMPRateMask, &d.ICMPRateMask)
	t.intField("icmp_msgs_per_sec", 0, maxRate, &d.ICMPMsgsPerSec)
	t.intField("icmp_msgs_burst", 1, maxRate, &d.ICMPMsgsBurst)

	t.intField("source_conn_rate", 0, maxRate, &d.SourceConnRate)
	if t.intField("source_conn_burst", 1, maxRate, &d.SourceConnBurst) {
		if d.SourceConnRate == 0 {
			t.errorf("source_conn_burst", "needs source_conn_rate: without a rate the per-source limit is off (set source_conn_rate, or remove source_conn_burst)")
		}
	} else if d.SourceConnBurst == 0 {
		d.SourceConnBurst = d.SourceConnRate
	}
}

// vlans reads `vlans = [10, 20]`: VLAN IDs 1–4094, each once.
func (r *reader) vlans(t *table, v any, dst *VLANSet) {
	arr, ok := v.([]any)
	if !ok {
		t.typeErr("vlans", "an array of VLAN IDs (vlans = [10, 20])", v)
		return
	}
	var set VLANSet
	good := true
	for i, e := range arr {
		path := joinIndex(t.key("vlans"), i)
		n, ok := e.(int64)
		switch {
		case !ok:
			r.add(path, fmt.Errorf("%w: want a VLAN ID (an integer), got %s", ErrType, describe(e)))
		case n < 1 || n > maxVLANID:
			r.errorf(path, "VLAN ID must be 1–%d (got %d; untagged and priority-tagged frames are always accepted)", maxVLANID, n)
		case set.Has(uint16(n)):
			r.errorf(path, "VLAN ID %d is listed twice", n)
		default:
			set.Add(uint16(n))
			continue
		}
		good = false
	}
	if good {
		*dst = set
	}
}
