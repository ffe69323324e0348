package daemon

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/internal/control"
	"github.com/gvs-lb/gvs/internal/testutil"
)

// tcpPkt describes a client frame to the director.
type tcpPkt struct {
	client, vip        netip.AddrPort
	syn, ack, fin, rst bool
	udp                bool
	payload            int
}

func (p tcpPkt) frame(t testing.TB) dataplane.Frame {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, DstMAC: dirMAC, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: p.client.Addr().AsSlice(), DstIP: p.vip.Addr().AsSlice()}
	var l4 gopacket.SerializableLayer
	if p.udp {
		ip.Protocol = layers.IPProtocolUDP
		u := &layers.UDP{SrcPort: layers.UDPPort(p.client.Port()), DstPort: layers.UDPPort(p.vip.Port())}
		u.SetNetworkLayerForChecksum(ip)
		l4 = u
	} else {
		tc := &layers.TCP{SrcPort: layers.TCPPort(p.client.Port()), DstPort: layers.TCPPort(p.vip.Port()), SYN: p.syn, ACK: p.ack, FIN: p.fin, RST: p.rst, Seq: 1000, Window: 512}
		tc.SetNetworkLayerForChecksum(ip)
		l4 = tc
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		eth, ip, l4, gopacket.Payload(make([]byte, p.payload))); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	fb := make([]byte, dataplane.Headroom+len(b))
	copy(fb[dataplane.Headroom:], b)
	return dataplane.Frame{Buf: fb, Off: dataplane.Headroom, Len: len(b)}
}

// send runs frames through the worker at the current time, publishes the
// counters, and returns the destination MACs of the frames sent on.
func (ta *testAdmin) send(pkts ...tcpPkt) []string {
	ta.t.Helper()
	in := make([]dataplane.Frame, len(pkts))
	for i, p := range pkts {
		in[i] = p.frame(ta.t)
	}
	now := ta.d.now()
	out := ta.w.Process(in, now, nil)
	ta.w.Flush(now)
	var macs []string
	for _, f := range out {
		macs = append(macs, net.HardwareAddr(f.Bytes()[:6]).String())
	}
	return macs
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// syns are n SYNs to vip from distinct client ports.
func syns(vip string, n int) []tcpPkt {
	var ps []tcpPkt
	for i := range n {
		ps = append(ps, tcpPkt{client: netip.AddrPortFrom(netip.MustParseAddr("198.51.100.7"), uint16(40000+i)), vip: ap(vip), syn: true})
	}
	return ps
}

// diffText reports the first line where got differs from want, with blanks made
// visible (listings end lines in blanks).
func diffText(t *testing.T, what, want, got string) {
	t.Helper()
	if want == got {
		return
	}
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	vis := func(l []string, i int) string {
		if i >= len(l) {
			return "(none)"
		}
		return strings.ReplaceAll(l[i], " ", "·") + "$"
	}
	for i := 0; ; i++ {
		if i >= len(wl) || i >= len(gl) || wl[i] != gl[i] {
			t.Errorf("%s: line %d\nwant %s\ngot  %s\nwhole output:\n%s", what, i+1, vis(wl, i), vis(gl, i), got)
			return
		}
	}
}

// diffLines compares two line lists as sets (sorted), reporting both.
func diffLines(want, got []string) string {
	w, g := sortedCopy(want), sortedCopy(got)
	if strings.Join(w, "\n") == strings.Join(g, "\n") {
		return ""
	}
	return "want:\n" + strings.Join(w, "\n") + "\ngot:\n" + strings.Join(g, "\n")
}

const listTitles = "IP Virtual Server version 1.2.1 (size=4096)\n" +
	"Prot LocalAddress:Port Scheduler Flags\n" +
	"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"

// TestSeedWalkthrough replays seed 000's ipvsadm session (DR, rr, two real
// servers, rs2 removed and added back with weight 2, four finished connections
// on rs1) and expects its listings byte for byte, trailing blanks included.
func TestSeedWalkthrough(t *testing.T) {
	ta := newTestAdmin(t)
	ta.ok("-A -t 172.19.0.100:80 -s rr")
	ta.ok("-a -t 172.19.0.100:80 -r 172.19.0.5 -g")
	ta.ok("-a -t 172.19.0.100:80 -r 172.19.0.6 -g")
	diffText(t, "-Ln after setup", listTitles+
		"TCP  172.19.0.100:80 rr\n"+
		"  -> 172.19.0.5:80                Route   1      0          0         \n"+
		"  -> 172.19.0.6:80                Route   1      0          0         \n",
		ta.ok("-Ln"))
	if n := ta.res.calls.Load(); n != 2 {
		t.Errorf("Resolve called %d times, want 2", n)
	}

	// rs2 fails its health check: keepalived removes it.
	ta.ok("-d -t 172.19.0.100:80 -r 172.19.0.6")
	// Four short connections all go to rs1. With DR the director sees the
	// client's side only: SYN (SYN_RECV), ACK (ESTABLISHED), FIN (FIN_WAIT,
	// inactive).
	var pkts []tcpPkt
	for _, p := range syns("172.19.0.100:80", 4) {
		pkts = append(pkts, p)
		p.syn, p.ack = false, true
		pkts = append(pkts, p)
		p.fin = true
		pkts = append(pkts, p)
	}
	for _, mac := range ta.send(pkts...) {
		if mac != "02:00:00:00:00:05" {
			t.Errorf("frame sent to %s, want rs1 02:00:00:00:00:05", mac)
		}
	}
	diffText(t, "-Ln with rs2 down", listTitles+
		"TCP  172.19.0.100:80 rr\n"+
		"  -> 172.19.0.5:80                Route   1      0          4         \n",
		ta.ok("-Ln"))

	// rs2 comes back with weight 2: the seed's second listing.
	ta.ok("-a -t 172.19.0.100:80 -r 172.19.0.6 -g -w 2")
	diffText(t, "-Ln with rs2 back", listTitles+
		"TCP  172.19.0.100:80 rr\n"+
		"  -> 172.19.0.5:80                Route   1      0          4         \n"+
		"  -> 172.19.0.6:80                Route   2      0          0         \n",
		ta.ok("-Ln"))
	// -ln, -L -n and --list --numeric are the same listing; the lowercase -l
	// of seed 001 too.
	want := ta.ok("-Ln")
	for _, l := range []string{"-ln", "-L -n", "--list --numeric", "-l -n"} {
		diffText(t, l, want, ta.ok(l))
	}

	// Editing a weight keeps everything else.
	ta.ok("-e -t 172.19.0.100:80 -r 172.19.0.6 -g -w 3")
	diffText(t, "-Ln after -e", listTitles+
		"TCP  172.19.0.100:80 rr\n"+
		"  -> 172.19.0.5:80                Route   1      0          4         \n"+
		"  -> 172.19.0.6:80                Route   3      0          0         \n",
		ta.ok("-Ln"))
	// Resolved MACs are kept like a neighbour cache (and refreshed every 30 s):
	// neither adding rs2 back nor -e asks the network again.
	if n := ta.res.calls.Load(); n != 2 {
		t.Errorf("Resolve called %d times, want 2", n)
	}
}

// TestSeed001NAT follows seed 001's NAT session, including its malformed delete
// command, which ipvsadm refuses too.
func TestSeed001NAT(t *testing.T) {
	ta := newTestAdmin(t)
	ta.ok("-C")
	ta.ok("-A -t 12.0.0.1:80 -s rr")
	ta.ok("-a -t 12.0.0.1:80 -r 192.168.233.20:80 -m")
	list := listTitles +
		"TCP  12.0.0.1:80 rr\n" +
		"  -> 192.168.233.20:80            Masq    1      0          0         \n"
	diffText(t, "-ln", list, ta.ok("-ln"))
	diffText(t, "ipvsadm-save -n", "-A -t 12.0.0.1:80 -s rr\n-a -t 12.0.0.1:80 -r 192.168.233.20:80 -m -w 1\n", ta.ok("-S -n"))

	out, errOut, st := ta.adm("-d -r 192.168.233.20: -t 12.0.0.1:80")
	if out != "" || errOut != "illegal real server address[:port] specified\n" || st != 2 {
		t.Errorf("seed's delete with an empty port: %q %q %d", out, errOut, st)
	}
	diffText(t, "-ln after the refused delete", list, ta.ok("-ln"))
	ta.ok("-d -r 192.168.233.20:80 -t 12.0.0.1:80")
	ta.ok("-D -t 12.0.0.1:80")
	diffText(t, "-ln after deleting", listTitles, ta.ok("-ln"))
}

// TestErrorsChangeNothing checks ipvsadm's messages and exit statuses for
// commands the kernel or ipvsadm refuses, and that none changes the table.
func TestErrorsChangeNothing(t *testing.T) {
	ta := newTestAdmin(t)
	ta.ok("-A -t 198.18.0.100:80 -s wrr")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.5:80 -g -w 2")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.6:80 -m -x 10 -y 5")
	before := ta.ok("-Sn")
	beforeList := ta.ok("-Ln --thresholds")
	gens := ta.generations()

	for _, tc := range []struct {
		name, line, stderr string
		status             int
	}{
		{"add existing service", "-A -t 198.18.0.100:80 -s rr", "Service already exists", 255},
		{"edit missing service", "-E -t 198.18.0.100:81 -s rr", "No such service", 255},
		{"delete missing service", "-D -u 198.18.0.100:80", "No such service", 255},
		{"add server to missing service", "-a -t 198.18.0.101:80 -r 198.18.0.5", "Service not defined", 255},
		{"add existing server", "-a -t 198.18.0.100:80 -r 198.18.0.5:80 -w 7", "Destination already exists", 255},
		{"edit missing server", "-e -t 198.18.0.100:80 -r 198.18.0.7:80 -w 7", "No such destination", 255},
		{"delete missing server", "-d -t 198.18.0.100:80 -r 198.18.0.7:80", "No such destination", 255},
		{"delete server of missing service", "-d -t 198.18.0.100:8080 -r 198.18.0.5:80", "Service not defined", 255},
		{"unknown scheduler", "-A -t 198.18.0.100:443 -s fastest", "Scheduler or persistence engine not found", 255},
		{"edit to unknown scheduler", "-E -t 198.18.0.100:80 -s fastest", "Scheduler or persistence engine not found", 255},
		{"persistence engine", "-A -u 198.18.0.100:5060 -p --pe sip", "Scheduler or persistence engine not found", 255},
		{"sctp", "--add-service --sctp-service 198.18.0.100:9 -s rr", "Protocol not available", 255},
		{"thresholds", "-e -t 198.18.0.100:80 -r 198.18.0.5:80 -x 5 -y 10", "Numerical result out of range", 255},
		{"gue tunnel", "-a -t 198.18.0.100:80 -r 198.18.0.9 -i --tun-type gue --tun-port 6080", "gvs adm: --tun-type gue is not supported: gvs tunnels with IP-in-IP only", 255},
		{"tunnel without the director's IPv6 address", "-a -t 198.18.0.100:80 -r [2001:db8::9]:80 -i", "gvs adm: TCP 198.18.0.100:80: real server [2001:db8::9]:80: tunnelling needs the director's own IPv6 address as the outer source ([director] address6)", 255},
		{"zero port", "-A -t 198.18.0.100 -s rr", "Zero port specified for non-persistent service", 2},
		{"bad weight", "-e -t 198.18.0.100:80 -r 198.18.0.5:80 -w -1", "illegal weight specified", 2},
		{"list missing service", "-L -n -t 198.18.0.100:81", "No such service", 1},
		{"zero missing service", "-Z -t 198.18.0.100:81", "No such service", 255},
		{"sync daemon", "--start-daemon master", "gvs adm: gvs runs both sync daemons (master and backup) in cluster mode, set by the config's [cluster] table; --start-daemon and --stop-daemon do not apply (gvs adm -L --daemon lists them)", 255},
		{"unknown option", "-Q", "Try `gvs adm -h' or 'gvs adm --help' for more information.", 255},
		{"no command", "-t 198.18.0.100:80", "Try `gvs adm -h' or 'gvs adm --help' for more information.", 255},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, st := ta.adm(tc.line)
			if out != "" || errOut != tc.stderr+"\n" || st != tc.status {
				t.Errorf("gvs adm %s\n got stdout %q, stderr %q, status %d\nwant stderr %q, status %d", tc.line, out, errOut, st, tc.stderr+"\n", tc.status)
			}
			diffText(t, "-Sn after a refused command", before, ta.ok("-Sn"))
		})
	}
	diffText(t, "--thresholds after the refused commands", beforeList, ta.ok("-Ln --thresholds"))
	if n := ta.generations(); n != gens {
		t.Errorf("%d configurations published for refused commands", n-gens)
	}
}

// complexConf is a configuration with every kind of service gvs adm can save,
// including an fwmark service whose match rules come from the config.
const complexConf = `
[[service]]
fwmark = 7
scheduler = "wlc"
persistence = "300s"
netmask = 24
  [[service.match]]
  address = "198.18.0.100"
  protocol = "tcp"
  port = "8000-8100"
  [[service.real_server]]
  address = "198.18.0.9"
  mac = "02:00:00:00:00:09"
`

// macs returns the MAC each real server is forwarded to: pinned or resolved.
func (ta *testAdmin) macs() map[string]string {
	m := map[string]string{}
	p := ta.d.pub.Load()
	for _, s := range p.configured.list() {
		for _, r := range s.RealServers {
			mac := r.MAC
			if mac.IsZero() {
				mac = p.macs[r.Addr.Addr()]
			}
			m[s.String()+" "+r.Addr.String()] = mac.String()
		}
	}
	return m
}

func TestSaveClearRestore(t *testing.T) {
	ta := newTestAdmin(t, complexConf)
	for _, l := range []string{
		"-A -t 198.18.0.100:80 -s rr",
		"-a -t 198.18.0.100:80 -r 198.18.0.5 -g -w 3",
		"-a -t 198.18.0.100:80 -r 198.18.0.6 -g -w 0",
		"-a -t 198.18.0.100:80 -r 198.18.0.7 -i",
		"-A -t 198.18.0.100:443 -s wlc -p 600 -M 255.255.255.0",
		"-a -t 198.18.0.100:443 -r 10.0.0.5:8443 -m -x 100 -y 50",
		"-A -u 198.18.0.100:53 -s sh -b sh-port,sh-fallback -o",
		"-a -u 198.18.0.100:53 -r 10.0.0.53:53 -m",
		"-A -t [2001:db8::100]:80 -s mh -b mh-port",
		"-a -t [2001:db8::100]:80 -r [2001:db8::5]:80 -g",
		"-A -t 198.18.0.200:0 -s lc -p",
	} {
		ta.ok(l)
	}
	saved := ta.ok("-S -n")
	list := ta.ok("-L -n")
	for _, want := range []string{
		"-A -t 198.18.0.100:80 -s rr\n",
		"-a -t 198.18.0.100:80 -r 198.18.0.7:80 -i -w 1 --tun-type ipip\n",
		"-A -t 198.18.0.100:443 -s wlc -p 600 -M 255.255.255.0\n",
		"-a -t 198.18.0.100:443 -r 10.0.0.5:8443 -m -w 1\n",
		"-A -u 198.18.0.100:53 -s sh -o -b sh-fallback,sh-port\n",
		"-A -t [2001:db8::100]:80 -s mh -b mh-port\n",
		"-A -t 198.18.0.200:0 -s lc -p 360\n",
		"-A -f 7 -s wlc -p 300 -M 255.255.255.0\n",
		"-a -f 7 -r 198.18.0.9:0 -g -w 1\n",
	} {
		if !strings.Contains(saved, want) {
			t.Errorf("-S -n lacks %q:\n%s", want, saved)
		}
	}
	macs := ta.macs
	macsBefore := macs()
	if len(macsBefore) != 7 {
		t.Fatalf("%d real servers, want 7", len(macsBefore))
	}

	ta.ok("-C")
	diffText(t, "-L -n after -C", listTitles, ta.ok("-L -n"))
	if out := ta.ok("-S -n"); out != "" {
		t.Errorf("-S -n after -C: %q", out)
	}

	out, errOut, st := ta.admIn(saved, "-R")
	if out != "" || errOut != "" || st != 0 {
		t.Fatalf("-R: %q %q %d", out, errOut, st)
	}
	diffText(t, "-S -n after restore", saved, ta.ok("-S -n"))
	diffText(t, "-L -n after restore", list, ta.ok("-L -n"))
	if after := macs(); len(after) != len(macsBefore) {
		t.Errorf("%d real servers after restore, want %d", len(after), len(macsBefore))
	} else {
		for k, v := range macsBefore {
			if after[k] != v {
				t.Errorf("%s: MAC %q after restore, %q before", k, after[k], v)
			}
		}
	}
	// The fwmark service got its match rules back from the config.
	for _, s := range ta.d.Configured() {
		if s.FWMark == 7 && (len(s.Match) != 1 || s.Match[0].PortHi != 8100) {
			t.Errorf("fwmark 7 restored with match rules %+v", s.Match)
		}
	}

	// With --atomic, restoring again on top fails at its first failing line and
	// changes nothing, even though earlier lines of the stream would succeed.
	stream := "# a comment\n-A -t 198.18.0.150:80 -s rr\n\n-a -t 198.18.0.150:80 -r 198.18.0.5\n" + saved
	out, errOut, st = ta.admIn(stream, "--restore --atomic")
	if out != "" || errOut != "line 5: Service already exists\n" || st != 255 {
		t.Errorf("second -R --atomic: %q %q %d", out, errOut, st)
	}
	// A syntax error anywhere refuses the whole stream too.
	out, errOut, st = ta.admIn("-A -t 198.18.0.151:80 -s rr\n-a -t 198.18.0.151:80 -r 198.18.0.5 -w x\n", "--atomic -R")
	if out != "" || errOut != "line 2: illegal weight specified\n" || st != 2 {
		t.Errorf("-R --atomic with a bad line: %q %q %d", out, errOut, st)
	}
	// Without --atomic, a '#' line ends the stream as it ends ipvsadm's: its
	// words are no command.
	out, errOut, st = ta.admIn(stream, "--restore")
	if out != "" || errOut != "Try `gvs adm -h' or 'gvs adm --help' for more information.\n" || st != 255 {
		t.Errorf("second -R: %q %q %d", out, errOut, st)
	}
	diffText(t, "-S -n after refused restores", saved, ta.ok("-S -n"))
}

// TestRestoreLineByLine: gvs adm -R runs a stream as ipvsadm 1.31's -R does.
// A line the table refuses prints its message and the stream goes on, as does
// a line popt refuses (its option processing returns); a line ipvsadm's own
// checks refuse ends the stream (they exit), as does a line without a command
// (a '#' comment: ipvsadm's comment handling never sees the '#'). The status
// is the last line's. The stderr texts and statuses are ipvsadm's.
func TestRestoreLineByLine(t *testing.T) {
	try := "Try `gvs adm -h' or 'gvs adm --help' for more information.\n"
	tests := []struct {
		name, in, stderr string
		status           int
		table            string // -S -n afterwards
	}{
		{"empty", "", "", 0, ""},
		{"blank lines and the word ipvsadm", "\n \t\r\nipvsadm -A -t 198.18.0.150:80 -s rr\n\n",
			"", 0, "-A -t 198.18.0.150:80 -s rr\n"},
		{"failed lines go on, the last line's status",
			"-A -t 198.18.0.150:80 -s rr\n" +
				"-A -t 198.18.0.150:80 -s rr\n" +
				"-a -t 198.18.0.150:80 -r 198.18.0.5 -g\n" +
				"-a -t 198.18.0.150:80 -r 198.18.0.5 -g\n" +
				"-L --bogus\n" +
				"-e -t 198.18.0.150:80 -r 198.18.0.9\n" +
				"-a -t 198.18.0.150:80 -r 198.18.0.6:8080 -m -w 2\n",
			"Service already exists\nDestination already exists\n--bogus: unknown option\nNo such destination\n", 0,
			"-A -t 198.18.0.150:80 -s rr\n-a -t 198.18.0.150:80 -r 198.18.0.5:80 -g -w 1\n-a -t 198.18.0.150:80 -r 198.18.0.6:8080 -m -w 2\n"},
		{"last line fails", "-A -t 198.18.0.150:80\n-D -t 198.18.0.151:80\n",
			"No such service\n", 255, "-A -t 198.18.0.150:80 -s wlc\n"},
		{"popt error last", "-A -t 198.18.0.150:80\n-A -t\n",
			"-t: missing argument\n", 255, "-A -t 198.18.0.150:80 -s wlc\n"},
		{"an argument check ends it", "-A -t 198.18.0.150:80\n-a -t 198.18.0.150:80 -r 198.18.0.5 -w x\n-A -t 198.18.0.152:80\n",
			"illegal weight specified\n", 2, "-A -t 198.18.0.150:80 -s wlc\n"},
		{"a comment line ends it", "-A -t 198.18.0.150:80\n# ipvsadm.rules\n-A -t 198.18.0.152:80\n",
			try, 255, "-A -t 198.18.0.150:80 -s wlc\n"},
		{"a comment after a command", "-A -t 198.18.0.150:80 -s rr # the web VIP\n-A -t 198.18.0.152:80\n",
			"unexpected argument #\n", 2, ""},
		{"-R inside", "-A -t 198.18.0.150:80\n-R\n-A -t 198.18.0.152:80\n", try, 255, "-A -t 198.18.0.150:80 -s wlc\n"},
		{"--set takes effect", "--set 100 0 0\n", "", 0, ""},
		{"-r before -t: port 0 for masq", "-A -t 198.18.0.150:80\n-a -r 198.18.0.5 -t 198.18.0.150:80 -m\n-a -r 198.18.0.6 -t 198.18.0.150:80 -g\n",
			"", 0, "-A -t 198.18.0.150:80 -s wlc\n-a -t 198.18.0.150:80 -r 198.18.0.5:0 -m -w 1\n-a -t 198.18.0.150:80 -r 198.18.0.6:80 -g -w 1\n"},
		{"inet_aton masks", "-A -t 198.18.0.150:80 -p 60 -M 0.0.0.0\n-A -t 198.18.0.151:80 -p 60 -M 24\n-A -t 198.18.0.152:80 -p 60 -M 255.0.255.0\n-A -t 198.18.0.153:80 -p 60 -M 0xffff0000\n",
			"gvs adm: -M 0.0.0.24 is not a netmask of leading ones (ipvsadm reads -M 24 as the address 0.0.0.24, not as a prefix length): gvs groups persistent clients by address prefix; write the prefix as a mask, e.g. -M 255.255.255.0 for /24\n" +
				"gvs adm: -M 255.0.255.0 is not a netmask of leading ones: gvs groups persistent clients by address prefix; write the prefix as a mask, e.g. -M 255.255.255.0 for /24\n",
			0, "-A -t 198.18.0.150:80 -s wlc -p 60 -M 0.0.0.0\n-A -t 198.18.0.153:80 -s wlc -p 60 -M 255.255.0.0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ta := newTestAdmin(t)
			out, errOut, st := ta.admIn(tt.in, "-R")
			if out != "" || errOut != tt.stderr || st != tt.status {
				t.Errorf("-R: stdout %q, stderr %q, status %d; want stderr %q, status %d", out, errOut, st, tt.stderr, tt.status)
			}
			diffText(t, "-S -n after -R", tt.table, ta.ok("-S -n"))
		})
	}
}

// TestRestoreLineByLineOneGeneration: the lines of a stream that worked take
// effect together, in one generation of the Director.
func TestRestoreLineByLineOneGeneration(t *testing.T) {
	ta := newTestAdmin(t)
	before := ta.generations()
	var stream strings.Builder
	for i := range 50 {
		fmt.Fprintf(&stream, "-A -t 198.18.1.%d:80\n", i+1)
	}
	_, errOut, st := ta.admIn(stream.String()+"-A -t 198.18.1.1:80\n", "-R")
	if st != 255 || errOut != "Service already exists\n" {
		t.Fatalf("-R: %q %d", errOut, st)
	}
	if n := len(ta.d.Director().Services()); n != 50 {
		t.Errorf("%d services after -R, want 50", n)
	}
	if g := ta.generations() - before; g != 1 {
		t.Errorf("%d generations for one -R, want 1", g)
	}
}

func TestRestoreSetsTimeoutsWithTheRest(t *testing.T) {
	ta := newTestAdmin(t)
	ta.ok("-A -t 198.18.0.100:80")
	_, errOut, st := ta.admIn("--set 100 0 0\n-A -t 198.18.0.100:80\n", "-R --atomic")
	if st != 255 || errOut != "line 2: Service already exists\n" {
		t.Errorf("-R --atomic: %q %d", errOut, st)
	}
	if got := ta.ok("-L --timeout"); got != "Timeout (tcp tcpfin udp): 900 120 300\n" {
		t.Errorf("a refused restore set timeouts: %q", got)
	}
	// Line by line, --set worked although the line after it failed.
	_, errOut, st = ta.admIn("--set 100 0 0\n-A -t 198.18.0.100:80\n", "-R")
	if st != 255 || errOut != "Service already exists\n" {
		t.Errorf("-R: %q %d", errOut, st)
	}
	if got := ta.ok("-L --timeout"); got != "Timeout (tcp tcpfin udp): 100 120 300\n" {
		t.Errorf("timeouts after -R: %q", got)
	}
	ta.ok("-C")
	if _, errOut, st := ta.admIn("--set 200 0 0\n-A -t 198.18.0.100:80\n", "-R --atomic"); st != 0 {
		t.Fatalf("-R --atomic: %q", errOut)
	}
	if got := ta.ok("-L --timeout"); got != "Timeout (tcp tcpfin udp): 200 120 300\n" {
		t.Errorf("timeouts after restore: %q", got)
	}
}

func TestSetTimeouts(t *testing.T) {
	ta := newTestAdmin(t)
	if got := ta.ok("-L --timeout"); got != "Timeout (tcp tcpfin udp): 900 120 300\n" {
		t.Errorf("default timeouts: %q", got)
	}
	ta.ok("--set 3600 0 30")
	if got := ta.ok("-L --timeout"); got != "Timeout (tcp tcpfin udp): 3600 120 30\n" {
		t.Errorf("after --set 3600 0 30: %q", got)
	}
	to := ta.d.d.Table().Timeouts()
	if to.TCP[conntrack.StateEstablished] != time.Hour || to.TCP[conntrack.StateFinWait] != 120*time.Second || to.UDP != 30*time.Second {
		t.Errorf("table timeouts: %+v", to)
	}
	// Other states keep their timeouts.
	if to.TCP[conntrack.StateSynRecv] != 60*time.Second {
		t.Errorf("SYN_RECV timeout changed to %v", to.TCP[conntrack.StateSynRecv])
	}
	if _, errOut, st := ta.adm("--set 1 2"); st != 2 || errOut != "--set option requires 3 timeout values\n" {
		t.Errorf("--set with two values: %q %d", errOut, st)
	}
}

func TestZeroStats(t *testing.T) {
	ta := newTestAdmin(t)
	ta.ok("-A -t 198.18.0.100:80 -s rr")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.5 -g")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.6 -g")
	ta.ok("-A -u 198.18.0.100:53 -s rr")
	ta.ok("-a -u 198.18.0.100:53 -r 198.18.0.5 -g")
	ta.send(syns("198.18.0.100:80", 4)...)
	ta.send(tcpPkt{client: ap("198.51.100.9:5353"), vip: ap("198.18.0.100:53"), udp: true, payload: 10})

	const statsTitles = "IP Virtual Server version 1.2.1 (size=4096)\n" +
		"Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n" +
		"  -> RemoteAddress:Port\n"
	// A SYN without options is a 54-byte frame, 40 bytes of IP; the UDP
	// datagram is 38.
	diffText(t, "--stats", statsTitles+
		"TCP  198.18.0.100:80                     4        4        0      160        0\n"+
		"  -> 198.18.0.5:80                       2        2        0       80        0\n"+
		"  -> 198.18.0.6:80                       2        2        0       80        0\n"+
		"UDP  198.18.0.100:53                     1        1        0       38        0\n"+
		"  -> 198.18.0.5:53                       1        1        0       38        0\n",
		ta.ok("-L -n --stats"))

	// Zeroing one service leaves the other alone.
	ta.ok("-Z -t 198.18.0.100:80")
	diffText(t, "--stats after -Z -t", statsTitles+
		"TCP  198.18.0.100:80                     0        0        0        0        0\n"+
		"  -> 198.18.0.5:80                       0        0        0        0        0\n"+
		"  -> 198.18.0.6:80                       0        0        0        0        0\n"+
		"UDP  198.18.0.100:53                     1        1        0       38        0\n"+
		"  -> 198.18.0.5:53                       1        1        0       38        0\n",
		ta.ok("-L -n --stats"))

	ta.send(tcpPkt{client: ap("198.51.100.8:999"), vip: ap("198.18.0.100:80"), syn: true})
	ta.ok("-Z")
	ta.send(tcpPkt{client: ap("198.51.100.8:1000"), vip: ap("198.18.0.100:80"), syn: true})
	diffText(t, "--stats after -Z and one more connection", statsTitles+
		"TCP  198.18.0.100:80                     1        1        0       40        0\n"+
		"  -> 198.18.0.5:80                       1        1        0       40        0\n"+
		"  -> 198.18.0.6:80                       0        0        0        0        0\n"+
		"UDP  198.18.0.100:53                     0        0        0        0        0\n"+
		"  -> 198.18.0.5:53                       0        0        0        0        0\n",
		ta.ok("-L -n --stats"))
	// The Director's own counters are not zeroed (metrics read those).
	if got := ta.d.d.Totals().Services[0].Conns; got != 6 {
		t.Errorf("Director's service counter %d, want 6", got)
	}
}

func TestRates(t *testing.T) {
	ta := newTestAdmin(t)
	ta.ok("-A -t 198.18.0.100:80 -s rr")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.5 -g")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.6 -g")
	ta.a.estimate() // starts the estimates
	// 48 connections in one 2 s period: 24/s, of which the average takes 1/4.
	ta.send(syns("198.18.0.100:80", 48)...)
	ta.a.estimate()
	const rateTitles = "IP Virtual Server version 1.2.1 (size=4096)\n" +
		"Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n" +
		"  -> RemoteAddress:Port\n"
	// 48·40 bytes / 2 s / 4 = 240 B/s.
	diffText(t, "--rate after one period", rateTitles+
		"TCP  198.18.0.100:80                     6        6        0      240        0\n"+
		"  -> 198.18.0.5:80                       3        3        0      120        0\n"+
		"  -> 198.18.0.6:80                       3        3        0      120        0\n",
		ta.ok("-Ln --rate"))
	// Each quiet period takes a quarter off: 6·(3/4)² = 3.375.
	ta.a.estimate()
	ta.a.estimate()
	if got := ta.ok("-Ln --rate"); !strings.Contains(got, "TCP  198.18.0.100:80                     3        3        0      135        0\n") {
		t.Errorf("--rate after two quiet periods:\n%s", got)
	}
	ta.ok("-Z")
	if got := ta.ok("-Ln --rate"); !strings.Contains(got, "TCP  198.18.0.100:80                     0        0        0        0        0\n") {
		t.Errorf("--rate after -Z:\n%s", got)
	}
	// The controller's ticks drive the estimator: one estimate every two 1 s ticks.
	fresh := syns("198.18.0.100:80", 48)
	for i := range fresh {
		fresh[i].client = netip.AddrPortFrom(netip.MustParseAddr("198.51.100.9"), fresh[i].client.Port())
	}
	ta.send(fresh...)
	ta.clock.Advance(time.Second)
	ta.clock.Advance(time.Second)
	testutil.Eventually(t, 10*time.Second, func() bool {
		return strings.Contains(ta.ok("-Ln --rate"), "TCP  198.18.0.100:80                     6        6        0      240        0\n")
	}, "the ticks to estimate the rates")
}

func TestConnectionList(t *testing.T) {
	ta := newTestAdmin(t)
	ta.ok("-A -t 198.18.0.100:80 -s rr")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.5 -g")
	ta.ok("-A -u 198.18.0.100:53 -s rr -p 120")
	ta.ok("-a -u 198.18.0.100:53 -r 198.18.0.6 -g")
	ta.send(tcpPkt{client: ap("198.51.100.7:40000"), vip: ap("198.18.0.100:80"), syn: true},
		tcpPkt{client: ap("198.51.100.7:5353"), vip: ap("198.18.0.100:53"), udp: true})
	ta.clock.Advance(10 * time.Second)
	got := ta.ok("-Lnc")
	// SYN_RECV lasts 60 s, a UDP connection 300 s and its template 120 s; 10 s
	// have passed.
	want := []string{
		"IPVS connection entries",
		"pro expire state       source             virtual            destination",
		"TCP 00:50  SYN_RECV    198.51.100.7:40000 198.18.0.100:80    198.18.0.5:80",
		"UDP 04:50  UDP         198.51.100.7:5353  198.18.0.100:53    198.18.0.6:53",
		"UDP 01:50  UDP         198.51.100.7:0     198.18.0.100:53    198.18.0.6:53",
	}
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) < 2 || lines[0] != want[0] || lines[1] != want[1] {
		t.Fatalf("-Lnc heading:\n%s", got)
	}
	// The table's walk order is its hash order: compare the entries as a set.
	if diff := diffLines(want[2:], lines[2:]); diff != "" {
		t.Errorf("-Lnc entries:\n%s", diff)
	}
	// Once expired they are no longer listed, even before they are reaped.
	ta.clock.Advance(5 * time.Minute)
	if got := ta.ok("-L -n -c"); got != "IPVS connection entries\npro expire state       source             virtual            destination\n" {
		t.Errorf("-L -n -c after expiry:\n%s", got)
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

// TestEditKeepsEstablished checks that an -e (weight to 0: quiesce a server)
// swaps the configuration without touching established connections.
func TestEditKeepsEstablished(t *testing.T) {
	ta := newTestAdmin(t)
	ta.ok("-A -t 198.18.0.100:80 -s rr")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.5 -g")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.6 -g")
	a := tcpPkt{client: ap("198.51.100.7:40000"), vip: ap("198.18.0.100:80"), syn: true}
	first := ta.send(a)
	if len(first) != 1 {
		t.Fatalf("SYN not forwarded: %v", first)
	}
	server := netip.MustParseAddr("198.18.0.5")
	if first[0] == macOf(netip.MustParseAddr("198.18.0.6")).String() {
		server = netip.MustParseAddr("198.18.0.6")
	}
	ta.ok("-e -t 198.18.0.100:80 -r " + server.String() + " -g -w 0")

	ack := a
	ack.syn, ack.ack = false, true
	if got := ta.send(ack); len(got) != 1 || got[0] != macOf(server).String() {
		t.Errorf("ACK after -e went to %v, want the connection's server %s", got, macOf(server))
	}
	// New connections avoid the quiesced server.
	for _, p := range syns("198.18.0.100:80", 3) {
		p.client = netip.AddrPortFrom(netip.MustParseAddr("198.51.100.8"), p.client.Port())
		if got := ta.send(p); len(got) != 1 || got[0] == macOf(server).String() {
			t.Errorf("new connection went to %v, the quiesced server is %s", got, macOf(server))
		}
	}
	if !strings.Contains(ta.ok("-Ln"), server.String()+":80                Route   0      1") {
		t.Errorf("listing after -e:\n%s", ta.ok("-Ln"))
	}
}

func TestHelpAndVersion(t *testing.T) {
	ta := newTestAdmin(t)
	out := ta.ok("-h")
	if !strings.Contains(out, "  gvs adm -A|E virtual-service") {
		t.Errorf("-h does not name gvs adm:\n%s", out)
	}
	if got := ta.ok("-v"); !strings.HasPrefix(got, "ipvsadm v1.31") {
		t.Errorf("-v = %q", got)
	}
	if got := ta.ok("-L --daemon"); got != "" {
		t.Errorf("-L --daemon = %q, want nothing (no sync daemon runs)", got)
	}
}

// TestOverControlSocket runs the daemon behind a real control socket, with several
// clients changing, listing and zeroing at once while a worker forwards traffic
// (run with -race).
func TestOverControlSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gvs.sock")
	ta := newTestDirector(t, strings.Replace(directorConf, "[director]", "[director]\ncontrol_socket = \""+path+"\"", 1), nil)
	call := func(line string) control.Response {
		r, err := control.Call(path, control.Request{Args: strings.Fields(line)})
		if err != nil {
			t.Error(err)
		}
		return r
	}
	if r := call("-A -t 198.18.0.100:80 -s rr"); r.Status != 0 {
		t.Fatalf("-A: %+v", r)
	}
	var cw sync.WaitGroup
	for i := range 4 {
		cw.Add(1)
		go func() {
			defer cw.Done()
			if r := call("-a -t 198.18.0.100:80 -r 198.18.0." + string(rune('5'+i))); r.Status != 0 {
				t.Errorf("-a: %+v", r)
			}
		}()
	}
	cw.Wait()
	ta.settle()
	for _, line := range []string{"-Ln --stats", "-Ln --rate", "-Lnc", "-Z", "-Sn", "-Ln"} {
		cw.Add(1)
		go func() {
			defer cw.Done()
			for range 5 {
				if r := call(line); r.Status != 0 {
					t.Errorf("%s: %+v", line, r)
				}
			}
		}()
	}
	for range 20 {
		ta.send(syns("198.18.0.100:80", 8)...)
	}
	cw.Wait()
	r := call("-Ln")
	if strings.Count(r.Stdout, "Route") != 4 {
		t.Errorf("-Ln over the socket:\n%s", r.Stdout)
	}
	if r := call("-A -t 198.18.0.100:80"); r.Status != 255 || r.Stderr != "Service already exists\n" {
		t.Errorf("duplicate over the socket: %+v", r)
	}
}

// TestChangeDuringTraffic changes the table while a worker forwards an
// established connection and new ones: the established one stays on its server
// throughout.
func TestChangeDuringTraffic(t *testing.T) {
	ta := newTestAdmin(t)
	ta.ok("-A -t 198.18.0.100:80 -s wrr")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.5 -g")
	ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.6 -g")
	est := tcpPkt{client: ap("198.51.100.7:40000"), vip: ap("198.18.0.100:80"), syn: true}
	first := ta.send(est)
	if len(first) != 1 {
		t.Fatalf("SYN not forwarded: %v", first)
	}
	est.syn, est.ack = false, true

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if got := ta.send(est); len(got) != 1 || got[0] != first[0] {
				t.Errorf("established connection sent to %v, want %s", got, first[0])
				return
			}
			p := tcpPkt{client: netip.AddrPortFrom(netip.MustParseAddr("198.51.100.8"), uint16(1000+i%60000)), vip: est.vip, syn: true}
			ta.send(p)
		}
	}()
	for i := range 50 {
		w := i % 4
		ta.ok("-e -t 198.18.0.100:80 -r 198.18.0.5 -g -w " + string(rune('0'+w)))
		ta.ok("-a -t 198.18.0.100:80 -r 198.18.0.7 -g")
		ta.ok("-d -t 198.18.0.100:80 -r 198.18.0.7")
		ta.ok("-E -t 198.18.0.100:80 -s " + []string{"rr", "wrr", "wlc", "lc"}[w])
	}
	close(stop)
	wg.Wait()
}

// TestRestoreLineByLineThatDoesNotFit: lines that each pass the table's checks
// but together exceed what the data path takes are found one by one: the line
// that does not fit fails with the reason, the others apply.
func TestRestoreLineByLineThatDoesNotFit(t *testing.T) {
	ta := newTestAdmin(t)
	// Set before the request is posted: the controller reads it after taking it.
	ta.d.capacity = capacity{backend: "test", max4: 2, why: "a test's limit"}
	_, errOut, st := ta.admIn("-A -t 198.18.0.150:80\n-A -t 198.18.0.151:80\n-A -t 198.18.0.152:80\n-A -t 198.18.0.150:81\n", "-R")
	if st != 0 || !strings.HasPrefix(errOut, "gvs adm: ") || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "a test's limit") {
		t.Errorf("-R: %q %d; want the third line's refusal and status 0", errOut, st)
	}
	diffText(t, "-S -n", "-A -t 198.18.0.150:80 -s wlc\n-A -t 198.18.0.150:81 -s wlc\n-A -t 198.18.0.151:80 -s wlc\n", ta.ok("-S -n"))
}
