// Package cluster is gvs's cluster runtime (docs/cluster.md): every director both
// sends and receives connection state as Linux IPVS sync v1 messages (package
// ipvssync) on UDP 8848, talks to its peers on its own control channel (UDP 8849:
// heartbeats with incarnation, state, config digest and counters; bulk-sync requests
// and completions), pulls a bulk copy of the cluster's connections before it may take
// traffic, re-sends quiet long-lived connections before the receivers' copies expire,
// and decides when each VIP is announced (Gate) through a TAP device whose routes
// vanish with the process (Announcer), for BIRD to export (BirdConfig).
//
// The runtime reaches the connection table only through Sink (received entries) and
// Table (walks for the sweeper and bulk pushes), and the data path's decisions arrive
// through Node.Enqueue: it imports neither conntrack nor dataplane, and dataplane never
// imports it. A Node is driven by explicit times (Tick, HandleSync, HandleControl),
// so its tests run several directors on one fake LAN and a fake clock; Run adds the
// sockets.
//
// Nothing here is on the per-packet path: Enqueue is called for entries the worker
// already decided to sync (ipvssync.Rules.Needed), and allocates nothing in steady state.
// Every datagram, record or entry dropped is counted by reason (Stats) and logged once
// per cause.
package cluster
