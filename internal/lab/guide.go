package lab

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"text/tabwriter"
)

// WriteGuide prints the lab's topology and the commands to try in it, as
// `gvs lab up` shows them to a student.
func (l *Lab) WriteGuide(w io.Writer) error {
	s := l.spec
	gvs := l.gvsCommand()
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("Lab %q is up: %s, %d director(s), %d real server(s), VIP %v.", s.Prefix, strings.ToUpper(s.Mode.String()), s.Directors, s.RealServers, s.VIP)
	p("")
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAMESPACE\tIF\tADDRESS\tMAC\tROLE")
	for _, h := range l.hosts {
		if h.Role == Switch {
			continue
		}
		for i, k := range h.Links {
			role := ""
			if i == 0 {
				role = l.describe(h)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", h.NS, k.Name, k.Addr, k.MAC, role)
		}
	}
	sw := l.hosts[0]
	bridges := "br0 (" + s.Subnet.String() + ")"
	if s.Mode == NAT {
		bridges += ", br1 (" + s.Outside.String() + ")"
	}
	fmt.Fprintf(tw, "  %s\t\t\t\tswitch: %s\n", sw.NS, bridges)
	tw.Flush()

	client, _ := l.Host("client")
	dir1, _ := l.Host("dir1")
	rs := l.hostsWith(RealServer)
	in := func(h Host, cmd string, args ...any) string {
		return "  ip netns exec " + h.NS + " " + fmt.Sprintf(cmd, args...)
	}
	p("")
	if s.Mode == NAT {
		p("Without a director the client cannot reach the real servers: they answer through")
		p("%s (their default route), whose kernel does not forward. From a real server:", dir1.NS)
		p(in(rs[0], "ip route get %v", client.Addr()))
	} else {
		p("The real servers answer on their own addresses already:")
		for _, h := range rs[:min(len(rs), 2)] {
			p(in(client, "curl -s http://%v/", hostPort(h.Addr().String(), s.HTTPPort)))
		}
	}
	p("")
	for _, d := range l.hostsWith(Director) {
		p("Start director %s (config %s):", d.Name, l.ConfigPath(d.Name))
		p(in(d, "%s run -c %s", gvs, l.ConfigPath(d.Name)))
	}
	p("")
	p("Then, through the VIP (round robin over %d real servers):", len(rs))
	p(in(client, "curl -s http://%v/", hostPort(s.VIP.String(), s.HTTPPort)))
	p("  for i in 1 2 3 4; do ip netns exec %s curl -s http://%v/; done", client.NS, hostPort(s.VIP.String(), s.HTTPPort))
	p("")
	switch s.Mode {
	case DR:
		p("Watch the DR rewrite: same IPs, new MACs (%s > %s, then %s > %s):", client.MAC(), dir1.MAC(), dir1.MAC(), rs[0].MAC())
	case NAT:
		p("Watch the NAT rewrite: destination VIP becomes the real server's address on the way in,")
		p("and the real server's source becomes the VIP again on the way out:")
	case TUN:
		p("Watch the IP-in-IP encapsulation (outer %v > real server, inner client > VIP);", dir1.Addr())
		p("each real server decapsulates in userspace into %s (log: %s-rs-tun.log in %s):", tunDev, rs[0].Name, l.RunDir())
	}
	switch s.Mode {
	case NAT: // the rewritten halves no longer mention the VIP
		p(in(dir1, "tcpdump -e -n -i eth0 tcp port %d", s.HTTPPort))
	case TUN: // the encapsulated copy's outer header does not name the VIP
		p(in(dir1, "tcpdump -e -n -i eth0 'host %v or ip proto 4'", s.VIP))
	default:
		p(in(dir1, "tcpdump -e -n -i eth0 host %v", s.VIP))
	}
	p(in(rs[0], "tcpdump -e -n -i eth0"))
	if s.Mode == TUN {
		p(in(rs[0], "tcpdump -n -i %s", tunDev))
	}
	if s.Directors > 1 {
		p("")
		p("Two directors run VRRP (dir1 MASTER, dir2 BACKUP): stop dir1's gvs and dir2 takes the VIP over.")
	}
	p("")
	state := ""
	if s.StateDir != DefaultStateDir {
		state = " --state-dir " + s.StateDir
	}
	p("Status and teardown (logs and state in %s):", l.RunDir())
	p("  %s lab status --prefix %s%s", gvs, s.Prefix, state)
	p("  %s lab down --prefix %s%s", gvs, s.Prefix, state)
	_, err := io.WriteString(w, b.String())
	return err
}

// describe is a host's role column in the guide.
func (l *Lab) describe(h Host) string {
	s := l.spec
	switch h.Role {
	case Client:
		if s.Mode == NAT {
			gw, _ := l.Host("gw")
			return fmt.Sprintf("client, outside, default route via %v", gw.Links[1].Addr.Addr())
		}
		return "client"
	case Gateway:
		return "gateway: routes between outside and inside (ip_forward=1)"
	case Director:
		return "director: no VIP on the kernel, ip_forward=0"
	case RealServer:
		d := fmt.Sprintf("real server: HTTP :%d answers %q, UDP echo :%d", s.HTTPPort, h.Name, s.UDPPort)
		switch s.Mode {
		case NAT:
			dir1, _ := l.Host("dir1")
			d += fmt.Sprintf("; default route via %v", dir1.Addr())
		case TUN:
			d += "; VIP on lo, arp_ignore=1 arp_announce=2, IPIP decapsulated into " + tunDev
		default:
			d += "; VIP on lo, arp_ignore=1 arp_announce=2"
		}
		return d
	}
	return h.Role.String()
}

// gvsCommand is how the guide names the gvs binary: "gvs" when that is what
// $PATH finds, else its path.
func (l *Lab) gvsCommand() string {
	p, err := exec.LookPath("gvs")
	if err != nil {
		return l.spec.Exe
	}
	a, err1 := os.Stat(p)
	b, err2 := os.Stat(l.spec.Exe)
	if err1 == nil && err2 == nil && os.SameFile(a, b) {
		return "gvs"
	}
	return l.spec.Exe
}

// hostPort is an HTTP URL's host part: the port only when it is not 80.
func hostPort(host string, port uint16) string {
	if port == 80 {
		return host
	}
	return fmt.Sprintf("%s:%d", host, port)
}
