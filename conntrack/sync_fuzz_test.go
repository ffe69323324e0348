package conntrack

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/ipvssync"
	"github.com/gvs-lb/gvs/sched"
)

// syncFuzz drives a small table with a byte string: local packets (new connections and
// packets of existing ones), records from other directors (Upsert, with random flags,
// states, real servers — some unknown — and origins), BindUnbound when an unknown real
// server appears, Walk passes and expiry; and checks the table's invariants after
// every step: the dests' counters match the entries, the unbound count matches the
// unbound entries, a Walk pass visits every live entry once, origins follow the last
// writer, conn_max holds; and, once everything expired, nothing is left.
type syncFuzz struct {
	t     *testing.T
	v     *env
	now   int64
	d     []*sched.Dest // d[3] is added late (unknown at first)
	late  bool
	owner map[Key]uint8 // the origin each live connection must have
}

var fuzzDAddrs = []string{"198.18.1.1", "198.18.1.2", "198.18.1.3", "198.18.1.4"}

func newSyncFuzz(t *testing.T) *syncFuzz {
	v := newEnv(t, func(c *Config) { c.Max = 24; c.Shards = 4; c.Tick = 100 * time.Millisecond })
	f := &syncFuzz{t: t, v: v, now: 10 * sec, owner: map[Key]uint8{}}
	for i := range 3 {
		f.d = append(f.d, v.addDest(uint32(i+1), fuzzDAddrs[i], 80, 1))
	}
	r := ipvssync.DefaultRules()
	v.tbl.SetSyncRules(&r)
	return f
}

func (f *syncFuzz) key(b byte) Key {
	k := tcpKey("198.19.0.1", 1000, "198.18.0.100", 80)
	k.CAddr[3] = 1 + b&3
	k.CPort = 1000 + uint16(b>>2&3)
	if b&0x10 != 0 {
		k.Proto = protoUDP
	}
	return k
}

func (f *syncFuzz) step(op, a, b byte) {
	tbl := f.v.tbl
	k := f.key(a)
	var c Conn
	switch op % 6 {
	case 0: // a local packet: In, or a new connection on a miss
		flags := []uint8{fSYN, fACK, fFINACK, fRST}[b&3]
		if k.Proto == protoUDP {
			flags = 0
		}
		switch tbl.In(&k, flags, f.now, &c) {
		case Hit:
			f.owner[k] = 0
		case Miss:
			d := f.d[int(b>>2)%3]
			if tbl.Insert(&k, d, 80, ipvs.DR, 0, 0, flags, f.now, &c) == Hit {
				f.owner[k] = 0
			}
		}
	case 1, 2: // a record from another director
		di := int(b & 3)
		var dest *sched.Dest
		if di < 3 || f.late {
			dest = f.d[di]
		}
		r := &Remote{Key: k, DAddr: raw(fuzzDAddrs[di]), DPort: 80, Method: ipvs.DR, Flags: FlagNoOutput,
			State: []State{StateEstablished, StateFinWait, StateTimeWait, StateClose}[b>>2&3], Timeout: time.Duration(b>>4) * time.Second}
		if k.Proto == protoUDP {
			r.State = StateUDP
		}
		if b&0x40 != 0 || r.State != StateEstablished && k.Proto == protoTCP {
			r.Flags |= FlagInactive
		}
		origin := 1 + a>>5
		var before Conn
		had := tbl.Lookup(&k, f.now, &before)
		ignored := tbl.SyncStats().IgnoredInactive
		if tbl.Upsert(r, dest, origin, f.now) && tbl.SyncStats().IgnoredInactive == ignored {
			f.owner[k] = origin
		} else if !had {
			delete(f.owner, k)
		}
	case 3: // the unknown real server appears
		if !f.late {
			f.late = true
			f.d = append(f.d, f.v.addDest(4, fuzzDAddrs[3], 80, 1))
			n := tbl.BindUnbound(raw("198.18.0.100"), 80, protoTCP, f.d[3]) + tbl.BindUnbound(raw("198.18.0.100"), 80, protoUDP, f.d[3])
			if tbl.SyncStats().Unbound != 0 {
				f.t.Fatalf("%d entries still unbound after binding %d", tbl.SyncStats().Unbound, n)
			}
		}
	case 4: // time passes
		f.now += int64(b) * int64(time.Second) / 4
		tbl.Expire(f.now, 1<<20)
	case 5: // a walk that sends some entries
		tbl.Walk(uint64(b&3)<<32, int(b>>2)+1, f.now, func(c *Conn, m *SyncMeta) bool { return c.Key.CPort&1 == 0 })
	}
	f.check()
}

func (f *syncFuzz) check() {
	t, tbl := f.t, f.v.tbl
	checkCounts(t, tbl, f.v.dests)
	if tbl.Len() > tbl.Max() {
		t.Fatalf("%d entries, conn_max %d", tbl.Len(), tbl.Max())
	}
	live, unbound, remote := 0, int64(0), int64(0)
	tbl.Each(func(c *Conn) bool {
		if c.Sync.Origin != 0 {
			remote++
		}
		if c.Expires > f.now || c.NControl > 0 {
			live++
		}
		if !c.HasDest {
			unbound++
		}
		return true
	})
	if got := tbl.SyncStats().Unbound; got != unbound {
		t.Fatalf("SyncStats.Unbound %d, %d entries without a dest", got, unbound)
	}
	if got := tbl.SyncStats().Remote; got != remote {
		t.Fatalf("SyncStats.Remote %d, %d entries with another director's origin", got, remote)
	}
	seen := map[Key]bool{}
	cur := uint64(0)
	for n := 0; ; n++ {
		if n > 1000 {
			t.Fatal("Walk did not finish")
		}
		next, done := tbl.Walk(cur, 3, f.now, func(c *Conn, m *SyncMeta) bool {
			if seen[c.Key] {
				t.Fatalf("%+v visited twice", c.Key)
			}
			seen[c.Key] = true
			if o, ok := f.owner[c.Key]; ok && o != m.Origin {
				t.Fatalf("%+v: origin %d, want %d", c.Key, m.Origin, o)
			}
			if !c.HasDest && c.DAddr == ([16]byte{}) {
				t.Fatalf("%+v: unbound without its real server's address", c.Key)
			}
			return false
		})
		if done {
			break
		}
		cur = next
	}
	if len(seen) != live {
		t.Fatalf("a Walk pass visited %d entries, %d live", len(seen), live)
	}
}

// finish lets everything expire: no entry, count, unbound entry or sync state is left.
func (f *syncFuzz) finish() {
	tbl := f.v.tbl
	f.now += int64(time.Hour)
	tbl.Expire(f.now, 1<<20)
	if st := tbl.SyncStats(); tbl.Len() != 0 || st.Unbound != 0 || st.Remote != 0 {
		f.t.Fatalf("after expiry: %d entries, %d unbound, %d remote", tbl.Len(), st.Unbound, st.Remote)
	}
	for id, d := range f.v.dests {
		if c := countsOf(d); c != (counts{}) {
			f.t.Fatalf("dest %d keeps counters %+v", id, c)
		}
	}
	for si := range tbl.shards {
		s := &tbl.shards[si]
		for i := uint32(1); i < s.nalloc; i++ {
			if e := s.at(i); e.uprev != 0 || e.unext != 0 {
				f.t.Fatalf("slot %d/%d keeps sync state %#x %#x after its entry went", si, i, e.uprev, e.unext)
			}
		}
		if len(s.sx.unbound) != 0 {
			f.t.Fatalf("shard %d remembers %d unbound real servers after expiry", si, len(s.sx.unbound))
		}
	}
}

func runSyncFuzz(t *testing.T, data []byte) {
	f := newSyncFuzz(t)
	for i := 0; i+2 < len(data) && i < 3*400; i += 3 {
		f.step(data[i], data[i+1], data[i+2])
	}
	f.finish()
}

func FuzzUpsert(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 0, 1, 5, 0, 0})
	f.Add([]byte{1, 0, 3, 0, 0, 1, 3, 0, 0, 4, 0, 8})
	f.Add([]byte{2, 1, 0x41, 1, 1, 2, 0, 1, 1, 4, 0, 255, 4, 0, 255})
	rng := rand.New(rand.NewPCG(14, 2))
	for range 8 {
		b := make([]byte, 300)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) { runSyncFuzz(t, data) })
}
