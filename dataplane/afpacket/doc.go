// Package afpacket is the live link of gvs's data path: a dataplane.Link on a network
// interface through an AF_PACKET socket (packet(7)) — a TPACKET_V2 (or V3)
// memory-mapped receive ring whose frames are processed where the kernel wrote them
// and reach the pipeline within microseconds (docs/lab.md "Receive ring: V2 or V3"),
// sendmmsg(2) to send, PACKET_FANOUT to spread flows over workers — and two classic
// BPF programs: the socket filter (Filter) that keeps everything but a director's
// traffic out of the ring, for any number of VIPs, and the fanout group's steering
// program (SteerProgram) that sends a flow and its NAT replies to one worker.
//
// Rings exist on Linux only; elsewhere Open fails with errors.ErrUnsupported.
//
// Performance contract: ReadBatch and WriteBatch allocate nothing per frame or per
// batch.
package afpacket
