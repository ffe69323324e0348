package config

import (
	"slices"
	"testing"
	"time"
)

func TestDefenseDefaults(t *testing.T) {
	c, err := Parse("gvs.toml", file(`[director]`))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Director.Defense
	want := Defense{ICMPRateLimit: time.Second, ICMPRateMask: 6168, ICMPv6RateLimit: time.Second, ICMPMsgsPerSec: 1000, ICMPMsgsBurst: 50}
	if d != want {
		t.Errorf("defaults: got %+v, want %+v", d, want)
	}
	if d != Default().Director.Defense {
		t.Errorf("Default() disagrees with Parse: %+v", Default().Director.Defense)
	}
}

func TestDefenseKeys(t *testing.T) {
	c, err := Parse("gvs.toml", file(
		`[director]`,
		`vlans = [20, 10, 4094]`,
		`icmp_ratelimit = 250`,
		`icmp_ratemask = 0`,
		`icmpv6_ratelimit = 0`,
		`icmp_msgs_per_sec = 0`,
		`icmp_msgs_burst = 7`,
		`source_conn_rate = 100`,
	))
	if err != nil {
		t.Fatal(err)
	}
	d := c.Director.Defense
	if got := d.VLANs.IDs(); !slices.Equal(got, []uint16{10, 20, 4094}) {
		t.Errorf("vlans: %v", got)
	}
	if d.ICMPRateLimit != 250*time.Millisecond || d.ICMPRateMask != 0 || d.ICMPv6RateLimit != 0 || d.ICMPMsgsPerSec != 0 || d.ICMPMsgsBurst != 7 {
		t.Errorf("icmp keys: %+v", d)
	}
	if d.SourceConnRate != 100 || d.SourceConnBurst != 100 {
		t.Errorf("source_conn_rate 100 without a burst: rate %d burst %d, want the burst to be the rate", d.SourceConnRate, d.SourceConnBurst)
	}
	c, err = Parse("gvs.toml", file(`[director]`, `source_conn_rate = 10`, `source_conn_burst = 3`))
	if err != nil || c.Director.Defense.SourceConnBurst != 3 {
		t.Errorf("source_conn_burst 3: %v, %+v", err, c)
	}
}

func TestDefenseErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input []byte
		want  []wantErr
	}{
		{"vlans", file(`[director]`, `vlans = [0, 10, 4095, 10, "20"]`), []wantErr{
			{2, "director.vlans[0]", "VLAN ID must be 1–4094 (got 0"},
			{2, "director.vlans[2]", "VLAN ID must be 1–4094 (got 4095"},
			{2, "director.vlans[3]", "VLAN ID 10 is listed twice"},
			{2, "director.vlans[4]", "want a VLAN ID (an integer)"},
		}},
		{"vlans not an array", file(`[director]`, `vlans = 10`), []wantErr{
			{2, "director.vlans", "want an array of VLAN IDs"},
		}},
		{"icmp", file(`[director]`, `icmp_ratelimit = -1`, `icmp_ratemask = 524288`, `icmp_msgs_burst = 0`, `icmpv6_ratelimit = "1s"`), []wantErr{
			{2, "director.icmp_ratelimit", "must not be negative (got -1)"},
			{3, "director.icmp_ratemask", "must be at most 524287 (got 524288)"},
			{4, "director.icmp_msgs_burst", "must be at least 1 (got 0)"},
			{5, "director.icmpv6_ratelimit", "want an integer"},
		}},
		{"burst without rate", file(`[director]`, `source_conn_burst = 5`), []wantErr{
			{2, "director.source_conn_burst", "needs source_conn_rate: without a rate the per-source limit is off"},
		}},
		{"negative rate", file(`[director]`, `source_conn_rate = -5`), []wantErr{
			{2, "director.source_conn_rate", "must not be negative (got -5)"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkErrors(t, tc.input, tc.want) })
	}
}

func TestVLANSet(t *testing.T) {
	var s VLANSet
	for _, id := range []uint16{4094, 1, 64, 63} {
		s.Add(id)
	}
	if got := s.IDs(); !slices.Equal(got, []uint16{1, 63, 64, 4094}) {
		t.Errorf("IDs = %v", got)
	}
	if s.Has(2) || !s.Has(64) || s.Has(4096) {
		t.Error("Has disagrees with Add")
	}
}
