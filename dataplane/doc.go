// Package dataplane is gvs's per-packet pipeline: IPVS's forwarding methods (DR, NAT,
// TUN) and the Director that ties them to the connection table and the schedulers,
// the Workers that run it, and the Link interface that feeds it frames. The bytes are
// package header's (views, Decode, rewrites, builders); the AF_PACKET link is package
// afpacket, the in-memory links of tests package linktest.
//
// The Director does no I/O: a Worker is handed a batch of frames and a time and
// returns the frames to send, counting every frame it does not forward under a named
// Reason. The same code runs in unit tests, in `gvs bench replay` (time from pcap
// timestamps, so a replay is reproducible bit for bit) and live.
//
// Performance contract: Worker.Process allocates nothing per packet in steady state,
// makes no system calls, and takes no lock shared across workers on an established
// flow other than the connection table shard that holds it. Configuration is an
// immutable snapshot read with one atomic load per batch.
package dataplane
