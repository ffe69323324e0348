package ipvssync

import (
	"encoding/binary"
	"net/netip"
)

// Reason says why Decode dropped a datagram, the rest of one, or a single record.
type Reason uint8

const (
	ReasonNone Reason = iota
	// Whole datagram.
	ReasonShort        // shorter than the 4-byte v0 header
	ReasonSizeMismatch // the header's size is not the datagram's length
	// The rest of a datagram (records read before stand).
	ReasonTruncated     // fewer bytes than the count of records announces
	ReasonRecordOverrun // a record's size runs past the datagram, or is below its fixed part
	ReasonRecordVersion // a record version other than 0
	ReasonRecordType    // a record type other than IPv4 (0) or IPv6 (bit 0 set)
	ReasonBadOption     // an option with length 0, overrunning its record, of a wrong size, or repeated
	// One record.
	ReasonMandatoryOption // an unknown option without OptParam
	ReasonProtocol        // a protocol the kernel has no state table for
	ReasonState           // a state beyond the protocol's table
	numReasons
)

// NumReasons is the number of Reason values, for counter arrays indexed by Reason.
const NumReasons = int(numReasons)

var reasonNames = [...]string{
	"none", "short", "size_mismatch", "truncated", "record_overrun", "record_version",
	"record_type", "bad_option", "mandatory_option", "protocol", "state",
}

// String returns the reason as a metric label.
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// Result is what Decode reports besides the records.
type Result struct {
	// Drop is why the datagram, or everything from some record on, was not read;
	// ReasonNone when the header's count of records was read (or skipped) in full.
	Drop Reason
	// Lost is how many announced records the Drop cost (the count less the records
	// read and skipped); for a dropped datagram, 0 when the count is unreadable.
	Lost int
	// Skipped counts single records dropped, by reason (ReasonMandatoryOption,
	// ReasonProtocol, ReasonState).
	Skipped [NumReasons]uint8
}

// SkippedTotal returns the number of single records dropped.
func (r *Result) SkippedTotal() int {
	n := 0
	for _, c := range r.Skipped {
		n += int(c)
	}
	return n
}

// Decode parses datagram b into m, as the kernel's backup does (see the package doc):
// m.Records is truncated and refilled, m.Version and m.SyncID set from the header. A
// v1 header with reserved, version or spare other than 0, 1, 0 is read as v0, as the
// kernel does. Decode keeps no reference to b except through PEName and PEData.
func Decode(m *Message, b []byte) Result {
	m.Records = m.Records[:0]
	m.Version, m.SyncID = V0, 0
	if len(b) < HeaderLenV0 {
		return Result{Drop: ReasonShort}
	}
	m.SyncID = b[1]
	if int(binary.BigEndian.Uint16(b[2:4])) != len(b) {
		return Result{Drop: ReasonSizeMismatch}
	}
	if len(b) >= HeaderLenV1 && b[0] == 0 && b[5] == byte(V1) && b[6] == 0 && b[7] == 0 {
		m.Version = V1
		return decodeV1(m, b)
	}
	return decodeV0(m, b)
}

func decodeV1(m *Message, b []byte) Result {
	var res Result
	count := int(b[4])
	off := HeaderLenV1
	for i := range count {
		lost := count - i
		if off+RecordLenV4 > len(b) {
			res.Drop, res.Lost = ReasonTruncated, lost
			return res
		}
		vs := binary.BigEndian.Uint16(b[off+2:])
		size := int(vs & 0x0fff)
		end := off + size
		if end > len(b) {
			res.Drop, res.Lost = ReasonRecordOverrun, lost
			return res
		}
		if vs>>12 != 0 {
			res.Drop, res.Lost = ReasonRecordVersion, lost
			return res
		}
		m.Records = append(m.Records, Record{})
		r := &m.Records[len(m.Records)-1]
		if why := decodeRecordV1(r, b[off:], size); why != ReasonNone {
			m.Records = m.Records[:len(m.Records)-1]
			if why >= ReasonMandatoryOption {
				res.Skipped[why]++
			} else {
				res.Drop, res.Lost = why, lost
				return res
			}
		}
		off += (size + 3) &^ 3
	}
	return res
}

// decodeRecordV1 reads one v1 record of the declared size at the start of rest,
// which holds at least an IPv4 record's worth of bytes. As in the kernel, the type
// is judged before the size: a record declaring less than its fixed part is an
// overrun only if its type is valid.
func decodeRecordV1(r *Record, rest []byte, size int) Reason {
	var fixed int
	switch t := rest[0]; {
	case t&1 != 0:
		fixed = RecordLenV6
	case t == 0:
		fixed = RecordLenV4
	default:
		return ReasonRecordType
	}
	if size < fixed {
		return ReasonRecordOverrun
	}
	rec := rest[:size]
	r.Protocol = rec[1]
	r.Flags = binary.BigEndian.Uint32(rec[4:])
	r.State = binary.BigEndian.Uint16(rec[8:])
	r.CPort = binary.BigEndian.Uint16(rec[10:])
	r.VPort = binary.BigEndian.Uint16(rec[12:])
	r.DPort = binary.BigEndian.Uint16(rec[14:])
	r.FwMark = binary.BigEndian.Uint32(rec[16:])
	r.Timeout = binary.BigEndian.Uint32(rec[20:])
	if fixed == RecordLenV6 {
		r.CAddr = netip.AddrFrom16([16]byte(rec[24:40]))
		r.VAddr = netip.AddrFrom16([16]byte(rec[40:56]))
		r.DAddr = netip.AddrFrom16([16]byte(rec[56:72]))
	} else {
		r.CAddr = netip.AddrFrom4([4]byte(rec[24:28]))
		r.VAddr = netip.AddrFrom4([4]byte(rec[28:32]))
		r.DAddr = netip.AddrFrom4([4]byte(rec[32:36]))
	}
	for p := fixed; p < len(rec); {
		if p+2 > len(rec) {
			return ReasonBadOption
		}
		typ, n := rec[p], int(rec[p+1])
		p += 2
		if n == 0 || p+n > len(rec) {
			return ReasonBadOption
		}
		data := rec[p : p+n]
		switch typ &^ OptParam {
		case OptSeqData:
			if n != SeqOptionsLen || r.HasSeq {
				return ReasonBadOption
			}
			r.HasSeq = true
			r.InSeq = seqBE(data[0:12])
			r.OutSeq = seqBE(data[12:24])
		case OptPEData:
			if n > MaxPEData || r.PEData != nil {
				return ReasonBadOption
			}
			r.PEData = data
		case OptPEName:
			if n > MaxPEName || r.PEName != nil {
				return ReasonBadOption
			}
			r.PEName = data
		default:
			// The kernel stops at an unknown mandatory option and drops the record
			// without reading further options; a malformed option after it is
			// therefore never seen.
			if typ&OptParam == 0 {
				return ReasonMandatoryOption
			}
		}
		p += n
	}
	return checkState(r)
}

// checkState applies the kernel's per-record protocol and state checks. Templates
// are not checked: the kernel only logs an out-of-range template state.
func checkState(r *Record) Reason {
	if r.Flags&FlagTemplate != 0 {
		return ReasonNone
	}
	n := NumStates(r.Protocol)
	if n == 0 {
		return ReasonProtocol
	}
	if r.State >= n {
		return ReasonState
	}
	return ReasonNone
}

func seqBE(b []byte) Seq {
	return Seq{binary.BigEndian.Uint32(b[0:]), binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint32(b[8:])}
}

// seqHost reads a v0 sequence block, which the kernel copies from its own struct in
// host byte order. Every platform gvs targets, and nearly every IPVS master, is
// little-endian.
func seqHost(b []byte) Seq {
	return Seq{binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[8:])}
}

func decodeV0(m *Message, b []byte) Result {
	var res Result
	count := int(b[0])
	off := HeaderLenV0
	for i := range count {
		if off+RecordLenV0 > len(b) {
			res.Drop, res.Lost = ReasonTruncated, count-i
			return res
		}
		rec := b[off : off+RecordLenV0]
		flags := uint32(binary.BigEndian.Uint16(rec[20:]))
		next := off + RecordLenV0
		if flags&FlagSeqMask != 0 {
			next += SeqOptionsLen
			if next > len(b) {
				res.Drop, res.Lost = ReasonTruncated, count-i
				return res
			}
		}
		m.Records = append(m.Records, Record{
			Protocol: rec[1],
			CPort:    binary.BigEndian.Uint16(rec[2:]),
			VPort:    binary.BigEndian.Uint16(rec[4:]),
			DPort:    binary.BigEndian.Uint16(rec[6:]),
			CAddr:    netip.AddrFrom4([4]byte(rec[8:12])),
			VAddr:    netip.AddrFrom4([4]byte(rec[12:16])),
			DAddr:    netip.AddrFrom4([4]byte(rec[16:20])),
			Flags:    flags,
			State:    binary.BigEndian.Uint16(rec[22:]),
		})
		r := &m.Records[len(m.Records)-1]
		if flags&FlagSeqMask != 0 {
			r.HasSeq = true
			r.InSeq = seqHost(b[off+RecordLenV0:])
			r.OutSeq = seqHost(b[off+RecordLenV0+12:])
		}
		if why := checkState(r); why != ReasonNone {
			m.Records = m.Records[:len(m.Records)-1]
			res.Skipped[why]++
		}
		off = next
	}
	return res
}

// A name for every reason, checked by the compiler.
var _ = [1]struct{}{}[len(reasonNames)-int(numReasons)]
