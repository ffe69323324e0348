package cluster

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/gvs-lb/gvs/ipvssync"
)

// Config is what the cluster runtime needs, under the kernel's sysctl names where the
// kernel has them (docs/cluster.md §4). Start from DefaultConfig; the daemon fills it
// from the [cluster] table.
type Config struct {
	NodeID string // unique in the cluster

	SyncID      uint8            // sync_id: 0 accepts every syncid, as the kernel backup does
	SyncVersion ipvssync.Version // sync_version: 1, or 0 for v0-only receivers
	SyncMaxLen  int              // sync_maxlen: largest message (IP and UDP headers excluded)
	SyncPorts   int              // sync_ports: messages spread over SyncPort .. SyncPort+SyncPorts-1
	SyncQLenMax int              // sync_qlen_max: completed messages that may wait for the socket
	SyncFlush   time.Duration    // sync_flush: a partly filled message leaves after this (kernel: 2 s)
	Rules       ipvssync.Rules   // sync_threshold, sync_refresh_period, sync_retries, sync_persist_mode
	SweepRate   int              // sync_sweep_rate: entries per second the refresh sweeper looks at
	BulkRate    int              // bulk_rate: records per second a bulk push sends
	// ResyncThreshold is resync_threshold: records a peer reported sent that did not
	// arrive, beyond which a targeted bulk is asked of it.
	ResyncThreshold int

	// Sources are the accepted sync and control senders (sync_sources); empty accepts
	// any. Self are this director's own addresses, whose datagrams are dropped.
	Sources []netip.Prefix
	Self    []netip.Addr

	Heartbeat   time.Duration // control heartbeat interval
	PeerTimeout time.Duration // a peer unheard for this long is not live
	JoinWait    time.Duration // join_wait: longest wait for bulk sync (0 = forever)
	// ConfigDigest summarises the scheduling-relevant configuration; peers compare it.
	ConfigDigest [16]byte
	// HealthDigest summarises real-server verdicts (carried for later consensus).
	HealthDigest uint64
	// AuthKey, when set, signs and checks every control datagram with HMAC-SHA256.
	AuthKey []byte
}

// DefaultConfig returns the defaults of docs/cluster.md §4.
func DefaultConfig(nodeID string) Config {
	return Config{
		NodeID:          nodeID,
		SyncVersion:     ipvssync.V1,
		SyncMaxLen:      ipvssync.MaxLen,
		SyncPorts:       1,
		SyncQLenMax:     1024,
		SyncFlush:       100 * time.Millisecond,
		Rules:           ipvssync.DefaultRules(),
		SweepRate:       20000,
		BulkRate:        200000,
		ResyncThreshold: 100,
		Heartbeat:       200 * time.Millisecond,
		PeerTimeout:     time.Second,
		JoinWait:        30 * time.Second,
	}
}

// ErrConfig is wrapped by Config.Validate's errors.
var ErrConfig = errors.New("invalid cluster config")

// MaxLenForMTU returns the sync_maxlen that fits one datagram into mtu without
// fragmentation: the kernel master's 1472 for a 1500-byte MTU over IPv4.
func MaxLenForMTU(mtu int, ipv6 bool) int {
	hdr := 20 + 8
	if ipv6 {
		hdr = 40 + 8
	}
	return mtu - hdr
}

// Validate checks the values the runtime cannot work with, naming the key and the fix.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("cluster: "+format+": %w", append(args, ErrConfig)...)
	}
	switch {
	case c.NodeID == "" || len(c.NodeID) > maxNodeID:
		return bad("node_id %q: must be 1 to %d bytes", c.NodeID, maxNodeID)
	case c.SyncVersion != ipvssync.V0 && c.SyncVersion != ipvssync.V1:
		return bad("sync_version = %d: must be 0 or 1", c.SyncVersion)
	case c.SyncMaxLen < ipvssync.HeaderLenV1+ipvssync.RecordLenV6 || c.SyncMaxLen > 65507:
		return bad("sync_maxlen = %d: must hold one IPv6 record (%d) and fit a UDP datagram (65507)",
			c.SyncMaxLen, ipvssync.HeaderLenV1+ipvssync.RecordLenV6)
	case c.SyncPorts < 1 || c.SyncPorts > 64:
		return bad("sync_ports = %d: must be 1 to 64", c.SyncPorts)
	case c.SyncQLenMax < 1:
		return bad("sync_qlen_max = %d: must be at least 1", c.SyncQLenMax)
	case c.SyncFlush <= 0:
		return bad("sync_flush = %v: must be positive (the kernel's is 2s)", c.SyncFlush)
	case c.SweepRate < 0 || c.BulkRate < 1:
		return bad("sync_sweep_rate = %d, bulk_rate = %d: must not be negative, bulk_rate at least 1", c.SweepRate, c.BulkRate)
	case c.Heartbeat <= 0 || c.PeerTimeout < 2*c.Heartbeat:
		return bad("heartbeat %v, peer timeout %v: the timeout must cover at least two heartbeats", c.Heartbeat, c.PeerTimeout)
	case c.JoinWait < 0:
		return bad("join_wait = %v: must not be negative (0 waits forever)", c.JoinWait)
	}
	if err := c.Rules.Validate(); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}
