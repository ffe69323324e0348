package daemon

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"golang.org/x/crypto/bcrypt"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/testutil"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and its key into dir
// and returns the pool that trusts it.
func writeCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "gvs test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// metricsAddr is the address the director's metrics endpoint listens on, from
// its log.
func metricsAddr(t *testing.T, ta *testAdmin) string {
	t.Helper()
	var logs string
	testutil.Eventually(t, 10*time.Second, func() bool {
		logs = ta.logs.String()
		return strings.Contains(logs, "msg=metrics listen=")
	}, "the metrics endpoint to be served")
	i := strings.LastIndex(logs, "msg=metrics listen=")
	line, _, _ := strings.Cut(logs[i+len("msg=metrics listen="):], "\n")
	return line
}

// TestMetricsWebConfig: with metrics_web_config naming TLS and a basic-auth user,
// the endpoint speaks only TLS, refuses a scrape without credentials or with
// wrong ones, and serves the right user.
func TestMetricsWebConfig(t *testing.T) {
	dir := t.TempDir()
	pool := writeCert(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	web := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(web, []byte("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(directorConf, "[director]", "[director]\nmetrics_listen = \"127.0.0.1:0\"\nmetrics_web_config = \""+web+"\"", 1)
	ta := newTestDirector(t, conf, nil)
	addr := metricsAddr(t, ta)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func(scheme, user, pass string) (int, string) {
		t.Helper()
		req, err := http.NewRequest("GET", scheme+"://"+addr+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("https", "", ""); code != http.StatusUnauthorized {
		t.Errorf("scrape without credentials: %d, want 401\n%.200s", code, body)
	}
	if code, body := get("https", "prometheus", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("scrape with a wrong password: %d, want 401\n%.200s", code, body)
	}
	if code, body := get("https", "nobody", "s3cret"); code != http.StatusUnauthorized {
		t.Errorf("scrape as an unknown user: %d, want 401\n%.200s", code, body)
	}
	if code, body := get("http", "prometheus", "s3cret"); code == http.StatusOK {
		t.Errorf("plain HTTP scrape served:\n%.200s", body)
	}
	code, body := get("https", "prometheus", "s3cret")
	if code != http.StatusOK || !strings.Contains(body, "gvs_conntrack_max 4096") {
		t.Errorf("scrape with the right credentials: %d\n%.300s", code, body)
	}
}

// TestMetricsWebConfigBad: a web config file that is missing, or names a TLS file
// that does not exist, is refused when the director starts and by gvs check,
// naming the key and the file.
func TestMetricsWebConfigBad(t *testing.T) {
	dir := t.TempDir()
	noCert := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(noCert, []byte("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, file, want string
	}{
		{"missing TLS certificate", noCert, "missing.crt"},
		{"missing web config", filepath.Join(dir, "absent.yml"), "absent.yml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(directorConf, "[director]", "[director]\nmetrics_listen = \"127.0.0.1:0\"\nmetrics_web_config = \""+tc.file+"\"", 1)
			cfg, err := config.Parse("test.toml", []byte(text))
			if err != nil {
				t.Fatal(err)
			}
			err = CheckMetricsWeb(cfg)
			if err == nil || !strings.Contains(err.Error(), "metrics_web_config") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CheckMetricsWeb: %v, want an error naming metrics_web_config and %s", err, tc.want)
			}
			ta := &testAdmin{t: t, res: &fakeResolver{}, link: &filterLink{Channel: newChannel()}, logs: &logBuffer{}}
			cfg.Director.ControlSocket = "" // hermetic
			d, err := New(cfg, testDeps(ta))
			if err == nil {
				d.Close()
				t.Fatal("New started with a broken metrics_web_config")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want it to name %s", err, tc.want)
			}
		})
	}
	// A relative path is the config file's directory's.
	cfg, err := config.Parse(filepath.Join(dir, "gvs.toml"), []byte(strings.Replace(directorConf, "[director]", "[director]\nmetrics_web_config = \"web.yml\"", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckMetricsWeb(cfg); err == nil || !strings.Contains(err.Error(), noCert) {
		t.Errorf("relative metrics_web_config: %v, want the error of %s", err, noCert)
	}
}

// TestMetricsOpenMetrics: a scraper asking for OpenMetrics gets it.
func TestMetricsOpenMetrics(t *testing.T) {
	ta := newTestAdmin(t)
	srv := httptest.NewServer(NewMetrics(ta.a).Handler())
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("Content-Type %q, want OpenMetrics", ct)
	}
	if !bytes.HasSuffix(b, []byte("# EOF\n")) || !bytes.Contains(b, []byte("# TYPE gvs_conntrack_max gauge")) {
		t.Errorf("not an OpenMetrics exposition:\n%.500s", b)
	}
}

// TestMetricsLint lints a live scrape with promlint, the checker behind promtool
// check metrics: every family of a director with services, real servers, health
// and VRRP.
func TestMetricsLint(t *testing.T) {
	ta := newTestAdmin(t)
	ta.ok("-A -t 198.18.0.100:80 -s rr")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.5 -g")
	ta.ok("-A -f 7 -s rr --match address=198.18.0.110")
	ta.ok("-a -f 7 -r 198.18.0.6:0 -g")
	ta.send(syns("198.18.0.100:80", 2)...)
	ta.a.estimate()
	m := ta.d.metrics
	m.SetHealth("TCP/198.18.0.100:80", "198.18.0.5:80", true)
	m.SetHealth("TCP/198.18.0.100:80", "198.18.0.5:80", false)
	m.SetVRRPState("VI_1", "BACKUP")
	m.SetVRRPState("VI_1", "MASTER")
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, want := range []string{"gvs_build_info{", "gvs_config_last_reload_successful 1", "gvs_config_last_reload_success_timestamp_seconds ", "node_ipvs_backend_weight{"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}
