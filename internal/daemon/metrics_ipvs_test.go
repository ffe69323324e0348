package daemon

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gvs-lb/gvs/internal/config"
)

// nodeExporterIPVS is node_exporter's ipvs collector as its documentation and
// source describe it (collector/ipvs_linux.go, checked 2026-12-06): every family,
// its type and its label names. Dashboards built on node_exporter query exactly
// these.
var nodeExporterIPVS = []struct {
	name   string
	typ    dto.MetricType
	labels []string
}{
	{"node_ipvs_connections_total", dto.MetricType_COUNTER, nil},
	{"node_ipvs_incoming_packets_total", dto.MetricType_COUNTER, nil},
	{"node_ipvs_outgoing_packets_total", dto.MetricType_COUNTER, nil},
	{"node_ipvs_incoming_bytes_total", dto.MetricType_COUNTER, nil},
	{"node_ipvs_outgoing_bytes_total", dto.MetricType_COUNTER, nil},
	{"node_ipvs_backend_connections_active", dto.MetricType_GAUGE, []string{"local_address", "local_mark", "local_port", "proto", "remote_address", "remote_port"}},
	{"node_ipvs_backend_connections_inactive", dto.MetricType_GAUGE, []string{"local_address", "local_mark", "local_port", "proto", "remote_address", "remote_port"}},
	{"node_ipvs_backend_weight", dto.MetricType_GAUGE, []string{"local_address", "local_mark", "local_port", "proto", "remote_address", "remote_port"}},
}

// families scrapes url and parses the text format into metric families.
func families(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mf
}

// labelsOf returns a sample's labels as a map.
func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// TestNodeIPVSMetrics: node_exporter's IPVS family is exported with its names,
// types and labels, its values agree with gvs adm --stats and -Ln, a mark service
// is labelled as node_exporter labels it, and metrics_node_ipvs / metrics_gvs
// switch the families off.
func TestNodeIPVSMetrics(t *testing.T) {
	ta := newTestAdmin(t)
	ta.ok("-A -t 198.18.0.100:80 -s rr")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.5 -g -w 2")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.6 -g")
	ta.ok("-A -u 198.18.0.101:53 -s rr")
	ta.ok("-a -u 198.18.0.101:53 -r 198.18.0.7 -g -w 5")
	ta.ok("-A -f 10 -s rr --match address=198.18.0.110")
	ta.ok("-a -f 10 -r 198.18.0.8:0 -g -w 3")
	m := NewMetrics(ta.a)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	ta.send(syns("198.18.0.100:80", 4)...)
	fin := tcpPkt{client: ap("198.51.100.9:7000"), vip: ap("198.18.0.100:80"), syn: true, payload: 10}
	ta.send(fin)
	fin.syn, fin.ack, fin.fin = false, true, true
	ta.send(fin)
	ta.send(tcpPkt{client: ap("198.51.100.9:7001"), vip: ap("198.18.0.101:53"), udp: true, payload: 20})

	mf := families(t, srv.URL)
	for _, want := range nodeExporterIPVS {
		f := mf[want.name]
		if f == nil {
			t.Errorf("no family %s", want.name)
			continue
		}
		if f.GetType() != want.typ {
			t.Errorf("%s is a %s, want %s", want.name, f.GetType(), want.typ)
		}
		for _, s := range f.GetMetric() {
			var names []string
			for _, l := range s.GetLabel() {
				names = append(names, l.GetName())
			}
			if !slices.Equal(names, want.labels) {
				t.Errorf("%s has labels %v, want %v", want.name, names, want.labels)
			}
		}
	}
	for name := range mf {
		if strings.HasPrefix(name, "node_ipvs_") && !slices.ContainsFunc(nodeExporterIPVS, func(w struct {
			name   string
			typ    dto.MetricType
			labels []string
		}) bool {
			return w.name == name
		}) {
			t.Errorf("family %s is not node_exporter's", name)
		}
	}

	// The totals are the sums of gvs adm --stats' columns.
	stats := ta.ok("-L -n --stats --exact")
	var sum [5]float64
	for _, line := range strings.Split(stats, "\n") {
		f := strings.Fields(line)
		if len(f) != 7 || (f[0] != "TCP" && f[0] != "UDP" && f[0] != "FWM") {
			continue
		}
		for i := range sum {
			v, err := strconv.ParseFloat(f[2+i], 64)
			if err != nil {
				t.Fatalf("--stats line %q: %v", line, err)
			}
			sum[i] += v
		}
	}
	if sum[1] == 0 {
		t.Fatalf("no traffic in gvs adm --stats:\n%s", stats)
	}
	for i, name := range []string{"node_ipvs_connections_total", "node_ipvs_incoming_packets_total", "node_ipvs_outgoing_packets_total", "node_ipvs_incoming_bytes_total", "node_ipvs_outgoing_bytes_total"} {
		if got := mf[name].GetMetric()[0].GetCounter().GetValue(); got != sum[i] {
			t.Errorf("%s = %v, gvs adm --stats sums to %v:\n%s", name, got, sum[i], stats)
		}
	}

	// Per real server: weight, ActiveConn and InActConn as gvs adm -Ln lists them.
	type backend struct{ weight, active, inactive float64 }
	want := map[string]backend{}
	local := ""
	for _, line := range strings.Split(ta.ok("-L -n"), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && (f[0] == "TCP" || f[0] == "UDP"):
			host, port, _ := strings.Cut(f[1], ":")
			local = host + "|" + port + "|" + f[0] + "|"
		case len(f) >= 3 && f[0] == "FWM":
			mark, _ := strconv.Atoi(f[1])
			local = fmt.Sprintf("|0|FWM|%08X", mark)
		case len(f) == 6 && f[0] == "->" && f[1] != "RemoteAddress:Port":
			host, port, _ := strings.Cut(f[1], ":")
			w, _ := strconv.ParseFloat(f[3], 64)
			a, _ := strconv.ParseFloat(f[4], 64)
			in, _ := strconv.ParseFloat(f[5], 64)
			want[local+"|"+host+"|"+port] = backend{w, a, in}
		}
	}
	got := map[string]backend{}
	for i, name := range []string{"node_ipvs_backend_weight", "node_ipvs_backend_connections_active", "node_ipvs_backend_connections_inactive"} {
		for _, s := range mf[name].GetMetric() {
			l := labelsOf(s)
			k := l["local_address"] + "|" + l["local_port"] + "|" + l["proto"] + "|" + l["local_mark"] + "|" + l["remote_address"] + "|" + l["remote_port"]
			b := got[k]
			v := s.GetGauge().GetValue()
			switch i {
			case 0:
				b.weight = v
			case 1:
				b.active = v
			case 2:
				b.inactive = v
			}
			got[k] = b
		}
	}
	if len(want) != 4 {
		t.Fatalf("gvs adm -Ln lists %d real servers, want 4: %v", len(want), want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("backend %s: metrics %+v, gvs adm -Ln %+v", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("metrics have backends %v, gvs adm -Ln %v", got, want)
	}
	for _, k := range []string{"198.18.0.100|80|TCP||198.18.0.5|80", "|0|FWM|0000000A|198.18.0.8|0", "198.18.0.101|53|UDP||198.18.0.7|53"} {
		if _, ok := got[k]; !ok {
			t.Errorf("no backend %s in %v", k, got)
		}
	}
	if a, in := got["198.18.0.100|80|TCP||198.18.0.5|80"].active+got["198.18.0.100|80|TCP||198.18.0.6|80"].active,
		got["198.18.0.100|80|TCP||198.18.0.5|80"].inactive+got["198.18.0.100|80|TCP||198.18.0.6|80"].inactive; a != 4 || in != 1 {
		t.Errorf("TCP service: %v active, %v inactive connections, want 4 and 1", a, in)
	}

	// Switches: each family goes away alone.
	d := config.Default().Director
	d.MetricsNodeIPVS = false
	m.configure(&d, "test.toml", nil)
	mf = families(t, srv.URL)
	if mf["node_ipvs_backend_weight"] != nil || mf["node_ipvs_connections_total"] != nil {
		t.Error("metrics_node_ipvs = false still exports node_ipvs_*")
	}
	if mf["gvs_real_server_weight"] == nil {
		t.Error("metrics_node_ipvs = false took gvs_real_server_weight away")
	}
	d.MetricsNodeIPVS, d.MetricsGVS = true, false
	m.configure(&d, "test.toml", nil)
	mf = families(t, srv.URL)
	if mf["node_ipvs_backend_weight"] == nil {
		t.Error("metrics_gvs = false took node_ipvs_backend_weight away")
	}
	for name := range mf {
		if strings.HasPrefix(name, "gvs_service_") || (strings.HasPrefix(name, "gvs_real_server_") && name != "gvs_real_server_up" && name != "gvs_real_server_health_transitions_total") {
			t.Errorf("metrics_gvs = false still exports %s", name)
		}
	}
	if mf["gvs_conntrack_entries"] == nil || mf["gvs_drops_total"] == nil {
		t.Error("metrics_gvs = false took the director-wide series away")
	}
}
