// Package bench generates synthetic traces and replays pcaps through the Director
// in-process, so schedulers and the data path can be measured and compared
// reproducibly: time comes from pcap timestamps, never from the wall clock, and the
// same trace with the same config gives the same output bit for bit.
//
// Trace generation uses gopacket (it is not on the per-packet path being measured);
// replay loads every frame into memory first, so pcap decoding is timed separately
// from Director.Process.
//
// RunLive (gvs bench live) is the exception: it measures the live data path in a
// network-namespace lab, in wall-clock time, against the kernel's own paths in the
// same rounds; LatencyClient and PaceUDP are the clients it runs there (live.go).
package bench
