package daemon

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/header"
	"github.com/gvs-lb/gvs/internal/control"
	"github.com/gvs-lb/gvs/internal/testutil"
)

// TestAdmDeltaUnderTraffic adds, edits and deletes services of fresh addresses
// with gvs adm (deltas, and whole commits when the new real servers' MACs
// come in) while a worker forwards SYNs of fresh clients to them and a reader
// lists the table and walks the published one: under -race, nothing a
// generation or a published table holds is written once published, and every
// SYN forwarded goes to its own service's real server (VIP 198.18.a.b's is
// 198.19.a.b, whose MAC ends in b).
func TestAdmDeltaUnderTraffic(t *testing.T) {
	ta := newTestDirector(t, directorConf, nil)
	vipOf := func(k int) string { return fmt.Sprintf("198.18.%d.%d:80", 10+k/200, 1+k%200) }
	rsOf := func(k int) string { return fmt.Sprintf("198.19.%d.%d:80", 10+k/200, 1+k%200) }
	const start = 300
	var b []byte
	for k := range start {
		b = fmt.Appendf(b, "-A -t %s -s rr\n-a -t %s -r %s -g -w 1\n", vipOf(k), vipOf(k), rsOf(k))
	}
	if _, errOut, st := ta.admIn(string(b), "-R --atomic"); st != 0 {
		t.Fatalf("restore: %d %s", st, errOut)
	}

	var added atomic.Int32 // services vipOf(0..added-1) were added (some deleted since)
	added.Store(start)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var forwarded, wrong atomic.Int64
	var wrongMsg atomic.Value
	wg.Add(2)
	go func() { // traffic
		defer wg.Done()
		w := ta.d.Director().NewWorker(64)
		tmpl := tcpPkt{client: ap("198.19.128.1:1024"), vip: ap(vipOf(0)), syn: true}.frame(t)
		batch := make([]dataplane.Frame, 32)
		for i := range batch {
			batch[i] = dataplane.Frame{Buf: make([]byte, len(tmpl.Buf)), Off: tmpl.Off, Len: tmpl.Len}
		}
		out := make([]dataplane.Frame, 0, 64)
		l3 := header.EthernetHeaderLen
		for c := 0; c < 1<<20; c += len(batch) {
			select {
			case <-stop:
				return
			default:
			}
			n := int(added.Load())
			for j := range batch {
				f := &batch[j]
				fb := f.Buf[f.Off : f.Off+f.Len]
				copy(fb, tmpl.Bytes())
				cl, k := c+j, (c+j)*7919%n
				copy(fb[l3+12:l3+16], []byte{198, 19, byte(128 + cl>>16&63), byte(cl >> 8)}) // a fresh client
				binary.BigEndian.PutUint16(fb[l3+20:], uint16(1024+cl&0xff))
				copy(fb[l3+16:l3+20], []byte{198, 18, byte(10 + k/200), byte(1 + k%200)})
				ip := header.IPv4(fb[l3:])
				ip.SetChecksum(0)
				ip.SetChecksum(^header.Checksum(fb[l3:l3+header.IPv4MinHeaderLen], 0))
			}
			now := ta.d.now()
			out = w.Process(batch, now, out[:0])
			for _, f := range out {
				fb := f.Bytes()
				if mac := net.HardwareAddr(fb[:6]); mac[0] != 2 || mac[5] != fb[l3+19] {
					wrong.Add(1)
					wrongMsg.Store(fmt.Sprintf("a SYN to %v went to %s", net.IP(fb[l3+16:l3+20]), mac))
					continue
				}
				forwarded.Add(1)
			}
			w.Flush(now)
		}
	}()
	go func() { // reader
		defer wg.Done()
		for range 1 << 20 {
			select {
			case <-stop:
				return
			default:
			}
			r := ta.d.Handle(context.Background(), control.Request{Version: control.Version, Args: []string{"-Ln"}})
			if r.Status != 0 {
				wrongMsg.Store("-Ln: " + r.Stderr)
				wrong.Add(1)
			}
			rs := 0
			for s := range ta.d.pub.Load().configured.all() {
				rs += len(s.RealServers)
			}
			if rs == 0 {
				wrongMsg.Store("the published table has no real server")
				wrong.Add(1)
			}
		}
	}()

	for i := range 150 {
		k := int(added.Load())
		ta.ok("-A -t " + vipOf(k) + " -s wrr")
		ta.ok("-a -t " + vipOf(k) + " -r " + rsOf(k) + " -g -w 2")
		added.Add(1)
		old := (k * 31) % k
		switch i % 3 {
		case 0:
			ta.adm("-e -t " + vipOf(old) + " -r " + rsOf(old) + " -g -w 3") // may be gone
		case 1:
			ta.adm("-D -t " + vipOf(old))
		default:
			ta.adm("-d -t " + vipOf(old) + " -r " + rsOf(old))
			ta.adm("-a -t " + vipOf(old) + " -r " + rsOf(old) + " -g -w 1")
		}
	}
	close(stop)
	wg.Wait()
	if n := wrong.Load(); n > 0 {
		t.Fatalf("%d wrong: %v", n, wrongMsg.Load())
	}
	if forwarded.Load() == 0 {
		t.Fatal("no SYN was forwarded: the traffic did not run")
	}
	// Every real server's MAC came in (each new address's, commitStale) and the
	// Director forwards to it.
	ta.settle()
	testutil.Eventually(t, 10*time.Second, func() bool {
		for _, v := range ta.d.Director().Services() {
			for _, dst := range v.Dests {
				if !ta.d.Director().DestHasMAC(dst.ID) {
					return false
				}
			}
		}
		return true
	}, "every real server's MAC in the Director")
	t.Logf("%d SYNs forwarded during 150 rounds of changes", forwarded.Load())
}
