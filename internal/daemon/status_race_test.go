package daemon

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/health"
	"github.com/gvs-lb/gvs/internal/status"
)

// TestStatusConcurrentClients: 100 clients poll /status.json while gvs adm adds
// and deletes a service, a health check flaps and the data path forwards
// connections (-race): every answer is a whole snapshot, a deleted service is
// simply absent, snapshots are taken once per interval of the daemon's clock
// however many clients ask, and every SYN is still forwarded.
func TestStatusConcurrentClients(t *testing.T) {
	ta := newTestAdmin(t, statusServices)
	var builds atomic.Int32
	h := status.NewHandler(status.Options{Now: ta.clock.Now, Source: func() *status.Snapshot {
		builds.Add(1)
		return ta.a.statusSnapshot()
	}})
	srv := httptest.NewServer(h)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 100}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 20 * time.Second}

	const clients, rounds, intervals = 100, 5, 4
	var answers atomic.Int32
	poll := func() {
		resp, err := client.Get(srv.URL + "/status.json")
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var s status.Snapshot
		if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &s) != nil || len(s.Services) < 2 {
			t.Errorf("answer %d: %.300s", resp.StatusCode, b)
			return
		}
		answers.Add(1)
	}
	id := ta.health.id(t, "198.18.0.6:80")
	for i := range intervals {
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for range rounds {
					poll()
				}
			})
		}
		// Meanwhile: the controller changes the table and health, the data path
		// forwards.
		if i%2 == 0 {
			ta.ok("-A -t 198.18.0.200:80 -s rr")
			ta.ok("-a -t 198.18.0.200:80 -r 198.18.0.8:80 -g")
		} else {
			ta.ok("-D -t 198.18.0.200:80")
		}
		ta.health.notify(health.Transition{ID: id, Up: i%2 == 1, Weight: health.WeightUnchanged})
		ps := syns("198.18.0.100:80", 16)
		for k := range ps {
			ps[k].client = netip.AddrPortFrom(ps[k].client.Addr(), uint16(20000+100*i+k)) // new connections each time
		}
		if out := ta.send(ps...); len(out) != 16 {
			t.Errorf("%d of 16 SYNs forwarded", len(out))
		}
		wg.Wait()
		ta.clock.Advance(status.DefaultInterval)
	}
	if n := answers.Load(); n != clients*rounds*intervals {
		t.Fatalf("%d whole answers, want %d", n, clients*rounds*intervals)
	}
	if n := builds.Load(); n < 1 || n > intervals {
		t.Fatalf("%d snapshots for %d answers over %d intervals: want at most one per interval", n, clients*rounds*intervals, intervals)
	}
}
