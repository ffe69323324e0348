package daemon

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gvs-lb/gvs/internal/config"
)

// TestMetricsConcurrentConfigure scrapes from several goroutines while a reload
// switches the families, the version and the reload state, and health and VRRP
// results arrive: run with -race. Every scrape must parse.
func TestMetricsConcurrentConfigure(t *testing.T) {
	ta := newTestAdmin(t)
	ta.ok("-A -t 198.18.0.100:80 -s rr")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.5 -g")
	m := ta.d.metrics
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	const rounds = 50
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds / 5 {
				resp, err := http.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				p := expfmt.NewTextParser(model.UTF8Validation)
				_, err = p.TextToMetricFamilies(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Errorf("a scrape during configure does not parse: %v", err)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		d := config.Default().Director
		for i := range rounds {
			d.MetricsGVS, d.MetricsNodeIPVS = i%2 == 0, i%3 != 0
			m.configure(&d, "test.toml", nil)
			m.ConfigLoaded(i%4 != 0, time.Unix(int64(i), 0))
			m.SetHealth("TCP/198.18.0.100:80", "198.18.0.5:80", i%2 == 0)
			m.SetVRRPState("VI_1", vrrpStates[i%len(vrrpStates)])
		}
	}()
	wg.Wait()
}
