package conntrack

import (
	"fmt"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
)

// Protocol numbers the table distinguishes. Every protocol other than TCP follows the
// UDP rules (one state, the UDP timeout, always inactive): gvs forwards TCP and UDP only.
const (
	protoTCP = 6
	protoUDP = 17
)

// State is a connection's protocol state. TCP connections move through StateNone ..
// StateSynAck with the kernel's numbering (docs/ipvs-semantics.md §7.1): the zero value is
// StateNone, the state every TCP connection and every template is created in. UDP
// connections are always in StateUDP (§7.2).
type State uint8

// TCP states, numbered as IPVS numbers them, then the UDP pseudo state.
const (
	StateNone State = iota
	StateEstablished
	StateSynSent
	StateSynRecv
	StateFinWait
	StateTimeWait
	StateClose
	StateCloseWait
	StateLastAck
	StateListen
	StateSynAck
	StateUDP
)

// NumStates is the number of TCP states (the length of Timeouts.TCP).
const NumStates = int(StateSynAck) + 1

var stateNames = [...]string{
	"NONE", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT", "CLOSE",
	"CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK", "UDP",
}

// String returns the state as `ipvsadm -Lc` prints it; out-of-range values give "ERR!".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "ERR!"
}

// active reports whether a TCP connection in state s counts in activeconns (§7.1).
func (s State) active() bool {
	switch s {
	case StateEstablished, StateSynSent, StateSynRecv, StateSynAck:
		return true
	}
	return false
}

// Flags are connection flags (docs/ipvs-semantics.md §1.3). Their values are gvs's own, not the
// kernel's uapi bits. FlagAssured is the template state bit IP_VS_CTPL_S_ASSURED.
type Flags uint16

const (
	FlagTemplate  Flags = 1 << iota // a persistence template
	FlagNoOutput                    // no reply seen yet (DR/TUN/LOCALNODE): INPUT-ONLY table
	FlagInactive                    // counted in inactconns (else activeconns)
	FlagOnePacket                   // UDP one-packet scheduling: never stored (§5.9)
	FlagNoCPort                     // client port unknown: matched by cport-0 lookups (§6.2)
	FlagAssured                     // template: a controlled conn was established (§5.5)

	publicFlags = FlagTemplate | FlagNoOutput | FlagInactive | FlagOnePacket | FlagNoCPort | FlagAssured
)

// Internal flag bits kept in the same 16-bit word of an entry.
const (
	fIPv6        Flags = 1 << 8  // key is IPv6
	fLive        Flags = 1 << 9  // slab slot in use
	fHasDest     Flags = 1 << 10 // dest field is meaningful
	fCtlAssured  Flags = 1 << 11 // controller already marked ASSURED: skip the cross-shard step
	fUnconf      Flags = 1 << 7  // on its shard's unconfirmed list (unconfirmed.go)
	methodShift        = 12      // bits 12..14: Method
	methodMask   Flags = 7 << methodShift
	internalMask       = fIPv6 | fLive | fHasDest | fCtlAssured | fUnconf | methodMask
)

// Dir is a packet's direction relative to a connection. The zero value is invalid.
type Dir uint8

const (
	_      Dir = iota
	DirIn      // client -> VIP
	DirOut     // real server -> client (seen for NAT only)
)

// Ref is a handle on a table entry: the shard in the top bits, the slab index below.
// The zero Ref means "none". A Ref is valid while its entry lives; an entry's slot is
// reused after it expires, so a Ref must not be kept past the entry's life (a
// connection's Control is safe: a template lives while it controls connections).
type Ref uint32

// Key identifies a connection in the input direction. Addresses are raw: an IPv4
// address occupies the first 4 bytes and the other 12 must be zero. For a template
// (docs/ipvs-semantics.md §5.5) CAddr is the masked client network, CPort is 0 and, for a
// fwmark service, Proto is 0 and VAddr holds the mark in network order in its first
// 4 bytes.
type Key struct {
	Proto uint8
	IPv6  bool
	CAddr [16]byte
	CPort uint16
	VAddr [16]byte
	VPort uint16
}

// Timeouts are the per-state timeouts (docs/ipvs-semantics.md §7.1, §7.2).
type Timeouts struct {
	TCP [NumStates]time.Duration
	UDP time.Duration
}

// DefaultTimeouts returns the kernel's defaults: TCP NONE 2 s, ES 900 s, SS 120 s,
// SR 60 s, FW 120 s, TW 120 s, CL 10 s, CW 60 s, LA 30 s, LI 120 s, SA 120 s; UDP 300 s.
func DefaultTimeouts() Timeouts {
	s := time.Second
	return Timeouts{
		TCP: [NumStates]time.Duration{
			StateNone:        2 * s,
			StateEstablished: 900 * s,
			StateSynSent:     120 * s,
			StateSynRecv:     60 * s,
			StateFinWait:     120 * s,
			StateTimeWait:    120 * s,
			StateClose:       10 * s,
			StateCloseWait:   60 * s,
			StateLastAck:     30 * s,
			StateListen:      120 * s,
			StateSynAck:      120 * s,
		},
		UDP: 300 * s,
	}
}

// Config configures a Table. It is copied by New.
type Config struct {
	// Max is the hard cap on live entries (connections plus templates); Insert
	// returns Full rather than exceed it. It also sizes the bucket arrays.
	Max int
	// Shards is the number of lock shards, a power of two; 0 means 256.
	Shards int
	// Timeouts are the state timeouts; the zero value means DefaultTimeouts().
	Timeouts Timeouts
	// ConnReuseMode is the conn_reuse_mode sysctl (§5.2, §8). The kernel's default
	// is 1, but the zero Config means 0 (reuse disabled): start from DefaultConfig.
	ConnReuseMode int
	// ExpireNodestConn and ExpireQuiescentTemplate are the sysctls of §2.3/§5.2/§5.5.
	ExpireNodestConn        bool
	ExpireQuiescentTemplate bool
	// Tick is the expiry granularity: Expire unbinds an entry at the first tick
	// boundary at or after its expiry time. 0 means 100 ms.
	Tick time.Duration
	// HashSeed perturbs the flow hash (the kernel uses a random per-boot seed).
	HashSeed uint64
	// UnconfirmedMax and UnconfirmedPerService are the unconfirmed budget
	// (unconfirmed.go): 0 means DefaultUnconfirmed(Max); UnconfirmedMax
	// UnconfirmedOff (with UnconfirmedPerService 0) turns it off.
	UnconfirmedMax        int
	UnconfirmedPerService int
	// DropEntry and SecureTCP are the defense modes (0..3) and AMemThresh the free
	// entries below which automatic ones engage, 0 = Max/2 (defense.go).
	DropEntry, SecureTCP int
	AMemThresh           int
}

// DefaultConfig returns the kernel's defaults: 256 shards, DefaultTimeouts,
// conn_reuse_mode 1, expire_nodest_conn 0, expire_quiescent_template 0, for max
// entries.
func DefaultConfig(max int) Config {
	return Config{Max: max, Shards: 256, Timeouts: DefaultTimeouts(), ConnReuseMode: 1}
}

// Conn is a copy of a table entry, filled by the Table for its caller.
type Conn struct {
	Ref      Ref
	Key      Key
	DAddr    [16]byte // real server address, from the dest; zero without a dest (bypass)
	DPort    uint16
	Dest     uint32 // dest ID; meaningless when HasDest is false
	HasDest  bool
	Method   ipvs.Method // zero for templates
	Flags    Flags
	State    State
	Timeout  time.Duration
	Expires  int64    // ns on the caller's clock
	Control  Ref      // controlling template, 0 = none
	NControl uint32   // number of connections this entry controls (templates)
	Sync     SyncInfo // cluster sync (sync.go); zero while the table does not sync
	tick     tickMemo // the last send's tick the table worked out through this Conn (sync.go)
}

// Result is the outcome of a lookup or insertion. The zero value is invalid.
type Result uint8

const (
	_ Result = iota
	// Miss: no usable connection; the caller schedules. It includes a connection
	// rescheduled by the reuse rules and one whose dest is gone with
	// expire_nodest_conn set (§5.2 steps 5 and 6).
	Miss
	// Hit: the Conn was filled, the state transition was applied and the timer
	// re-armed to now + timeout(state).
	Hit
	// DropNoDest: the connection's dest was deleted and expire_nodest_conn is 0:
	// drop the packet; the timer is not refreshed (§5.2 step 6).
	DropNoDest
	// Full: Insert refused because the table holds Max entries or the unconfirmed
	// budget is full, with no unconfirmed entry of the flow's shard to evict.
	// Confirmed entries are never evicted to make room.
	Full
	// Created: InOrInsert made a new connection (its first transition applied, c
	// filled; c.Ref is 0 for a ONE_PACKET one, which is never stored). Its first
	// packet neither sends nor adopts it (c.Sync.Send and Adopted are false): it
	// is on the unconfirmed list, or one-packet, and a local one.
	Created
)

var resultNames = [...]string{"Result(0)", "Miss", "Hit", "DropNoDest", "Full", "Created"}

func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return fmt.Sprintf("Result(%d)", uint8(r))
}
