// Package ipvssync is the Linux IPVS connection-synchronisation protocol: the codec of
// the v1 and legacy v0 messages that directors exchange on UDP 8848 (docs/cluster.md
// §3), the kernel's flag and state numbers, and the kernel's rule for when a
// connection is worth sending (Needed, with the sysctl names sync_threshold,
// sync_period, sync_refresh_period, sync_retries and sync_persist_mode).
//
// Decoding follows the kernel receiver exactly, because a gvs director must accept
// what a kernel master sends and drop what a kernel backup drops: a datagram whose
// header size is not its length is dropped whole; a record with an unknown
// mandatory option, an unsupported protocol or an impossible state is dropped alone;
// a record that overruns the datagram, carries an unknown record type or version, or
// a malformed option ends the datagram (the records before it stand). Decode never
// returns an error: malformed input becomes a Reason the caller counts.
//
// Encoding never emits options (gvs has no sequence adjustment and no persistence
// engines), so every record is 36 bytes (IPv4) or 72 bytes (IPv6) and Wireshark's
// fixed-stride dissector reads gvs's messages correctly.
//
// Performance contract: Decode into a Message whose Records slice has capacity for
// MaxRecords, and Builder.Add and Builder.Bytes on a reused Builder, allocate nothing;
// Needed is a handful of comparisons. The package imports nothing of gvs.
package ipvssync
