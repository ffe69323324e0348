package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afpacket"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/ipvs"
)

// Metrics is the Prometheus endpoint of a director (metrics_listen). Counters and
// table gauges are read from the Director when scraped, so the packet path pays
// nothing for them; health and VRRP state are pushed by the daemon through
// SetHealth and SetVRRPState. Counters are the Director's own, never zeroed by
// gvs adm -Z (Prometheus counters must not go backwards; a service deleted and
// added again starts from zero, which Prometheus reads as a counter reset).
//
// Series (labels service="TCP/198.18.0.100:80" or "FWM/7", server="198.18.0.5:80",
// direction="in"|"out"):
//
//	gvs_service_connections_total{service}
//	gvs_service_packets_total{service,direction}       gvs_service_bytes_total{service,direction}
//	gvs_service_estimated_connections_per_second{service}
//	gvs_service_estimated_packets_per_second{service,direction}
//	gvs_service_estimated_bytes_per_second{service,direction}
//	gvs_real_server_active_connections{service,server}  …_inactive_connections  …_persistent_connections
//	gvs_real_server_weight{service,server}              gvs_real_server_overloaded{service,server}
//	gvs_real_server_connections_total{service,server}
//	gvs_real_server_packets_total{service,server,direction}  …_bytes_total{…}
//	gvs_real_server_estimated_{connections,packets,bytes}_per_second{…}
//	gvs_real_server_up{service,server}                  gvs_real_server_health_transitions_total{service,server,state}
//	gvs_frames_received_total  gvs_frames_forwarded_total  gvs_icmp_errors_sent_total
//	gvs_icmp_errors_suppressed_total  gvs_icmp_errors_rate_limited_total
//	gvs_drops_total{reason}    gvs_malformed_total{reason}
//	gvs_conntrack_entries      gvs_conntrack_max
//	gvs_vrrp_state{vrrp_instance,state} (1 for the current state)  gvs_vrrp_transitions_total{vrrp_instance,state}
//	(not "instance": Prometheus gives that label to every target it scrapes)
//	gvs_build_info{version,revision,goversion} 1
//	gvs_config_last_reload_successful              1 when the last load of the config file worked
//	gvs_config_last_reload_success_timestamp_seconds  when the running config was loaded
//
// and, per data-path link (label link = interface name, worker = its index), what
// the link counted (afpacket.Stats), so a lost frame is seen where it was lost:
//
//	gvs_link_frames_total{link,worker,direction}   rx: handed to the worker; tx: accepted by the kernel
//	gvs_link_drops_total{link,worker,reason}       ring_full (the kernel's tp_drops: the worker fell
//	                                               behind), rx_truncated, rx_bad, tx (device or socket
//	                                               refused the frame)
//	gvs_link_tx_busy_total{link,worker}            sends retried because the device queue was full
//	gvs_link_rx_copied_total{link,worker}          frames longer than a ring slot received whole
//	gvs_link_errors_total{link,worker}             errors the socket reported (link down)
//
// plus node_exporter's IPVS family (nodeIPVSCollector) and the Go runtime and
// process collectors. metrics_gvs = false leaves out the gvs_service_* and
// gvs_real_server_* series the Director's tables give (not the health series);
// metrics_node_ipvs = false leaves out the node_ipvs_* family. A Metrics is safe
// for concurrent use.
type Metrics struct {
	a   *Admin
	reg *prometheus.Registry

	gvsOn, nodeOn atomic.Bool
	web           atomic.Pointer[string] // exporter-toolkit web config file; "" = none
	log           atomic.Pointer[slog.Logger]

	build      *prometheus.GaugeVec
	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge

	up          *prometheus.GaugeVec
	healthTrans *prometheus.CounterVec
	vrrpState   *prometheus.GaugeVec
	vrrpTrans   *prometheus.CounterVec

	mu     sync.Mutex // guards health and vrrp
	health map[[2]string]bool
	vrrp   map[string]string
}

// vrrpStates are the states gvs_vrrp_state always has a series for, as the vrrp
// package names them.
var vrrpStates = [...]string{"INIT", "BACKUP", "MASTER", "FAULT"}

// NewMetrics returns the metrics of the Director a manages, registered in a
// registry of their own (no global state).
func NewMetrics(a *Admin) *Metrics {
	m := &Metrics{
		a:   a,
		reg: prometheus.NewRegistry(),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gvs_real_server_up",
			Help: "Health check result of a real server: 1 up, 0 down.",
		}, []string{"service", "server"}),
		healthTrans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gvs_real_server_health_transitions_total",
			Help: "Health state changes of a real server, by the state entered (up, down).",
		}, []string{"service", "server", "state"}),
		vrrpState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gvs_vrrp_state",
			Help: "VRRP instance state: 1 for the current state, 0 for the others.",
		}, []string{"vrrp_instance", "state"}),
		vrrpTrans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gvs_vrrp_transitions_total",
			Help: "VRRP state transitions of an instance, by the state entered.",
		}, []string{"vrrp_instance", "state"}),
		build: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gvs_build_info",
			Help: "Always 1; the labels say which gvs runs: its version, VCS revision and Go version.",
		}, []string{"version", "revision", "goversion"}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gvs_config_last_reload_successful",
			Help: "1 when the last load of the config file (at start or on SIGHUP) worked, 0 when it was refused.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gvs_config_last_reload_success_timestamp_seconds",
			Help: "Unix time at which the running config file was loaded.",
		}),
		health: map[[2]string]bool{},
		vrrp:   map[string]string{},
	}
	m.gvsOn.Store(true)
	m.nodeOn.Store(true)
	m.SetVersion("")
	m.reg.MustRegister(
		&directorCollector{a: a, on: &m.gvsOn},
		&nodeIPVSCollector{a: a, on: &m.nodeOn},
		m.up, m.healthTrans, m.vrrpState, m.vrrpTrans,
		m.build, m.reloadOK, m.reloadTime,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Handler serves the metrics in the Prometheus exposition formats, OpenMetrics
// included when the scraper asks for it (Accept: application/openmetrics-text).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, EnableOpenMetrics: true})
}

// SetVersion sets gvs_build_info's version label (main's version; "" takes the
// module's version from the build information), with the VCS revision the binary
// was built from and the Go version.
func (m *Metrics) SetVersion(version string) {
	revision := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if version == "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	if version == "" {
		version = "unknown"
	}
	m.build.Reset()
	m.build.WithLabelValues(version, revision, runtime.Version()).Set(1)
}

// ConfigLoaded records a load of the config file at start or on reload: ok
// false when it was refused (the director keeps the previous one).
func (m *Metrics) ConfigLoaded(ok bool, at time.Time) {
	if !ok {
		m.reloadOK.Set(0)
		return
	}
	m.reloadOK.Set(1)
	m.reloadTime.Set(float64(at.UnixNano()) / 1e9)
}

// configure takes the metrics keys of [director]: which families are exported
// (at once, from the next scrape) and the web config file the next Serve uses
// (cfgFile locates a relative one). log receives the web server's messages.
func (m *Metrics) configure(d *config.Director, cfgFile string, log *slog.Logger) {
	m.gvsOn.Store(d.MetricsGVS)
	m.nodeOn.Store(d.MetricsNodeIPVS)
	web := webConfigPath(d.MetricsWebConfig, cfgFile)
	m.web.Store(&web)
	if log != nil {
		m.log.Store(log)
	}
}

// webConfigPath is metrics_web_config resolved against the config file's
// directory.
func webConfigPath(p, cfgFile string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(cfgFile), p)
}

// CheckMetricsWeb checks cfg's metrics_web_config the way the metrics server
// will read it: the file parses, its users' passwords are bcrypt hashes, and the
// TLS certificate and key it names load. gvs check and gvs run call it, so a
// broken file is refused before anything starts.
func CheckMetricsWeb(cfg *config.Config) error {
	p := webConfigPath(cfg.Director.MetricsWebConfig, cfg.File)
	if p == "" {
		return nil
	}
	if err := web.Validate(p); err != nil {
		return fmt.Errorf("%s: metrics_web_config %s: %w (fix the file, or remove metrics_web_config to serve plain HTTP)", cfg.File, p, err)
	}
	return nil
}

// ServeMetrics serves GET /metrics on addr (host:port) until ctx is cancelled, then
// shuts the server down, giving scrapes in progress 5 seconds, and returns nil. It
// returns an error when it cannot listen.
func (m *Metrics) ServeMetrics(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listen %s: %w", addr, err)
	}
	return m.Serve(ctx, ln)
}

// Serve is ServeMetrics on a listener the caller opened (to fail early when the
// address is taken, or in tests). It closes ln.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "gvs director: metrics at /metrics")
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	webFile := ""
	if p := m.web.Load(); p != nil {
		webFile = *p
	}
	log := m.log.Load()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// A client's TLS or protocol mistakes are its own: debug, not stderr.
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	errc := make(chan error, 1)
	go func() {
		if webFile == "" {
			errc <- srv.Serve(ln)
			return
		}
		// TLS and basic auth as the file says; it is read again for every
		// request and TLS handshake, so certificates and users change without a
		// reload.
		none := false
		errc <- web.Serve(ln, srv, &web.FlagConfig{WebListenAddresses: &[]string{}, WebSystemdSocket: &none, WebConfigFile: &webFile}, log)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("metrics: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// SetHealth records the health check result of a real server (labels from
// ServiceLabel and ServerLabel). A change from the previous result counts a
// transition; the first result does not.
func (m *Metrics) SetHealth(service, server string, up bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{service, server}
	if old, ok := m.health[k]; ok && old != up {
		state := "down"
		if up {
			state = "up"
		}
		m.healthTrans.WithLabelValues(service, server, state).Inc()
	}
	m.health[k] = up
	v := 0.0
	if up {
		v = 1
	}
	m.up.WithLabelValues(service, server).Set(v)
}

// ForgetHealth drops the health series of a real server that is no longer
// checked (removed by a reload).
func (m *Metrics) ForgetHealth(service, server string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.health, [2]string{service, server})
	m.up.DeleteLabelValues(service, server)
}

// SetVRRPState records the state of a VRRP instance ("INIT", "BACKUP", "MASTER",
// "FAULT", as vrrp.State prints). A change from the previous state counts a
// transition into the new one; the first state does not.
func (m *Metrics) SetVRRPState(instance, state string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.vrrp[instance]; ok && old != state {
		m.vrrpTrans.WithLabelValues(instance, state).Inc()
	}
	m.vrrp[instance] = state
	known := false
	for _, s := range vrrpStates {
		v := 0.0
		if s == state {
			v, known = 1, true
		}
		m.vrrpState.WithLabelValues(instance, s).Set(v)
	}
	if !known {
		m.vrrpState.WithLabelValues(instance, state).Set(1)
	}
}

// ServiceLabel is the service label of a service's series: "TCP/198.18.0.100:80",
// "UDP/[2001:db8::1]:53", "FWM/7" or "FWM/7/IPv6".
func ServiceLabel(s *ipvs.Service) string {
	if s.FWMark != 0 {
		l := "FWM/" + strconv.FormatUint(uint64(s.FWMark), 10)
		if s.IPv6 {
			l += "/IPv6"
		}
		return l
	}
	proto := "TCP"
	switch s.Protocol {
	case 17:
		proto = "UDP"
	case 6:
	default:
		proto = strconv.Itoa(int(s.Protocol))
	}
	return proto + "/" + netip.AddrPortFrom(s.Addr.Addr().Unmap(), s.Addr.Port()).String()
}

// ServerLabel is the server label of a real server's series: "198.18.0.5:80" or
// "[2001:db8::5]:80".
func ServerLabel(addr netip.Addr, port uint16) string {
	return netip.AddrPortFrom(addr.Unmap(), port).String()
}

// directorCollector reads the Director at scrape time. While on is false it
// leaves out the per-service and per-real-server series (metrics_gvs = false).
type directorCollector struct {
	a  *Admin
	on *atomic.Bool
}

var (
	svcLabels    = []string{"service"}
	svcDirLabels = []string{"service", "direction"}
	rsLabels     = []string{"service", "server"}
	rsDirLabels  = []string{"service", "server", "direction"}

	descSvcConns    = prometheus.NewDesc("gvs_service_connections_total", "Connections scheduled to a virtual service.", svcLabels, nil)
	descSvcPkts     = prometheus.NewDesc("gvs_service_packets_total", "Packets of a virtual service: in from clients, out from real servers (NAT replies).", svcDirLabels, nil)
	descSvcBytes    = prometheus.NewDesc("gvs_service_bytes_total", "Bytes (IP packets) of a virtual service, by direction.", svcDirLabels, nil)
	descSvcCPS      = prometheus.NewDesc("gvs_service_estimated_connections_per_second", "New connections per second of a service, averaged as ipvsadm --rate.", svcLabels, nil)
	descSvcPPS      = prometheus.NewDesc("gvs_service_estimated_packets_per_second", "Packets per second of a service, averaged as ipvsadm --rate.", svcDirLabels, nil)
	descSvcBPS      = prometheus.NewDesc("gvs_service_estimated_bytes_per_second", "Bytes per second of a service, averaged as ipvsadm --rate.", svcDirLabels, nil)
	descRSActive    = prometheus.NewDesc("gvs_real_server_active_connections", "Active connections of a real server (ipvsadm ActiveConn).", rsLabels, nil)
	descRSInactive  = prometheus.NewDesc("gvs_real_server_inactive_connections", "Inactive connections of a real server (ipvsadm InActConn).", rsLabels, nil)
	descRSPersist   = prometheus.NewDesc("gvs_real_server_persistent_connections", "Persistence templates bound to a real server (ipvsadm PersistConn).", rsLabels, nil)
	descRSWeight    = prometheus.NewDesc("gvs_real_server_weight", "Scheduling weight of a real server; 0 is quiesced.", rsLabels, nil)
	descRSOverload  = prometheus.NewDesc("gvs_real_server_overloaded", "1 while a real server is above its upper connection threshold.", rsLabels, nil)
	descRSConns     = prometheus.NewDesc("gvs_real_server_connections_total", "Connections scheduled to a real server.", rsLabels, nil)
	descRSPkts      = prometheus.NewDesc("gvs_real_server_packets_total", "Packets of a real server's connections, by direction.", rsDirLabels, nil)
	descRSBytes     = prometheus.NewDesc("gvs_real_server_bytes_total", "Bytes (IP packets) of a real server's connections, by direction.", rsDirLabels, nil)
	descRSCPS       = prometheus.NewDesc("gvs_real_server_estimated_connections_per_second", "New connections per second of a real server, averaged as ipvsadm --rate.", rsLabels, nil)
	descRSPPS       = prometheus.NewDesc("gvs_real_server_estimated_packets_per_second", "Packets per second of a real server, averaged as ipvsadm --rate.", rsDirLabels, nil)
	descRSBPS       = prometheus.NewDesc("gvs_real_server_estimated_bytes_per_second", "Bytes per second of a real server, averaged as ipvsadm --rate.", rsDirLabels, nil)
	descFramesIn    = prometheus.NewDesc("gvs_frames_received_total", "Frames handed to the data path.", nil, nil)
	descFramesFwd   = prometheus.NewDesc("gvs_frames_forwarded_total", "Frames the data path sent on.", nil, nil)
	descICMPSent    = prometheus.NewDesc("gvs_icmp_errors_sent_total", "ICMP errors the director generated.", nil, nil)
	descICMPSupp    = prometheus.NewDesc("gvs_icmp_errors_suppressed_total", "ICMP errors that were due but not sent (RFC 1122 rules, one per frame).", nil, nil)
	descICMPLimited = prometheus.NewDesc("gvs_icmp_errors_rate_limited_total", "ICMP errors that were due but over icmp_ratelimit or icmp_msgs_per_sec (docs/defense.md §2).", nil, nil)
	descSloppy      = prometheus.NewDesc("gvs_sloppy_created_total", "TCP connections created by a packet without SYN (sloppy_tcp): flows picked up mid-stream, after a failover or a cluster router's rehash.", nil, nil)
	descDrops       = prometheus.NewDesc("gvs_drops_total", "Frames not forwarded, by reason (every frame not sent on has exactly one).", []string{"reason"}, nil)
	descMalformed   = prometheus.NewDesc("gvs_malformed_total", "Frames dropped as malformed, by the check that failed.", []string{"reason"}, nil)
	descConnEntries = prometheus.NewDesc("gvs_conntrack_entries", "Entries in the connection table (connections and persistence templates).", nil, nil)
	descConnMax     = prometheus.NewDesc("gvs_conntrack_max", "Capacity of the connection table (conn_max).", nil, nil)

	linkLabels     = []string{"link", "worker"}
	descLinkFrames = prometheus.NewDesc("gvs_link_frames_total", "Frames a data-path link moved: rx handed to its worker, tx accepted by the kernel.", []string{"link", "worker", "direction"}, nil)
	descLinkDrops  = prometheus.NewDesc("gvs_link_drops_total", "Frames a data-path link lost, by where: ring_full (kernel, the worker fell behind), rx_truncated, rx_bad, tx.", []string{"link", "worker", "reason"}, nil)
	descLinkBusy   = prometheus.NewDesc("gvs_link_tx_busy_total", "Sends a data-path link retried because the device queue or socket buffer was full.", linkLabels, nil)
	descLinkCopied = prometheus.NewDesc("gvs_link_rx_copied_total", "Frames longer than a ring slot that a link received whole through PACKET_COPY_THRESH.", linkLabels, nil)
	descLinkErrors = prometheus.NewDesc("gvs_link_errors_total", "Errors a data-path link's socket reported (e.g. link down).", linkLabels, nil)
)

// linkStatser is a data-path link that counts where its frames went
// (afpacket.Ring).
type linkStatser interface {
	Name() string
	Stats() (afpacket.Stats, error)
}

var _ linkStatser = (*afpacket.Ring)(nil)

func (c *directorCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descSvcConns, descSvcPkts, descSvcBytes, descSvcCPS, descSvcPPS, descSvcBPS,
		descRSActive, descRSInactive, descRSPersist, descRSWeight, descRSOverload,
		descRSConns, descRSPkts, descRSBytes, descRSCPS, descRSPPS, descRSBPS,
		descFramesIn, descFramesFwd, descICMPSent, descICMPSupp, descICMPLimited, descSloppy, descDrops, descMalformed,
		descConnEntries, descConnMax,
		descLinkFrames, descLinkDrops, descLinkBusy, descLinkCopied, descLinkErrors,
		descXDPFrames,
	} {
		ch <- d
	}
	describeDefense(ch)
}

func (c *directorCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	views := a.views()
	t := a.d.Totals()
	type rates struct{ svc, rs map[uint32][5]float64 }
	r := rates{svc: map[uint32][5]float64{}, rs: map[uint32][5]float64{}}
	a.smu.Lock()
	for id, e := range a.est.svcs {
		r.svc[id] = e.avg
	}
	for id, e := range a.est.dests {
		r.rs[id] = e.avg
	}
	a.smu.Unlock()

	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if !c.on.Load() {
		views = nil
	}
	for i := range views {
		v := &views[i]
		svc := ServiceLabel(&v.Spec)
		st := at(t.Services, v.ID)
		counter(descSvcConns, st.Conns, svc)
		counter(descSvcPkts, st.InPkts, svc, "in")
		counter(descSvcPkts, st.OutPkts, svc, "out")
		counter(descSvcBytes, st.InBytes, svc, "in")
		counter(descSvcBytes, st.OutBytes, svc, "out")
		if e, ok := r.svc[v.ID]; ok {
			gauge(descSvcCPS, e[0], svc)
			gauge(descSvcPPS, e[1], svc, "in")
			gauge(descSvcPPS, e[2], svc, "out")
			gauge(descSvcBPS, e[3], svc, "in")
			gauge(descSvcBPS, e[4], svc, "out")
		}
		for j := range v.Dests {
			dv := &v.Dests[j]
			rs := ServerLabel(dv.Addr, dv.Port)
			gauge(descRSActive, float64(dv.ActiveConns), svc, rs)
			gauge(descRSInactive, float64(dv.InactConns), svc, rs)
			gauge(descRSPersist, float64(dv.PersistConns), svc, rs)
			gauge(descRSWeight, float64(dv.Weight), svc, rs)
			over := 0.0
			if dv.Overloaded {
				over = 1
			}
			gauge(descRSOverload, over, svc, rs)
			ds := at(t.Dests, dv.ID)
			counter(descRSConns, ds.Conns, svc, rs)
			counter(descRSPkts, ds.InPkts, svc, rs, "in")
			counter(descRSPkts, ds.OutPkts, svc, rs, "out")
			counter(descRSBytes, ds.InBytes, svc, rs, "in")
			counter(descRSBytes, ds.OutBytes, svc, rs, "out")
			if e, ok := r.rs[dv.ID]; ok {
				gauge(descRSCPS, e[0], svc, rs)
				gauge(descRSPPS, e[1], svc, rs, "in")
				gauge(descRSPPS, e[2], svc, rs, "out")
				gauge(descRSBPS, e[3], svc, rs, "in")
				gauge(descRSBPS, e[4], svc, rs, "out")
			}
		}
	}
	cs := &t.Counters
	counter(descFramesIn, cs.In)
	counter(descFramesFwd, cs.Forwarded)
	counter(descICMPSent, cs.Generated)
	counter(descICMPSupp, cs.ICMPSuppressed)
	counter(descICMPLimited, cs.ICMPRateLimited)
	counter(descSloppy, cs.SloppyCreated)
	for i := dataplane.Reason(1); i < dataplane.NumReasons; i++ {
		counter(descDrops, cs.Reasons[i], i.String())
	}
	for i := header.Drop(1); i < header.NumDrops; i++ {
		counter(descMalformed, cs.Malformed[i], i.String())
	}
	tab := a.d.Table()
	gauge(descConnEntries, float64(tab.Len()))
	gauge(descConnMax, float64(tab.Max()))
	collectDefense(ch, tab)
	// The links are opened in New, before the metrics are served, and never
	// replaced.
	for i, l := range a.dm.links {
		ls, ok := l.(linkStatser)
		if !ok {
			continue
		}
		st, _ := ls.Stats() // on error: the counters summed so far
		name, w := ls.Name(), strconv.Itoa(i)
		counter(descLinkFrames, st.RXFrames, name, w, "rx")
		counter(descLinkFrames, st.TXFrames, name, w, "tx")
		counter(descLinkDrops, st.Drops, name, w, "ring_full")
		counter(descLinkDrops, st.RXTruncated, name, w, "rx_truncated")
		counter(descLinkDrops, st.RXBad, name, w, "rx_bad")
		counter(descLinkDrops, st.TXDrops, name, w, "tx")
		counter(descLinkBusy, st.TXBusy, name, w)
		counter(descLinkCopied, st.RXCopied, name, w)
		counter(descLinkErrors, st.LinkErrors, name, w)
	}
	xdpCounters(a.dm.links, func(v uint64, link, reason string) { counter(descXDPFrames, v, link, reason) })
}
