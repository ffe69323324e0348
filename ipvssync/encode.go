package ipvssync

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors Builder.Add returns. Check them with errors.Is.
var (
	// ErrFull: the record does not fit the message (its length or its count).
	ErrFull = errors.New("message full")
	// ErrInvalidRecord: the record cannot be encoded (addresses missing or of mixed
	// families, an IPv6 record in a v0 message).
	ErrInvalidRecord = errors.New("invalid record")
)

// Builder encodes one message at a time into its own buffer. The zero value is not
// usable; call Reset. A Builder is not safe for concurrent use; reused, it does not
// allocate.
type Builder struct {
	buf     []byte
	version Version
	maxLen  int
	count   int
}

// Reset starts a new, empty message of version v and syncID, at most maxLen bytes
// long (at least one record's worth: smaller values are raised to it; at most
// 65535, the largest size the header can state).
func (b *Builder) Reset(v Version, syncID uint8, maxLen int) {
	hdr, minLen := HeaderLenV1, HeaderLenV1+RecordLenV6
	if v == V0 {
		hdr, minLen = HeaderLenV0, HeaderLenV0+RecordLenV0
	}
	b.version, b.maxLen, b.count = v, min(max(maxLen, minLen), 0xffff), 0
	if cap(b.buf) < b.maxLen {
		b.buf = make([]byte, 0, b.maxLen)
	}
	b.buf = b.buf[:hdr]
	clear(b.buf)
	if v == V0 {
		b.buf[1] = syncID
	} else {
		b.buf[1] = syncID
		b.buf[5] = byte(V1)
	}
}

// Len returns the message's length so far, header included.
func (b *Builder) Len() int { return len(b.buf) }

// Count returns the number of records added since Reset.
func (b *Builder) Count() int { return b.count }

// Version returns the version of the message being built.
func (b *Builder) Version() Version { return b.version }

// Fits reports whether one more record of the family ipv6 fits.
func (b *Builder) Fits(ipv6 bool) bool {
	return b.count < MaxRecords && len(b.buf)+RecordLen(b.version, ipv6) <= b.maxLen
}

// RecordLen returns the encoded length of a record without options.
func RecordLen(v Version, ipv6 bool) int {
	switch {
	case v == V0:
		return RecordLenV0
	case ipv6:
		return RecordLenV6
	}
	return RecordLenV4
}

// Add appends r. It never writes options: the sequence flags are cleared (a v0
// receiver would read 24 option bytes after a record carrying them), and so is
// FlagHashed, as the kernel does. PEName, PEData, HasSeq and, in v0, Timeout and
// FwMark are not sent.
func (b *Builder) Add(r *Record) error {
	ipv6 := r.CAddr.Is6()
	if !r.CAddr.IsValid() || r.VAddr.Is6() != ipv6 || r.DAddr.Is6() != ipv6 ||
		!r.VAddr.IsValid() || !r.DAddr.IsValid() || (ipv6 && b.version == V0) {
		return fmt.Errorf("ipvssync: add %v→%v→%v: %w", r.CAddr, r.VAddr, r.DAddr, ErrInvalidRecord)
	}
	if !b.Fits(ipv6) {
		return ErrFull
	}
	flags := r.Flags &^ (FlagHashed | FlagSeqMask)
	n := len(b.buf)
	b.buf = b.buf[:n+RecordLen(b.version, ipv6)]
	rec := b.buf[n:]
	if b.version == V0 {
		rec[0] = 0
		rec[1] = r.Protocol
		binary.BigEndian.PutUint16(rec[2:], r.CPort)
		binary.BigEndian.PutUint16(rec[4:], r.VPort)
		binary.BigEndian.PutUint16(rec[6:], r.DPort)
		c, v, d := r.CAddr.As4(), r.VAddr.As4(), r.DAddr.As4()
		copy(rec[8:12], c[:])
		copy(rec[12:16], v[:])
		copy(rec[16:20], d[:])
		binary.BigEndian.PutUint16(rec[20:], uint16(flags))
		binary.BigEndian.PutUint16(rec[22:], r.State)
	} else {
		rec[0] = 0
		if ipv6 {
			rec[0] = 1
		}
		rec[1] = r.Protocol
		binary.BigEndian.PutUint16(rec[2:], uint16(len(rec))) // record version 0
		binary.BigEndian.PutUint32(rec[4:], flags)
		binary.BigEndian.PutUint16(rec[8:], r.State)
		binary.BigEndian.PutUint16(rec[10:], r.CPort)
		binary.BigEndian.PutUint16(rec[12:], r.VPort)
		binary.BigEndian.PutUint16(rec[14:], r.DPort)
		binary.BigEndian.PutUint32(rec[16:], r.FwMark)
		binary.BigEndian.PutUint32(rec[20:], r.Timeout)
		if ipv6 {
			c, v, d := r.CAddr.As16(), r.VAddr.As16(), r.DAddr.As16()
			copy(rec[24:40], c[:])
			copy(rec[40:56], v[:])
			copy(rec[56:72], d[:])
		} else {
			c, v, d := r.CAddr.As4(), r.VAddr.As4(), r.DAddr.As4()
			copy(rec[24:28], c[:])
			copy(rec[28:32], v[:])
			copy(rec[32:36], d[:])
		}
	}
	b.count++
	return nil
}

// Bytes completes the header (size and count) and returns the message. The slice is
// the Builder's buffer: it is valid until the next Reset.
func (b *Builder) Bytes() []byte {
	binary.BigEndian.PutUint16(b.buf[2:4], uint16(len(b.buf)))
	if b.version == V0 {
		b.buf[0] = byte(b.count)
	} else {
		b.buf[4] = byte(b.count)
	}
	return b.buf
}

// Encode returns m as one datagram of at most maxLen bytes, or an error if a record
// is invalid or they do not all fit. It allocates; the sender uses a Builder.
func Encode(m *Message, maxLen int) ([]byte, error) {
	var b Builder
	b.Reset(m.Version, m.SyncID, maxLen)
	for i := range m.Records {
		if err := b.Add(&m.Records[i]); err != nil {
			return nil, fmt.Errorf("ipvssync: encode record %d: %w", i, err)
		}
	}
	return append([]byte(nil), b.Bytes()...), nil
}
