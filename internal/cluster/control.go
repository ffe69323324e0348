package cluster

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// The control channel's datagram (docs/cluster.md §5), all integers big-endian:
//
//	 0               1               2               3
//	+---------------+---------------+---------------+---------------+
//	|      'G'      |      'V'      |      'S'      |      'C'      |
//	+---------------+---------------+---------------+---------------+
//	|    version    |     type      |    TLVs: type (1), length (2), value …
//	+---------------+---------------+-------------------------------+
//	| … and, when signed, last: tlvHMAC, length 32, HMAC-SHA256 of every byte before it
//
// Every datagram carries its number in the sender's incarnation (tlvSeq), so a signed
// datagram replayed within an incarnation is recognised. Unknown TLVs are skipped, so
// a later version can add fields; a receiver with a key
// refuses an unsigned datagram, one without a key a signed one (a configuration
// mismatch that must be seen, not half-work).
const (
	controlVersion = 1
	controlHdrLen  = 6
	maxNodeID      = 64
	hmacLen        = sha256.Size
)

var controlMagic = [4]byte{'G', 'V', 'S', 'C'}

// ctlType is a control message type.
type ctlType uint8

const (
	_            ctlType = iota
	ctlHeartbeat         // every Heartbeat: who I am, my state, digests, counters
	ctlBulkReq           // a joiner (or a lossy receiver) asks for a bulk push
	ctlBulkDone          // a peer finished a bulk push of Count records
)

// TLV types.
const (
	tlvNodeID      = 1  // string
	tlvIncarnation = 2  // u64, random per start
	tlvState       = 3  // u8 NodeState
	tlvDigest      = 4  // 16 bytes, config digest
	tlvSentMsgs    = 5  // u64, sync messages sent since incarnation
	tlvSentRecords = 6  // u64, sync records sent since incarnation
	tlvHealth      = 7  // u64, health digest
	tlvSyncID      = 8  // u8
	tlvReqID       = 9  // u32
	tlvTarget      = 10 // string: the node a request or done is for; empty = all
	tlvCount       = 11 // u64, records of a bulk push
	tlvPushTarget  = 12 // string: the joiner a bulk push in progress is for
	tlvPushReqID   = 13 // u32: that push's request
	tlvSeq         = 14 // u64: the sender's datagram number in its incarnation, from 1
	tlvPushPort    = 15 // u16: the UDP source port of a bulk push's records (bulk-done; heartbeat, with the push in progress)
	tlvHMAC        = 255
)

// ctlMsg is a decoded control datagram; fields not carried are zero.
type ctlMsg struct {
	Type        ctlType
	NodeID      string
	Incarnation uint64
	State       NodeState
	Digest      [16]byte
	SentMsgs    uint64
	SentRecords uint64
	Health      uint64
	SyncID      uint8
	ReqID       uint32
	Target      string
	Count       uint64
	PushTarget  string
	PushReqID   uint32
	Seq         uint64 // 0: not carried (accepted, unchecked)
	PushPort    uint16 // 0: not carried (a peer without push sockets: count by address)
}

var (
	errCtlMalformed = errors.New("malformed control datagram")
	errCtlVersion   = errors.New("unknown control protocol version")
	errCtlAuth      = errors.New("control datagram authentication failed")
)

func appendTLV(b []byte, typ uint8, v []byte) []byte {
	b = append(b, typ, byte(len(v)>>8), byte(len(v)))
	return append(b, v...)
}

func appendU64(b []byte, typ uint8, v uint64) []byte {
	return appendTLV(b, typ, binary.BigEndian.AppendUint64(nil, v))
}

func appendU32(b []byte, typ uint8, v uint32) []byte {
	return appendTLV(b, typ, binary.BigEndian.AppendUint32(nil, v))
}

// encodeControl appends m to b and signs it with key when key is set.
func encodeControl(b []byte, m *ctlMsg, key []byte) []byte {
	start := len(b)
	b = append(b, controlMagic[:]...)
	b = append(b, controlVersion, byte(m.Type))
	b = appendTLV(b, tlvNodeID, []byte(m.NodeID))
	b = appendU64(b, tlvIncarnation, m.Incarnation)
	if m.Seq != 0 {
		b = appendU64(b, tlvSeq, m.Seq)
	}
	switch m.Type {
	case ctlHeartbeat:
		b = appendTLV(b, tlvState, []byte{byte(m.State)})
		b = appendTLV(b, tlvDigest, m.Digest[:])
		b = appendU64(b, tlvSentMsgs, m.SentMsgs)
		b = appendU64(b, tlvSentRecords, m.SentRecords)
		b = appendU64(b, tlvHealth, m.Health)
		b = appendTLV(b, tlvSyncID, []byte{m.SyncID})
		if m.PushTarget != "" {
			b = appendTLV(b, tlvPushTarget, []byte(m.PushTarget))
			b = appendU32(b, tlvPushReqID, m.PushReqID)
			if m.PushPort != 0 {
				b = appendTLV(b, tlvPushPort, binary.BigEndian.AppendUint16(nil, m.PushPort))
			}
		}
	case ctlBulkReq, ctlBulkDone:
		b = appendU32(b, tlvReqID, m.ReqID)
		b = appendTLV(b, tlvTarget, []byte(m.Target))
		if m.Type == ctlBulkDone {
			b = appendU64(b, tlvCount, m.Count)
			if m.PushPort != 0 {
				b = appendTLV(b, tlvPushPort, binary.BigEndian.AppendUint16(nil, m.PushPort))
			}
		}
	}
	if key != nil {
		mac := hmac.New(sha256.New, key)
		mac.Write(b[start:])
		b = append(b, tlvHMAC, 0, hmacLen)
		b = mac.Sum(b)
	}
	return b
}

// decodeControl parses b into m, checking the signature when key is set.
func decodeControl(m *ctlMsg, b []byte, key []byte) error {
	*m = ctlMsg{}
	if len(b) < controlHdrLen || [4]byte(b[:4]) != controlMagic {
		return errCtlMalformed
	}
	if b[4] != controlVersion {
		return fmt.Errorf("version %d: %w", b[4], errCtlVersion)
	}
	m.Type = ctlType(b[5])
	if m.Type < ctlHeartbeat || m.Type > ctlBulkDone {
		return fmt.Errorf("type %d: %w", m.Type, errCtlMalformed)
	}
	signed := false
	var hasNode, hasInc bool
	for p := controlHdrLen; p < len(b); {
		if p+3 > len(b) {
			return errCtlMalformed
		}
		typ, n := b[p], int(binary.BigEndian.Uint16(b[p+1:]))
		v := b[p+3:]
		if n > len(v) {
			return errCtlMalformed
		}
		v = v[:n]
		u64 := func() (uint64, error) {
			if n != 8 {
				return 0, errCtlMalformed
			}
			return binary.BigEndian.Uint64(v), nil
		}
		var err error
		switch typ {
		case tlvNodeID:
			if n == 0 || n > maxNodeID {
				return errCtlMalformed
			}
			m.NodeID, hasNode = string(v), true
		case tlvIncarnation:
			m.Incarnation, err = u64()
			hasInc = true
		case tlvState:
			if n != 1 || NodeState(v[0]) >= numNodeStates {
				return errCtlMalformed
			}
			m.State = NodeState(v[0])
		case tlvDigest:
			if n != len(m.Digest) {
				return errCtlMalformed
			}
			m.Digest = [16]byte(v)
		case tlvSentMsgs:
			m.SentMsgs, err = u64()
		case tlvSentRecords:
			m.SentRecords, err = u64()
		case tlvHealth:
			m.Health, err = u64()
		case tlvSyncID:
			if n != 1 {
				return errCtlMalformed
			}
			m.SyncID = v[0]
		case tlvReqID, tlvPushReqID:
			if n != 4 {
				return errCtlMalformed
			}
			if typ == tlvReqID {
				m.ReqID = binary.BigEndian.Uint32(v)
			} else {
				m.PushReqID = binary.BigEndian.Uint32(v)
			}
		case tlvTarget, tlvPushTarget:
			if n > maxNodeID {
				return errCtlMalformed
			}
			if typ == tlvTarget {
				m.Target = string(v)
			} else {
				m.PushTarget = string(v)
			}
		case tlvCount:
			m.Count, err = u64()
		case tlvSeq:
			m.Seq, err = u64()
		case tlvPushPort:
			if n != 2 {
				return errCtlMalformed
			}
			m.PushPort = binary.BigEndian.Uint16(v)
		case tlvHMAC:
			if n != hmacLen || p+3+n != len(b) {
				return errCtlMalformed // the signature must be the last TLV
			}
			if key == nil {
				return fmt.Errorf("signed, but no sync_auth_key_file is configured here: %w", errCtlAuth)
			}
			mac := hmac.New(sha256.New, key)
			mac.Write(b[:p])
			if !hmac.Equal(mac.Sum(nil), v) {
				return fmt.Errorf("wrong signature (a different sync_auth_key_file?): %w", errCtlAuth)
			}
			signed = true
		}
		if err != nil {
			return err
		}
		p += 3 + n
	}
	if key != nil && !signed {
		return fmt.Errorf("unsigned, but sync_auth_key_file is configured here: %w", errCtlAuth)
	}
	if !hasNode || !hasInc {
		return fmt.Errorf("no node id or incarnation: %w", errCtlMalformed)
	}
	return nil
}
