package config

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/gvs-lb/gvs/ipvs"
)

// Load reads and parses the config file at path; errors name path and a line.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	// One byte more than Parse accepts: a larger file, or a device that never
	// ends, is refused without being read whole.
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates a config file's contents; name is used in errors
// ("name:line: field: message"). It returns either a fully validated Config with
// all defaults filled, or an Errors value listing every problem found (the first
// thousand, in line order, and how many more there are).
//
// A file beyond the limits (MaxFileSize, MaxDepth, MaxKeyLen, MaxTables) is
// refused, with the first limit it breaks, before it is decoded.
func Parse(name string, data []byte) (*Config, error) {
	if err := checkLimits(name, data); err != nil {
		return nil, err
	}
	r := newReader(name)
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		return nil, r.syntax(err)
	}
	r.lines = indexLines(data)

	cfg := Default()
	cfg.File = name
	// Cluster mode's default: a director that receives the middle of a flow not
	// synced yet schedules it (docs/cluster.md §2); sloppy_tcp overrides it.
	r.clusterOn, r.clusterECMP = clusterOn(doc)
	cfg.Director.Sysctl.SloppyTCP = cfg.Director.Sysctl.SloppyTCP || r.clusterOn
	root := r.table("", doc)
	if t := root.sub("director"); t != nil {
		r.director(t, &cfg.Director)
	}
	services := root.array("service")
	cfg.Services = slices.Grow(cfg.Services, len(services))
	for _, t := range services {
		cfg.Services = append(cfg.Services, r.service(t))
	}
	for _, t := range root.array("vrrp") {
		cfg.VRRP = append(cfg.VRRP, r.vrrp(t, &cfg.Director))
	}
	for _, t := range root.array("vrrp_sync_group") {
		cfg.VRRPSyncGroups = append(cfg.VRRPSyncGroups, r.vrrpSyncGroup(t))
	}
	if t := root.sub("cluster"); t != nil {
		r.cluster(t, &cfg.Cluster)
	}
	r.scripts(root, cfg)
	root.done()
	r.crossCheck(cfg)
	r.crossCheckVRRP(cfg)
	r.crossCheckCluster(cfg)
	if err := r.result(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// syntax converts a TOML parse error into Errors with the parser's line.
func (r *reader) syntax(err error) error {
	e := &Error{File: r.file, Line: 1, Err: fmt.Errorf("%w: %v", ErrSyntax, err)}
	var pe toml.ParseError
	if errors.As(err, &pe) {
		e.Line = max(1, pe.Position.Line)
		e.Err = fmt.Errorf("%w: %s", ErrSyntax, pe.Message)
	}
	return Errors{e}
}

// director reads [director] over d's defaults.
func (r *reader) director(t *table, d *Director) {
	t.str("interface", &d.Interface)
	t.mac("mac", &d.MAC)
	t.addr("address", func(a netip.Addr) error {
		if !a.Is4() {
			return errors.New("must be an IPv4 address (use address6 for IPv6)")
		}
		return unicast(a)
	}, &d.Address)
	t.addr("address6", func(a netip.Addr) error {
		if !a.Is6() {
			return errors.New("must be an IPv6 address (use address for IPv4)")
		}
		return unicast(a)
	}, &d.Address6)
	t.mac("gateway_mac", &d.GatewayMAC)
	t.intField("mtu", 68, 65535, &d.MTU)
	t.intField("conn_max", 1, math.MaxInt32, &d.ConnMax)
	if t.intField("conn_shards", 1, 1<<16, &d.ConnShards) && d.ConnShards&(d.ConnShards-1) != 0 {
		t.errorf("conn_shards", "must be a power of two (got %d)", d.ConnShards)
	}
	if d.ConnShards > d.ConnMax {
		t.errorf("conn_shards", "must not exceed conn_max (%d > %d)", d.ConnShards, d.ConnMax)
	}
	unconfirmed(t, d)
	t.str("control_socket", &d.ControlSocket)
	if t.str("metrics_listen", &d.MetricsListen) && d.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(d.MetricsListen); err != nil {
			t.errorf("metrics_listen", "want host:port or :port, got %q", d.MetricsListen)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			t.errorf("metrics_listen", "invalid port %q", port)
		}
	}
	t.str("metrics_web_config", &d.MetricsWebConfig)
	t.boolean("metrics_node_ipvs", &d.MetricsNodeIPVS)
	t.boolean("metrics_gvs", &d.MetricsGVS)
	r.status(t, d)

	t.boolean("ingress_drop", &d.IngressDrop)
	var io string
	if t.str("io", &io) {
		if name, err := oneOf("io backend", io, IOAuto, IOAFXDP, IOAFPacket); err != nil {
			t.fail("io", err)
		} else {
			d.IO = name
		}
	}
	t.boolean("xdp_replace_foreign", &d.XDPReplaceForeign)
	if t.duration("rx_spin", &d.RxSpin) && d.RxSpin > MaxRxSpin {
		t.errorf("rx_spin", "at most %v (got %v): it is how long a reader polls its ring after a batch before it sleeps", MaxRxSpin, d.RxSpin)
	}

	s := &d.Sysctl
	t.intField("conn_reuse_mode", 0, 3, &s.ConnReuseMode)
	t.boolean("expire_nodest_conn", &s.ExpireNodestConn)
	t.boolean("expire_quiescent_template", &s.ExpireQuiescentTemplate)
	t.boolean("pmtu_disc", &s.PMTUDisc)
	t.boolean("sloppy_tcp", &s.SloppyTCP)
	t.boolean("schedule_icmp", &s.ScheduleICMP)

	to := &d.Timeouts
	t.positiveDuration("tcp_timeout", &to.TCP)
	t.positiveDuration("tcpfin_timeout", &to.TCPFin)
	t.positiveDuration("udp_timeout", &to.UDP)
	r.defense(t, &d.Defense)
	t.done()
}

// crossCheck applies the rules that span tables.
func (r *reader) crossCheck(cfg *Config) {
	seen := map[ipvs.Key]int{}
	v6 := cfg.Director.Address6.IsValid()
	for i := range cfg.Services {
		s := &cfg.Services[i]
		if s.IPv6 {
			v6 = true
		}
		if s.FWMark == 0 && !s.Addr.IsValid() {
			continue // its address is invalid and already reported
		}
		field := "fwmark"
		if s.FWMark == 0 {
			field = "address"
		}
		path := joinKey(joinIndex("service", i), field)
		if j, dup := seen[s.Key]; dup {
			r.add(path, fmt.Errorf("%w service %s (first at line %d, service[%d])",
				ErrDuplicate, strings.Join(strings.Fields(s.String()), " "), cfg.Services[j].Line, j))
			continue
		}
		seen[s.Key] = i
	}
	if v6 && cfg.Director.MTU < 1280 {
		r.errorf("director.mtu", "must be at least 1280 with IPv6 in use (got %d)", cfg.Director.MTU)
	}

	names := map[string]int{}
	type vrid struct {
		ifname string
		fam    Family
		id     uint8
	}
	ids := map[vrid]int{}
	for i := range cfg.VRRP {
		v := &cfg.VRRP[i]
		base := joinIndex("vrrp", i)
		if v.Name != "" {
			if j, dup := names[v.Name]; dup {
				r.add(joinKey(base, "name"), fmt.Errorf("%w name %q (first at line %d, vrrp[%d])", ErrDuplicate, v.Name, cfg.VRRP[j].Line, j))
			} else {
				names[v.Name] = i
			}
		}
		if v.VirtualRouterID == 0 || len(v.VirtualIPAddress) == 0 {
			continue
		}
		k := vrid{v.Interface, familyOf(v.VirtualIPAddress[0]), v.VirtualRouterID}
		if j, dup := ids[k]; dup {
			r.add(joinKey(base, "virtual_router_id"), fmt.Errorf("%w virtual_router_id %d on interface %q for %s (first at line %d, vrrp[%d])",
				ErrDuplicate, v.VirtualRouterID, v.Interface, k.fam, cfg.VRRP[j].Line, j))
		} else {
			ids[k] = i
		}
	}
}
