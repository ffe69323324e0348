package daemon

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/ipvs"
)

// svc is a test service: "TCP 198.18.0.100:80 rr" then real servers "addr:port/weight".
func svc(spec string, servers ...string) ipvs.Service {
	f := strings.Fields(spec)
	k, err := ipvs.ParseKey(f[0] + " " + f[1])
	if err != nil {
		panic(err)
	}
	s := ipvs.Service{Key: k, Scheduler: f[2]}
	for _, r := range servers {
		a, w, _ := strings.Cut(r, "/")
		var weight int32 = 1
		if w != "" {
			fmt.Sscan(w, &weight)
		}
		s.RealServers = append(s.RealServers, ipvs.RealServer{Addr: netip.MustParseAddrPort(a), Weight: weight, Method: ipvs.DR})
	}
	return s
}

// show prints services compactly: "TCP 198.18.0.100:80 rr [198.18.0.5:80/1 …]".
func show(list []ipvs.Service) string {
	var out []string
	for _, s := range list {
		var rs []string
		for _, r := range s.RealServers {
			rs = append(rs, fmt.Sprintf("%s/%d", r.Addr, r.Weight))
		}
		out = append(out, fmt.Sprintf("%s %s %v", s.Key, s.Scheduler, rs))
	}
	return strings.Join(out, "; ")
}

func showOverrides(ovs []override) string {
	var out []string
	for _, o := range ovs {
		out = append(out, fmt.Sprintf("%s: adm %s, file %s", o.target, o.adm, o.file))
	}
	return strings.Join(out, "; ")
}

func TestMergeReload(t *testing.T) {
	const web, tls = "TCP 198.18.0.100:80", "TCP 198.18.0.100:443"
	base := []ipvs.Service{svc(web+" rr", "198.18.0.5:80", "198.18.0.6:80")}
	for _, tc := range []struct {
		name           string
		old, new, cur  []ipvs.Service
		want, override string
	}{
		{
			name: "no adm change, file changes a weight and adds a service",
			old:  base, cur: base,
			new:  []ipvs.Service{svc(web+" rr", "198.18.0.5:80/3", "198.18.0.6:80"), svc(tls+" wlc", "198.18.0.5:443")},
			want: web + " rr [198.18.0.5:80/3 198.18.0.6:80/1]; " + tls + " wlc [198.18.0.5:443/1]",
		},
		{
			name: "same file: adm's drain, addition and new service survive",
			old:  base, new: base,
			cur:  []ipvs.Service{svc(web+" rr", "198.18.0.5:80", "198.18.0.6:80/0", "198.18.0.8:80/2"), svc("UDP 198.18.0.100:53 rr")},
			want: web + " rr [198.18.0.5:80/1 198.18.0.6:80/0 198.18.0.8:80/2]; UDP 198.18.0.100:53 rr []",
		},
		{
			name:     "file changes a server adm edited: the file wins",
			old:      base,
			new:      []ipvs.Service{svc(web+" rr", "198.18.0.5:80", "198.18.0.6:80/4")},
			cur:      []ipvs.Service{svc(web+" rr", "198.18.0.5:80/0", "198.18.0.6:80/0")},
			want:     web + " rr [198.18.0.5:80/0 198.18.0.6:80/4]",
			override: web + " real server 198.18.0.6:80: adm edited, file changed",
		},
		{
			name: "adm deleted a server the file leaves alone: it stays deleted",
			old:  base, new: []ipvs.Service{svc(web+" rr", "198.18.0.5:80/2", "198.18.0.6:80")},
			cur:  []ipvs.Service{svc(web+" rr", "198.18.0.5:80")},
			want: web + " rr [198.18.0.5:80/2]",
		},
		{
			name:     "adm deleted a server the file changes: it comes back",
			old:      base,
			new:      []ipvs.Service{svc(web+" rr", "198.18.0.5:80", "198.18.0.6:80/2")},
			cur:      []ipvs.Service{svc(web+" rr", "198.18.0.5:80")},
			want:     web + " rr [198.18.0.5:80/1 198.18.0.6:80/2]",
			override: web + " real server 198.18.0.6:80: adm deleted, file changed",
		},
		{
			name:     "file removes a server adm edited",
			old:      base,
			new:      []ipvs.Service{svc(web+" rr", "198.18.0.5:80")},
			cur:      []ipvs.Service{svc(web+" rr", "198.18.0.5:80", "198.18.0.6:80/9")},
			want:     web + " rr [198.18.0.5:80/1]",
			override: web + " real server 198.18.0.6:80: adm edited, file removed",
		},
		{
			name:     "file adds a server adm added otherwise",
			old:      base,
			new:      []ipvs.Service{svc(web+" rr", "198.18.0.5:80", "198.18.0.6:80", "198.18.0.7:80/5")},
			cur:      []ipvs.Service{svc(web+" rr", "198.18.0.5:80", "198.18.0.6:80", "198.18.0.7:80/1")},
			want:     web + " rr [198.18.0.5:80/1 198.18.0.6:80/1 198.18.0.7:80/5]",
			override: web + " real server 198.18.0.7:80: adm added, file added",
		},
		{
			name:     "file changes the scheduler adm changed; adm's servers stay",
			old:      base,
			new:      []ipvs.Service{svc(web+" wrr", "198.18.0.5:80", "198.18.0.6:80")},
			cur:      []ipvs.Service{svc(web+" lc", "198.18.0.5:80", "198.18.0.6:80/0")},
			want:     web + " wrr [198.18.0.5:80/1 198.18.0.6:80/0]",
			override: web + ": adm edited, file changed",
		},
		{
			name: "adm deleted a service the file leaves alone: it stays deleted",
			old:  base, new: base, cur: nil,
			want: "",
		},
		{
			name: "file removes a service adm edited",
			old:  base, new: nil,
			cur:      []ipvs.Service{svc(web+" rr", "198.18.0.5:80/0", "198.18.0.6:80")},
			want:     "",
			override: web + ": adm edited, file removed",
		},
		{
			name: "file adds a service adm added otherwise",
			old:  nil, new: base,
			cur:      []ipvs.Service{svc(web+" sh", "198.18.0.9:80")},
			want:     web + " rr [198.18.0.5:80/1 198.18.0.6:80/1]",
			override: web + ": adm added, file added",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ovs := mergeReload(tc.old, tc.new, tc.cur)
			if s := show(got); s != tc.want {
				t.Errorf("merged\n got %s\nwant %s", s, tc.want)
			}
			if s := showOverrides(ovs); s != tc.override {
				t.Errorf("overrides\n got %s\nwant %s", s, tc.override)
			}
		})
	}
}

// TestMergeReloadSharesNothing: the result can be edited without touching the
// inputs (published configurations are immutable).
func TestMergeReloadSharesNothing(t *testing.T) {
	old := []ipvs.Service{svc("TCP 198.18.0.100:80 rr", "198.18.0.5:80")}
	cur := []ipvs.Service{svc("TCP 198.18.0.100:80 rr", "198.18.0.5:80", "198.18.0.6:80")}
	got, _ := mergeReload(old, old, cur)
	got[0].RealServers[0].Weight = 7
	if cur[0].RealServers[0].Weight != 1 || old[0].RealServers[0].Weight != 1 {
		t.Error("the merged services share real servers with their inputs")
	}
}

// TestDirectorChangesCoversEveryKey changes each field of [director] (and of its
// sysctl and timeout tables) in turn and checks that directorChanges names one key
// for it, so a key added to config.Director cannot be silently ignored by a reload.
func TestDirectorChangesCoversEveryKey(t *testing.T) {
	base := config.Default().Director
	d := base
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		for i := 0; i < v.NumField(); i++ {
			f, name := v.Field(i), path+v.Type().Field(i).Name
			if f.Kind() == reflect.Struct && f.Type() != reflect.TypeOf(netip.Addr{}) {
				walk(f, name+".")
				continue
			}
			old := reflect.New(f.Type()).Elem()
			old.Set(f)
			switch {
			case f.Type() == reflect.TypeOf(netip.Addr{}):
				f.Set(reflect.ValueOf(netip.MustParseAddr("198.18.9.9")))
			case f.Kind() == reflect.String:
				f.SetString(f.String() + "x")
			case f.Kind() == reflect.Bool:
				f.SetBool(!f.Bool())
			case f.Kind() == reflect.Int || f.Kind() == reflect.Int64:
				f.SetInt(f.Int() + 1)
			case f.Kind() == reflect.Array:
				f.Index(0).SetUint(f.Index(0).Uint() + 1)
			default:
				t.Fatalf("%s: no way to change a %s in this test", name, f.Type())
			}
			if got := directorChanges(&base, &d); len(got) != 1 {
				t.Errorf("changing %s: directorChanges says %v, want one key", name, got)
			}
			f.Set(old)
		}
	}
	walk(reflect.ValueOf(&d).Elem(), "")
}
