package cluster

import (
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

// TestControlDissector has tshark decode control datagrams with the Lua dissector
// shipped in contrib/wireshark: every field as encodeControl wrote it, nothing
// malformed — and a truncated datagram flagged.
func TestControlDissector(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		labSkip(t, "tshark is not installed")
	}
	if out, _ := exec.Command(tshark, "-v").Output(); !strings.Contains(string(out), "with Lua") {
		labSkip(t, "tshark is built without Lua")
	}
	script, err := filepath.Abs("../../contrib/wireshark/gvs_cluster.lua")
	if err != nil {
		t.Fatal(err)
	}
	msgs := []ctlMsg{
		{Type: ctlHeartbeat, NodeID: "dir1", Incarnation: 0x1122334455667788, State: StateAnnounced, Digest: [16]byte{0xab},
			SentMsgs: 10, SentRecords: 400, Health: 7, SyncID: 3, PushTarget: "dir3", PushReqID: 99, PushPort: 40123},
		{Type: ctlBulkReq, NodeID: "dir3", Incarnation: 6, ReqID: 99, Seq: 4},
		{Type: ctlBulkDone, NodeID: "dir1", Incarnation: 7, ReqID: 99, Target: "dir3", Count: 100000, PushPort: 40123},
	}
	var frames [][]byte
	for i := range msgs {
		frames = append(frames, encodeControl(nil, &msgs[i], nil))
	}
	frames = append(frames, encodeControl(nil, &msgs[1], []byte("key")))
	truncated := encodeControl(nil, &msgs[2], nil)
	frames = append(frames, truncated[:len(truncated)-3])
	pcap := filepath.Join(t.TempDir(), "control.pcap")
	writeUDPPcap(t, pcap, 8849, frames)

	run := func(args ...string) []string {
		t.Helper()
		cmd := exec.Command(tshark, append([]string{"-n", "-X", "lua_script:" + script, "-r", pcap}, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || strings.Contains(stderr.String(), "Lua") {
			t.Fatalf("tshark: %v\n%s", err, stderr.String())
		}
		return strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	}
	got := run("-T", "fields", "-E", "separator=;", "-e", "gvsc.type", "-e", "gvsc.node_id", "-e", "gvsc.incarnation",
		"-e", "gvsc.state", "-e", "gvsc.sent_records", "-e", "gvsc.request", "-e", "gvsc.target", "-e", "gvsc.count",
		"-e", "gvsc.push_target", "-e", "gvsc.seq", "-e", "gvsc.push_port", "-e", "gvsc.hmac")
	want := []string{
		"1;dir1;0x1122334455667788;3;400;;;;dir3;;40123;",
		"2;dir3;0x0000000000000006;;;99;;;;4;;",
		"3;dir1;0x0000000000000007;;;99;dir3;100000;;;40123;",
	}
	for i, w := range want {
		if i >= len(got) || got[i] != w {
			t.Errorf("frame %d: tshark %q, want %q", i+1, at(got, i), w)
		}
	}
	if f := strings.Split(at(got, 3), ";"); len(f) != 12 || len(f[11]) != 64 {
		t.Errorf("signed frame: %q, want a 32-byte HMAC", at(got, 3))
	}
	if bad := run("-Y", "_ws.expert.group == 0x07000000 || _ws.malformed", "-T", "fields", "-e", "frame.number"); strings.Join(bad, ",") != "5" {
		t.Errorf("frames flagged malformed: %q, want only the truncated one (5)", bad)
	}
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}

// writeUDPPcap writes each payload as a UDP datagram from 198.18.0.21 to
// 224.0.0.81:port.
func writeUDPPcap(t *testing.T, path string, port uint16, payloads [][]byte) {
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
	for i, p := range payloads {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 21}, DstMAC: net.HardwareAddr{1, 0, 0x5e, 0, 0, 81},
			EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 1, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{198, 18, 0, 21}, DstIP: net.IP{224, 0, 0, 81}}
		udp := &layers.UDP{SrcPort: 40000, DstPort: layers.UDPPort(port)}
		udp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			eth, ip, udp, gopacket.Payload(p)); err != nil {
			t.Fatal(err)
		}
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1_700_000_000+int64(i), 0), CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}
		if err := w.WritePacket(ci, buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
}
