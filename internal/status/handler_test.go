package status

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeNow is a clock the test moves.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeNow) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeNow) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func get(t *testing.T, h http.Handler, path string) (int, http.Header, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Header(), rec.Body.String()
}

// TestSnapshotShared: 100 concurrent clients within one interval cost one
// snapshot and all get the same bytes; after the interval the next request
// takes a new one; a service gone from the source is gone from the next one.
func TestSnapshotShared(t *testing.T) {
	clock := &fakeNow{t: time.Unix(1e9, 0)}
	var builds atomic.Int32
	var services atomic.Value
	services.Store([]Service{{Name: "TCP/198.18.0.100:80"}, {Name: "UDP/198.18.0.100:53"}})
	h := NewHandler(Options{Now: clock.now, Source: func() *Snapshot {
		builds.Add(1)
		return &Snapshot{Taken: clock.now(), Services: services.Load().([]Service)}
	}})
	var wg sync.WaitGroup
	bodies := make([]string, 100)
	for i := range bodies {
		wg.Go(func() {
			code, hd, body := get(t, h, "/status.json")
			if code != http.StatusOK || hd.Get("Content-Type") != "application/json" {
				t.Errorf("client %d: %d %s", i, code, hd.Get("Content-Type"))
			}
			bodies[i] = body
		})
	}
	wg.Wait()
	if n := builds.Load(); n != 1 {
		t.Fatalf("100 clients in one interval took %d snapshots, want 1", n)
	}
	for i, b := range bodies {
		if b != bodies[0] {
			t.Fatalf("client %d got %q, client 0 %q", i, b, bodies[0])
		}
	}
	services.Store([]Service{{Name: "TCP/198.18.0.100:80"}})
	clock.add(DefaultInterval - time.Millisecond)
	if get(t, h, "/status.json"); builds.Load() != 1 {
		t.Fatal("a snapshot taken before the interval ended")
	}
	clock.add(time.Millisecond)
	_, _, body := get(t, h, "/status.json")
	if builds.Load() != 2 {
		t.Fatal("no new snapshot once the interval ended")
	}
	var s Snapshot
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Services) != 1 || s.Services[0].Name != "TCP/198.18.0.100:80" || s.Actions {
		t.Fatalf("after the UDP service went: %+v", s)
	}
	// A clock stepping back does not pin an old snapshot.
	clock.add(-time.Hour)
	if get(t, h, "/status.json"); builds.Load() != 3 {
		t.Fatal("the clock went back and the old snapshot stayed")
	}
}

// TestPageSelfContained: the page loads nothing from anywhere (no src or href
// to another document, no @import or url()), polls status.json, bounds its
// history, and is served with a policy that forbids loading anything else.
func TestPageSelfContained(t *testing.T) {
	h := NewHandler(Options{Source: func() *Snapshot { return &Snapshot{} }})
	code, hd, body := get(t, h, "/")
	if code != http.StatusOK || !strings.HasPrefix(hd.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", code, hd.Get("Content-Type"))
	}
	if csp := hd.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	for _, re := range []string{`\s(src|href)\s*=`, `@import`, `url\(`, `<link`, `https?://(?:[^w]|w[^w]|ww[^w]|www[^.]|www\.[^w])`} {
		if m := regexp.MustCompile(re).FindString(body); m != "" {
			t.Errorf("page refers outside itself: %q matches %s", m, re)
		}
	}
	for _, want := range []string{`name="viewport"`, `@media (max-width:`, `fetch("status.json"`, `const POLL_MS = 2000, POINTS = 90;`, `new Float64Array(POINTS)`, `history.delete(k)`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if code, _, _ := get(t, h, "/other"); code != http.StatusNotFound {
		t.Errorf("GET /other: %d", code)
	}
}

// fakeActions records calls; unknown is the server it does not know.
type fakeActions struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeActions) Drain(_ context.Context, svc, srv string) error {
	return f.do("drain " + svc + " " + srv)
}
func (f *fakeActions) Undrain(_ context.Context, svc, srv string) error {
	return f.do("undrain " + svc + " " + srv)
}
func (f *fakeActions) do(c string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.HasSuffix(c, "198.18.0.99:80") {
		return ErrNotFound
	}
	f.calls = append(f.calls, c)
	return nil
}

// TestActions: off without Actions; the page's header is required; drain and
// undrain reach Actions and invalidate the shared snapshot; unknown servers and
// operations are 404, missing fields 400.
func TestActions(t *testing.T) {
	post := func(h http.Handler, op string, form url.Values, header bool) (int, string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/actions/"+op, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if header {
			req.Header.Set(actionHeader, "1")
		}
		h.ServeHTTP(rec, req)
		b, _ := io.ReadAll(rec.Body)
		return rec.Code, string(b)
	}
	rs := url.Values{"service": {"TCP/198.18.0.100:80"}, "server": {"198.18.0.5:80"}}
	off := NewHandler(Options{Source: func() *Snapshot { return &Snapshot{} }})
	if code, body := post(off, "drain", rs, true); code != http.StatusForbidden || !strings.Contains(body, "status_actions = true") {
		t.Errorf("actions off: %d %s", code, body)
	}
	var builds atomic.Int32
	fa := &fakeActions{}
	h := NewHandler(Options{Actions: fa, Now: (&fakeNow{t: time.Unix(1e9, 0)}).now, Source: func() *Snapshot { builds.Add(1); return &Snapshot{} }})
	if _, _, body := get(t, h, "/status.json"); !strings.Contains(body, `"actions":true`) {
		t.Errorf("snapshot does not say actions are on: %s", body)
	}
	if code, _ := post(h, "drain", rs, false); code != http.StatusForbidden {
		t.Errorf("without the header: %d", code)
	}
	for _, tc := range []struct {
		op   string
		form url.Values
		code int
	}{
		{"drain", rs, http.StatusNoContent},
		{"undrain", rs, http.StatusNoContent},
		{"drain", url.Values{"service": {"TCP/198.18.0.100:80"}, "server": {"198.18.0.99:80"}}, http.StatusNotFound},
		{"explode", rs, http.StatusNotFound},
		{"drain", url.Values{"service": {"TCP/198.18.0.100:80"}}, http.StatusBadRequest},
	} {
		if code, body := post(h, tc.op, tc.form, true); code != tc.code {
			t.Errorf("%s %v: %d %s, want %d", tc.op, tc.form, code, body, tc.code)
		}
	}
	want := "drain TCP/198.18.0.100:80 198.18.0.5:80|undrain TCP/198.18.0.100:80 198.18.0.5:80"
	if got := strings.Join(fa.calls, "|"); got != want {
		t.Errorf("calls %q, want %q", got, want)
	}
	get(t, h, "/status.json")
	if n := builds.Load(); n != 2 {
		t.Errorf("%d snapshots: an action must make the next request take a new one", n)
	}
}
