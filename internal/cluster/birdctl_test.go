package cluster

import (
	"bufio"
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/internal/testutil"
)

func TestBirdStatus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := BirdStatus(ctx, filepath.Join(t.TempDir(), "none.ctl")); !errors.Is(err, ErrBirdNotRunning) {
		t.Fatalf("no BIRD: %v, want ErrBirdNotRunning", err)
	}
	if _, err := exec.LookPath("bird"); err != nil {
		labSkip(t, "bird (Debian bird2) is not installed")
	}
	ns := netns(t)
	// The generated BGP config, its router unreachable: the kernel protocol is up, the
	// session is not.
	c := baseBird()
	c.VIPs = []netip.Addr{netip.MustParseAddr("198.18.100.1")}
	c.Local, c.Router, c.NoBFD, c.Interface = netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"), true, ""
	var b strings.Builder
	if err := c.Write(&b); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	conf, sock := filepath.Join(dir, "bird.conf"), filepath.Join(dir, "bird.ctl")
	os.WriteFile(conf, []byte(b.String()), 0o644)
	cmd := exec.Command("ip", "netns", "exec", ns, "bird", "-f", "-c", conf, "-s", sock, "-P", filepath.Join(dir, "bird.pid"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	testutil.Eventually(t, 5*time.Second, func() bool { _, err := os.Stat(sock); return err == nil }, "BIRD did not start")
	var st BirdState
	var err error
	testutil.Eventually(t, 5*time.Second, func() bool {
		st, err = BirdStatus(ctx, sock)
		return err == nil && len(st.Kernel) == 1 && st.Kernel[0].State == "up"
	}, "BIRD's status")
	if len(st.Speakers) != 1 || st.Speakers[0].Name != "gvs_router4" || st.Speakers[0].Proto != "BGP" || st.Established != 0 {
		t.Fatalf("status %+v: want one BGP speaker, not established", st)
	}
	// A BIRD without gvs's kernel protocol is named as such.
	other := filepath.Join(dir, "other.conf")
	os.WriteFile(other, []byte("router id 198.18.0.21;\nprotocol device { }\n"), 0o644)
	osock := filepath.Join(dir, "other.ctl")
	cmd2 := exec.Command("ip", "netns", "exec", ns, "bird", "-f", "-c", other, "-s", osock, "-P", filepath.Join(dir, "other.pid"))
	if err := cmd2.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd2.Process.Kill(); cmd2.Wait() })
	// The socket file appears before BIRD listens on it (connection refused until
	// then): ask until it answers.
	var oerr error
	testutil.Eventually(t, 5*time.Second, func() bool {
		_, oerr = BirdStatus(ctx, osock)
		return oerr != nil && !errors.Is(oerr, ErrBirdNotRunning)
	}, "second BIRD did not answer")
	if !strings.Contains(oerr.Error(), "no gvs_kernel protocol") {
		t.Fatalf("BIRD without gvs's config: %v", oerr)
	}
}

// FuzzBirdReply: any reply parses without panicking, and every row it returns has the
// four columns BIRD always prints.
func FuzzBirdReply(f *testing.F) {
	f.Add("2002-Name       Proto      Table      State  Since         Info\n1002-device1    Device     ---        up     05:35:58.924  \n k4         Kernel     t4         up     05:35:58.924  \n r4         BGP        ---        down   05:35:58.926  Error: Invalid next hop\n0000 \n")
	f.Add("9001 Syntax error\n")
	f.Add(" orphan continuation\n")
	f.Add("1002-\n0000 \n")
	f.Fuzz(func(t *testing.T, reply string) {
		ps, err := parseBirdProtocols(bufio.NewScanner(strings.NewReader(reply)))
		if err != nil {
			return
		}
		for _, p := range ps {
			if p.Name == "" || p.Proto == "" || p.Table == "" || p.State == "" {
				t.Fatalf("row with an empty column: %+v", p)
			}
		}
	})
}
