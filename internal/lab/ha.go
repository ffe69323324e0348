package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Seed 004 (docs/seeds.md) in the lab: two load balancers, dir1 (lb1) and dir2
// (lb2), each a web server bound to every address and a gvs in VRRP-only mode with
// two instances, active-active: VI_1 (VRID 51, HAVIP1 labelled eth0:1) master on
// lb1, VI_2 (VRID 52, HAVIP2 labelled eth0:2) master on lb2. The VIPs go on the
// masters' eth0 as kernel addresses, so the web server of whichever holds a VIP
// answers it; the real servers of the lab are not used. docs/vrrp.md "Kernel
// addresses".

// HA offsets of the two VIPs in the lab's subnet (.110, .111): away from the DR
// VIP the real servers hold on lo.
const (
	haVIP1Offset = 110
	haVIP2Offset = 111
)

// HAVIPs returns seed 004's two VIPs in this lab.
func (l *Lab) HAVIPs() (netip.Addr, netip.Addr) {
	return nthAddr(l.spec.Subnet, haVIP1Offset), nthAddr(l.spec.Subnet, haVIP2Offset)
}

// nthAddr returns the address n past the network address of p.
func nthAddr(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// HAConfig returns gvs's seed-004 config for director ("dir1" is lb1, "dir2" lb2):
// VRRP only, two instances, VIPs with their labels, the control socket in RunDir.
func (l *Lab) HAConfig(director string) (string, error) {
	first, err := l.haFirst(director)
	if err != nil {
		return "", err
	}
	v1, v2 := l.HAVIPs()
	bits := l.spec.Subnet.Bits()
	var b strings.Builder
	fmt.Fprintf(&b, "# seed 004 in the lab: %s, VRRP only (gvs lab up --mode ha)\n", director)
	fmt.Fprintf(&b, "[director]\ncontrol_socket = %q\n", filepath.Join(l.RunDir(), director+".sock"))
	// The seed's vrrp_script: is the local web server answering? The seed's own
	// check script stops keepalived when the web server is down; the same effect in
	// keepalived's terms is a script without a weight: while it fails the instances
	// are in FAULT, so the master of a VIP sends priority 0 and its peer takes the
	// VIP over after its skew time, not a whole master-down interval.
	curl, check := curlPath()
	if check {
		fmt.Fprintf(&b, "\n[[vrrp_script]]\nname = \"chk_web\"\nscript = [%q, \"-sf\", \"-m\", \"1\", \"-o\", \"/dev/null\", \"http://127.0.0.1:%d/\"]\n",
			curl, l.spec.HTTPPort)
		b.WriteString("interval = \"1s\"\nfall = 2\nrise = 2\n")
	}
	for i, inst := range []struct {
		name string
		vrid int
		vip  netip.Addr
	}{{"VI_1", 51, v1}, {"VI_2", 52, v2}} {
		prio, state := 100, "BACKUP"
		if (i == 0) == first {
			prio, state = 150, "MASTER"
		}
		owner := state == "MASTER" // the balancer the seed makes this VIP's master
		if l.spec.HANoPreempt {
			state = "BACKUP"
		}
		fmt.Fprintf(&b, "\n[[vrrp]]\nname = %q\ninterface = \"eth0\"\nstate = %q\nvirtual_router_id = %d\npriority = %d\nadvert_int = \"1s\"\n",
			inst.name, state, inst.vrid, prio)
		if l.spec.HANoPreempt {
			b.WriteString("nopreempt = true\n")
		}
		fmt.Fprintf(&b, "auth_type = \"PASS\"\nauth_pass = \"1111\"\nvirtual_ipaddress = [\"%v/%d dev eth0 label eth0:%d\"]\n", inst.vip, bits, i+1)
		if owner && check {
			b.WriteString("track_script = [\"chk_web\"]\n")
		}
	}
	return b.String(), nil
}

// HAKeepalivedConfig is HAConfig for keepalived (keepalived.conf syntax), for a
// mixed pair.
func (l *Lab) HAKeepalivedConfig(director string) (string, error) {
	first, err := l.haFirst(director)
	if err != nil {
		return "", err
	}
	v1, v2 := l.HAVIPs()
	bits := l.spec.Subnet.Bits()
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n    router_id %s\n}\n", director)
	for i, inst := range []struct {
		name string
		vrid int
		vip  netip.Addr
	}{{"VI_1", 51, v1}, {"VI_2", 52, v2}} {
		prio, state := 100, "BACKUP"
		if (i == 0) == first {
			prio, state = 150, "MASTER"
		}
		fmt.Fprintf(&b, "vrrp_instance %s {\n    state %s\n    interface eth0\n    virtual_router_id %d\n    priority %d\n    advert_int 1\n", inst.name, state, inst.vrid, prio)
		fmt.Fprintf(&b, "    authentication {\n        auth_type PASS\n        auth_pass 1111\n    }\n")
		fmt.Fprintf(&b, "    virtual_ipaddress {\n        %v/%d dev eth0 label eth0:%d\n    }\n}\n", inst.vip, bits, i+1)
	}
	return b.String(), nil
}

// haFirst reports whether director is lb1.
func (l *Lab) haFirst(director string) (bool, error) {
	switch {
	case len(l.hostsWith(Director)) < 2:
		return false, fmt.Errorf("lab %s: seed 004 needs two directors (Directors = 2)", l.spec.Prefix)
	case director == "dir1":
		return true, nil
	case director == "dir2":
		return false, nil
	}
	return false, fmt.Errorf("lab %s: %q is not dir1 or dir2", l.spec.Prefix, director)
}

// HAConfigPath is where StartHA writes director's seed-004 config.
func (l *Lab) HAConfigPath(director string) string {
	return filepath.Join(l.RunDir(), director+"-ha.toml")
}

// StartWeb starts the web server of load balancer director ("lb1" on dir1): `lab
// serve` on every address, so it answers the VIPs the kernel holds there.
func (l *Lab) StartWeb(ctx context.Context, director string) (Proc, error) {
	first, err := l.haFirst(director)
	if err != nil {
		return Proc{}, err
	}
	name := "lb2"
	if first {
		name = "lb1"
	}
	args := []string{"lab", "serve", "--name", name, "--http", ":" + strconv.Itoa(int(l.spec.HTTPPort)), "--udp", ":" + strconv.Itoa(int(l.spec.UDPPort))}
	if l.spec.IPv6 {
		args = append(args, "--ipv6")
	}
	return l.start(ctx, director, "web", true, args...)
}

// stopWeb stops director's web server (StartWeb's), by its PID.
func (l *Lab) stopWeb(director string) error {
	l.mu.Lock()
	var web Proc
	for _, p := range l.st.Procs {
		if p.Host == director && p.Name == "web" {
			web = p
		}
	}
	c := l.children[web.PID]
	l.mu.Unlock()
	if c == nil {
		return fmt.Errorf("lab %s: %s runs no web server of this lab", l.spec.Prefix, director)
	}
	return stop(web, c)
}

// StartHA writes both seed-004 configs and starts, on each load balancer, its web
// server and gvs (VRRP only). It returns the gvs processes (dir1's, dir2's).
func (l *Lab) StartHA(ctx context.Context) ([]Proc, error) {
	var out []Proc
	for _, d := range []string{"dir1", "dir2"} {
		cfg, err := l.HAConfig(d)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(l.HAConfigPath(d), []byte(cfg), 0o644); err != nil {
			return nil, fmt.Errorf("lab %s: %w", l.spec.Prefix, err)
		}
		if _, err := l.StartWeb(ctx, d); err != nil {
			return nil, err
		}
		p, err := l.StartDirector(ctx, d, l.HAConfigPath(d))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// WriteHAGuide writes what gvs lab up --mode ha built and what to try.
func (l *Lab) WriteHAGuide(w io.Writer) error {
	v1, v2 := l.HAVIPs()
	gvs := l.gvsCommand()
	p := l.spec.Prefix
	var b strings.Builder
	f := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	f("Lab %q is up: seed 004 — two load balancers, each a web server and gvs with VRRP only.", p)
	f("  %s-dir1 (lb1): VI_1 MASTER (priority 150) for %v labelled eth0:1, VI_2 BACKUP (100)", p, v1)
	f("  %s-dir2 (lb2): VI_2 MASTER (priority 150) for %v labelled eth0:2, VI_1 BACKUP (100)", p, v2)
	f("  configs: %s, %s", l.HAConfigPath("dir1"), l.HAConfigPath("dir2"))
	f("")
	f("Try:")
	f("  ip netns exec %s-client curl -s http://%v/   # lb1", p, v1)
	f("  ip netns exec %s-client curl -s http://%v/   # lb2", p, v2)
	f("  ip -n %s-dir1 -4 addr show dev eth0          # the VIP with its label; the backup shows none (split-brain check)", p)
	f("  %s adm -c %s --vrrp                            # state, priorities, master, last transition", gvs, l.HAConfigPath("dir1"))
	f("  %s lab down --prefix %s", gvs, p)
	_, err := io.WriteString(w, b.String())
	return err
}

// HADemo runs seed 004 end to end in a fresh lab: both VIPs answered by their
// masters, the backups' addresses, then lb1's gvs stopped (its VIP moves to lb2 and
// is answered there) and started again (lb1 takes VI_1 back: preempt). The lab is
// torn down at the end, also on error or cancellation.
func HADemo(ctx context.Context, w io.Writer, spec Spec) error {
	if spec.Prefix == "" {
		var b [2]byte
		_, _ = rand.Read(b[:])
		spec.Prefix = "gvh" + hex.EncodeToString(b[:])
	}
	spec.Mode, spec.Directors = DR, 2
	if spec.RealServers == 0 {
		spec.RealServers = 1
	}
	fmt.Fprintf(w, "== gvs lab demo --mode ha: seed 004 (two load balancers, VRRP only, active-active) in network namespaces\n")
	l, err := Up(ctx, spec)
	if err != nil {
		return err
	}
	defer func() {
		if err := l.Down(); err != nil {
			fmt.Fprintf(w, "teardown: %v\n", err)
		}
	}()
	ps, err := l.StartHA(ctx)
	if err != nil {
		return err
	}
	v1, v2 := l.HAVIPs()
	show := func() {
		for _, d := range []string{"dir1", "dir2"} {
			out, _ := l.output(ctx, d, "ip", "-4", "-o", "addr", "show", "dev", "eth0")
			fmt.Fprintf(w, "   %s-%s: %s\n", l.spec.Prefix, d, strings.Join(haAddrs(out), ", "))
		}
	}
	ask := func(vip netip.Addr, want string) error {
		url := "http://" + netip.AddrPortFrom(vip, l.spec.HTTPPort).String() + "/"
		deadline := time.Now().Add(10 * time.Second)
		for {
			body, err := l.HTTPGet("client", url, 250*time.Millisecond)
			if err == nil && strings.TrimSpace(body) == want {
				fmt.Fprintf(w, "   client: curl %s -> %s\n", url, want)
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not answered by %s within 10s (last: %q, %v)", url, want, strings.TrimSpace(body), err)
			}
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	fmt.Fprintf(w, "\n== both masters elected (3 adverts and the skew: about 3.5 s)\n")
	if err := ask(v1, "lb1"); err != nil {
		return err
	}
	if err := ask(v2, "lb2"); err != nil {
		return err
	}
	show()
	if _, check := curlPath(); check {
		fmt.Fprintf(w, "\n== lb1's web server stops: chk_web fails twice (fall 2, every 1 s), lb1's instances go to FAULT (VI_1 sends priority 0), lb2 takes VI_1\n")
		start := time.Now()
		if err := l.stopWeb("dir1"); err != nil {
			return err
		}
		if err := ask(v1, "lb2"); err != nil {
			return err
		}
		fmt.Fprintf(w, "   (%.1f s after the web server stopped)\n", time.Since(start).Seconds())
		show()
		fmt.Fprintf(w, "\n== lb1's web server starts again: chk_web passes twice (rise 2), lb1 leaves FAULT, VI_1 at 150 takes VI_1 back (preempt)\n")
		if _, err := l.StartWeb(ctx, "dir1"); err != nil {
			return err
		}
		if err := ask(v1, "lb1"); err != nil {
			return err
		}
		show()
	}
	fmt.Fprintf(w, "\n== lb1's gvs stops (SIGTERM: priority 0, its VIP leaves eth0); lb2 takes VI_1\n")
	l.mu.Lock()
	c := l.children[ps[0].PID]
	l.mu.Unlock()
	if err := stop(ps[0], c); err != nil {
		return err
	}
	if err := ask(v1, "lb2"); err != nil {
		return err
	}
	show()
	fmt.Fprintf(w, "\n== lb1's gvs starts again: higher priority, it takes VI_1 back (preempt)\n")
	if _, err := l.StartDirector(ctx, "dir1", l.HAConfigPath("dir1")); err != nil {
		return err
	}
	if err := ask(v1, "lb1"); err != nil {
		return err
	}
	show()
	return nil
}

// haAddrs returns "ADDR/LEN label" of each line of ip -o addr output.
func haAddrs(out string) []string {
	var r []string
	for _, line := range strings.Split(out, "\n") {
		line, _, _ = strings.Cut(line, "\\")
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" {
				r = append(r, f[i+1]+" "+f[len(f)-1])
			}
		}
	}
	return r
}

// output runs argv in host and returns its output.
func (l *Lab) output(ctx context.Context, host string, argv ...string) (string, error) {
	cmd, err := l.Command(ctx, host, argv...)
	if err != nil {
		return "", err
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// curlPath is the curl the web check runs (the lab's hosts share the file system);
// without curl there is no web check.
func curlPath() (string, bool) {
	p, err := exec.LookPath("curl")
	return p, err == nil
}
