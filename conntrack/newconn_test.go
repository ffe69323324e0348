package conntrack

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/sched"
)

// TestBindFirstIsTransition holds bindFirst, which writes out a new entry's first
// transition, to what it stands for: initEntry, then transitionLocked on input with
// no counter to move, then the bind of ip_vs_conn_new (INACTIVE) and, for a TCP
// state that is active, the move to activeconns. For TCP and UDP, NAT and DR (with
// and without NOOUTPUT), every TCP flag byte and with and without a dest, the entry,
// the ASSURED answer and the dest's counters come out the same.
func TestBindFirstIsTransition(t *testing.T) {
	tbl, err := New(DefaultConfig(16))
	if err != nil {
		t.Fatal(err)
	}
	to := tbl.timeouts.Load()
	addr := netip.MustParseAddr("198.18.2.5")
	for _, proto := range []uint8{protoTCP, protoUDP} {
		k := Key{Proto: proto, CPort: 40000, VPort: 80}
		copy(k.CAddr[:], []byte{198, 18, 0, 1})
		copy(k.VAddr[:], []byte{198, 18, 1, 1})
		for _, method := range []ipvs.Method{ipvs.NAT, ipvs.DR} {
			for _, withDest := range []bool{false, true} {
				for fl := range 256 {
					var got, want *sched.Dest
					if withDest {
						got = sched.NewDest(5, addr, 8080, 1, 0, 0)
						want = sched.NewDest(5, addr, 8080, 1, 0, 0)
					}
					flags := newConnFlags(&k, got, method, 0)
					var e, w entry
					tbl.initEntry(&e, &k, got, 8080, method, flags, 0)
					tbl.initEntry(&w, &k, want, 8080, method, flags, 0)
					gotAssure := bindFirst(&e, got, uint8(fl), to)
					wantAssure := transitionLocked(&w, nil, DirIn, uint8(fl), to)
					if want != nil {
						want.Bind(false)
						if w.proto == protoTCP && w.state.active() {
							want.Activate()
							w.flags &^= FlagInactive
						}
					}
					if e != w || gotAssure != wantAssure {
						t.Fatalf("proto %d method %v dest %v flags %#x: bindFirst left\n%+v (assure %v), want\n%+v (assure %v)",
							proto, method, withDest, fl, e, gotAssure, w, wantAssure)
					}
					if withDest && (got.ActiveConns() != want.ActiveConns() || got.InactConns() != want.InactConns() || got.Overloaded() != want.Overloaded()) {
						t.Fatalf("proto %d method %v flags %#x: dest counts %d/%d, want %d/%d",
							proto, method, fl, got.ActiveConns(), got.InactConns(), want.ActiveConns(), want.InactConns())
					}
				}
			}
		}
	}
}

// TestTargetTickIsCeilDiv holds targetTick, which divides a positive expiry by
// tickDiv's multiplication, to the division it replaces: ceilDiv, clamped to the
// shard's wheel, for ticks of 1 ns to an hour, wheels whose next tick is negative,
// zero or positive, and expiries at and around tick boundaries, zero, negative ones
// and the extremes of int64 (at math.MinInt64, where ceilDiv's negation overflows,
// to the true ceiling: no expiry is that early, now + a timeout).
func TestTargetTickIsCeilDiv(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 5))
	for _, tick := range []time.Duration{1, 3, 1000, time.Millisecond, 100 * time.Millisecond, 7 * time.Second, time.Hour} {
		cfg := DefaultConfig(16)
		cfg.Tick = tick
		tbl, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		n := int64(tick)
		s := &tbl.shards[0]
		for _, cur := range []int64{-1 << 40, -5, 0, 1, 1000, 1 << 40} {
			s.cur = cur
			exps := []int64{0, 1, -1, math.MaxInt64, math.MinInt64, math.MinInt64 + 1, math.MaxInt64 - 1}
			for _, q := range []int64{cur - 3, cur - 1, cur, cur + 1, cur + 500, cur + wheelSlots - 1, cur + wheelSlots, cur + 1<<20} {
				if q > math.MaxInt64/n || q < math.MinInt64/n {
					continue
				}
				exps = append(exps, q*n-1, q*n, q*n+1)
			}
			for range 200 {
				exps = append(exps, int64(rng.Uint64()), (cur+rng.Int64N(2*wheelSlots)-wheelSlots/2)*n+rng.Int64N(n))
			}
			for _, exp := range exps {
				tk := ceilDiv(exp, n)
				if exp == math.MinInt64 {
					tk = math.MinInt64 / n // ceilDiv negates exp, which overflows here
				}
				want := min(max(tk, cur), cur+wheelSlots-1)
				if got := tbl.targetTick(s, exp); got != want {
					t.Fatalf("tick %v cur %d exp %d: targetTick %d, want %d", tick, cur, exp, got, want)
				}
			}
		}
	}
}

// TestSlabRoomBound holds slabRoomLocked, which answers without dividing while a
// shard's slab is below four chunks, to the bound it tests: a free slot, or fewer
// never-used slots than twice the shard's share of Max (at least four chunks).
func TestSlabRoomBound(t *testing.T) {
	for _, size := range []int{16, 1000, 1 << 16, 1 << 20} {
		tbl, err := New(DefaultConfig(size))
		if err != nil {
			t.Fatal(err)
		}
		s := &tbl.shards[0]
		chunk := int64(s.chunkMask + 1)
		n := int64(len(tbl.shards))
		for _, m := range []int64{1, int64(size) / 2, int64(size)} {
			tbl.max.Store(m)
			limit := max(2*((m+n-1)/n), 4*chunk)
			for _, free := range []uint32{0, 3} {
				for _, na := range []int64{1, 4*chunk - 1, 4 * chunk, 4*chunk + 1, limit - 1, limit, limit + 1} {
					if na < 1 || na >= 1<<32 {
						continue
					}
					s.free, s.nalloc = free, uint32(na)
					want := free != 0 || na < limit
					if got := tbl.slabRoomLocked(s); got != want {
						t.Fatalf("max %d chunk %d free %d nalloc %d: slabRoomLocked %v, want %v", m, chunk, free, na, got, want)
					}
				}
			}
		}
		s.free, s.nalloc = 0, 1
	}
}
