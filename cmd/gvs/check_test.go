package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gvs-lb/gvs/dataplane/afxdp"
	"github.com/gvs-lb/gvs/internal/daemon"
)

// TestCheckBackendCapacity: gvs check refuses more VIPs than the backend io asks for
// can receive (AF_XDP's address map), saying why, and accepts them where AF_PACKET
// may serve (io = "auto", "afpacket").
func TestCheckBackendCapacity(t *testing.T) {
	n := afxdp.DefaultMaxAddrs + 1
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "[[service]]\naddress = \"10.%d.%d.%d:80\"\n", i>>16, i>>8&255, i&255)
	}
	services := b.String()
	for _, tt := range []struct {
		io   string
		want string // "": accepted
	}{
		{"afxdp", fmt.Sprintf("%d IPv4 VIPs and NAT real servers, and the afxdp backend receives at most %d", n, afxdp.DefaultMaxAddrs)},
		{"auto", ""},
		{"afpacket", ""},
	} {
		t.Run(tt.io, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "many.toml")
			text := fmt.Sprintf("[director]\ninterface = \"eth0\"\nio = %q\n\n%s", tt.io, services)
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			err := cmdCheck([]string{"-c", path}, &stdout, &stderr)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("check: %v", err)
			case tt.want == "" && !strings.Contains(stdout.String(), fmt.Sprintf("ok (%d services", n)):
				t.Errorf("check said %q", stdout.String())
			case tt.want != "" && (!errors.Is(err, daemon.ErrTooManyVIPs) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path)):
				t.Errorf("check: %v, want the file and %q", err, tt.want)
			}
		})
	}
}
