package conntrack

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/cespare/xxhash/v2"
	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/sched"
)

// specRows is a verbatim excerpt of docs/ipvs-semantics.md §7.1 (a few rows of each table), so
// the transcription in state.go is checked even where the spec file is not at hand.
const specRows = `
INPUT (NAT, client -> LB):
| cur | syn | fin | ack | rst |
|---|---|---|---|---|
| NONE | SR | CL | ES | CL |
| SR | SR | TW | ES | SR |
| LA | SR | LA | CL | LA |
| SA | SR | TW | ES | SR |

OUTPUT (NAT, server -> client):
| cur | syn | fin | ack | rst |
|---|---|---|---|---|
| SS | SS | SS | SS | SS |
| TW | SS | TW | TW | TW |
| LI | LI | LI | ES | CL |
| SA | SR | TW | ES | CL |

INPUT-ONLY (DR/TUN/LOCALNODE):
| cur | syn | fin | ack | rst |
|---|---|---|---|---|
| ES | ES | FW | ES | CL |
| FW | SR | FW | FW | CL |
| SA | SR | TW | ES | CL |
`

var abbrev = map[string]State{
	"NONE": sNO, "ES": sES, "SS": sSS, "SR": sSR, "FW": sFW, "TW": sTW,
	"CL": sCL, "CW": sCW, "LA": sLA, "LI": sLI, "SA": sSA,
}

// parseSpecTables reads the markdown tables that follow the INPUT, OUTPUT and
// INPUT-ONLY headings of §7.1 and returns their rows by table.
func parseSpecTables(t *testing.T, text string) map[int]map[State][numClasses]State {
	t.Helper()
	out := map[int]map[State][numClasses]State{}
	tbl := -1
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "INPUT-ONLY ("):
			tbl = tblInputOnly
			continue
		case strings.HasPrefix(line, "INPUT ("):
			tbl = tblInput
			continue
		case strings.HasPrefix(line, "OUTPUT ("):
			tbl = tblOutput
			continue
		case strings.HasPrefix(line, `"secure_tcp"`):
			tbl = -1
		}
		if tbl < 0 || !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 5 {
			continue
		}
		cur, ok := abbrev[strings.TrimSpace(cells[0])]
		if !ok {
			continue // header or separator
		}
		var row [numClasses]State
		for c := range numClasses {
			st, ok := abbrev[strings.TrimSpace(cells[c+1])]
			if !ok {
				t.Fatalf("bad cell %q in %q", cells[c+1], line)
			}
			row[c] = st
		}
		if out[tbl] == nil {
			out[tbl] = map[State][numClasses]State{}
		}
		out[tbl][cur] = row
	}
	return out
}

func checkAgainst(t *testing.T, spec map[int]map[State][numClasses]State) int {
	t.Helper()
	n := 0
	for tbl, rows := range spec {
		for cur, row := range rows {
			if tcpNext[tbl][cur] != row {
				t.Errorf("table %d row %v: have %v, spec %v", tbl, cur, tcpNext[tbl][cur], row)
			}
			n++
		}
	}
	return n
}

func TestTransitionTablesFromSpecExcerpt(t *testing.T) {
	if n := checkAgainst(t, parseSpecTables(t, specRows)); n != 11 {
		t.Fatalf("parsed %d rows, want 11", n)
	}
}

// TestTransitionTablesFromSpec compares every row with docs/ipvs-semantics.md itself.
func TestTransitionTablesFromSpec(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "ipvs-semantics.md"))
	if err != nil {
		t.Skipf("docs/ipvs-semantics.md not readable: %v", err)
	}
	text := string(b)
	i := strings.Index(text, "### 7.1 TCP")
	j := strings.Index(text, "### 7.2 UDP")
	if i < 0 || j < i {
		t.Fatal("§7.1 not found")
	}
	if n := checkAgainst(t, parseSpecTables(t, text[i:j])); n != 3*NumStates {
		t.Fatalf("parsed %d rows, want %d", n, 3*NumStates)
	}
}

func TestTCPClass(t *testing.T) {
	tests := []struct {
		flags uint8
		want  int
	}{
		{tcpRST | tcpSYN | tcpFIN | tcpACK, clsRST},
		{tcpSYN | tcpFIN | tcpACK, clsSYN},
		{tcpSYN | tcpACK, clsSYN},
		{tcpFIN | tcpACK, clsFIN},
		{tcpACK | 0x08, clsACK},
		{0x08, clsNone}, // PSH alone
		{0, clsNone},
	}
	for _, tc := range tests {
		if got := tcpClass(tc.flags); got != tc.want {
			t.Errorf("tcpClass(%#x) = %d, want %d", tc.flags, got, tc.want)
		}
	}
}

func TestNames(t *testing.T) {
	want := "NONE ESTABLISHED SYN_SENT SYN_RECV FIN_WAIT TIME_WAIT CLOSE CLOSE_WAIT LAST_ACK LISTEN SYNACK UDP ERR!"
	var got []string
	for s := StateNone; s <= StateUDP+1; s++ {
		got = append(got, s.String())
	}
	if g := strings.Join(got, " "); g != want {
		t.Errorf("states: %s", g)
	}
	got = got[:0]
	for m := ipvs.NAT; m <= ipvs.Bypass; m++ {
		got = append(got, m.Listing())
	}
	if g := strings.Join(got, " "); g != "Masq Local Tunnel Route Bypass" {
		t.Errorf("methods: %s", g)
	}
	if !StateEstablished.active() || !StateSynAck.active() || StateTimeWait.active() || StateUDP.active() {
		t.Error("active states")
	}
}

func TestDefaults(t *testing.T) {
	to := DefaultTimeouts()
	secs := []int{2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120}
	for i, s := range secs {
		if to.TCP[i] != time.Duration(s)*time.Second {
			t.Errorf("%v: %v", State(i), to.TCP[i])
		}
	}
	if to.UDP != 300*time.Second {
		t.Error("udp")
	}
	if c := DefaultConfig(10); c.ConnReuseMode != 1 || c.ExpireNodestConn || c.ExpireQuiescentTemplate {
		t.Errorf("%+v", c)
	}
}

// TestEntrySize guards the memory budget: 88 bytes per entry.
func TestEntrySize(t *testing.T) {
	if s := unsafe.Sizeof(entry{}); s != 88 {
		t.Fatalf("entry is %d bytes, want 88", s)
	}
}

// TestInitEntrySetsEveryField holds initEntry, which writes an entry field by field,
// to the whole entry built from its arguments: an entry of other bytes everywhere (a
// slab entry freed and taken again) comes out equal to it, whatever field a change
// adds to the entry.
func TestInitEntrySetsEveryField(t *testing.T) {
	tbl, err := New(DefaultConfig(16))
	if err != nil {
		t.Fatal(err)
	}
	d := sched.NewDest(5, netip.MustParseAddr("198.18.2.5"), 8080, 1, 0, 0)
	for _, v6 := range []bool{false, true} {
		for _, proto := range []uint8{protoTCP, protoUDP} {
			k := Key{Proto: proto, IPv6: v6, CPort: 40000, VPort: 80}
			copy(k.CAddr[:], []byte{198, 18, 0, 1})
			copy(k.VAddr[:], []byte{198, 18, 1, 1})
			for _, dest := range []*sched.Dest{nil, d} {
				var e entry
				b := unsafe.Slice((*byte)(unsafe.Pointer(&e)), unsafe.Sizeof(e))
				for i := range b {
					b[i] = 0xa5
				}
				tbl.initEntry(&e, &k, dest, 8080, ipvs.DR, FlagNoOutput, 9)
				want := entry{caddr: k.CAddr, vaddr: k.VAddr, cport: k.CPort, vport: k.VPort, dport: 8080,
					proto: proto, control: 9, timeout: initialTimeoutMs,
					flags: FlagNoOutput | fLive | Flags(ipvs.DR&7)<<methodShift, wslot: listNone}
				if v6 {
					want.flags |= fIPv6
				}
				if dest != nil {
					want.flags |= fHasDest
					want.dest = dest.ID()
				}
				if proto != protoTCP {
					want.state = StateUDP
				}
				if e != want {
					t.Fatalf("v6 %v proto %d dest %v: initEntry left\n%+v, want\n%+v", v6, proto, dest != nil, e, want)
				}
			}
		}
	}
}

// hashRef is the record hash hashes, built and passed to xxhash.Sum64 (tests).
func hashRef(seed uint64, proto uint8, ipv6 bool, caddr *[16]byte, cport uint16) uint64 {
	var b [hashLen]byte
	binary.LittleEndian.PutUint64(b[0:8], seed)
	b[8] = proto
	if ipv6 {
		b[9] = 1
	}
	binary.BigEndian.PutUint16(b[10:12], cport)
	copy(b[12:], caddr[:])
	if !ipv6 {
		return xxhash.Sum64(b[:hashLen4])
	}
	return xxhash.Sum64(b[:])
}

// TestHashIsXXHash: the inlined hash equals xxhash.Sum64 of the documented record.
func TestHashIsXXHash(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		seed := r.Uint64()
		tbl := &Table{h0: xxLane(xxPrime5+hashLen, seed), h0v4: xxLane(xxPrime5+hashLen4, seed)}
		var a [16]byte
		for j := range a {
			a[j] = byte(r.Uint32())
		}
		proto, v6, port := uint8(r.Uint32()), r.IntN(2) == 1, uint16(r.Uint32())
		if got, want := tbl.hash(proto, v6, &a, port), hashRef(seed, proto, v6, &a, port); got != want {
			t.Fatalf("hash %#x, xxhash %#x", got, want)
		}
	}
}

func TestShardSize(t *testing.T) {
	if s := unsafe.Sizeof(shard{}); s != 128 {
		t.Fatalf("shard is %d bytes, want 128", s)
	}
}

// TestInputKeeps checks InputKeeps against the transition itself: for every TCP
// state, both input tables and every flag byte, it reports true exactly when the
// input transition leaves the state as it is and the segment has neither SYN nor RST.
func TestInputKeeps(t *testing.T) {
	to := newTimeoutsMs(DefaultTimeouts())
	for s := StateNone; int(s) < NumStates; s++ {
		for _, noOut := range []bool{false, true} {
			for fl := 0; fl < 256; fl++ {
				e := entry{proto: protoTCP, state: s, flags: FlagInactive}
				if noOut {
					e.flags |= FlagNoOutput
				}
				transitionLocked(&e, nil, DirIn, uint8(fl), to)
				want := e.state == s && fl&(tcpSYN|tcpRST) == 0
				if got := InputKeeps(s, noOut, uint8(fl)); got != want {
					t.Fatalf("InputKeeps(%v, noOutput %v, flags %#x) = %v, transition goes to %v", s, noOut, fl, got, e.state)
				}
			}
		}
	}
	if InputKeeps(StateUDP, false, tcpACK) || InputKeeps(State(200), true, tcpACK) {
		t.Fatal("InputKeeps is true for a state outside the TCP tables")
	}
}

// TestInputKeepsSet holds the flow cache's bit test to InputKeeps: for every state
// (and states outside the tables), both input tables and every flag byte, the bit of
// the flags in the state's set is InputKeeps's answer.
func TestInputKeepsSet(t *testing.T) {
	for s := range State(255) {
		for _, noOut := range []bool{false, true} {
			set := InputKeepsSet(s, noOut)
			for fl := range 256 {
				if got, want := set&InputKeepsBit(uint8(fl)) != 0, InputKeeps(s, noOut, uint8(fl)); got != want {
					t.Fatalf("state %v, noOutput %v, flags %#x: the set's bit says %v, InputKeeps %v", s, noOut, fl, got, want)
				}
			}
		}
	}
}

// TestTCPStep holds transitionLocked's one-load table to the rule it replaces: for
// every table, state and flag byte, tcpNext's entry for tcpClass's column, or CLOSE
// for a segment of no class (§7.1).
func TestTCPStep(t *testing.T) {
	for tbl := range numTables {
		for s := range State(NumStates) {
			for fl := range 256 {
				want := StateClose
				if c := tcpClass(uint8(fl)); c != clsNone {
					want = tcpNext[tbl][s][c]
				}
				if got := tcpStep[tbl][s][flagIndex(uint8(fl))]; got != want {
					t.Fatalf("table %d, state %v, flags %#x: tcpStep gives %v, tcpNext %v", tbl, s, fl, got, want)
				}
			}
		}
	}
}
