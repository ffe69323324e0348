package importer

import (
	"fmt"
	"reflect"

	"github.com/BurntSushi/toml"

	"github.com/gvs-lb/gvs/internal/config"
)

// CheckRoundTrip checks that im.TOML is what marshalling its configuration gives:
// it decodes the TOML's live blocks into the config-shaped value the writer
// marshals (refusing any key that value does not carry), marshals that again
// without comments, parses the result and compares it with im.Config, line numbers
// aside. It returns nil when they are the same configuration. The importers' tests
// and fuzz targets call it on every import.
func CheckRoundTrip(im *Imported) error {
	var f tomlFile
	md, err := toml.Decode(string(im.TOML), &f)
	if err != nil {
		return fmt.Errorf("import round trip: decode: %w", err)
	}
	if keys := md.Undecoded(); len(keys) > 0 {
		return fmt.Errorf("import round trip: keys the writer's value does not carry: %v", keys)
	}
	var text []byte
	for _, l := range marshal(f) {
		text = append(text, l+"\n"...)
	}
	cfg, err := config.Parse(im.Config.File, text)
	if err != nil {
		return fmt.Errorf("import round trip: the marshalled value does not parse: %w\n%s", err, text)
	}
	a, b := withoutLines(im.Config), withoutLines(cfg)
	if reflect.DeepEqual(a, b) {
		return nil
	}
	switch {
	case !reflect.DeepEqual(a.Director, b.Director):
		return fmt.Errorf("import round trip: director\n got %+v\nwant %+v", b.Director, a.Director)
	case len(a.Services) != len(b.Services) || len(a.VRRP) != len(b.VRRP) || len(a.VRRPSyncGroups) != len(b.VRRPSyncGroups):
		return fmt.Errorf("import round trip: %d services, %d vrrp, %d sync groups; want %d, %d, %d",
			len(b.Services), len(b.VRRP), len(b.VRRPSyncGroups), len(a.Services), len(a.VRRP), len(a.VRRPSyncGroups))
	}
	for i := range a.Services {
		if !reflect.DeepEqual(a.Services[i], b.Services[i]) {
			return fmt.Errorf("import round trip: service[%d]\n got %+v\nwant %+v", i, b.Services[i], a.Services[i])
		}
	}
	for i := range a.VRRP {
		if !reflect.DeepEqual(a.VRRP[i], b.VRRP[i]) {
			return fmt.Errorf("import round trip: vrrp[%d]\n got %+v\nwant %+v", i, b.VRRP[i], a.VRRP[i])
		}
	}
	switch {
	case !reflect.DeepEqual(a.Scripts, b.Scripts):
		return fmt.Errorf("import round trip: scripts\n got %+v\nwant %+v", b.Scripts, a.Scripts)
	case !reflect.DeepEqual(a.VRRPScripts, b.VRRPScripts):
		return fmt.Errorf("import round trip: vrrp_script\n got %+v\nwant %+v", b.VRRPScripts, a.VRRPScripts)
	case !reflect.DeepEqual(a.TrackFiles, b.TrackFiles):
		return fmt.Errorf("import round trip: vrrp_track_file\n got %+v\nwant %+v", b.TrackFiles, a.TrackFiles)
	case !reflect.DeepEqual(a.TrackProcesses, b.TrackProcesses):
		return fmt.Errorf("import round trip: vrrp_track_process\n got %+v\nwant %+v", b.TrackProcesses, a.TrackProcesses)
	}
	return fmt.Errorf("import round trip: vrrp_sync_group\n got %+v\nwant %+v", b.VRRPSyncGroups, a.VRRPSyncGroups)
}

// withoutLines returns a copy of c with every Line and the file name zeroed.
func withoutLines(c *config.Config) *config.Config {
	out := *c
	out.File = ""
	out.Services = append([]config.Service(nil), c.Services...)
	for i := range out.Services {
		s := &out.Services[i]
		s.Line = 0
		s.Match = append([]config.Match(nil), s.Match...)
		for j := range s.Match {
			s.Match[j].Line = 0
		}
		s.RealServers = append([]config.RealServer(nil), s.RealServers...)
		for j := range s.RealServers {
			s.RealServers[j].Line = 0
			s.RealServers[j].Checks = append([]config.Check(nil), s.RealServers[j].Checks...)
			for k := range s.RealServers[j].Checks {
				s.RealServers[j].Checks[k].Line = 0
			}
		}
		if s.Check != nil {
			ch := *s.Check
			ch.Line = 0
			s.Check = &ch
		}
	}
	out.VRRP = append([]config.VRRP(nil), c.VRRP...)
	for i := range out.VRRP {
		out.VRRP[i].Line = 0
	}
	out.VRRPScripts = append([]config.VRRPScript(nil), c.VRRPScripts...)
	for i := range out.VRRPScripts {
		out.VRRPScripts[i].Line = 0
	}
	out.TrackFiles = append([]config.TrackFile(nil), c.TrackFiles...)
	for i := range out.TrackFiles {
		out.TrackFiles[i].Line = 0
	}
	out.TrackProcesses = append([]config.TrackProcess(nil), c.TrackProcesses...)
	for i := range out.TrackProcesses {
		out.TrackProcesses[i].Line = 0
	}
	out.VRRPSyncGroups = append([]config.VRRPSyncGroup(nil), c.VRRPSyncGroups...)
	for i := range out.VRRPSyncGroups {
		out.VRRPSyncGroups[i].Line = 0
	}
	return &out
}
