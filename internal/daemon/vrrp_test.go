package daemon

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/vrrp"
)

func TestVRRPConfigMapsKeepalivedKeys(t *testing.T) {
	src := netip.MustParseAddr("198.18.0.3")
	vip := netip.MustParseAddr("198.18.0.100")
	v := config.DefaultVRRP()
	v.Name, v.VirtualRouterID, v.Priority = "VI_1", 51, 150
	v.VirtualIPAddress = []netip.Addr{vip}
	v.AuthType, v.AuthPass = "PASS", "s3cr3t12"
	c, err := VRRPConfig(v, src)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != vrrp.Version2 || c.Interval != time.Second || c.Priority != 150 || c.VRID != 51 || c.Src != src ||
		c.AuthType != vrrp.AuthPassword || string(c.AuthData[:]) != "s3cr3t12" || len(c.Addrs) != 1 || c.Addrs[0] != vip {
		t.Fatalf("v2 PASS: %+v", c)
	}
	// The golden advert of docs/vrrp.md §1.3.
	a := c.Advert(150)
	b, err := a.Append(nil, src, vrrp.MulticastGroup(false))
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x21, 0x33, 0x96, 0x01, 0x01, 0x01, 0x46, 0x07, 0xc6, 0x12, 0x00, 0x64, 's', '3', 'c', 'r', '3', 't', '1', '2'}
	if string(b) != string(want) {
		t.Fatalf("advert % x, want % x", b, want)
	}

	u := config.DefaultVRRP()
	u.Name, u.VirtualRouterID, u.Version, u.AdvertInt = "VI_2", 52, 3, 100*time.Millisecond
	u.VirtualIPAddress = []netip.Addr{vip}
	u.UnicastSrcIP = netip.MustParseAddr("198.18.0.9")
	u.UnicastPeer = []netip.Addr{netip.MustParseAddr("198.18.0.4")}
	u.NoPreempt, u.PreemptDelay = true, 0
	c, err = VRRPConfig(u, src)
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != vrrp.Version3 || c.Src != u.UnicastSrcIP || len(c.Peers) != 1 || !c.NoPreempt || c.Interval != 100*time.Millisecond || c.AuthType != vrrp.AuthNone {
		t.Fatalf("v3 unicast: %+v", c)
	}

	bad := u
	bad.AdvertInt = 15 * time.Millisecond
	if _, err := VRRPConfig(bad, src); !errors.Is(err, vrrp.ErrInvalidConfig) {
		t.Fatalf("15ms v3 interval: %v", err)
	}
}

func TestVRRPChanges(t *testing.T) {
	v1, v2 := config.DefaultVRRP(), config.DefaultVRRP()
	v1.Name, v1.Line, v1.Priority = "VI_1", 10, 100
	v2.Name, v2.Line, v2.Priority = "VI_2", 20, 100
	g := config.VRRPSyncGroup{Line: 30, Name: "VG", Group: []string{"VI_1", "VI_2"}}
	old := []config.VRRP{v1, v2}
	oldG := []config.VRRPSyncGroup{g}

	moved := []config.VRRP{v2, v1}
	moved[0].Line, moved[1].Line = 1, 2 // moved around in the file: no change
	if got := vrrpChanges(old, moved, oldG, oldG); len(got) != 0 {
		t.Fatalf("unchanged settings reported as %v", got)
	}
	prio := []config.VRRP{v1, v2}
	prio[1].Priority = 150
	v3 := config.DefaultVRRP()
	v3.Name = "VI_3"
	g2 := g
	g2.Group = []string{"VI_1"}
	got := vrrpChanges(old, append(prio, v3)[1:], oldG, []config.VRRPSyncGroup{g2, {Name: "VG_new", Group: []string{"VI_3"}}})
	want := []string{"vrrp VI_2", "vrrp VI_3 (added)", "vrrp_sync_group VG", "vrrp_sync_group VG_new (added)", "vrrp VI_1 (removed)"}
	if !slices.Equal(got, want) {
		t.Fatalf("changes %q, want %q", got, want)
	}
	if got := vrrpChanges(old, nil, oldG, nil); !slices.Equal(got, []string{"vrrp VI_1 (removed)", "vrrp VI_2 (removed)", "vrrp_sync_group VG (removed)"}) {
		t.Fatalf("everything removed: %q", got)
	}
}
