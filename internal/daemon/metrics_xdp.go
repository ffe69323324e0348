package daemon

import "github.com/prometheus/client_golang/prometheus"

// descXDPFrames counts, per interface, what gvs's XDP program (io = "afxdp") did with
// the frames it took from the kernel: redirected to gvs's sockets, by why, and the
// frames it had to pass to the kernel instead because their receive queue had no
// socket (reason="no_socket": the queue count grew after gvs started; a restart serves
// them).
var descXDPFrames = prometheus.NewDesc("gvs_xdp_frames_total",
	"Frames gvs's XDP program redirected to its sockets, by reason (vip4, vip6, nat4, nat6, arp, ns, vrrp), and no_socket: frames of a receive queue without a socket, passed to the kernel instead.",
	[]string{"link", "reason"}, nil)
