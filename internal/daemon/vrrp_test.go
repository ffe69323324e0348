package daemon

import (
	"errors"
	"net/netip"
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
	// The golden advert of VRRP.md §1.3.
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
