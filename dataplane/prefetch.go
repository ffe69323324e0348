package dataplane

import "encoding/binary"

// Batch prefetch. A packet whose flow is not in the worker's flow cache goes to the
// shared connection table, and in a big table (or for a new flow) the bucket it reads
// is a cache miss: ~50 ns from L3, more from DRAM. When enough of the previous batch
// went to the table, Process first walks the batch, works out each frame's client
// tuple with a few loads at fixed offsets, and touches its bucket, so that the misses
// of the whole batch overlap instead of being paid one after another. When the flow
// cache serves the traffic (the busy established case) the pass is skipped and costs
// nothing. The pass is only a hint: the real parse comes after and decides everything.

// prefetchShare is the fraction (1/prefetchShare) of a batch that must have gone to
// the table for the next batch to be prefetched.
const prefetchShare = 4

// prefetch touches the table bucket of every IPv4/IPv6 TCP or UDP frame in the batch,
// keyed as an inbound lookup (client = source).
func (w *Worker) prefetch(in []Frame) {
	t := w.d.table
	w.prefetched++
	var addr [16]byte
	for i := range in {
		proto, v6, port, ok := clientTuple(in[i].Bytes(), &addr)
		if ok {
			t.Prefetch(proto, v6, &addr, port)
		}
	}
}

// clientTuple reads the source address and port of an untagged or 802.1Q-tagged IPv4
// or IPv6 TCP/UDP frame into addr (IPv4 in the first four bytes, zeros after) without
// validating more than it needs to stay in bounds. Non-first fragments, IPv6 extension
// headers and everything else report ok=false.
func clientTuple(b []byte, addr *[16]byte) (proto uint8, v6 bool, port uint16, ok bool) {
	if len(b) < EthernetHeaderLen {
		return 0, false, 0, false
	}
	off := EthernetHeaderLen
	et := binary.BigEndian.Uint16(b[12:])
	if et == EtherTypeVLAN {
		if len(b) < off+4 {
			return 0, false, 0, false
		}
		et = binary.BigEndian.Uint16(b[16:])
		off += 4
	}
	ip := b[off:]
	switch et {
	case EtherTypeIPv4:
		if len(ip) < 20 {
			return 0, false, 0, false
		}
		ihl := int(ip[0]&0xf) * 4
		if ihl < 20 || len(ip) < ihl+2 || binary.BigEndian.Uint16(ip[6:])&0x1fff != 0 {
			return 0, false, 0, false
		}
		proto = ip[9]
		*addr = [16]byte{ip[12], ip[13], ip[14], ip[15]}
		port = binary.BigEndian.Uint16(ip[ihl:])
	case EtherTypeIPv6:
		if len(ip) < 42 {
			return 0, false, 0, false
		}
		proto, v6 = ip[6], true
		copy(addr[:], ip[8:24])
		port = binary.BigEndian.Uint16(ip[40:])
	default:
		return 0, false, 0, false
	}
	return proto, v6, port, proto == protoTCP || proto == protoUDP
}
