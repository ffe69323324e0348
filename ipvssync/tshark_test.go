package ipvssync

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// skipOrFail skips with why, or fails under GVS_LAB_REQUIRED=1 where the tools must
// be present.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("GVS_LAB_REQUIRED") == "1" {
		t.Fatalf("GVS_LAB_REQUIRED=1 but %s", why)
	}
	t.Skipf("%s (set GVS_LAB_REQUIRED=1 to make this a failure)", why)
}

// writeSyncPcap writes each message as a UDP datagram from 198.18.0.21 to
// 224.0.0.81:8848, the way a director sends it, TTL 1.
func writeSyncPcap(t *testing.T, path string, msgs [][]byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i, msg := range msgs {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 21}, DstMAC: net.HardwareAddr{1, 0, 0x5e, 0, 0, 81},
			EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 1, Protocol: layers.IPProtocolUDP,
			SrcIP: net.IP{198, 18, 0, 21}, DstIP: net.IP{224, 0, 0, 81}}
		udp := &layers.UDP{SrcPort: 40000, DstPort: Port}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			eth, ip, udp, gopacket.Payload(msg)); err != nil {
			t.Fatal(err)
		}
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1_700_000_000+int64(i), 0), CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}
		if err := w.WritePacket(ci, buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTshark checks gvs's messages against an independent decoder: Wireshark's IPVS
// dissector must find nothing malformed and read the same header and record fields
// (docs/cluster.md §3 on its fixed-stride quirk, which gvs avoids by never sending
// options).
func TestTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		skipOrFail(t, "tshark is not installed")
	}
	rng := rand.New(rand.NewPCG(8848, 1))
	var msgs []*Message
	msgs = append(msgs, &Message{Version: V1, SyncID: 7, Records: goldenRecords()})
	for _, v6 := range []bool{false, true} {
		m := &Message{Version: V1, SyncID: 1}
		for len(m.Records) < 40 {
			r := randRecord(rng)
			if r.CAddr.Is6() == v6 {
				m.Records = append(m.Records, r)
			}
		}
		var b Builder
		b.Reset(V1, 1, MaxLen)
		n := 0
		for ; n < len(m.Records) && b.Add(&m.Records[n]) == nil; n++ {
		}
		m.Records = m.Records[:n] // as many as one full message holds
		msgs = append(msgs, m)
	}
	var raw [][]byte
	for _, m := range msgs {
		b, err := Encode(m, MaxLen)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b)
	}
	path := filepath.Join(t.TempDir(), "sync.pcap")
	writeSyncPcap(t, path, raw)

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(tshark, append([]string{"-n", "-r", path}, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr // tshark warns there when run as root
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark %v: %v\n%s", args, err, stderr.String())
		}
		return string(out)
	}
	if out := run("-Y", "ipvs && _ws.malformed", "-T", "fields", "-e", "frame.number"); strings.TrimSpace(out) != "" {
		t.Fatalf("tshark finds malformed frames: %q", out)
	}
	// The check can fail: a kernel-style record with a 6-byte optional option, which
	// the dissector's fixed stride misreads, is reported malformed.
	withOpt := msgV1(2, append(v4rec(0, 6, 42, 0x83, 1, 1, 0x40|9, 4, 1, 2, 3, 4), 0, 0), v4rec(0, 6, 36, 0x83, 1, 2))
	optPath := filepath.Join(t.TempDir(), "opt.pcap")
	writeSyncPcap(t, optPath, [][]byte{withOpt})
	if out, err := exec.Command(tshark, "-n", "-r", optPath, "-Y", "ipvs && _ws.malformed", "-T", "fields", "-e", "frame.number").Output(); err != nil || strings.TrimSpace(string(out)) != "1" {
		t.Fatalf("a message with an option: tshark malformed frames %q (%v), want frame 1", out, err)
	}
	fields := []string{"ipvs.syncid", "ipvs.conncount", "ipvs.size", "ipvs.version",
		"ipvs.proto", "ipvs.size.v1", "ipvs.flags.v1", "ipvs.state", "ipvs.cport", "ipvs.vport", "ipvs.dport",
		"ipvs.fwmark", "ipvs.timeout", "ipvs.caddr", "ipvs.vaddr", "ipvs.daddr", "ipvs.caddr6", "ipvs.vaddr6", "ipvs.daddr6"}
	args := []string{"-Y", "ipvs", "-T", "fields", "-E", "separator=;", "-E", "aggregator=,", "-E", "occurrence=a"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	lines := strings.Split(strings.TrimRight(run(args...), "\n"), "\n")
	if len(lines) != len(msgs) {
		t.Fatalf("tshark decoded %d frames as IPVS, want %d", len(lines), len(msgs))
	}
	for i, m := range msgs {
		got := strings.Split(lines[i], ";")
		want := wantFields(m, len(raw[i]))
		for j, f := range fields {
			if got[j] != want[j] {
				t.Errorf("message %d field %s: tshark %q, ours %q", i, f, got[j], want[j])
			}
		}
	}
}

// wantFields renders m as tshark prints the fields TestTshark asks for.
func wantFields(m *Message, size int) []string {
	var col [19][]string
	add := func(i int, v any) { col[i] = append(col[i], fmt.Sprint(v)) }
	add(0, m.SyncID)
	add(1, len(m.Records))
	add(2, size)
	add(3, int(m.Version))
	for _, r := range m.Records {
		add(4, fmt.Sprintf("0x%02x", r.Protocol))
		add(5, RecordLen(m.Version, r.IPv6()))
		add(6, fmt.Sprintf("0x%08x", r.Flags))
		add(7, fmt.Sprintf("0x%04x", r.State))
		add(8, r.CPort)
		add(9, r.VPort)
		add(10, r.DPort)
		add(11, fmt.Sprintf("0x%08x", r.FwMark))
		add(12, r.Timeout)
		base := 13
		if r.IPv6() {
			base = 16
		}
		add(base, r.CAddr)
		add(base+1, r.VAddr)
		add(base+2, r.DAddr)
	}
	out := make([]string, len(col))
	for i, c := range col {
		out[i] = strings.Join(c, ",")
	}
	return out
}
