package dataplane

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/ipvs"
)

// genRS returns the n-th fresh real server: a new address each time, with a MAC made
// from it, so a forwarded frame names its real server by its destination MAC.
func genRS(n int, port uint16, weight int32) ipvs.RealServer {
	a := netip.AddrFrom4([4]byte{198, 18, byte(1 + n>>8), byte(n)})
	b := a.As4()
	return ipvs.RealServer{Addr: netip.AddrPortFrom(a, port), Weight: weight, Method: ipvs.DR, MAC: ipvs.MAC{0x02, 0x77, b[0], b[1], b[2], b[3]}}
}

// patchFlow sets a frame's client address and port (IPv4, TCP, no options) with
// incremental checksum updates, so one gopacket-built frame serves every flow.
func patchFlow(b []byte, src [4]byte, sport uint16) {
	ip := header.IPv4(b[header.EthernetHeaderLen:])
	old := ip.SourceAddress()
	ip.SetSourceAddressWithChecksumUpdate(src)
	tcp := b[header.EthernetHeaderLen+header.IPv4MinHeaderLen:]
	hc := binary.BigEndian.Uint16(tcp[16:])
	hc = header.ChecksumUpdateBytes(hc, old[:], src[:])
	hc = header.ChecksumUpdate16(hc, binary.BigEndian.Uint16(tcp[0:]), sport)
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[16:], hc)
}

// TestGenerationsUnderTraffic is the joint that used to crash: workers schedule new
// connections (and carry packets of established ones, made by any worker) while Apply
// publishes thousands of generations that add real servers with fresh addresses,
// delete and re-weight them, switch schedulers, swap the list for a sorry server and
// back, and add and remove a second service. Nothing may panic; every SYN forwarded
// goes to a real server of the generation its batch ran on, and every
// other packet to its connection's real server.
func TestGenerationsUnderTraffic(t *testing.T) {
	gens := 3000
	if testing.Short() || raceEnabled {
		gens = 800
	}
	o := testOptions()
	o.ConnMax = 1 << 16
	o.ConnShards = 16
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	schedulers := []string{"wlc", "rr", "wrr", "lc", "sed", "nq", "sh", "dh", "mh", "lblc", "lblcr", "twos", "fo", "ovf"}
	rng := rand.New(rand.NewPCG(1, 2))
	fresh := 0
	newRS := func(port uint16) ipvs.RealServer {
		fresh++
		return genRS(fresh, port, rng.Int32N(4))
	}
	web := ipvs.Service{Key: ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(dtVIP, 80)), Scheduler: "wlc"}
	for range 3 {
		web.RealServers = append(web.RealServers, newRS(80))
	}
	tls := ipvs.Service{Key: ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(dtVIP, 443)), Scheduler: "rr"}
	var sorry []ipvs.RealServer // the list a sorry server replaced, while it does
	withTLS := false

	// hist[g][port] is the set of real servers (by MAC) of generation g.
	type gen map[uint16]map[ipvs.MAC]bool
	var (
		histMu sync.Mutex
		hist   []gen
	)
	record := func(svcs []ipvs.Service) {
		g := gen{}
		for _, s := range svcs {
			m := map[ipvs.MAC]bool{}
			for _, r := range s.RealServers {
				m[r.MAC] = true
			}
			g[s.Addr.Port()] = m
		}
		histMu.Lock()
		hist = append(hist, g)
		histMu.Unlock()
	}
	apply := func() {
		svcs := []ipvs.Service{web}
		if withTLS {
			svcs = append(svcs, tls)
		}
		// Record before publishing: a worker may see the generation before Apply returns.
		record(svcs)
		if err := d.Apply(svcs); err != nil {
			t.Fatalf("generation %d: %v", len(hist)-1, err)
		}
	}
	apply()

	const workers = 3
	var (
		flowsMu sync.Mutex
		flows   = map[[6]byte]ipvs.MAC{} // client address and port → real server of its SYN
		order   [][6]byte
		done    atomic.Bool
		wg      sync.WaitGroup
		synFwd  atomic.Int64
		ackFwd  atomic.Int64
	)
	for wi := range workers {
		w := d.NewWorker(16)
		synT := map[uint16][]byte{
			80:  dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, syn: true}.frame(t),
			443: dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 443, syn: true}.frame(t),
		}
		ackT := map[uint16][]byte{
			80:  dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 80, ack: true}.frame(t),
			443: dtPkt{src: dtClient, dst: dtVIP, sport: 1, dport: 443, ack: true}.frame(t),
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(wi), 7))
			in := make([]Frame, 16)
			for i := range in {
				in[i] = inFrame(make([]byte, len(synT[80])))
			}
			var out []Frame
			next := uint32(0)
			now := int64(0)
			for !done.Load() {
				for i := range in {
					f := &in[i]
					f.Off, f.Len = Headroom, len(synT[80])
					port := uint16(80)
					if r.IntN(4) == 0 {
						port = 443
					}
					var src [4]byte
					var sport uint16
					tmpl := synT[port]
					flowsMu.Lock()
					if i%4 == 3 && len(order) > 0 {
						// A packet of an established connection, possibly another worker's.
						recent := order[max(0, len(order)-256):] // younger than the SYN_RECV timeout
						k := recent[r.IntN(len(recent))]
						src, sport = [4]byte(k[:4]), binary.BigEndian.Uint16(k[4:])
						tmpl = ackT[80]
						if k[2]&0x80 != 0 { // the client range of port 443's flows
							tmpl = ackT[443]
						}
					} else {
						next++
						src = [4]byte{198, 19, byte(wi<<5) | byte(next>>16)&0x1f, byte(next >> 8)}
						if port == 443 {
							src[2] |= 0x80
						}
						sport = uint16(next)
					}
					flowsMu.Unlock()
					copy(f.Buf[Headroom:], tmpl)
					patchFlow(f.Bytes(), src, sport)
				}
				now += sec / 10
				out = w.Process(in, now, out[:0])
				g := int64(w.Generation()) - 1 // hist[0] is the first Apply's generation
				for i := range out {
					b := out[i].Bytes()
					if len(b) < header.EthernetHeaderLen+header.IPv4MinHeaderLen+20 || header.IPv4(b[header.EthernetHeaderLen:]).Protocol() != header.IPProtoTCP {
						continue // an ICMP error the director generated
					}
					mac := ipvs.MAC(b[0:6])
					var k [6]byte
					copy(k[:4], b[header.EthernetHeaderLen+12:header.EthernetHeaderLen+16])
					copy(k[4:], b[header.EthernetHeaderLen+header.IPv4MinHeaderLen:header.EthernetHeaderLen+header.IPv4MinHeaderLen+2])
					dport := binary.BigEndian.Uint16(b[header.EthernetHeaderLen+header.IPv4MinHeaderLen+2:])
					syn := b[header.EthernetHeaderLen+header.IPv4MinHeaderLen+13]&header.TCPFlagSYN != 0
					if syn {
						histMu.Lock()
						ok := g >= 0 && g < int64(len(hist)) && hist[g][dport][mac]
						histMu.Unlock()
						if !ok {
							t.Errorf("SYN of %v to port %d went to %v, not a real server of generation %d, which scheduled it", k, dport, mac, g+1)
							done.Store(true)
							return
						}
						flowsMu.Lock()
						flows[k] = mac
						order = append(order, k)
						flowsMu.Unlock()
						synFwd.Add(1)
						continue
					}
					flowsMu.Lock()
					want, seen := flows[k]
					flowsMu.Unlock()
					if !seen || want != mac {
						t.Errorf("packet of connection %v went to %v, its SYN to %v (known %v)", k, mac, want, seen)
						done.Store(true)
						return
					}
					ackFwd.Add(1)
				}
			}
		}()
	}

	for g := 1; g < gens && !done.Load(); g++ {
		switch op := rng.IntN(8); {
		case op == 0 && sorry == nil:
			// Every real server failed: the sorry server takes the list.
			sorry, web.RealServers = web.RealServers, []ipvs.RealServer{newRS(80)}
		case op == 0:
			web.RealServers, sorry = append(sorry, newRS(80)), nil
		case op == 1:
			web.Scheduler = schedulers[rng.IntN(len(schedulers))]
		case op == 2:
			withTLS = !withTLS
			if withTLS {
				tls.RealServers = []ipvs.RealServer{newRS(443), newRS(443)}
			}
		case op == 3 && len(web.RealServers) > 1:
			i := rng.IntN(len(web.RealServers))
			web.RealServers = append(web.RealServers[:i:i], web.RealServers[i+1:]...)
		case op == 4 && len(web.RealServers) > 0:
			rs := append([]ipvs.RealServer(nil), web.RealServers...)
			rs[rng.IntN(len(rs))].Weight = rng.Int32N(5)
			web.RealServers = rs
		default:
			if len(web.RealServers) < 12 {
				web.RealServers = append(web.RealServers[:len(web.RealServers):len(web.RealServers)], newRS(80))
			}
		}
		apply()
	}
	done.Store(true)
	wg.Wait()
	if synFwd.Load() == 0 || ackFwd.Load() == 0 {
		t.Fatalf("the workers forwarded %d SYNs and %d packets of established connections; the test exercised nothing", synFwd.Load(), ackFwd.Load())
	}
	tot := d.Totals()
	for r, n := range tot.Counters.Reasons {
		if n > 0 {
			t.Logf("dropped %s: %d", Reason(r), n)
		}
	}
	t.Logf("%d generations, %d SYNs and %d established packets forwarded, %d fresh real servers", len(hist), synFwd.Load(), ackFwd.Load(), fresh)
}

// TestWorkerMovesToNewerGeneration checks the one place a worker may meet a dest its
// generation does not know — a connection another worker made on a newer generation —
// and that it then moves to the newest generation with its stats sized for it.
func TestWorkerMovesToNewerGeneration(t *testing.T) {
	h := newHarness(t, testOptions(), rrService(ipvs.DR, 80))
	old := h.d.snap.Load()
	h.w.sync(old)
	svc := rrService(ipvs.DR, 80)
	svc.RealServers = append(svc.RealServers, genRS(1, 80, 1))
	if err := h.d.Apply([]ipvs.Service{svc}); err != nil {
		t.Fatal(err)
	}
	newest := h.d.snap.Load()
	id := uint32(len(newest.dests) - 1)
	if int(id) < len(old.dests) {
		t.Fatalf("the new real server's id %d is known to the previous generation (%d dests)", id, len(old.dests))
	}
	s, in := h.w.destInfo(id)
	if s != newest || in == nil || in.mac != genRS(1, 80, 1).MAC {
		t.Fatalf("destInfo on the previous generation: %p (newest %p), %+v", s, newest, in)
	}
	if len(h.w.dstats) < len(newest.dests) || len(h.w.sstats) < int(newest.nsvc) {
		t.Fatalf("stats not sized for the newest generation: %d dests, %d services", len(h.w.dstats), len(h.w.sstats))
	}
	if _, in := h.w.destInfo(id + 100); in != nil {
		t.Fatal("an id no generation handed out resolved")
	}
}

// TestApplyKeepsUnchangedPools checks that a service whose list and scheduler did not
// change keeps its Pool (its scheduler state continues as the kernel's would), and a
// changed one gets a copy while the published generation keeps the original.
func TestApplyKeepsUnchangedPools(t *testing.T) {
	a := rrService(ipvs.DR, 80)
	b := rrService(ipvs.DR, 80)
	b.Key = ipvs.AddrKey(ipvs.TCP, netip.AddrPortFrom(dtVIP, 443))
	h := newHarness(t, testOptions(), a, b)
	g1 := h.d.snap.Load()
	pa, pb := g1.bySvc.get(&svcKey{proto: 6, addr: dtVIP.As16(), port: 80}).pool, g1.bySvc.get(&svcKey{proto: 6, addr: dtVIP.As16(), port: 443}).pool
	b.RealServers = append(b.RealServers, genRS(1, 80, 1))
	if err := h.d.Apply([]ipvs.Service{a, b}); err != nil {
		t.Fatal(err)
	}
	g2 := h.d.snap.Load()
	if g2.bySvc.get(&svcKey{proto: 6, addr: dtVIP.As16(), port: 80}).pool != pa {
		t.Error("the unchanged service got a new pool")
	}
	nb := g2.bySvc.get(&svcKey{proto: 6, addr: dtVIP.As16(), port: 443}).pool
	if nb == pb || len(pb.Dests()) != 2 || len(nb.Dests()) != 3 {
		t.Errorf("changed service: same pool %v, lists %d (published) and %d (next)", nb == pb, len(pb.Dests()), len(nb.Dests()))
	}
}
