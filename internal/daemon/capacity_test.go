package daemon

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afxdp"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/testutil"
	"github.com/gvs-lb/gvs/ipvs"
)

func TestCapacityCheck(t *testing.T) {
	svc := func(addr string, marks ...string) ipvs.Service {
		s := ipvs.Service{Key: ipvs.Key{Addr: netip.MustParseAddrPort(addr)}}
		for _, m := range marks {
			s.Match = append(s.Match, ipvs.Match{Addr: netip.MustParseAddr(m)})
		}
		return s
	}
	// Two ports of one VIP, an IPv4-mapped spelling of it and a fwmark match: two
	// distinct VIPs, one per family; a NAT real server adds an IPv4 address, one
	// that is also a VIP adds none.
	services := []ipvs.Service{svc("198.18.0.100:80"), svc("198.18.0.100:443"), svc("[::ffff:198.18.0.100]:8080"), svc("[2001:db8::100]:80", "198.18.0.100")}
	services[0].RealServers = []ipvs.RealServer{{Addr: netip.MustParseAddrPort("198.18.0.5:80"), Method: ipvs.NAT}, {Addr: netip.MustParseAddrPort("198.18.0.100:80"), Method: ipvs.NAT}}
	if n4, n6 := countAddrs(services); n4 != 2 || n6 != 1 {
		t.Errorf("countAddrs = %d IPv4, %d IPv6; want 2, 1", n4, n6)
	}
	for _, tt := range []struct {
		name string
		c    capacity
		want string
	}{
		{"no limit", afpacketCapacity(), ""},
		{"enough", capacity{backend: "x", max4: 2, max6: 1}, ""},
		{"too few IPv4", capacity{backend: "x", max4: 1, why: "its map holds 1"}, "more VIPs than the data-path backend can receive: 2 IPv4 VIPs and NAT real servers, and the x backend receives at most 1 (its map holds 1)"},
		{"no IPv6 limit", capacity{backend: "x", max4: 5, max6: 0}, ""},
		{"IPv6 just fits", capacity{backend: "x", max4: 5, max6: 1}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.check(services)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("check: %v, want nil", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want || !errors.Is(err, ErrTooManyVIPs)):
				t.Errorf("check: %v, want %q", err, tt.want)
			}
		})
	}
	if err := (capacity{backend: "y", max4: 9, max6: 0}).check(append(services, svc("[2001:db8::101]:80"))); err != nil {
		t.Errorf("no IPv6 limit: %v", err)
	}
	if err := (capacity{backend: "y", max4: 9, max6: 1}).check(append(services, svc("[2001:db8::101]:80"))); !errors.Is(err, ErrTooManyVIPs) || !strings.Contains(err.Error(), "2 IPv6 VIPs") {
		t.Errorf("two IPv6 VIPs for a backend of one: %v", err)
	}
	// The backends: AF_PACKET takes any number, AF_XDP its maps' size, asked for by
	// io = "afxdp" before the links open and found from the links after.
	if c := capacityOf(nil); c.backend != "afpacket" || c.max4 != 0 || c.max6 != 0 {
		t.Errorf("capacityOf(no links) = %+v, want afpacket without limit", c)
	}
	if c := capacityOf([]dataplane.Link{fakeXDPLink{}}); c.backend != "afxdp" || c.max4 != afxdp.DefaultMaxAddrs || c.max6 != afxdp.DefaultMaxAddrs {
		t.Errorf("capacityOf(an AF_XDP link) = %+v", c)
	}
	cfg, err := config.Parse("test.toml", []byte(directorConf+"[[service]]\naddress = \"198.18.0.100:80\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckLinks(cfg); err != nil {
		t.Errorf("CheckLinks on AF_PACKET, which has no limit: %v", err)
	}
	for io, want := range map[string]string{config.IOAuto: "afpacket", config.IOAFPacket: "afpacket", config.IOAFXDP: "afxdp"} {
		cfg.Director.IO = io
		if c := linkCapacity(cfg); c.backend != want {
			t.Errorf("io = %q: capacity of %s, want %s", io, c.backend, want)
		}
	}
}

// fakeXDPLink is an AF_XDP link as capacityOf tells it apart.
type fakeXDPLink struct{ dataplane.Link }

func (fakeXDPLink) Device() *afxdp.Device { return nil }

// TestCapacityRefusal runs a director whose backend receives at most two VIPs: gvs
// adm and reload refuse a third with the reason and change nothing; the links'
// filter carries the director's MAC for the coarse filter.
func TestCapacityRefusal(t *testing.T) {
	testutil.CheckLeaks(t)
	text := directorConf + "[[service]]\naddress = \"198.18.0.100:80\"\n"
	cfg, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	hermetic(cfg, text)
	ta := &testAdmin{t: t, clock: testutil.NewClock(t), res: &fakeResolver{}, link: &filterLink{Channel: newChannel()}, logs: &logBuffer{}}
	d, err := New(cfg, testDeps(ta))
	if err != nil {
		t.Fatal(err)
	}
	d.capacity = capacity{backend: "test", max4: 2, why: "its map holds 2"}
	ta.d, ta.a = d, d.admin
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	ta.ok("-A -t 198.18.0.101:80 -s rr")
	ta.ok("-A -u 198.18.0.101:53 -s rr") // the same VIP again
	testutil.Eventually(t, 10*time.Second, func() bool {
		f := ta.link.lastFilter()
		return f != nil && slices.Contains(f.MACs, [6]byte(dirMAC)) && len(f.VIPs) == 2
	}, "the links' filter of two VIPs with the director's MAC %v", dirMAC)
	_, errOut, st := ta.adm("-A -t 198.18.0.102:80 -s rr")
	if st == 0 || !strings.Contains(errOut, "3 IPv4 VIPs and NAT real servers, and the test backend receives at most 2 (its map holds 2)") {
		t.Errorf("third VIP: status %d, stderr %q; want a refusal with the reason", st, errOut)
	}
	if out := ta.ok("-Ln"); strings.Contains(out, "198.18.0.102") {
		t.Errorf("the refused service is listed:\n%s", out)
	}
	big, err := config.Parse("test.toml", []byte(text+"[[service]]\naddress = \"198.18.0.103:80\"\n[[service]]\naddress = \"198.18.0.104:80\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(context.Background(), big); !errors.Is(err, ErrTooManyVIPs) {
		t.Errorf("reload with 3 VIPs: %v, want ErrTooManyVIPs", err)
	}
}
