package ipvssync

import (
	"net/netip"
	"strconv"
)

// Transport constants of the protocol (docs/cluster.md §3).
const (
	// Port is IP_VS_SYNC_PORT; sync thread i of sync_ports uses Port+i.
	Port = 8848
	// MaxLen is the largest message a kernel master sends by default: a 1500-byte
	// MTU less the IPv4 and UDP headers.
	MaxLen = 1500 - 20 - 8
	// MaxRecords is the most records one message can announce (its count is a byte).
	MaxRecords = 255
)

// Group is IP_VS_SYNC_GROUP, 224.0.0.81, the default multicast group.
func Group() netip.Addr { return netip.AddrFrom4([4]byte{224, 0, 0, 81}) }

// Version is the message format.
type Version uint8

const (
	// V0 is the legacy format: a 4-byte header, 24-byte IPv4-only records without
	// timeout or firewall mark.
	V0 Version = 0
	// V1 is the current format (SYNC_PROTO_VER): IPv4 and IPv6 records with
	// timeout, firewall mark and options.
	V1 Version = 1
)

// Sizes of the fixed parts, in bytes.
const (
	HeaderLenV1   = 8
	HeaderLenV0   = 4
	RecordLenV4   = 36
	RecordLenV6   = 72
	RecordLenV0   = 24
	SeqOptionsLen = 24 // in_seq then out_seq: init_seq, delta, previous_delta
)

// Connection flags (IP_VS_CONN_F_*), as they travel in a record's flags field.
const (
	FwdMask      uint32 = 0x0007 // forwarding method, one of the Fwd values
	FlagSync     uint32 = 0x0020 // set by a receiver on entries it created from sync
	FlagHashed   uint32 = 0x0040 // kernel-internal; cleared before sending
	FlagNoOutput uint32 = 0x0080 // no reply seen yet
	FlagInactive uint32 = 0x0100 // counted as inactive
	FlagOutSeq   uint32 = 0x0200 // output sequence adjustment
	FlagInSeq    uint32 = 0x0400 // input sequence adjustment
	FlagNoCPort  uint32 = 0x0800 // client port unknown (persistence with port 0)
	FlagTemplate uint32 = 0x1000 // a persistence template
	FlagOnePkt   uint32 = 0x2000 // one-packet scheduling: never synced

	// FlagSeqMask is both sequence flags; in v0 they announce 24 option bytes.
	FlagSeqMask = FlagOutSeq | FlagInSeq
	// BackupMask is what a receiver keeps of a record's flags on a new entry.
	BackupMask = FwdMask | FlagNoOutput | FlagInactive | FlagSeqMask | FlagNoCPort | FlagTemplate
	// BackupUpdateMask is what a receiver changes on an entry it already has.
	BackupUpdateMask = FlagInactive | FlagSeqMask
)

// Forwarding methods, the values of flags & FwdMask.
const (
	FwdMasq   uint32 = 0 // NAT
	FwdLocal  uint32 = 1 // local node
	FwdTunnel uint32 = 2 // IPIP
	FwdRoute  uint32 = 3 // direct routing
	FwdBypass uint32 = 4 // bypass
)

// TCP states as the kernel numbers them (IP_VS_TCP_S_*).
const (
	TCPNone        uint16 = 0
	TCPEstablished uint16 = 1
	TCPSynSent     uint16 = 2
	TCPSynRecv     uint16 = 3
	TCPFinWait     uint16 = 4
	TCPTimeWait    uint16 = 5
	TCPClose       uint16 = 6
	TCPCloseWait   uint16 = 7
	TCPLastAck     uint16 = 8
	TCPListen      uint16 = 9
	TCPSynAck      uint16 = 10
	tcpStates             = 11
)

// UDPNormal is the single state of UDP (and of every single-state protocol).
const UDPNormal uint16 = 0

// Template states (IP_VS_CTPL_S_*): a template is ASSURED once a connection it
// controls was established.
const (
	TemplateNone    uint16 = 0
	TemplateAssured uint16 = 1
	templateStates         = 2
)

// Protocol numbers with kernel state tables.
const (
	ProtoTCP  = 6
	ProtoUDP  = 17
	ProtoSCTP = 132
	ProtoESP  = 50
	ProtoAH   = 51
)

// NumStates returns how many states the kernel knows for proto, and 0 for a protocol
// the kernel does not support (records of it are dropped). SCTP has 13 states, ESP and
// AH one, like UDP.
func NumStates(proto uint8) uint16 {
	switch proto {
	case ProtoTCP:
		return tcpStates
	case ProtoUDP, ProtoESP, ProtoAH:
		return 1
	case ProtoSCTP:
		return 13
	}
	return 0
}

var tcpStateNames = [tcpStates]string{
	"NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT", "CLOSE",
	"CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK",
}

// StateName returns a record's state as ipvsadm -Lc prints it.
func StateName(proto uint8, flags uint32, state uint16) string {
	switch {
	case flags&FlagTemplate != 0:
		if state == TemplateAssured {
			return "ASSURED"
		}
		return "NONE"
	case proto == ProtoTCP && state < tcpStates:
		return tcpStateNames[state]
	case proto != ProtoTCP && state < NumStates(proto):
		return "UDP"
	}
	return "ERR!(" + strconv.Itoa(int(state)) + ")"
}

// Option types of a v1 record (IPVS_OPT_*). OptParam marks an option optional: a
// receiver skips an optional option it does not know and drops the record for a
// mandatory one.
const (
	OptSeqData uint8 = 1
	OptPEData  uint8 = 2
	OptPEName  uint8 = 3
	OptParam   uint8 = 0x40

	// MaxPEData and MaxPEName are the longest persistence-engine data and name.
	MaxPEData = 255
	MaxPEName = 16
)

// Seq is one direction's TCP sequence adjustment (struct ip_vs_seq).
type Seq struct {
	Init, Delta, PrevDelta uint32
}

// Record is one connection (or persistence template) in a message. Addresses are all
// IPv4 or all IPv6. Zero value: an IPv4-less record that Builder.Add refuses.
//
// PEName and PEData, when a received record carried them, alias the datagram passed
// to Decode: copy them before reusing its buffer.
type Record struct {
	Protocol uint8
	Flags    uint32 // IP_VS_CONN_F_* bits; v0 carries only the low 16
	State    uint16
	CPort    uint16
	VPort    uint16
	DPort    uint16
	FwMark   uint32 // v1 only
	Timeout  uint32 // seconds, v1 only (0 in v0: the receiver uses the state's timeout)
	CAddr    netip.Addr
	VAddr    netip.Addr
	DAddr    netip.Addr

	// Options received (never sent by gvs).
	HasSeq bool // InSeq and OutSeq are set
	InSeq  Seq
	OutSeq Seq
	PEName []byte
	PEData []byte
}

// IPv6 reports whether the record is an IPv6 one.
func (r *Record) IPv6() bool { return r.CAddr.Is6() }

// Method returns the record's forwarding method, one of the Fwd values.
func (r *Record) Method() uint32 { return r.Flags & FwdMask }

// Message is one datagram's header and records. Records is reused by Decode:
// give it a capacity of MaxRecords once and decoding never allocates.
type Message struct {
	Version Version
	SyncID  uint8
	Records []Record
}
