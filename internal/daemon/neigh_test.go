package daemon

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestDefaultGateway(t *testing.T) {
	route := `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	0000A8C6	00000000	0001	0	0	0	00FFFFFF	0	0	0
eth1	00000000	010012C6	0003	0	0	0	00000000	0	0	0
eth0	00000000	030012C6	0003	0	0	0	00000000	0	0	0
`
	p := filepath.Join(t.TempDir(), "route")
	if err := os.WriteFile(p, []byte(route), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := defaultGateway(p, "eth0"), netip.MustParseAddr("198.18.0.3"); got != want {
		t.Fatalf("eth0 gateway %v, want %v", got, want)
	}
	if got := defaultGateway(p, "eth2"); got.IsValid() {
		t.Fatalf("eth2 has no default route, got %v", got)
	}
}
