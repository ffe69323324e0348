package daemon

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afpacket"
)

// grafanaDashboard is the part of Grafana's dashboard JSON model the test reads.
type grafanaDashboard struct {
	Title         string         `json:"title"`
	UID           string         `json:"uid"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

var (
	// promMetricRef is a metric name of gvs's (or node_exporter's IPVS family) in
	// a query, with the label matchers that follow it, if any.
	promMetricRef = regexp.MustCompile(`\b((?:gvs|node_ipvs)_[a-zA-Z0-9_]*)(\{[^}]*\})?`)
	promMatcher   = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"`)
)

// balanced reports whether the brackets of a query pair up, outside strings.
func balanced(q string) bool {
	var stack []rune
	inStr := false
	for i, r := range q {
		if inStr {
			if r == '"' && q[i-1] != '\\' {
				inStr = false
			}
			continue
		}
		switch r {
		case '"':
			inStr = true
		case '(', '{', '[':
			stack = append(stack, r)
		case ')', '}', ']':
			open := map[rune]rune{')': '(', '}': '{', ']': '['}[r]
			if len(stack) == 0 || stack[len(stack)-1] != open {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return !inStr && len(stack) == 0
}

// TestGrafanaDashboard checks contrib/grafana/gvs.json: it is a Grafana dashboard
// (title, uid, unique panel ids, a 24-column grid, a Prometheus data source and a
// query on every panel), every query's brackets pair up, and every gvs metric a
// query or template variable names exists in a live scrape of a director with
// services, real servers, health, VRRP and link counters — with the labels it
// matches on.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../../contrib/grafana/gvs.json")
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("contrib/grafana/gvs.json: %v", err)
	}
	if d.Title == "" || d.UID == "" || d.SchemaVersion == 0 || len(d.Panels) == 0 {
		t.Fatalf("not a dashboard: title %q uid %q schemaVersion %d, %d panels", d.Title, d.UID, d.SchemaVersion, len(d.Panels))
	}

	var queries []string
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.X < 0 || p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
			t.Errorf("panel %q: gridPos %+v off Grafana's 24 columns", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Title == "" || p.Datasource == nil || p.Datasource.Type != "prometheus" {
			t.Errorf("panel %d %q: needs a title and a Prometheus data source", p.ID, p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, q := range p.Targets {
			if q.Expr == "" || q.RefID == "" || refs[q.RefID] {
				t.Errorf("panel %q: query %q with refId %q (empty or repeated)", p.Title, q.Expr, q.RefID)
			}
			refs[q.RefID] = true
			queries = append(queries, q.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		switch q := v.Query.(type) {
		case string:
			queries = append(queries, q)
		case map[string]any:
			s, _ := q["query"].(string)
			queries = append(queries, s)
		}
	}

	// A director with every kind of series.
	sl := &statsLink{Channel: newChannel(), st: afpacket.Stats{RXFrames: 1, TXFrames: 1}}
	ta := newTestDirector(t, directorConf, func(d *Deps) {
		open := d.OpenLinks
		d.OpenLinks = func(ifi Interface, f *afpacket.Filter, o PacketOptions) ([]dataplane.Link, error) {
			links, err := open(ifi, f, o)
			return append(links, sl), err
		}
	})
	ta.ok("-A -t 198.18.0.100:80 -s wrr")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.5 -g -x 100")
	ta.send(syns("198.18.0.100:80", 2)...)
	ta.a.estimate()
	m := ta.d.metrics
	m.SetHealth("TCP/198.18.0.100:80", "198.18.0.5:80", true)
	m.SetHealth("TCP/198.18.0.100:80", "198.18.0.5:80", false)
	m.SetVRRPState("VI_1", "BACKUP")
	m.SetVRRPState("VI_1", "MASTER")
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	mf := families(t, srv.URL)

	used := map[string]bool{}
	for _, q := range queries {
		if !balanced(q) {
			t.Errorf("query %q: brackets do not pair up", q)
		}
		refs := promMetricRef.FindAllStringSubmatch(q, -1)
		if len(refs) == 0 && !strings.HasPrefix(q, "label_values(") {
			t.Errorf("query %q names no gvs metric", q)
		}
		for _, r := range refs {
			name := r[1]
			used[name] = true
			f := mf[name]
			if f == nil {
				t.Errorf("query %q: no metric %s in a live scrape", q, name)
				continue
			}
			var labels []string
			for _, s := range f.GetMetric() {
				for _, l := range s.GetLabel() {
					if !slices.Contains(labels, l.GetName()) {
						labels = append(labels, l.GetName())
					}
				}
			}
			for _, mm := range promMatcher.FindAllStringSubmatch(r[2], -1) {
				// instance and job are the labels Prometheus gives every target.
				if l := mm[1]; l != "instance" && l != "job" && !slices.Contains(labels, l) {
					t.Errorf("query %q: %s has no label %q (it has %v)", q, name, l, labels)
				}
			}
		}
	}
	// The dashboard shows what the issue asks for.
	for _, want := range []string{"gvs_service_connections_total", "gvs_real_server_active_connections", "gvs_real_server_up", "gvs_vrrp_state", "gvs_drops_total", "gvs_conntrack_entries"} {
		if !used[want] {
			t.Errorf("no panel shows %s", want)
		}
	}
}
