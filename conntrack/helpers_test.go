package conntrack

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/sched"
)

const sec = int64(time.Second)

// TCP flag combinations used by the traces.
const (
	fSYN    = tcpSYN
	fSYNACK = tcpSYN | tcpACK
	fACK    = tcpACK
	fPSHACK = tcpACK | 0x08
	fFINACK = tcpFIN | tcpACK
	fRST    = tcpRST
	fRSTACK = tcpRST | tcpACK
	fNone   = 0
)

// env is a table with its dests in a Pool, so tests can edit and delete them the way
// the Director does.
type env struct {
	t     *testing.T
	tbl   *Table
	pool  *sched.Pool
	dests map[uint32]*sched.Dest
}

func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	v := &env{t: t, pool: sched.NewPool(nil), dests: map[uint32]*sched.Dest{}}
	cfg := DefaultConfig(1024)
	cfg.Shards = 16
	cfg.UnconfirmedMax = UnconfirmedOff // tests of the budget turn it on
	cfg.Tick = time.Second
	if mod != nil {
		mod(&cfg)
	}
	tbl, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v.tbl = tbl
	return v
}

func (v *env) addDest(id uint32, addr string, port uint16, weight int32) *sched.Dest {
	v.t.Helper()
	d := sched.NewDest(id, netip.MustParseAddr(addr), port, weight, 0, 0)
	if err := v.pool.Add(d); err != nil {
		v.t.Fatal(err)
	}
	v.dests[id] = d
	return d
}

func (v *env) delDest(d *sched.Dest) {
	v.t.Helper()
	if _, err := v.pool.Delete(d.Addr(), d.Port()); err != nil {
		v.t.Fatal(err)
	}
}

func (v *env) setWeight(d *sched.Dest, w int32) {
	v.t.Helper()
	if err := v.pool.Edit(d.Addr(), d.Port(), w, 0, 0); err != nil {
		v.t.Fatal(err)
	}
}

// raw returns an address as Key stores it.
func raw(s string) (b [16]byte) {
	a := netip.MustParseAddr(s)
	if a.Is4() {
		a4 := a.As4()
		copy(b[:], a4[:])
		return b
	}
	return a.As16()
}

func key(proto uint8, c string, cport uint16, vip string, vport uint16) Key {
	return Key{Proto: proto, IPv6: !netip.MustParseAddr(c).Is4(), CAddr: raw(c), CPort: cport, VAddr: raw(vip), VPort: vport}
}

func tcpKey(c string, cport uint16, vip string, vport uint16) Key {
	return key(protoTCP, c, cport, vip, vport)
}

func udpKey(c string, cport uint16, vip string, vport uint16) Key {
	return key(protoUDP, c, cport, vip, vport)
}

type counts struct{ act, inact, pers int32 }

func countsOf(d *sched.Dest) counts {
	return counts{d.ActiveConns(), d.InactConns(), d.PersistConns()}
}

// recount recomputes every dest's counters from the entries (Walk).
func recount(tbl *Table) map[uint32]counts {
	m := map[uint32]counts{}
	tbl.Each(func(c *Conn) bool {
		if !c.HasDest {
			return true
		}
		x := m[c.Dest]
		switch {
		case c.Flags&FlagTemplate != 0:
			x.pers++
		case c.Flags&FlagInactive != 0:
			x.inact++
		default:
			x.act++
		}
		m[c.Dest] = x
		return true
	})
	return m
}

// checkCounts asserts that every dest's counters match a recount and are not negative.
func checkCounts(t *testing.T, tbl *Table, dests map[uint32]*sched.Dest) {
	t.Helper()
	rc := recount(tbl)
	for id, d := range dests {
		got := countsOf(d)
		if got.act < 0 || got.inact < 0 || got.pers < 0 {
			t.Fatalf("dest %d: negative counters %+v", id, got)
		}
		if got != rc[id] {
			t.Fatalf("dest %d: counters %+v, recount %+v", id, got, rc[id])
		}
	}
}

// walkLen counts the entries Walk sees.
func walkLen(tbl *Table) int {
	n := 0
	tbl.Each(func(*Conn) bool { n++; return true })
	return n
}
