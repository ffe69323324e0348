package daemon

import (
	"encoding/json"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
)

// BenchmarkForwardWhileStatus is the data path's cost per packet (ACKs of 64
// established DR connections, one batch per op) alone, and while another
// goroutine builds and encodes a status snapshot every millisecond — a thousand
// times what the page's shared snapshot allows, whatever the number of clients.
// ns/op is per batch of 64.
func BenchmarkForwardWhileStatus(b *testing.B) {
	ta := newTestDirector(b, directorConf+statusServices, nil)
	const n = 64
	var syn, ack []dataplane.Frame
	for i := range n {
		c := netip.AddrPortFrom(netip.MustParseAddr("198.51.100.9"), uint16(30000+i))
		syn = append(syn, tcpPkt{client: c, vip: ap("198.18.0.100:80"), syn: true}.frame(b))
		ack = append(ack, tcpPkt{client: c, vip: ap("198.18.0.100:80"), ack: true, payload: 64}.frame(b))
	}
	now := ta.d.now()
	if out := ta.w.Process(syn, now, nil); len(out) != n {
		b.Fatalf("%d of %d SYNs forwarded", len(out), n)
	}
	ta.w.Flush(now)
	orig := make([][]byte, n)
	for i := range ack {
		orig[i] = append([]byte(nil), ack[i].Bytes()...)
	}
	var out []dataplane.Frame
	run := func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for i := range ack {
				ack[i].Off, ack[i].Len = dataplane.Headroom, len(orig[i])
				copy(ack[i].Buf[dataplane.Headroom:], orig[i])
			}
			if out = ta.w.Process(ack, now, out[:0]); len(out) != n {
				b.Fatalf("%d of %d ACKs forwarded", len(out), n)
			}
		}
		ta.w.Flush(now)
	}
	b.Run("alone", run)
	b.Run("snapshot_every_ms", func(b *testing.B) {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					json.NewEncoder(io.Discard).Encode(ta.a.statusSnapshot())
				}
			}
		})
		run(b)
		close(stop)
		wg.Wait()
	})
}
