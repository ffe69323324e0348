package testutil

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// WaitLinkUp waits until interface ifname in network namespace ns is operationally
// up, and fails t if it is not within 30 s. A veth whose peer has just been brought
// up has its carrier at once, but the kernel activates its transmit queue later, in
// its link-watch work, which a loaded machine runs late; until then a frame sent on
// it goes to a placeholder queue that drops it while the send reports success. The
// same step of that work sets the operational state, just before it activates the
// queue, so an interface seen operationally up sends from the next instant on.
func WaitLinkUp(t testing.TB, ns, ifname string) {
	t.Helper()
	var last string
	up := func() bool {
		out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", "dev", ifname).CombinedOutput()
		last = strings.TrimSpace(string(out))
		return err == nil && strings.Contains(last, " state UP ")
	}
	if !poll(30*time.Second, up) {
		t.Fatalf("interface %s in namespace %s not operationally up within 30s: %s", ifname, ns, last)
	}
}
