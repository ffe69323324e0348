package conntrack

import (
	"time"

	"github.com/gvs-lb/gvs/sched"
)

// TCP flag bits as they appear in the TCP header's flag byte.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// Flag classes: the columns of the transition tables (§7.1), in the tables' order.
const (
	clsSYN = iota
	clsFIN
	clsACK
	clsRST
	numClasses
	clsNone = -1 // no SYN, FIN, ACK or RST: the new state is CLOSE
)

// tcpClass picks the column of a segment: RST > SYN > FIN > ACK (§7.1).
func tcpClass(flags uint8) int {
	switch {
	case flags&tcpRST != 0:
		return clsRST
	case flags&tcpSYN != 0:
		return clsSYN
	case flags&tcpFIN != 0:
		return clsFIN
	case flags&tcpACK != 0:
		return clsACK
	}
	return clsNone
}

// The three tables of §7.1.
const (
	tblInput     = iota // NAT, client -> LB
	tblOutput           // NAT, server -> client
	tblInputOnly        // NOOUTPUT conns (DR/TUN/LOCALNODE)
	numTables
)

// Short names so the tables below read like docs/ipvs-semantics.md §7.1.
const (
	sNO = StateNone
	sES = StateEstablished
	sSS = StateSynSent
	sSR = StateSynRecv
	sFW = StateFinWait
	sTW = StateTimeWait
	sCL = StateClose
	sCW = StateCloseWait
	sLA = StateLastAck
	sLI = StateListen
	sSA = StateSynAck
)

// tcpNext[table][current state] = next state for {syn, fin, ack, rst}, transcribed
// from the three normal tables of docs/ipvs-semantics.md §7.1 (rows = current state). The
// secure_tcp defense tables are not implemented: gvs's secure_tcp shortens the timeouts
// instead, as Linux 2.4 did (defense.go, docs/defense.md §8).
var tcpNext = [numTables][NumStates][numClasses]State{
	tblInput: {
		//      syn  fin  ack  rst
		sNO: {sSR, sCL, sES, sCL},
		sES: {sES, sCW, sES, sCL},
		sSS: {sES, sSS, sSS, sCL},
		sSR: {sSR, sTW, sES, sSR},
		sFW: {sSR, sTW, sFW, sCL},
		sTW: {sSR, sTW, sTW, sCL},
		sCL: {sSR, sCL, sCL, sCL},
		sCW: {sSR, sCW, sCW, sCL},
		sLA: {sSR, sLA, sCL, sLA},
		sLI: {sSR, sLI, sLI, sLI},
		sSA: {sSR, sTW, sES, sSR},
	},
	tblOutput: {
		//      syn  fin  ack  rst
		sNO: {sSS, sTW, sES, sCL},
		sES: {sES, sFW, sES, sCL},
		sSS: {sSS, sSS, sSS, sSS},
		sSR: {sSR, sTW, sES, sCL},
		sFW: {sSS, sFW, sFW, sCL},
		sTW: {sSS, sTW, sTW, sTW},
		sCL: {sSS, sCL, sCL, sCL},
		sCW: {sSS, sTW, sCW, sCL},
		sLA: {sSS, sLA, sLA, sCL},
		sLI: {sLI, sLI, sES, sCL},
		sSA: {sSR, sTW, sES, sCL},
	},
	tblInputOnly: {
		//      syn  fin  ack  rst
		sNO: {sSR, sCL, sES, sCL},
		sES: {sES, sFW, sES, sCL},
		sSS: {sES, sSS, sSS, sCL},
		sSR: {sSR, sTW, sES, sSR},
		sFW: {sSR, sFW, sFW, sCL},
		sTW: {sSR, sTW, sTW, sCL},
		sCL: {sSR, sCL, sCL, sCL},
		sCW: {sSR, sCW, sCW, sCL},
		sLA: {sSR, sLA, sCL, sLA},
		sLI: {sSR, sLI, sLI, sLI},
		sSA: {sSR, sTW, sES, sCL},
	},
}

// timeoutsMs is the Timeouts snapshot in the unit entries store (milliseconds).
type timeoutsMs struct {
	src Timeouts
	tcp [NumStates]uint32
	udp uint32
}

func newTimeoutsMs(t Timeouts) *timeoutsMs {
	m := &timeoutsMs{src: t, udp: durMs(t.UDP)}
	for i, d := range t.TCP {
		m.tcp[i] = durMs(d)
	}
	return m
}

// maxTimeoutMs caps stored timeouts (uint32 milliseconds: about 49 days).
const maxTimeoutMs = 1<<32 - 1

// durMs converts d to whole milliseconds, rounding up (so a positive timeout never
// becomes 0) and clamping to [0, maxTimeoutMs].
func durMs(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms > maxTimeoutMs {
		return maxTimeoutMs
	}
	return uint32(ms)
}

const msNs = int64(time.Millisecond)

// Timeouts fixed by the kernel rather than by sysctl.
const (
	initialTimeoutMs = 3000  // ip_vs_conn_new: timeout before the first transition (§6.3)
	postponeMs       = 60000 // ip_vs_conn_expire: re-arm while controlling others (§6.4)
	postponeNs       = postponeMs * msNs
)

// transitionLocked applies the state transition of one packet (§7.1, §7.2) to e,
// moving d's counters on an active/inactive change, and sets e's timeout. It reports
// whether the controlling template must be marked ASSURED (TCP reaching ESTABLISHED,
// UDP output packet).
//
// Precondition: the shard lock of e is held.
func transitionLocked(e *entry, d *sched.Dest, dir Dir, tcpFlags uint8, to *timeoutsMs) (assure bool) {
	if e.proto != protoTCP {
		e.state = StateUDP
		e.timeout = to.udp
		return dir == DirOut
	}
	tbl := tblInput
	switch {
	case e.flags&FlagNoOutput != 0:
		if dir == DirOut {
			e.flags &^= FlagNoOutput
			tbl = tblOutput
		} else {
			tbl = tblInputOnly
		}
	case dir == DirOut:
		tbl = tblOutput
	}
	cur := e.state
	if int(cur) >= NumStates {
		cur = StateNone // cannot happen for a TCP entry; keeps the index in range
	}
	next := tcpStep[tbl][cur][flagIndex(tcpFlags)]
	if next != e.state {
		if d != nil {
			inactive := e.flags&FlagInactive != 0
			switch {
			case !inactive && !next.active():
				d.Deactivate()
				e.flags |= FlagInactive
			case inactive && next.active():
				d.Activate()
				e.flags &^= FlagInactive
			}
		}
		assure = next == StateEstablished
		e.state = next
	}
	e.timeout = to.tcp[next]
	return assure
}

// InputKeeps reports whether an input packet (client → VIP) with these TCP flags
// leaves a TCP connection in state s as it is: the same state, so no counter moves,
// no ASSURED step and the same timeout (§7.1). noOutput selects the INPUT-ONLY table
// (the connection has FlagNoOutput). A SYN or RST segment always reports false: a SYN
// may replace the connection (§5.2 step 5) and an RST may close it, which only the
// Table decides. A worker's flow cache uses it to serve a packet without the Table.
func InputKeeps(s State, noOutput bool, tcpFlags uint8) bool {
	if tcpFlags&(tcpSYN|tcpRST) != 0 || int(s) >= NumStates {
		return false
	}
	c := tcpClass(tcpFlags)
	if c == clsNone {
		return s == StateClose
	}
	tbl := tblInput
	if noOutput {
		tbl = tblInputOnly
	}
	return tcpNext[tbl][s][c] == s
}

// InputKeepsSet is InputKeeps for every flag byte at once, for a cache that tests a
// packet with a bit test: bit InputKeepsBit(flags) of InputKeepsSet(s, noOutput) is
// set exactly when InputKeeps(s, noOutput, flags). InputKeeps reads only the FIN,
// SYN, RST and ACK bits, which InputKeepsBit maps to a bit of 16.
func InputKeepsSet(s State, noOutput bool) uint16 {
	if int(s) >= NumStates {
		return 0
	}
	if noOutput {
		return inputKeepsSets[1][s]
	}
	return inputKeepsSets[0][s]
}

// InputKeepsBit is the bit of flags in an InputKeepsSet: FIN, SYN and RST are the
// flag byte's low three bits, ACK (0x10) becomes the fourth.
func InputKeepsBit(flags uint8) uint16 {
	return 1 << flagIndex(flags)
}

// flagIndex maps the FIN, SYN, RST and ACK bits of a flag byte to 0-15: FIN, SYN and
// RST as they are, ACK (0x10) as the fourth bit. flagsOf is its inverse.
func flagIndex(flags uint8) uint8 {
	return flags&(tcpFIN|tcpSYN|tcpRST) | flags>>1&(tcpACK>>1)
}

func flagsOf(b int) uint8 { return uint8(b&(tcpFIN|tcpSYN|tcpRST) | b&(tcpACK>>1)<<1) }

// tcpStep[table][state][flagIndex(flags)] is the next state of a TCP connection:
// tcpNext's entry for the column tcpClass picks, CLOSE for a segment of none (§7.1).
// transitionLocked takes it in one load instead of tcpClass's four tests.
var tcpStep = func() (step [numTables][NumStates][16]State) {
	for tbl := range numTables {
		for s := range State(NumStates) {
			for b := range 16 {
				step[tbl][s][b] = StateClose
				if c := tcpClass(flagsOf(b)); c != clsNone {
					step[tbl][s][b] = tcpNext[tbl][s][c]
				}
			}
		}
	}
	return step
}()

// inputKeepsSets are the InputKeepsSets of every state, without and with noOutput,
// made from InputKeeps once.
var inputKeepsSets = func() (sets [2][NumStates]uint16) {
	for s := range State(NumStates) {
		for i, noOutput := range []bool{false, true} {
			for b := range 16 {
				if InputKeeps(s, noOutput, flagsOf(b)) {
					sets[i][s] |= 1 << b
				}
			}
		}
	}
	return sets
}()
