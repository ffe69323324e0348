package daemon

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/status"
)

// BenchmarkStatus measures the status page's JSON at 1000 services of 4 real
// servers: "snapshot" is one snapshot built and encoded (at most once a second,
// whatever the number of clients), "cached" one request served from the shared
// snapshot (what every other client within the second costs).
func BenchmarkStatus(b *testing.B) {
	var conf strings.Builder
	conf.WriteString(directorConf)
	for i := range 1000 {
		fmt.Fprintf(&conf, "[[service]]\naddress = \"198.18.%d.%d:80\"\nscheduler = \"rr\"\n", 1+i/250, i%250)
		for k := range 4 {
			fmt.Fprintf(&conf, "  [[service.real_server]]\n  address = \"198.19.%d.%d:80\"\n", i/60, 4*(i%60)+k+1)
		}
	}
	ta := newTestDirector(b, conf.String(), nil)
	var now time.Time
	b.Run("snapshot", func(b *testing.B) {
		h := status.NewHandler(status.Options{Source: ta.a.statusSnapshot, Interval: time.Nanosecond, Now: func() time.Time { now = now.Add(time.Second); return now }})
		b.ReportAllocs()
		size := 0
		for b.Loop() {
			size = len(h.Body())
		}
		b.ReportMetric(float64(size), "bytes/snapshot")
	})
	b.Run("cached", func(b *testing.B) {
		h := status.NewHandler(status.Options{Source: ta.a.statusSnapshot, Now: func() time.Time { return now }})
		req := httptest.NewRequest("GET", "/status.json", nil)
		h.Body() // taken before: every request below is served from it
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			w.Body = nil
			h.ServeHTTP(discardRecorder{w}, req)
		}
	})
}
