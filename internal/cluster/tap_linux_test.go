package cluster

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"
)

// netns creates a network namespace with a unique name for the test and deletes it
// at the end; it skips (or fails under GVS_LAB_REQUIRED=1) without root or iproute2.
func netns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		labSkip(t, "namespace test needs root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		labSkip(t, "namespace test needs iproute2")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		labSkip(t, "no /dev/net/tun")
	}
	b := make([]byte, 3)
	rand.Read(b)
	ns := "gvsS" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v %s", ns, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ipn(t, ns, "link", "set", "lo", "up")
	return ns
}

// ipn runs ip -n ns ARGS and returns its output, failing the test on error.
func ipn(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s %s: %v\n%s", ns, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestTAPHelper is not a test: TestTAPFateSharing runs the test binary again inside
// its namespace with GVS_CLUSTER_TAP_HELPER set, and this holds the device there. It
// reads commands on stdin ("add ADDR", "del ADDR") and answers "ok" or the error.
func TestTAPHelper(t *testing.T) {
	if os.Getenv("GVS_CLUSTER_TAP_HELPER") == "" {
		t.Skip("helper process for TestTAPFateSharing")
	}
	tap, err := OpenTAP("gvs-vip", 200, 240)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		a := netip.MustParseAddr(f[1])
		err := tap.Add(a)
		if f[0] == "del" {
			err = tap.Delete(a)
		}
		if err != nil {
			fmt.Println("error:", err)
		} else {
			fmt.Println("ok")
		}
	}
	tap.Close()
}

// TestTAPFateSharing holds the announcement device in a process inside a namespace,
// announces an IPv4 and an IPv6 VIP, withdraws one, then SIGKILLs the process: the
// device and every route through it must vanish with it. When bird is installed, a
// BIRD configured by BirdConfig learns the routes and loses them too.
func TestTAPFateSharing(t *testing.T) {
	ns := netns(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^TestTAPHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "GVS_CLUSTER_TAP_HELPER=1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	next := func() string {
		t.Helper()
		for lines.Scan() {
			if l := lines.Text(); l == "ready" || l == "ok" || strings.HasPrefix(l, "error:") {
				return l
			}
		}
		t.Fatal("helper ended")
		return ""
	}
	if l := next(); l != "ready" {
		t.Fatalf("helper: %s", l)
	}
	link := ipn(t, ns, "link", "show", "gvs-vip")
	if !strings.Contains(link, "NOARP") || !strings.Contains(link, "UP") {
		t.Fatalf("device flags: %s", link)
	}
	if a := ipn(t, ns, "-6", "addr", "show", "dev", "gvs-vip"); strings.Contains(a, "inet6") {
		t.Errorf("device has an IPv6 address: %s", a)
	}

	var bird *birdProc
	if _, err := exec.LookPath("bird"); err == nil {
		bird = startBird(t, ns)
	}

	for _, cmdline := range []string{"add 198.18.100.1", "add 198.18.100.2", "add 2001:db8:100::1", "del 198.18.100.2"} {
		fmt.Fprintln(stdin, cmdline)
		if l := next(); l != "ok" {
			t.Fatalf("%s: %s", cmdline, l)
		}
	}
	r4 := ipn(t, ns, "route", "show", "table", "200")
	r6 := ipn(t, ns, "-6", "route", "show", "table", "200")
	if !strings.Contains(r4, "198.18.100.1 dev gvs-vip proto 240 scope link") || strings.Contains(r4, "198.18.100.2") ||
		!strings.Contains(r6, "2001:db8:100::1 dev gvs-vip proto 240") {
		t.Fatalf("table 200:\n%s%s", r4, r6)
	}
	if m := ipn(t, ns, "route", "show", "table", "main"); strings.Contains(m, "198.18.100") {
		t.Fatalf("a VIP route leaked into the main table: %s", m)
	}
	if bird != nil {
		testutil.Eventually(t, 5*time.Second, func() bool {
			return strings.Contains(bird.routes(t, "gvs_vips4"), "198.18.100.1/32") &&
				strings.Contains(bird.routes(t, "gvs_vips6"), "2001:db8:100::1/128")
		}, "BIRD never learned the VIP routes from table 200")
	}

	killed := time.Now()
	cmd.Process.Kill()
	cmd.Wait()
	testutil.Eventually(t, 5*time.Second, func() bool {
		return exec.Command("ip", "-n", ns, "link", "show", "gvs-vip").Run() != nil
	}, "the device outlived its process")
	if r := ipn(t, ns, "route", "show", "table", "200") + ipn(t, ns, "-6", "route", "show", "table", "200"); r != "" {
		t.Fatalf("routes outlived the process:\n%s", r)
	}
	if bird != nil {
		testutil.Eventually(t, 5*time.Second, func() bool {
			return !strings.Contains(bird.routes(t, "gvs_vips4"), "198.18.100.1")
		}, "BIRD kept the VIP after the device vanished")
		t.Logf("BIRD saw the VIP go %v after SIGKILL", time.Since(killed).Round(time.Millisecond))
	}
}

// birdProc is a BIRD running in a test namespace.
type birdProc struct {
	sock string
	cmd  *exec.Cmd
}

func startBird(t *testing.T, ns string) *birdProc {
	t.Helper()
	dir := t.TempDir()
	c := baseBird()
	c.VIPs = []netip.Addr{netip.MustParseAddr("198.18.100.1"), netip.MustParseAddr("198.18.100.2"), netip.MustParseAddr("2001:db8:100::1")}
	c.OSPF, c.NoBFD, c.Interface = true, true, "lo" // no router here: OSPF needs no neighbour to parse and run
	var b strings.Builder
	if err := c.Write(&b); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "bird.conf")
	os.WriteFile(conf, []byte(b.String()), 0o644)
	p := &birdProc{sock: filepath.Join(dir, "bird.ctl")}
	p.cmd = exec.Command("ip", "netns", "exec", ns, "bird", "-f", "-c", conf, "-s", p.sock, "-P", filepath.Join(dir, "bird.pid"))
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	testutil.Eventually(t, 5*time.Second, func() bool { _, err := os.Stat(p.sock); return err == nil }, "BIRD did not start")
	return p
}

func (p *birdProc) routes(t *testing.T, table string) string {
	out, _ := exec.Command("birdc", "-s", p.sock, "show", "route", "table", table).CombinedOutput()
	return string(out)
}
