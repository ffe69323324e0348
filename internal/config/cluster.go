package config

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
)

// Cluster is the [cluster] table: cluster mode, N active-active directors behind an
// ECMP router (docs/cluster.md). The zero value is cluster mode off; a present
// [cluster] table starts from DefaultCluster. Sync keys keep the Linux IPVS sysctl
// names where IPVS has them.
type Cluster struct {
	Enabled bool
	NodeID  string // "" = the host name
	// Announce is who makes the VIPs reach this director: AnnounceBird (routes
	// on the announcement device, exported by BIRD to an ECMP router) or
	// AnnounceVRRP (an active/standby pair, the [[vrrp]] instances holding the
	// VIPs; sync and the control channel only). docs/cluster.md §14.
	Announce string

	AnnounceDevice    string        // non-persistent TAP holding the VIP routes
	AnnounceTable     int           // kernel table BIRD learns; 1–252 (FRR's import-table range)
	AnnounceProto     int           // rtnetlink protocol of gvs's routes
	AnnounceRise      int           // gate passes before announcing
	AnnounceFall      int           // gate failures before withdrawing
	GateInterval      time.Duration //
	JoinWait          time.Duration // longest wait for bulk sync; 0 = forever
	DrainTime         time.Duration // forwarding after the withdraw, on SIGTERM or drain
	RequireSameConfig bool          // a config digest mismatch closes the gate
	MHOrder           string        // "canonical" or "kernel"

	SyncInterface     string
	SyncGroup         netip.Addr     // multicast group (IPv4 or IPv6); ignored with SyncPeers
	SyncPort          int            //
	SyncTTL           int            //
	SyncID            int            // 0–255; 0 accepts every syncid
	SyncPeers         []netip.Addr   // unicast instead of multicast
	SyncSources       []netip.Prefix // accepted senders; empty = the sync interface's subnets
	SyncVersion       int            // 0 or 1
	SyncMaxLen        int            // 0 = from the sync interface's MTU (1472 for 1500)
	SyncThreshold     [2]int         // sync_threshold: [threshold, period]
	SyncRefreshPeriod time.Duration
	SyncRetries       int
	SyncPersistMode   int
	SyncFlush         time.Duration
	SyncSweepRate     int // entries/s looked at by the refresh sweeper
	SyncQLenMax       int // completed messages waiting for the socket
	SyncSockSize      int // socket buffer bytes; 0 = the system default
	SyncPorts         int // messages spread over sync_port .. sync_port+sync_ports-1
	ControlPort       int
	SyncAuthKeyFile   string // HMAC-SHA256 key for the control channel; "" = unsigned
	BulkRate          int    // records/s of a bulk push
	ResyncThreshold   int    // lost records from one peer that trigger a targeted bulk
	BirdSocket        string // control socket of the BIRD exporting the routes (bird -s)
}

// The values of [cluster] announce.
const (
	AnnounceBird = "bird"
	AnnounceVRRP = "vrrp"
)

// announceKeys are the [cluster] keys of the BIRD announcement, which announce =
// "vrrp" has no use for.
var announceKeys = []string{"announce_device", "announce_table", "announce_proto", "announce_rise", "announce_fall",
	"gate_interval", "bird_socket"}

// DefaultCluster returns the defaults of docs/cluster.md §8 with Enabled set.
func DefaultCluster() Cluster {
	return Cluster{
		Enabled: true, Announce: AnnounceBird, AnnounceDevice: "gvs-vip", AnnounceTable: 200, AnnounceProto: 240,
		AnnounceRise: 2, AnnounceFall: 1, GateInterval: 100 * time.Millisecond,
		JoinWait: 30 * time.Second, DrainTime: 3 * time.Second, MHOrder: "canonical",
		SyncGroup: netip.AddrFrom4([4]byte{224, 0, 0, 81}), SyncPort: 8848, SyncTTL: 1,
		SyncVersion: 1, SyncThreshold: [2]int{3, 50}, SyncFlush: 100 * time.Millisecond,
		SyncSweepRate: 20000, SyncQLenMax: 1024, SyncPorts: 1, ControlPort: 8849,
		BulkRate: 200000, ResyncThreshold: 100, BirdSocket: "/run/bird/bird.ctl",
	}
}

// clusterOn reports whether the decoded file turns cluster mode on: a [cluster]
// table whose enabled is not false; and ecmp, whether its VIPs are announced to an
// ECMP router (announce is not "vrrp"). Cluster mode changes defaults of tables
// read before [cluster] — sloppy_tcp, and with ECMP inhibit_on_failure and
// mh-fallback (docs/cluster.md §2, §14) — so the reader needs to know first; a
// malformed enabled or announce is reported when [cluster] is read.
func clusterOn(doc map[string]any) (on, ecmp bool) {
	t, ok := doc["cluster"].(map[string]any)
	if !ok {
		return false, false
	}
	on, isBool := t["enabled"].(bool)
	on = on || !isBool
	a, _ := t["announce"].(string)
	return on, on && !strings.EqualFold(a, AnnounceVRRP)
}

// cluster reads [cluster] into c, starting from the defaults.
func (r *reader) cluster(t *table, c *Cluster) {
	*c = DefaultCluster()
	t.boolean("enabled", &c.Enabled)
	t.str("node_id", &c.NodeID)
	if len(c.NodeID) > 64 {
		t.errorf("node_id", "at most 64 bytes (got %d)", len(c.NodeID))
	}
	var announce string
	if t.str("announce", &announce) {
		if name, err := oneOf("announce", announce, AnnounceBird, AnnounceVRRP); err != nil {
			t.fail("announce", err)
		} else {
			c.Announce = name
		}
	}
	if c.Announce == AnnounceVRRP {
		for _, k := range announceKeys {
			if t.present(k) {
				t.errorf(k, "belongs to the BIRD announcement; with announce = \"vrrp\" the [[vrrp]] instances hold the VIPs: remove %s, or use announce = \"bird\"", k)
			}
		}
	}
	t.str("announce_device", &c.AnnounceDevice)
	if n := len(c.AnnounceDevice); n == 0 || n > 15 {
		t.errorf("announce_device", "an interface name of 1 to 15 bytes (got %q)", c.AnnounceDevice)
	}
	t.intField("announce_table", 1, 252, &c.AnnounceTable)
	t.intField("announce_proto", 1, 255, &c.AnnounceProto)
	t.intField("announce_rise", 1, 100, &c.AnnounceRise)
	t.intField("announce_fall", 1, 100, &c.AnnounceFall)
	t.positiveDuration("gate_interval", &c.GateInterval)
	t.duration("join_wait", &c.JoinWait)
	t.duration("drain_time", &c.DrainTime)
	t.boolean("require_same_config", &c.RequireSameConfig)
	var order string
	if t.str("mh_order", &order) {
		if name, err := oneOf("mh_order", order, "canonical", "kernel"); err != nil {
			t.fail("mh_order", err)
		} else {
			c.MHOrder = name
		}
	}
	t.str("sync_interface", &c.SyncInterface)
	t.addr("sync_group", func(a netip.Addr) error {
		if !a.IsMulticast() {
			return fmt.Errorf("%v is not a multicast address (the kernel's default is 224.0.0.81)", a)
		}
		return nil
	}, &c.SyncGroup)
	t.intField("sync_port", 1, 65535, &c.SyncPort)
	t.intField("sync_ttl", 1, 255, &c.SyncTTL)
	t.intField("sync_id", 0, 255, &c.SyncID)
	var peers, sources []string
	if t.strings("sync_peers", &peers) {
		for _, s := range peers {
			a, err := parseAddr(s)
			if err == nil && (a.IsMulticast() || a.IsUnspecified()) {
				err = fmt.Errorf("sync peer %v: must be a unicast address", a)
			}
			if err != nil {
				t.fail("sync_peers", err)
				continue
			}
			c.SyncPeers = append(c.SyncPeers, a)
		}
	}
	if t.strings("sync_sources", &sources) {
		for _, s := range sources {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := parseAddr(s)
				if aerr != nil {
					t.errorf("sync_sources", "%q is neither a prefix (198.18.0.0/24) nor an address", s)
					continue
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			c.SyncSources = append(c.SyncSources, p.Masked())
		}
	}
	t.intField("sync_version", 0, 1, &c.SyncVersion)
	if t.intField("sync_maxlen", 0, 65507, &c.SyncMaxLen) && c.SyncMaxLen != 0 && c.SyncMaxLen < 80 {
		t.errorf("sync_maxlen", "must hold one IPv6 record: at least 80 (or 0 for the interface MTU's)")
	}
	if v, ok := t.get("sync_threshold"); ok {
		arr, _ := v.([]any)
		var th [2]int
		good := len(arr) == 2
		for i := 0; good && i < 2; i++ {
			n, isInt := arr[i].(int64)
			good = isInt && n >= 0 && n <= 1<<20
			th[i] = int(n)
		}
		switch {
		case !good:
			t.errorf("sync_threshold", "want [threshold, period], two non-negative integers, like the kernel's [3, 50]")
		case th[1] != 0 && th[0] >= th[1]:
			t.errorf("sync_threshold", "the threshold (%d) must be below the period (%d), or the period 0", th[0], th[1])
		default:
			c.SyncThreshold = th
		}
	}
	t.duration("sync_refresh_period", &c.SyncRefreshPeriod)
	t.intField("sync_retries", 0, 3, &c.SyncRetries)
	t.intField("sync_persist_mode", 0, 1, &c.SyncPersistMode)
	t.positiveDuration("sync_flush", &c.SyncFlush)
	t.intField("sync_sweep_rate", 0, 10_000_000, &c.SyncSweepRate)
	t.intField("sync_qlen_max", 1, 1<<20, &c.SyncQLenMax)
	t.intField("sync_sock_size", 0, 1<<30, &c.SyncSockSize)
	t.intField("sync_ports", 1, 64, &c.SyncPorts)
	t.intField("control_port", 1, 65535, &c.ControlPort)
	t.str("sync_auth_key_file", &c.SyncAuthKeyFile)
	t.str("bird_socket", &c.BirdSocket)
	t.intField("bulk_rate", 1, 100_000_000, &c.BulkRate)
	t.intField("resync_threshold", 1, 1<<30, &c.ResyncThreshold)
	if c.ControlPort >= c.SyncPort && c.ControlPort < c.SyncPort+c.SyncPorts {
		t.errorf("control_port", "%d collides with the sync ports %d–%d (sync_port + sync_ports - 1)",
			c.ControlPort, c.SyncPort, c.SyncPort+c.SyncPorts-1)
	}
	t.done()
}

// crossCheckCluster applies cluster mode's rules that span tables: with announce =
// "bird" cluster VIPs are routed and announced by BIRD, so none may be a VRRP
// address; with announce = "vrrp" the [[vrrp]] instances hold them, so there must
// be one; and in both, replies must not need the director that scheduled them,
// so no real server may use NAT (docs/cluster.md §2, §14).
func (r *reader) crossCheckCluster(cfg *Config) {
	if !cfg.Cluster.Enabled {
		return
	}
	vrrpMode := cfg.Cluster.Announce == AnnounceVRRP
	if vrrpMode && len(cfg.VRRP) == 0 {
		r.errorf("cluster.announce", "\"vrrp\" needs the [[vrrp]] instances that hold the service VIPs, and this file has none: add a [[vrrp]] instance with the VIPs in its virtual_ipaddress, or use announce = \"bird\"")
	}
	vips := map[netip.Addr]bool{}
	for i := range cfg.Services {
		s := &cfg.Services[i]
		if a := s.Addr.Addr(); a.IsValid() {
			vips[a] = true
		}
		for j := range s.RealServers {
			switch {
			case s.RealServers[j].Method != ipvs.NAT:
			case vrrpMode:
				r.errorf(joinIndex(joinKey(joinIndex("service", i), "real_server"), j),
					"method nat with cluster sync: taking over a synced NAT connection's replies is not built yet (docs/cluster.md §14); use dr or tun")
			default:
				r.errorf(joinIndex(joinKey(joinIndex("service", i), "real_server"), j),
					"method nat in cluster mode: replies would have to return through the director that scheduled them; use dr or tun (NAT clusters are a later phase)")
			}
		}
	}
	if vrrpMode {
		return
	}
	for i := range cfg.VRRP {
		for _, a := range cfg.VRRP[i].VirtualIPAddress {
			if vips[a] {
				r.errorf(joinKey(joinIndex("vrrp", i), "virtual_ipaddress"),
					"%v is a cluster VIP: with [cluster] announce = \"bird\" VIPs are routed to every director and announced by BIRD, not held by VRRP; announce = \"vrrp\" makes VRRP hold them (an active/standby pair with sync)", a)
			}
		}
	}
}

// ClusterDigest summarises what must be equal on every director of a cluster for
// them to schedule alike (docs/cluster.md §5): every service's key, scheduler, flags,
// mh table size, persistence, one-packet scheduling, match rules and failure
// handling, its real servers with weights, methods and thresholds, the IPVS sysctls
// and timeouts, and the mh order. Services and real servers count in canonical
// (sorted) order, so the file's order does not matter; health-check settings,
// scripts, lines and comments do not count. Heartbeats carry it. It is the digest a
// director starts with; a running director keeps the same function of its running
// table (digest.go), so gvs adm changes count too.
func ClusterDigest(c *Config) [16]byte {
	var sum DigestSum
	for i := range c.Services {
		s := c.Services[i].IPVS()
		sum = sum.Add(ServiceDigest(&s))
	}
	return ClusterDigestOf(ClusterFileDigest(c), sum, c.Director.Timeouts)
}

// ClusterFileDigest is the part of the cluster digest only the file sets: each
// service's failure handling (inhibit_on_failure, its real servers', the sorry
// server), the IPVS sysctls, the mh order and how the VIPs are announced (BIRD or
// VRRP). Services and servers count in sorted order.
func ClusterFileDigest(c *Config) [16]byte {
	var lines []string
	for i := range c.Services {
		s := &c.Services[i]
		rs := make([]string, 0, len(s.RealServers))
		for _, r := range s.RealServers {
			rs = append(rs, fmt.Sprintf(" %v inhibit=%v", r.Addr, r.InhibitOnFailure))
		}
		slices.Sort(rs)
		lines = append(lines, fmt.Sprintf("service %s inhibit=%v sorry=%v", s.Key, s.InhibitOnFailure, s.SorryServer)+strings.Join(rs, ""))
	}
	slices.Sort(lines)
	lines = append(lines, fmt.Sprintf("director sysctl=%+v mh_order=%s announce=%s", c.Director.Sysctl, c.Cluster.MHOrder, c.Cluster.Announce))
	sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return [16]byte(sum[:16])
}
