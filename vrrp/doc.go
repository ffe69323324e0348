// Package vrrp implements VRRP version 2 (RFC 3768) and version 3 (RFC 5798, RFC 9568)
// as keepalived 2.2.7 speaks it: the advertisement codec, receive validation, and the
// protocol state machine, which opens no sockets and starts no goroutines (Instance,
// Group: stepped with an injected clock); and around it the Transport (raw IP protocol
// 112 sockets, multicast or unicast, TTL 255) and the Runner, which feeds the state
// machines packets, timer expiries and link events with a real clock and carries out
// the Actions they return.
//
// # Codec
//
// Advert is one VRRP message (without the IP header); Packet is an Advert inside its
// IPv4 or IPv6 header. Advert.Append and Packet.AppendBinary encode with the checksum
// filled in: version 2 sums the message only, version 3 adds the IPv4 or IPv6
// pseudo-header built from the real source and destination, so a unicast advert's
// checksum differs from the multicast one (docs/vrrp.md §1.4, §2.6). Advert.Decode and
// Packet.UnmarshalBinary are strict: the length must be exactly what the address count
// implies and the checksum must verify.
//
// Config.Check then applies the checks that need the local configuration (TTL, version,
// VRID, v2 authentication and interval, VIP count and set, multicast versus unicast,
// unicast source) in the order keepalived applies them.
//
// Every way a received packet can be rejected is a Reason. A Reason is also the error
// value returned, unwrapped, so that callers can count drops with an array indexed by
// Reason and compare with errors.Is; decoding and checking allocate nothing.
//
// # State machine
//
// Instance is one virtual router (keepalived's vrrp_instance) in state Initialize,
// Backup, Master or Fault. Instance.Step takes the current time and one Event (start,
// shutdown, advert received, timer fired, link down or up, priority change) and returns
// the Actions to perform: send an advert with a given priority, take over or release
// the VIPs, repeat gratuitous ARP/NA, and state changes for logging and notify scripts.
// Instance.NextDeadline says when the runner must deliver the next EventTimer. The core
// never reads a clock: time comes only from the now argument, so tests step it with a
// fake clock and replay captures bit for bit. Where keepalived departs from the RFC, the
// Instance follows keepalived and the code says so.
//
// Group is keepalived's vrrp_sync_group: its members enter Master, Backup and Fault
// together.
//
// # Concurrency and allocation
//
// Nothing in the package is safe for concurrent use; one goroutine owns an Instance (or
// a Group and its members). Decoding into a reused Packet, Config.Check and Step
// allocate nothing once the Advert's address slice and the action buffer have grown to
// their working size.
package vrrp
