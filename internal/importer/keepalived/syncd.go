package keepalived

import (
	"cmp"
	"net/netip"
	"strconv"

	"github.com/gvs-lb/gvs/internal/importer"
)

// keepalived's IPVS sync daemon — global_defs' lvs_sync_daemon IF INSTANCE [id N]
// [maxlen N] [port N] [ttl N] [group ADDR], or an instance's older
// lvs_sync_daemon_interface IF — becomes [cluster] announce = "vrrp": sync and the
// control channel between the two directors, the [[vrrp]] instances holding the
// VIPs (docs/cluster.md §14).

// kaSyncDaemon is the sync daemon as read, before it is checked against the
// instances and services.
type kaSyncDaemon struct {
	pos      importer.Pos
	words    string // the statement, for notes
	instance string
	c        importer.Cluster
}

// gvsControlPort is gvs's default control_port: a sync port there would collide.
const gvsControlPort = 8849

// lvsSyncDaemon reads global_defs' lvs_sync_daemon.
func (k *kaImporter) lvsSyncDaemon(ctx string, n *kaNode) {
	if !k.needArgs(ctx, n, 2) {
		return
	}
	sd := &kaSyncDaemon{pos: n.pos(), words: n.words(), instance: n.arg(1), c: importer.Cluster{Pos: n.pos(), Interface: n.arg(0)}}
	for i := 2; i < len(n.args); i += 2 {
		opt := n.arg(i)
		if i+1 >= len(n.args) {
			k.note(n.pos(), "%s: lvs_sync_daemon option %q has no value: ignored", ctx, opt)
			break
		}
		val := n.arg(i + 1)
		num := func(lo, hi int, dst *importer.Opt[int]) {
			v, err := strconv.Atoi(val)
			if err != nil || v < lo || v > hi {
				k.note(n.pos(), "%s: lvs_sync_daemon %s %q: want an integer %d..%d: ignored", ctx, opt, val, lo, hi)
				return
			}
			*dst = importer.Some(v)
		}
		switch opt {
		case "id":
			num(0, 255, &sd.c.SyncID)
		case "maxlen":
			// gvs's smallest message holds one IPv6 record.
			num(80, 65507, &sd.c.MaxLen)
		case "port":
			num(1, 65535, &sd.c.Port)
		case "ttl":
			num(1, 255, &sd.c.TTL)
		case "group":
			a, err := netip.ParseAddr(val)
			if err != nil || !a.IsMulticast() {
				k.note(n.pos(), "%s: lvs_sync_daemon group %q: not a multicast address: ignored (the default group 224.0.0.81 is written)", ctx, val)
				continue
			}
			sd.c.Group = a
		default:
			k.note(n.pos(), "%s: lvs_sync_daemon option %q: unknown: ignored", ctx, opt)
		}
	}
	k.setSyncDaemon(sd)
}

// lvsSyncDaemonInterface reads an instance's lvs_sync_daemon_interface IF, the
// form keepalived had before lvs_sync_daemon: the sync daemon on IF, following v.
func (k *kaImporter) lvsSyncDaemonInterface(ctx string, n *kaNode, v *importer.VRRP) {
	if !k.needArgs(ctx, n, 1) {
		return
	}
	k.extra(ctx, n, 1)
	k.setSyncDaemon(&kaSyncDaemon{pos: n.pos(), words: n.words(), instance: v.Name, c: importer.Cluster{Pos: n.pos(), Interface: n.arg(0)}})
}

// setSyncDaemon keeps the first sync daemon: keepalived runs one.
func (k *kaImporter) setSyncDaemon(sd *kaSyncDaemon) {
	if k.syncd != nil {
		k.note(sd.pos, "%q: keepalived runs one sync daemon: the first (line %d) is written", sd.words, k.syncd.pos.Line)
		return
	}
	k.syncd = sd
}

// finishSyncDaemon writes the sync daemon as [cluster], once the instances and
// services are known, or notes why it cannot be.
func (k *kaImporter) finishSyncDaemon() {
	written := k.syncd != nil && k.writeSyncDaemon(k.syncd)
	if r := k.routerID; r != nil && !written {
		k.note(r.pos(), "global_defs: %q not translated: %s", r.words(), kaGlobalUnsupported["router_id"])
	}
}

// writeSyncDaemon writes sd as [cluster] and reports whether it did; router_id,
// if set, becomes its node_id.
func (k *kaImporter) writeSyncDaemon(sd *kaSyncDaemon) bool {
	found := false
	for _, v := range k.doc.VRRP {
		found = found || v.Name == sd.instance
	}
	if !found {
		k.note(sd.pos, "%q not translated: no vrrp_instance is named %s, so keepalived starts no sync daemon", sd.words, sd.instance)
		return false
	}
	for _, s := range k.doc.Services {
		if s.Off != "" {
			continue
		}
		for _, r := range s.Reals {
			if r.Off == "" && cmp.Or(r.Method, s.Method) == "nat" {
				k.note(sd.pos, "%q not translated: %s has NAT real servers, and gvs's connection sync does not take NAT services over yet (docs/cluster.md §14); use DR or TUN to sync", sd.words, s.What)
				return false
			}
		}
	}
	c := sd.c
	if p := c.Port.V; c.Port.OK && p == gvsControlPort {
		c.ControlPort = importer.Some(gvsControlPort + 1)
		k.note(sd.pos, "%q: sync port %d is gvs's default control port: control_port = %d written", sd.words, p, gvsControlPort+1)
	}
	if r := k.routerID; r != nil {
		if id := r.arg(0); id != "" && len(id) <= 64 {
			c.NodeID = id
			k.note(r.pos(), "global_defs: router_id %s written as [cluster] node_id: the name this director's peers know it by", id)
		} else {
			k.note(r.pos(), "global_defs: %q: not a node_id of 1 to 64 bytes: node_id is left out (the host name)", r.words())
		}
	}
	k.doc.Cluster = &c
	k.note(sd.pos, "%q written as [cluster] announce = \"vrrp\" (docs/cluster.md §14): gvs sends and receives connection sync at all times, "+
		"not as master or backup by %s's state; the other director must run gvs too for the control channel (UDP %d: heartbeats, "+
		"the bulk sync of a director that starts, which holds its VRRP preemption until done); cluster mode turns sloppy_tcp on",
		sd.words, sd.instance, cmp.Or(c.ControlPort.V, gvsControlPort))
	return true
}
