package bench

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// PaceOptions configures PaceUDP, the saturation search's sender: the flood's
// frames (64-byte UDP client → VIP:53, the source port cycling over Flows, one frame
// per destination MAC in turn, as the trafgen config of the flood) sent at a set
// rate instead of as fast as possible.
type PaceOptions struct {
	Dev     string             // the interface to send on (in the caller's namespace)
	SrcMAC  net.HardwareAddr   //
	DstMACs []net.HardwareAddr // frames go to each in turn
	Src     netip.Addr         // IPv4
	Dst     netip.Addr         // IPv4: the VIP
	Port    uint16             // UDP destination port
	Flows   int                // source ports 1024 … 1024+Flows−1
	Rate    float64            // frames per second
	Count   uint64             // frames to send
}

// PaceResult is what PaceUDP sent.
type PaceResult struct {
	Sent    uint64        `json:"sent"`
	Elapsed time.Duration `json:"elapsed_ns"` // from the first frame to the last
	// Behind is the time the sender skipped because it had fallen behind its
	// schedule by more than paceMaxBehind (descheduled, or too slow): the frames
	// were sent at Rate during Elapsed − Behind.
	Behind time.Duration `json:"behind_ns"`
}

// Pacing constants: the sender sleeps in quanta of paceQuantum and then sends the
// frames that fell due meanwhile (bursts of rate × quantum: 15 frames at 300 kpps),
// in sendmmsg batches of at most paceBatch. It never catches up more than
// paceMaxBehind of lost time at once: a sender that cannot keep up offers less, and
// the search sees that in the achieved rate instead of in bursts.
const (
	paceQuantum   = 50 * time.Microsecond
	paceBatch     = 64
	paceMaxBehind = 2 * time.Millisecond
)

// paceFrames returns the frames PaceUDP cycles through.
func paceFrames(o PaceOptions) ([][]byte, error) {
	if !o.Src.Is4() || !o.Dst.Is4() || len(o.DstMACs) == 0 || o.Flows <= 0 || o.Flows > 60000 {
		return nil, fmt.Errorf("bench: pace: want IPv4 addresses, destination MACs and 1..60000 flows")
	}
	buf := gopacket.NewSerializeBuffer()
	var frames [][]byte
	for f := range o.Flows {
		for _, d := range o.DstMACs {
			eth := &layers.Ethernet{SrcMAC: o.SrcMAC, DstMAC: d, EthernetType: layers.EthernetTypeIPv4}
			ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolUDP,
				SrcIP: o.Src.AsSlice(), DstIP: o.Dst.AsSlice()}
			udp := &layers.UDP{SrcPort: layers.UDPPort(1024 + f), DstPort: layers.UDPPort(o.Port)}
			if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
				return nil, err
			}
			// 14 + 20 + 8 + 18 = 60 bytes, as the flood's (64 on a wire with the FCS).
			if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
				eth, ip, udp, gopacket.Payload(make([]byte, 18))); err != nil {
				return nil, err
			}
			frames = append(frames, append([]byte(nil), buf.Bytes()...))
		}
	}
	return frames, nil
}

// paceDue returns how many frames are due after elapsed at rate, at most count.
func paceDue(rate float64, elapsed time.Duration, count uint64) uint64 {
	if elapsed <= 0 || rate <= 0 {
		return 0
	}
	return min(count, uint64(rate*elapsed.Seconds()))
}
