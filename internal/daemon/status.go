package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/health"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/control"
	"github.com/gvs-lb/gvs/internal/status"
	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/vrrp"
)

// statusServer serves the live status page on status_listen (docs/status.md),
// with metrics_web_config's TLS and basic auth. status_listen, status_actions
// and the web config file's path are read when the daemon starts; the file
// itself is read again for every request, as for the metrics.
type statusServer struct {
	ln      net.Listener
	webFile string
	handler *status.Handler
	log     *slog.Logger
}

// newStatusServer opens status_listen, or returns nil when it is not set.
func newStatusServer(d *Daemon, cfg *config.Config) (*statusServer, error) {
	dc := &cfg.Director
	if dc.StatusListen == "" {
		return nil, nil
	}
	if err := CheckStatusWeb(cfg); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", dc.StatusListen)
	if err != nil {
		return nil, fmt.Errorf("%s: status_listen: %w", cfg.File, err)
	}
	s := &statusServer{ln: ln, webFile: webConfigPath(dc.MetricsWebConfig, cfg.File), log: d.log}
	o := status.Options{Source: d.admin.statusSnapshot, Now: d.clock.Now}
	if dc.StatusActions {
		o.Actions = &statusActions{a: d.admin, webFile: s.webFile, weights: map[[2]string]int32{}}
	}
	s.handler = status.NewHandler(o)
	return s, nil
}

// CheckStatusWeb checks what status_listen needs of metrics_web_config: the
// file as the metrics server reads it (CheckMetricsWeb) and, with
// status_actions, at least one basic auth user. gvs check and gvs run call it.
func CheckStatusWeb(cfg *config.Config) error {
	dc := &cfg.Director
	if dc.StatusListen == "" {
		return nil
	}
	if err := CheckMetricsWeb(cfg); err != nil {
		return err
	}
	if dc.StatusActions {
		if err := webHasUsers(webConfigPath(dc.MetricsWebConfig, cfg.File)); err != nil {
			return fmt.Errorf("%s: status_actions: %w", cfg.File, err)
		}
	}
	return nil
}

// webHasUsers reports an error unless the web config file at p names at least
// one basic auth user.
func webHasUsers(p string) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("metrics_web_config: %w", err)
	}
	var c struct {
		Users map[string]string `yaml:"basic_auth_users"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("metrics_web_config %s: %w", p, err)
	}
	if len(c.Users) == 0 {
		return fmt.Errorf("metrics_web_config %s has no basic_auth_users: drain and undrain are never served without authentication (add a user, or set status_actions = false)", p)
	}
	return nil
}

// serve serves the page until ctx ends, then stops, giving requests in progress
// 5 seconds. It closes the listener. A page that cannot be served (its web config
// file broke since the start) is logged, never an error: the director keeps
// forwarding without it.
func (s *statusServer) serve(ctx context.Context) error {
	if err := s.run(ctx); err != nil {
		s.log.Error("status page: off until gvs restarts", "err", err)
	}
	return nil
}

func (s *statusServer) run(ctx context.Context) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() {
		if s.webFile == "" {
			errc <- srv.Serve(s.ln)
			return
		}
		none := false
		errc <- web.Serve(s.ln, srv, &web.FlagConfig{WebListenAddresses: &[]string{}, WebSystemdSocket: &none, WebConfigFile: &s.webFile}, s.log)
	}()
	s.log.Info("status page", "listen", s.ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("status page: serve %s: %w", s.ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("status page: serve %s: %w", s.ln.Addr(), err)
	}
	return nil
}

// close closes the listener of a server never served.
func (s *statusServer) close() {
	if s != nil {
		s.ln.Close()
	}
}

// statusSnapshot is the status page's snapshot: the services and real servers
// as gvs adm -Ln --stats/--rate lists them, the configured real servers the data
// path does not hold (failed checks), health, VRRP and the drop counters.
func (a *Admin) statusSnapshot() *status.Snapshot {
	s := &status.Snapshot{Taken: a.dm.clock.Now(), Services: []status.Service{}, VRRP: []status.VRRP{}, Drops: []status.Count{}}
	svcs := a.services(true)
	health := healthByServer(a.dm.health.Snapshot())
	configured := map[ipvs.Key]*ipvs.Service{}
	var resolving map[netip.Addr]bool
	if p := a.dm.pub.Load(); p != nil {
		resolving = p.resolving
		for svc := range p.configured.all() {
			configured[svc.Key] = svc
		}
	}
	for i := range svcs {
		m := &svcs[i]
		key := keyOfCommand(m)
		out := status.Service{
			Name:      ServiceLabel(&ipvs.Service{Key: key}),
			Scheduler: m.Scheduler,
			Flags:     strings.Join(m.Flags, ","),
			Stats:     status.Stats(m.Stats),
			Rates:     status.Rates(m.Rates),
			Servers:   []status.Server{},
		}
		if m.Persistent {
			out.Persist = int(m.Timeout / time.Second)
		}
		inTable := map[netip.AddrPort]bool{}
		for j := range m.Dests {
			dm := &m.Dests[j]
			ap := netip.AddrPortFrom(dm.Addr, dm.Port)
			inTable[ap] = true
			rs := status.Server{
				Address: ServerLabel(dm.Addr, dm.Port), Method: dm.Method.String(), Weight: dm.Weight,
				Active: dm.ActiveConns, Inactive: dm.InactConns, Persist: dm.PersistConns, InTable: true,
				Health: health[checkID(key, ap)], Stats: status.Stats(dm.Stats), Rates: status.Rates(dm.Rates),
			}
			rs.State = serverState(rs.Health, rs.Weight)
			out.Servers = append(out.Servers, rs)
		}
		if c := configured[key]; c != nil {
			for _, r := range c.RealServers {
				if inTable[r.Addr] {
					continue
				}
				rs := status.Server{Address: ServerLabel(r.Addr.Addr(), r.Addr.Port()), Method: destModel(&dataplane.DestView{Method: r.Method}).Method.String(),
					Weight: int(r.Weight), Health: health[checkID(key, r.Addr)]}
				// Configured but not in the data path: its MAC is being resolved,
				// or its checks (or the service's quorum) took it out.
				rs.State = "down"
				if resolving[r.Addr.Addr()] {
					rs.State = "pending"
				}
				out.Servers = append(out.Servers, rs)
			}
		}
		s.Services = append(s.Services, out)
	}
	t := a.d.Totals()
	for r := dataplane.Reason(1); r < dataplane.NumReasons; r++ {
		if v := t.Counters.Reasons[r]; v > 0 {
			s.Drops = append(s.Drops, status.Count{Name: r.String(), Value: v})
		}
	}
	s.Frames = status.Frames{In: t.Counters.In, Forwarded: t.Counters.Forwarded}
	tab := a.d.Table()
	s.Conns = status.Conntrack{Entries: tab.Len(), Max: tab.Max()}
	if m := a.dm.vrrp; m != nil {
		for _, st := range m.runner.Status() {
			v := status.VRRP{Name: st.Name, State: st.State.String(), Configured: int(st.Configured), Priority: int(st.Priority),
				Since: st.Since, Reason: st.Reason, Tracks: st.Tracks}
			if in := m.byName(st.Name); in != nil {
				v.VRID, v.Interface = int(in.cfg.VirtualRouterID), in.cfg.Interface
			}
			if st.Master.IsValid() {
				v.Master = st.Master.String()
				if st.State != vrrp.StateMaster {
					v.MasterPriority = int(st.MasterPriority)
				}
			}
			if !st.Since.IsZero() {
				v.From = st.From.String()
			}
			s.VRRP = append(s.VRRP, v)
		}
	}
	if c := a.dm.cl; c != nil {
		s.Cluster = c.status(s.Taken) // admin_cluster.go
	}
	return s
}

// serverState is a real server's state on the page: down when a check fails,
// drained at weight 0, else up.
func serverState(h *status.Health, weight int) string {
	switch {
	case h != nil && !h.Up:
		return "down"
	case weight == 0:
		return "drained"
	}
	return "up"
}

// healthByServer folds the checks' statuses into one per real server (by
// checkID): down when one of its checks is, with that check's reason; the
// latest check and change.
func healthByServer(st []health.Status) map[string]*status.Health {
	out := map[string]*status.Health{}
	for _, c := range st {
		id, _, _ := strings.Cut(c.ID, "#")
		h := out[id]
		if h == nil {
			h = &status.Health{Up: true}
			out[id] = h
		}
		if !c.Up && h.Up {
			h.Up, h.Reason = false, c.LastReason
		} else if h.Up && c.LastCheck.After(h.LastCheck) {
			h.Reason = c.LastReason
		}
		if c.LastCheck.After(h.LastCheck) {
			h.LastCheck = c.LastCheck
		}
		if c.LastChange.After(h.LastChange) {
			h.LastChange = c.LastChange
		}
		h.Checks += c.Checks
		h.Failures += c.Failures
	}
	return out
}

// statusActions drains and undrains real servers for the page: an edit of the
// server's weight through the controller, as gvs adm -e would make it.
type statusActions struct {
	a       *Admin
	webFile string

	mu      sync.Mutex
	weights map[[2]string]int32 // weight before the drain, by (service, server)
}

// find returns the configured service labelled service and its real server
// labelled server.
func (s *statusActions) find(service, server string) (*ipvs.Service, *ipvs.RealServer, error) {
	if p := s.a.dm.pub.Load(); p != nil {
		for svc := range p.configured.all() {
			if ServiceLabel(svc) != service {
				continue
			}
			for j := range svc.RealServers {
				if r := &svc.RealServers[j]; ServerLabel(r.Addr.Addr(), r.Addr.Port()) == server {
					return svc, r, nil
				}
			}
		}
	}
	return nil, nil, fmt.Errorf("%w: %s %s", status.ErrNotFound, service, server)
}

func (s *statusActions) Drain(ctx context.Context, service, server string) error {
	return s.set(ctx, service, server, true)
}

func (s *statusActions) Undrain(ctx context.Context, service, server string) error {
	return s.set(ctx, service, server, false)
}

func (s *statusActions) set(ctx context.Context, service, server string, drain bool) error {
	// The file is read per request: refuse if its users were taken out since
	// the start (the page would then be open to anyone).
	if err := webHasUsers(s.webFile); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	svc, rs, err := s.find(service, server)
	if err != nil {
		return err
	}
	k := [2]string{service, server}
	w := int32(0)
	if !drain {
		var ok bool
		if w, ok = s.weights[k]; !ok {
			return fmt.Errorf("%s %s was not drained from this page, so its weight before is unknown: set it with gvs adm -e", service, server)
		}
	}
	res := s.a.Handle(ctx, control.Request{Args: editArgs(svc, rs, w)})
	if res.Status != 0 {
		return fmt.Errorf("%s %s: %s", service, server, strings.TrimSpace(res.Stderr))
	}
	if drain {
		if rs.Weight > 0 {
			s.weights[k] = rs.Weight
		}
	} else {
		delete(s.weights, k)
	}
	s.a.log.Info("status page", "action", map[bool]string{true: "drain", false: "undrain"}[drain], "service", service, "server", server, "weight", w)
	return nil
}

// editArgs is the gvs adm -e command line giving rs of svc weight w, keeping
// its forwarding method and thresholds.
func editArgs(svc *ipvs.Service, rs *ipvs.RealServer, w int32) []string {
	args := []string{"-e"}
	switch {
	case svc.FWMark != 0:
		args = append(args, "-f", strconv.FormatUint(uint64(svc.FWMark), 10))
		if svc.IPv6 {
			args = append(args, "-6")
		}
	case svc.Protocol == 17:
		args = append(args, "-u", svc.Addr.String())
	case svc.Protocol == 132:
		args = append(args, "--sctp-service", svc.Addr.String())
	default:
		args = append(args, "-t", svc.Addr.String())
	}
	method := "-g"
	switch rs.Method {
	case ipvs.NAT:
		method = "-m"
	case ipvs.TUN:
		method = "-i"
	}
	return append(args, "-r", rs.Addr.String(), method, "-w", strconv.Itoa(int(w)),
		"-x", strconv.FormatUint(uint64(rs.UpperThreshold), 10), "-y", strconv.FormatUint(uint64(rs.LowerThreshold), 10))
}
