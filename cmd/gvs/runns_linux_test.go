package main

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// runNS is what the tests that run a real `gvs run` start from: gvs built into the
// test's temporary directory, and a network namespace of the test's own holding the
// veth pair v0 (with an address, up) and v1 (up), deleted when the test ends.
type runNS struct {
	t   *testing.T
	dir string // the test's temporary directory, which holds bin
	bin string // the gvs built for the test
	ns  string
}

// labSkip skips t for why, or fails it when GVS_LAB_REQUIRED=1.
func labSkip(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("GVS_LAB_REQUIRED") == "1" {
		t.Fatalf("GVS_LAB_REQUIRED=1 but %s", why)
	}
	t.Skipf("skipping: %s (set GVS_LAB_REQUIRED=1 to make this a failure)", why)
}

// newRunNS builds gvs and makes the namespace prefix-<random> with addr (a prefix,
// e.g. "198.18.0.3/24") on v0. It needs root, ip, go and tools; without them the
// test is skipped (a failure with GVS_LAB_REQUIRED=1), and with -short too.
func newRunNS(t *testing.T, prefix, addr string, tools ...string) *runNS {
	t.Helper()
	if testing.Short() {
		t.Skip("builds gvs and runs it: not with -short")
	}
	if os.Geteuid() != 0 {
		labSkip(t, "needs root")
	}
	for _, tool := range append([]string{"ip", "go"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			labSkip(t, "needs "+tool)
		}
	}
	n := &runNS{t: t, dir: t.TempDir()}
	n.bin = filepath.Join(n.dir, "gvs")
	if out, err := exec.Command("go", "build", "-o", n.bin, "github.com/gvs-lb/gvs/cmd/gvs").CombinedOutput(); err != nil {
		t.Fatalf("building gvs: %v\n%s", err, out)
	}
	var r [4]byte
	rand.Read(r[:])
	n.ns = prefix + "-" + hex.EncodeToString(r[:])
	if out, err := exec.Command("ip", "netns", "add", n.ns).CombinedOutput(); err != nil {
		labSkip(t, "ip netns add: "+err.Error()+": "+string(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", n.ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", n.ns, err, out)
		}
	})
	n.must("link", "add", "v0", "type", "veth", "peer", "name", "v1")
	n.must("addr", "add", addr, "dev", "v0")
	n.must("link", "set", "v0", "up")
	n.must("link", "set", "v1", "up")
	return n
}

// ip runs `ip -n NS args...`.
func (n *runNS) ip(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"-n", n.ns}, args...)...).CombinedOutput()
	return string(out), err
}

// must is ip that fails the test on an error.
func (n *runNS) must(args ...string) {
	n.t.Helper()
	if out, err := n.ip(args...); err != nil {
		n.t.Fatalf("ip -n %s %v: %v: %s", n.ns, args, err, out)
	}
}
