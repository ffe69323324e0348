package daemon

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gvs-lb/gvs/internal/config"
)

// BenchmarkScrape measures one scrape of a director with 1000 services of 4 real
// servers each, with both families, gvs's only and node_exporter's only: what a
// scrape costs the controller host (never the data path, which it does not touch).
func BenchmarkScrape(b *testing.B) {
	var conf strings.Builder
	conf.WriteString(directorConf)
	for i := range 1000 {
		fmt.Fprintf(&conf, "[[service]]\naddress = \"198.18.%d.%d:80\"\nscheduler = \"rr\"\n", 1+i/250, i%250)
		for k := range 4 {
			fmt.Fprintf(&conf, "  [[service.real_server]]\n  address = \"198.19.%d.%d:80\"\n", i/60, 4*(i%60)+k+1)
		}
	}
	ta := newTestDirector(b, conf.String(), nil)
	m := ta.d.metrics
	h := m.Handler()
	for _, bc := range []struct {
		name      string
		gvs, node bool
	}{{"both", true, true}, {"gvs", true, false}, {"node_ipvs", false, true}} {
		b.Run(bc.name, func(b *testing.B) {
			d := config.Default().Director
			d.MetricsGVS, d.MetricsNodeIPVS = bc.gvs, bc.node
			m.configure(&d, "test.toml", nil)
			req := httptest.NewRequest("GET", "/metrics", nil)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				w.Body = nil
				h.ServeHTTP(discardRecorder{w}, req)
			}
		})
	}
}

// discardRecorder is a ResponseWriter that throws the body away.
type discardRecorder struct{ *httptest.ResponseRecorder }

func (discardRecorder) Write(p []byte) (int, error) { return io.Discard.Write(p) }
