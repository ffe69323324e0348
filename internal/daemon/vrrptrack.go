package daemon

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/track"
	"github.com/gvs-lb/gvs/vrrp"
)

// vrrpTracks returns the tracked objects of one [[vrrp]] instance as the Runner's
// inputs (vrrp.Track: a fault, or a delta added to the configured priority). The
// instance's own interface is the Member's LinkUp, not a Track.
//
// Every kind of tracked object comes through here: track_interface and
// track_service below; the trackers of vrrp_script, track_file and track_process
// append theirs the same way (one vrrp.Track per tracked object, State returning its
// cached result without blocking, and Runner.Reassess when it changed). linkUp
// reports whether an interface exists and is up.
func (dm *Daemon) vrrpTracks(v config.VRRP, linkUp func(name string) bool) []vrrp.Track {
	var tracks []vrrp.Track
	for _, ti := range v.TrackInterface {
		// keepalived's weight and reverse rules (track.Contribution, docs/scripts.md §1.3).
		tracks = append(tracks, stateTrack("interface "+ti.Name, int(ti.Weight), ti.Reverse, func() track.State {
			if linkUp(ti.Name) {
				return track.Up
			}
			return track.Down
		}))
	}
	// Services without a weight count together (config.example.toml): FAULT while
	// none of them has a live real server.
	var together []netip.AddrPort
	var names []string
	for _, ts := range v.TrackService {
		if ts.Weight == 0 {
			together = append(together, ts.Addr)
			names = append(names, ts.Addr.String())
			continue
		}
		tracks = append(tracks, vrrp.WeightedTrack("service "+ts.Addr.String(), int(ts.Weight), false, func() bool { return dm.serviceUp(ts.Addr) }))
	}
	if len(together) > 0 {
		tracks = append(tracks, vrrp.WeightedTrack("service "+strings.Join(names, ", "), 0, false, func() bool {
			return slices.ContainsFunc(together, dm.serviceUp)
		}))
	}
	tracks = append(tracks, dm.trk.tracks(v)...)       // vrrp_script, track_file, track_process (track.go)
	tracks = append(tracks, entryTracks(v, linkUp)...) // the interfaces of VIPs and routes (kvip.go)
	return tracks
}
