package daemon

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/health"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/ipvs"
)

const healthConf = `
[[service]]
address = "198.18.0.100:80"
scheduler = "rr"
quorum = 2
sorry_server = "198.18.0.9"
sorry_server_mac = "02:00:00:00:00:09"
quorum_down = "echo down"
quorum_up = "echo up"
  [service.check]
  type = "tcp"
  interval = "1s"
  timeout = "1s"
  [[service.real_server]]
  address = "198.18.0.5:80"
  mac = "02:00:00:00:00:05"
  [[service.real_server]]
  address = "198.18.0.6:80"
  mac = "02:00:00:00:00:06"
  inhibit_on_failure = true
  [[service.real_server]]
  address = "198.18.0.7:80"
  mac = "02:00:00:00:00:07"

[[service]]
address = "198.18.0.100:443"
  [[service.real_server]]
  address = "198.18.0.5:443"
`

func TestHealthLayer(t *testing.T) {
	cfg, err := config.Parse("h.toml", []byte(healthConf))
	if err != nil {
		t.Fatal(err)
	}
	specs := Services(cfg)
	h := newHealthLayer(slog.New(slog.DiscardHandler))
	hs, err := h.configure(cfg, specs)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 3 || hs[0].Interval != time.Second || hs[0].Target != netip.MustParseAddrPort("198.18.0.5:80") {
		t.Fatalf("health specs %+v", hs)
	}
	key := specs[0].Key
	id := func(a string) string { return checkID(key, netip.MustParseAddrPort(a)) }
	servers := func(s ipvs.Service) map[string]int32 {
		m := map[string]int32{}
		for _, rs := range s.RealServers {
			m[rs.Addr.String()] = rs.Weight
		}
		return m
	}
	// effective as the controller uses it: the result is committed once taken.
	effective := func() ([]ipvs.Service, []string) {
		res := h.effective(specs, func(netip.Addr) ipvs.MAC { return ipvs.MAC{} })
		h.commit(res)
		return res.services, res.cmds
	}

	eff, cmds := effective()
	if got := servers(eff[0]); len(got) != 3 || len(cmds) != 0 {
		t.Fatalf("all up: %v %v", got, cmds)
	}
	if len(eff[1].RealServers) != 1 {
		t.Fatalf("an unchecked service must be left alone: %+v", eff[1])
	}

	// rs .6 fails: inhibit_on_failure keeps it at weight 0; live weight 2 keeps quorum.
	h.transition(health.Transition{ID: id("198.18.0.6:80"), Up: false, Weight: -1})
	eff, cmds = effective()
	got := servers(eff[0])
	if got["198.18.0.6:80"] != 0 || got["198.18.0.5:80"] != 1 || got["198.18.0.7:80"] != 1 || len(got) != 3 || len(cmds) != 0 {
		t.Fatalf("after .6 failed: %v %v", got, cmds)
	}
	// rs .5 fails too: it leaves the list, live weight 1 < quorum 2: quorum is lost,
	// quorum_down runs and only the sorry server serves.
	h.transition(health.Transition{ID: id("198.18.0.5:80"), Up: false, Weight: -1})
	eff, cmds = effective()
	if len(cmds) != 1 || cmds[0] != "echo down" {
		t.Fatalf("quorum_down not run: %v", cmds)
	}
	if got := servers(eff[0]); len(got) != 1 || got["198.18.0.9:80"] != 1 {
		t.Fatalf("without quorum only the sorry server should serve: %v", got)
	}
	// A dynamic check raises .7's weight to 5: quorum is back, quorum_up runs.
	h.transition(health.Transition{ID: id("198.18.0.7:80"), Up: true, Weight: 5})
	eff, cmds = effective()
	if got := servers(eff[0]); got["198.18.0.7:80"] != 5 || got["198.18.0.6:80"] != 0 || len(got) != 2 || len(cmds) != 1 || cmds[0] != "echo up" {
		t.Fatalf("after the dynamic weight: %v %v", got, cmds)
	}
	// Recovery puts .5 back with its configured weight.
	h.transition(health.Transition{ID: id("198.18.0.5:80"), Up: true, Weight: -1})
	eff, _ = effective()
	if got := servers(eff[0]); got["198.18.0.5:80"] != 1 {
		t.Fatalf("recovered server: %v", got)
	}
}

func TestHealthLayerServiceUp(t *testing.T) {
	h, specs := healthConfigured(t)
	web, tls := netip.MustParseAddrPort("198.18.0.100:80"), netip.MustParseAddrPort("198.18.0.100:443")
	var alive map[netip.AddrPort]bool
	effective := func() {
		res := h.effective(specs, func(netip.Addr) ipvs.MAC { return ipvs.MAC{} })
		h.commit(res)
		alive = res.alive
	}
	effective()
	if !alive[web] || !alive[tls] || alive[netip.MustParseAddrPort("198.18.0.100:81")] {
		t.Fatal("all up: serviceUp wrong")
	}
	key := specs[0].Key
	for _, a := range []string{"198.18.0.5:80", "198.18.0.6:80", "198.18.0.7:80"} {
		h.transition(health.Transition{ID: checkID(key, netip.MustParseAddrPort(a)), Up: false, Weight: -1})
	}
	effective()
	// .6 stays at weight 0 (inhibit) and the sorry server serves: neither is live.
	if alive[web] || !alive[tls] {
		t.Fatalf("all down: web up %v, tls up %v", alive[web], alive[tls])
	}
}

// TestHealthPolicyMaps: a service's policy makes its per-server maps only for
// what it has — the checked servers' check IDs, the servers with
// inhibit_on_failure — and none for a service without checks (a file of
// 10,000 such services made 20,000 empty maps for the collector to mark).
func TestHealthPolicyMaps(t *testing.T) {
	h, specs := healthConfigured(t)
	checked, plain := h.policies[specs[0].Key], h.policies[specs[1].Key]
	if checked == nil || plain == nil {
		t.Fatalf("policies %v", h.policies)
	}
	rs5, rs6 := netip.MustParseAddrPort("198.18.0.5:80"), netip.MustParseAddrPort("198.18.0.6:80")
	if len(checked.checks) != 3 || len(checked.checks[rs5]) != 1 {
		t.Fatalf("checked service's check IDs %v, want one for each of 3 servers", checked.checks)
	}
	if len(checked.inhibit) != 1 || !checked.inhibit[rs6] {
		t.Fatalf("checked service's inhibit %v, want %v alone", checked.inhibit, rs6)
	}
	if plain.checked || plain.checks != nil || plain.inhibit != nil {
		t.Fatalf("a service without checks made maps: checks %v, inhibit %v", plain.checks, plain.inhibit)
	}
}

// healthConfigured is a health layer configured with healthConf, and its
// services.
func healthConfigured(t *testing.T) (*healthLayer, []ipvs.Service) {
	t.Helper()
	cfg, err := config.Parse("h.toml", []byte(healthConf))
	if err != nil {
		t.Fatal(err)
	}
	specs := Services(cfg)
	h := newHealthLayer(slog.New(slog.DiscardHandler))
	if _, err := h.configure(cfg, specs); err != nil {
		t.Fatal(err)
	}
	return h, specs
}
