package status

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"
)

//go:embed page.html
var page []byte

// DefaultInterval is the shortest time between two snapshots: clients asking
// more often get the same one.
const DefaultInterval = time.Second

// Actions changes real servers for the page's drain and undrain buttons. The
// daemon applies them as gvs adm edits would be.
type Actions interface {
	// Drain sets the weight of server (its Server.Address) in service (its
	// Service.Name) to 0, remembering the weight it had.
	Drain(ctx context.Context, service, server string) error
	// Undrain gives it back the weight Drain remembered.
	Undrain(ctx context.Context, service, server string) error
}

// ErrNotFound is what Actions return for a service or real server that does not
// exist (any more): the handler answers 404.
var ErrNotFound = errors.New("no such service or real server")

// Options configure a Handler.
type Options struct {
	// Source builds a snapshot; it is called at most once per Interval, whatever
	// the number of clients, and never by two requests at once.
	Source func() *Snapshot
	// Actions, when not nil, enables POST /actions/drain and /actions/undrain.
	// Leave it nil unless the server authenticates its clients.
	Actions  Actions
	Interval time.Duration // 0: DefaultInterval
	Now      func() time.Time
}

// Handler serves the page (GET /), the snapshot (GET /status.json) and, with
// Actions, the drain and undrain requests. It is safe for concurrent use.
type Handler struct {
	o   Options
	mux *http.ServeMux

	mu    sync.Mutex // held while a snapshot is built: one build at a time
	body  []byte     // the encoded snapshot, shared by every client
	taken time.Time
}

// NewHandler returns a Handler for o.
func NewHandler(o Options) *Handler {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Handler{o: o, mux: http.NewServeMux()}
	h.mux.HandleFunc("GET /{$}", h.page)
	h.mux.HandleFunc("GET /status.json", h.json)
	h.mux.HandleFunc("POST /actions/{op}", h.action)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) page(w http.ResponseWriter, _ *http.Request) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	// Everything is inline: nothing else may load, and no other site may frame it.
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; frame-ancestors 'none'; form-action 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	w.Write(page)
}

// Body returns the encoded current snapshot: the one taken less than Interval
// ago, or a new one.
func (h *Handler) Body() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.o.Now()
	if h.body != nil && now.Sub(h.taken) < h.o.Interval && !now.Before(h.taken) {
		return h.body
	}
	s := h.o.Source()
	s.Actions = h.o.Actions != nil
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	if err := enc.Encode(s); err != nil {
		// Only unencodable values (NaN) fail, and the model has none.
		panic("status: encoding the snapshot: " + err.Error())
	}
	h.body, h.taken = b.Bytes(), now
	return h.body
}

// invalidate makes the next request take a new snapshot (after an action).
func (h *Handler) invalidate() {
	h.mu.Lock()
	h.body = nil
	h.mu.Unlock()
}

func (h *Handler) json(w http.ResponseWriter, _ *http.Request) {
	body := h.Body()
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.Write(body)
}

// actionHeader must come with every action: a browser sends a custom header
// only from a script of the page's own origin (another site's form or script
// cannot, without a CORS permission the handler never gives), so a logged-in
// operator's browser cannot be made to drain a server by another page.
const actionHeader = "X-GVS-Action"

func (h *Handler) action(w http.ResponseWriter, r *http.Request) {
	if h.o.Actions == nil {
		http.Error(w, "actions are off: set status_actions = true in [director] (with metrics_web_config basic auth) to drain and undrain from the page", http.StatusForbidden)
		return
	}
	if r.Header.Get(actionHeader) != "1" {
		http.Error(w, "missing "+actionHeader+": 1 header (actions come from the status page's own script)", http.StatusForbidden)
		return
	}
	var do func(context.Context, string, string) error
	switch op := r.PathValue("op"); op {
	case "drain":
		do = h.o.Actions.Drain
	case "undrain":
		do = h.o.Actions.Undrain
	default:
		http.Error(w, "unknown action "+op+": want drain or undrain", http.StatusNotFound)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form: "+err.Error(), http.StatusBadRequest)
		return
	}
	svc, srv := strings.TrimSpace(r.PostForm.Get("service")), strings.TrimSpace(r.PostForm.Get("server"))
	if svc == "" || srv == "" {
		http.Error(w, "want form fields service (e.g. TCP/198.18.0.100:80) and server (e.g. 198.18.0.5:80)", http.StatusBadRequest)
		return
	}
	err := do(r.Context(), svc, srv)
	h.invalidate()
	switch {
	case errors.Is(err, ErrNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
	case err != nil:
		http.Error(w, err.Error(), http.StatusConflict)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}
