package status

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// checkingActions fails the test if called with what the handler must refuse.
type checkingActions struct{ t *testing.T }

func (c checkingActions) Drain(_ context.Context, svc, srv string) error   { return c.check(svc, srv) }
func (c checkingActions) Undrain(_ context.Context, svc, srv string) error { return c.check(svc, srv) }
func (c checkingActions) check(svc, srv string) error {
	if svc == "" || srv == "" || strings.TrimSpace(svc) != svc || strings.TrimSpace(srv) != srv {
		c.t.Errorf("action called with service %q server %q", svc, srv)
	}
	if strings.Contains(srv, "99") {
		return ErrNotFound
	}
	return nil
}

// FuzzActionRequest: whatever the path and body of a POST, the handler answers
// one of its statuses, and Actions only ever see two non-empty, trimmed fields.
func FuzzActionRequest(f *testing.F) {
	f.Add("drain", "service=TCP%2F198.18.0.100%3A80&server=198.18.0.5%3A80", true)
	f.Add("undrain", "service=UDP%2F198.18.0.100%3A53&server=198.18.0.99%3A53", true)
	f.Add("drain", "service=&server=", true)
	f.Add("drain", "service=%zz", true)
	f.Add("explode", "service=a&server=b", true)
	f.Add("drain", "service=a&server=b", false)
	f.Add("drain", strings.Repeat("service=a&", 1000), true)
	f.Fuzz(func(t *testing.T, op, body string, header bool) {
		h := NewHandler(Options{Actions: checkingActions{t}, Source: func() *Snapshot { return &Snapshot{} }})
		req, err := http.NewRequest("POST", "/actions/x", strings.NewReader(body))
		if err != nil {
			t.Skip()
		}
		req.URL.Path = "/actions/" + op
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if header {
			req.Header.Set(actionHeader, "1")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusNoContent, http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusConflict,
			http.StatusMethodNotAllowed, http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		default:
			t.Fatalf("POST /actions/%q %q: status %d", op, body, rec.Code)
		}
		if rec.Code == http.StatusNoContent && !header {
			t.Fatal("an action without the page's header was carried out")
		}
	})
}
