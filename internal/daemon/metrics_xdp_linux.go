package daemon

import (
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afxdp"
)

// xdpCounters calls emit with every counter of the XDP programs behind links (one
// per device, however many of its queues' sockets are among links).
func xdpCounters(links []dataplane.Link, emit func(v uint64, link, reason string)) {
	var seen []*afxdp.Device
	for _, l := range links {
		s, ok := l.(*afxdp.Socket)
		if !ok || s.Device() == nil {
			continue
		}
		dev := s.Device()
		dup := false
		for _, d := range seen {
			dup = dup || d == dev
		}
		if dup {
			continue
		}
		seen = append(seen, dev)
		ps, _ := dev.ProgramStats() // on error: the last values read
		for r := range ps {
			emit(ps[r], s.Name(), afxdp.Reason(r).String())
		}
	}
}
