//go:build linux

package afpacket

import (
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// rlAllMulti reports whether the interface receives all multicast: IFF_ALLMULTI
// (0x200) in its flags as sysfs shows them (ip link hides the flag unless a user set
// it).
func rlAllMulti(t testing.TB, ns, ifname string) bool {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/sys/class/net/"+ifname+"/flags").Output()
	if err != nil {
		t.Fatal(err)
	}
	flags, err := strconv.ParseUint(strings.TrimSpace(string(out)), 0, 32)
	if err != nil {
		t.Fatal(err)
	}
	return flags&unix.IFF_ALLMULTI != 0
}

// TestRingManyIPv6VIPs opens a ring for 20,000 IPv6 VIPs: instead of 20,000
// solicited-node groups (seconds of joins per ring) the socket takes all multicast;
// a reload to a few VIPs joins their groups and gives all multicast back, and so does
// closing the ring.
func TestRingManyIPv6VIPs(t *testing.T) {
	l, _, dir := rlPair(t)
	f := rlDirFilter()
	for i := range 20000 {
		f.VIPs = append(f.VIPs, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}))
	}
	r := l.openRing(dir, "eth0", Config{Packets: 256, Filter: f})
	if !rlAllMulti(t, dir, "eth0") {
		t.Error("20,000 IPv6 VIPs: the interface does not receive all multicast")
	}
	if groups := rlMulticast(t, dir, "eth0"); len(groups) > 10 {
		t.Errorf("20,000 IPv6 VIPs: %d groups joined one by one", len(groups))
	}
	if err := r.SetFilter(rlDirFilter()); err != nil {
		t.Fatal(err)
	}
	if rlAllMulti(t, dir, "eth0") {
		t.Error("a few VIPs: the interface still receives all multicast")
	}
	if !rlHasAll(rlMulticast(t, dir, "eth0"), []string{"3333ff000100"}) {
		t.Errorf("a few VIPs: groups %v without the VIP's solicited-node group", rlMulticast(t, dir, "eth0"))
	}
	if err := r.SetFilter(f); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if _, err := r.ReadBatch(nil); err == nil {
		t.Fatal("ReadBatch after Close succeeded")
	}
	if rlAllMulti(t, dir, "eth0") {
		t.Error("closed: the interface still receives all multicast")
	}
}
