// Package dataplane is gvs's per-packet pipeline: header views and in-place rewrites
// (Ethernet/802.1Q, ARP, IPv4, IPv6, TCP, UDP, ICMP), IPVS's forwarding methods (DR,
// NAT, TUN) and the Director that ties them to the connection table and the
// schedulers.
//
// The Director does no I/O: a Worker is handed a batch of frames and a time and
// returns the frames to send, counting every frame it does not forward under a named
// Reason. The same code runs in unit tests, in `gvs bench replay` (time from pcap
// timestamps, so a replay is reproducible bit for bit) and live.
//
// Performance contract: Decode, the rewrites and Worker.Process allocate nothing per
// packet in steady state, make no system calls, and take no lock shared across
// workers on an established flow other than the connection table shard that holds it.
// Configuration is an immutable snapshot read with one atomic load per batch.
package dataplane
