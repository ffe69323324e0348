package daemon

import (
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/internal/config"
)

// defenseOptions maps the Defense keys of [director] onto the Director's.
func defenseOptions(d *config.Defense) dataplane.Defense {
	return dataplane.Defense{
		VLANs:           d.VLANs.IDs(),
		ICMPRateLimit:   d.ICMPRateLimit,
		ICMPRateMask:    uint32(d.ICMPRateMask),
		ICMPv6RateLimit: d.ICMPv6RateLimit,
		ICMPMsgsPerSec:  d.ICMPMsgsPerSec,
		ICMPMsgsBurst:   d.ICMPMsgsBurst,
		SourceConnRate:  d.SourceConnRate,
		SourceConnBurst: d.SourceConnBurst,
	}
}

// defenseChanges names the Defense keys whose values differ, in the order
// docs/defense.md §4 lists them. Every one takes effect on reload (SetOptions).
func defenseChanges(a, b *config.Defense) []string {
	var out []string
	add := func(changed bool, key string) {
		if changed {
			out = append(out, key)
		}
	}
	add(a.VLANs != b.VLANs, "vlans")
	add(a.ICMPRateLimit != b.ICMPRateLimit, "icmp_ratelimit")
	add(a.ICMPRateMask != b.ICMPRateMask, "icmp_ratemask")
	add(a.ICMPv6RateLimit != b.ICMPv6RateLimit, "icmpv6_ratelimit")
	add(a.ICMPMsgsPerSec != b.ICMPMsgsPerSec, "icmp_msgs_per_sec")
	add(a.ICMPMsgsBurst != b.ICMPMsgsBurst, "icmp_msgs_burst")
	add(a.SourceConnRate != b.SourceConnRate, "source_conn_rate")
	add(a.SourceConnBurst != b.SourceConnBurst, "source_conn_burst")
	return out
}
