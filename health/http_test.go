package health

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestHTTP(t *testing.T) {
	forEachFamily(t, func(t *testing.T, fam family) {
		const body = "<html>all good</html>"
		var lastHost, lastURI atomic.Value
		_, addr := httpServer(t, fam, false, func(w http.ResponseWriter, r *http.Request) {
			lastHost.Store(r.Host)
			lastURI.Store(r.RequestURI)
			switch r.URL.Path {
			case "/503":
				w.WriteHeader(http.StatusServiceUnavailable)
			case "/redirect":
				http.Redirect(w, r, "/", http.StatusFound)
			default:
				io.WriteString(w, body)
			}
		})
		tests := []struct {
			name   string
			spec   Spec
			up     bool
			reason string
		}{
			{"up", Spec{Path: "/"}, true, "HTTP 200"},
			{"wrong status", Spec{Path: "/503"}, false, "HTTP 503"},
			{"status range accepts 503", Spec{Path: "/503", StatusCodes: []StatusRange{{200, 200}, {500, 599}}}, true, "HTTP 503"},
			{"status list rejects 200", Spec{Path: "/", StatusCodes: []StatusRange{{204, 204}}}, false, "HTTP 200"},
			{"redirect not followed", Spec{Path: "/redirect"}, false, "HTTP 302"},
			{"digest matches", Spec{Digest: md5hex(body)}, true, "HTTP 200"},
			{"digest upper case matches", Spec{Digest: strings.ToUpper(md5hex(body))}, true, "HTTP 200"},
			{"wrong body digest", Spec{Digest: md5hex("other")}, false, "digest mismatch"},
			{"substring present", Spec{Expect: "all good"}, true, "HTTP 200"},
			{"wrong body substring", Spec{Expect: "maintenance"}, false, "body lacks expected text"},
			{"digest checked after status", Spec{Path: "/503", Digest: md5hex(body)}, false, "HTTP 503"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := tt.spec
				s.Type, s.Target = HTTP, addr
				r := mustCheck(t, s)
				if r.Up != tt.up || r.Reason != tt.reason {
					t.Errorf("got %+v, want up=%v reason %q", r, tt.up, tt.reason)
				}
			})
		}
		t.Run("host header, path and query", func(t *testing.T) {
			wantUp(t, mustCheck(t, Spec{Type: HTTP, Target: addr, Path: "/health?deep=1", Host: "www.example.com"}), "HTTP 200")
			if h, u := lastHost.Load(), lastURI.Load(); h != "www.example.com" || u != "/health?deep=1" {
				t.Errorf("server saw Host %q URI %q", h, u)
			}
			wantUp(t, mustCheck(t, Spec{Type: HTTP, Target: addr}), "HTTP 200")
			if h := lastHost.Load(); h != addr.String() {
				t.Errorf("default Host %q, want %q", h, addr)
			}
		})
		t.Run("refused", func(t *testing.T) {
			wantDown(t, mustCheck(t, Spec{Type: HTTP, Target: closedPort(t, fam)}), "connect refused")
		})
	})
}

func TestHTTPBadServers(t *testing.T) {
	forEachFamily(t, func(t *testing.T, fam family) {
		const timeout = 300 * time.Millisecond
		stop := make(chan struct{})
		t.Cleanup(func() { close(stop) }) // runs before the servers' cleanups
		_, slow := httpServer(t, fam, false, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(10 * time.Second):
			case <-r.Context().Done():
			case <-stop:
			}
		})
		_, endless := httpServer(t, fam, false, func(w http.ResponseWriter, r *http.Request) {
			chunk := []byte(strings.Repeat("x", 32<<10))
			for {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		})
		_, slowBody := httpServer(t, fam, false, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-stop:
			}
		})
		garbage := tcpServer(t, fam, func(c net.Conn) {
			io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n\x00\x01\x02garbage\r\n\r\n")
		})
		endlessHeader := tcpServer(t, fam, func(c net.Conn) {
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\n"); err != nil {
				return
			}
			line := "X-Filler: " + strings.Repeat("a", 1000) + "\r\n"
			for {
				if _, err := io.WriteString(c, line); err != nil {
					return
				}
			}
		})
		silent := tcpServer(t, fam, blockUntilClosed)
		hangUp := tcpServer(t, fam, func(c net.Conn) {
			buf := make([]byte, 1024)
			c.Read(buf) // take the request, then close without a response
		})
		badChunk := tcpServer(t, fam, func(c net.Conn) {
			buf := make([]byte, 1024)
			c.Read(buf)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n")
		})

		tests := []struct {
			name   string
			spec   Spec
			up     bool
			reason string
		}{
			{"slow server", Spec{Target: slow}, false, "timeout after 300ms"},
			{"endless body with digest", Spec{Target: endless, Digest: md5hex("x")}, false, "body too large"},
			{"endless body with substring", Spec{Target: endless, Expect: "needle"}, false, "body too large"},
			{"endless body, status only", Spec{Target: endless}, true, "HTTP 200"},
			{"slow body with digest", Spec{Target: slowBody, Digest: md5hex("x")}, false, "timeout after 300ms"},
			{"garbage", Spec{Target: garbage}, false, "malformed response"},
			{"endless header", Spec{Target: endlessHeader}, false, "response header too large"},
			{"never answers", Spec{Target: silent}, false, "timeout after 300ms"},
			{"closes without response", Spec{Target: hangUp}, false, "connection closed before response"},
			{"bad chunked body", Spec{Target: badChunk, Expect: "x"}, false, "malformed body"},
			{"HTTPS to a plain server", Spec{Type: HTTPS, Target: slow}, false, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				s := tt.spec
				if s.Type == 0 {
					s.Type = HTTP
				}
				if tt.reason == "timeout after 300ms" || s.Target == silent || s.Target == slow {
					s.Timeout = timeout // the cases about timing out
				} else {
					s.Timeout = 5 * time.Second // generous: not a speed test
				}
				// A check its timeout did not bound would get another reason (the
				// slow server's 200 after 10 s) or never return.
				r := mustCheck(t, s)
				if r.Up != tt.up || (tt.reason != "" && r.Reason != tt.reason) || r.Reason == "" {
					t.Errorf("got %+v, want up=%v reason %q", r, tt.up, tt.reason)
				}
			})
		}
	})
}

func TestHTTPS(t *testing.T) {
	forEachFamily(t, func(t *testing.T, fam family) {
		var sni atomic.Value
		srv, addr := httpServer(t, fam, true, func(w http.ResponseWriter, r *http.Request) {
			sni.Store(r.TLS.ServerName)
			io.WriteString(w, "secure")
		})
		// httptest's certificate is for example.com, 127.0.0.1 and ::1, signed by
		// itself: write it out as the CA.
		ca := filepath.Join(t.TempDir(), "ca.pem")
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name    string
			spec    Spec
			up      bool
			reason  string // prefix
			wantSNI string
		}{
			{"no verification", Spec{}, true, "HTTP 200", ""},
			{"no verification, digest", Spec{Digest: md5hex("secure")}, true, "HTTP 200", ""},
			{"verification against system roots fails", Spec{TLSVerify: true}, false, "tls: failed to verify certificate", ""},
			{"verification of the IP with the CA", Spec{TLSVerify: true, CAFile: ca}, true, "HTTP 200", ""},
			{"verification of the SNI name with the CA", Spec{TLSVerify: true, CAFile: ca, SNI: "example.com"}, true, "HTTP 200", "example.com"},
			{"Host header names the SNI", Spec{TLSVerify: true, CAFile: ca, Host: "example.com:443"}, true, "HTTP 200", "example.com"},
			{"wrong name fails verification", Spec{TLSVerify: true, CAFile: ca, SNI: "www.example.org"}, false, "tls: failed to verify certificate", "www.example.org"},
			{"wrong name without verification", Spec{SNI: "www.example.org"}, true, "HTTP 200", "www.example.org"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				sni.Store("")
				s := tt.spec
				s.Type, s.Target = HTTPS, addr
				r := mustCheck(t, s)
				if r.Up != tt.up || !strings.HasPrefix(r.Reason, tt.reason) {
					t.Errorf("got %+v, want up=%v reason %q…", r, tt.up, tt.reason)
				}
				if tt.up && sni.Load() != tt.wantSNI {
					t.Errorf("server saw SNI %q, want %q", sni.Load(), tt.wantSNI)
				}
			})
		}
	})
}

func ExampleParseStatusRanges() {
	rs, _ := ParseStatusRanges("200-299 503")
	fmt.Println(rs)
	// Output: [200-299 503]
}
