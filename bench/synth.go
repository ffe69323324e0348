package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// SynthOptions describe a synthetic trace. The zero value is not valid; start from
// DefaultSynth.
type SynthOptions struct {
	Flows          int            // number of flows (connections)
	Clients        int            // distinct client addresses, from 198.19.0.1 on (2001:2::1 on for IPv6 VIPs)
	VIP            netip.AddrPort // destination of every flow
	Proto          string         // "tcp" or "udp"
	PacketsPerFlow int            // client→VIP packets per flow
	Concurrent     int            // flows open at once (interleaved); 0 = min(Flows, 1024)
	Seed           uint64
	Start          time.Time     // timestamp of the first packet
	Gap            time.Duration // time between consecutive packets of the trace
	ClientMAC      net.HardwareAddr
	DirectorMAC    net.HardwareAddr
	PayloadLen     int // bytes of payload in data packets
	// Replies adds the real server's answer after every client packet, as a NAT
	// director sees it. The real server is learned by feeding the trace so far through
	// Forward (a Director with the replay's config), so a replay makes the same choices.
	Replies bool
	Forward func(frame []byte, ts time.Time) (out []byte, ok bool)
}

// DefaultSynth returns options for a small TCP trace to 198.18.0.100:80.
func DefaultSynth() SynthOptions {
	return SynthOptions{
		Flows:          1000,
		Clients:        100,
		VIP:            netip.MustParseAddrPort("198.18.0.100:80"),
		Proto:          "tcp",
		PacketsPerFlow: 10,
		Seed:           1,
		Start:          time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Gap:            time.Microsecond,
		ClientMAC:      net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02},
		DirectorMAC:    net.HardwareAddr{0x02, 0, 0, 0, 0, 0x03},
		PayloadLen:     64,
	}
}

// ErrSynthOptions reports invalid synthetic-trace options.
var ErrSynthOptions = errors.New("bench: synth")

func (o *SynthOptions) validate() error {
	switch {
	case o.Flows <= 0:
		return fmt.Errorf("%w: --flows must be positive (got %d)", ErrSynthOptions, o.Flows)
	case o.Clients <= 0 || o.Clients > 65536:
		return fmt.Errorf("%w: --clients must be in 1..65536 (got %d)", ErrSynthOptions, o.Clients)
	case o.Proto != "tcp" && o.Proto != "udp":
		return fmt.Errorf("%w: --proto must be tcp or udp (got %q)", ErrSynthOptions, o.Proto)
	case o.PacketsPerFlow <= 0:
		return fmt.Errorf("%w: --packets-per-flow must be positive (got %d)", ErrSynthOptions, o.PacketsPerFlow)
	case !o.VIP.IsValid() || o.VIP.Port() == 0:
		return fmt.Errorf("%w: --vip must be ADDR:PORT with a non-zero port (got %v)", ErrSynthOptions, o.VIP)
	case o.Replies && o.Forward == nil:
		return fmt.Errorf("%w: replies need a config to learn the real servers (-c FILE)", ErrSynthOptions)
	case len(o.ClientMAC) != 6 || len(o.DirectorMAC) != 6:
		return fmt.Errorf("%w: MAC addresses must have 6 bytes", ErrSynthOptions)
	}
	return nil
}

type flowState struct {
	client netip.Addr
	cport  uint16
	sent   int
	seq    uint32
	// learned real server (replies only)
	rsMAC  net.HardwareAddr
	rsAddr netip.Addr
	rsPort uint16
	rsSeq  uint32
}

// Synth writes a trace to w as a pcap (Ethernet, nanosecond timestamps) and returns
// the number of packets written.
func Synth(w io.Writer, o SynthOptions) (int, error) {
	if err := o.validate(); err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	pw := pcapgo.NewWriterNanos(bw)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return 0, fmt.Errorf("bench: synth: %w", err)
	}
	g := newGen(o)
	n := 0
	// emit writes one frame and feeds it to the learning Director, whose output tells
	// which real server the flow went to.
	emit := func(frame []byte) ([]byte, error) {
		ts := o.Start.Add(time.Duration(n) * o.Gap)
		n++
		if err := pw.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(frame), Length: len(frame)}, frame); err != nil {
			return nil, fmt.Errorf("bench: synth: %w", err)
		}
		if o.Forward == nil {
			return nil, nil
		}
		out, _ := o.Forward(frame, ts)
		return out, nil
	}
	conc := o.Concurrent
	if conc <= 0 {
		conc = min(o.Flows, 1024)
	}
	active := make([]*flowState, 0, conc)
	next := 0
	for next < o.Flows || len(active) > 0 {
		for len(active) < conc && next < o.Flows {
			active = append(active, g.newFlow(next))
			next++
		}
		i := g.rng.IntN(len(active))
		f := active[i]
		out, err := emit(g.clientPacket(f))
		if err != nil {
			return n, err
		}
		if o.Replies {
			if f.rsMAC == nil {
				learn(f, out)
			}
			if f.rsMAC != nil {
				if _, err := emit(g.replyPacket(f)); err != nil {
					return n, err
				}
			}
		}
		f.sent++
		if f.sent >= o.PacketsPerFlow {
			active[i] = active[len(active)-1]
			active = active[:len(active)-1]
		}
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("bench: synth: %w", err)
	}
	return n, nil
}

// learn records the real server a NAT director sent the flow's packet to.
func learn(f *flowState, out []byte) {
	if out == nil {
		return
	}
	p := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if eth == nil {
		return
	}
	var addr netip.Addr
	switch ip := p.NetworkLayer().(type) {
	case *layers.IPv4:
		addr, _ = netip.AddrFromSlice(ip.DstIP.To4())
	case *layers.IPv6:
		addr, _ = netip.AddrFromSlice(ip.DstIP)
	default:
		return
	}
	switch l4 := p.TransportLayer().(type) {
	case *layers.TCP:
		f.rsPort = uint16(l4.DstPort)
	case *layers.UDP:
		f.rsPort = uint16(l4.DstPort)
	default:
		return
	}
	f.rsAddr = addr
	f.rsMAC = append(net.HardwareAddr(nil), eth.DstMAC...)
}

type gen struct {
	o   SynthOptions
	rng *rand.Rand
	buf gopacket.SerializeBuffer
	v6  bool
}

func newGen(o SynthOptions) *gen {
	return &gen{
		o:   o,
		rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		buf: gopacket.NewSerializeBuffer(),
		v6:  o.VIP.Addr().Is6() && !o.VIP.Addr().Is4In6(),
	}
}

// clientAddr returns client i of the trace: 198.19.x.y from 198.19.0.1 on (the
// benchmarking range), or 2001:2::x:y for IPv6 traces.
func (g *gen) clientAddr(i int) netip.Addr {
	i++ // 198.19.0.1 is the first client
	if g.v6 {
		var b [16]byte
		b[0], b[1], b[3] = 0x20, 0x01, 0x02
		b[14], b[15] = byte(i>>8), byte(i)
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i)})
}

func (g *gen) newFlow(i int) *flowState {
	return &flowState{
		client: g.clientAddr(i % g.o.Clients),
		cport:  uint16(1024 + (i/g.o.Clients)%64000), // unique per client while flows/clients < 64000
		seq:    g.rng.Uint32(),
		rsSeq:  g.rng.Uint32(),
	}
}

// tcpStep returns the flags and payload length of packet k of a TCP flow of n packets:
// SYN, ACK, data…, FIN+ACK, ACK (shorter flows keep the head and end with FIN+ACK).
func tcpStep(k, n int, payload int) (syn, ack, fin, psh bool, plen int) {
	switch {
	case k == 0:
		return true, false, false, false, 0
	case n >= 4 && k == n-1:
		return false, true, false, false, 0
	case (n >= 4 && k == n-2) || (n < 4 && k == n-1):
		return false, true, true, false, 0
	case k == 1:
		return false, true, false, false, 0
	default:
		return false, true, false, true, payload
	}
}

func (g *gen) clientPacket(f *flowState) []byte {
	eth := &layers.Ethernet{SrcMAC: g.o.ClientMAC, DstMAC: g.o.DirectorMAC}
	return g.packet(eth, f.client, f.cport, g.o.VIP.Addr(), g.o.VIP.Port(), f, false)
}

func (g *gen) replyPacket(f *flowState) []byte {
	eth := &layers.Ethernet{SrcMAC: f.rsMAC, DstMAC: g.o.DirectorMAC}
	return g.packet(eth, f.rsAddr, f.rsPort, f.client, f.cport, f, true)
}

func (g *gen) packet(eth *layers.Ethernet, src netip.Addr, sport uint16, dst netip.Addr, dport uint16, f *flowState, reply bool) []byte {
	var net gopacket.NetworkLayer
	var ls []gopacket.SerializableLayer
	if g.v6 {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		net = ip
		ls = append(ls, eth, ip)
	} else {
		eth.EthernetType = layers.EthernetTypeIPv4
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Id: uint16(g.rng.Uint32())}
		net = ip
		ls = append(ls, eth, ip)
	}
	var payload []byte
	if g.o.Proto == "udp" {
		udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		_ = udp.SetNetworkLayerForChecksum(net)
		setProto(net, layers.IPProtocolUDP)
		payload = make([]byte, g.o.PayloadLen)
		ls = append(ls, udp)
	} else {
		syn, ack, fin, psh, plen := tcpStep(f.sent, g.o.PacketsPerFlow, g.o.PayloadLen)
		tcp := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Window: 65535,
			SYN: syn, ACK: ack, FIN: fin, PSH: psh, Seq: f.seq, DataOffset: 5}
		if reply {
			// the server answers: SYN+ACK to a SYN, FIN+ACK to a FIN, else ACK.
			// f.seq already counts the client segment just sent (its SYN or FIN too).
			tcp.Seq, tcp.Ack, tcp.PSH, tcp.ACK = f.rsSeq, f.seq, false, true
			if !syn {
				tcp.Seq = f.rsSeq + 1 // after its SYN+ACK
			}
			plen = 0
		} else {
			tcp.Ack = f.rsSeq + 1
			f.seq += uint32(plen)
			if syn || fin {
				f.seq++
			}
		}
		_ = tcp.SetNetworkLayerForChecksum(net)
		setProto(net, layers.IPProtocolTCP)
		payload = make([]byte, plen)
		ls = append(ls, tcp)
	}
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	ls = append(ls, gopacket.Payload(payload))
	if err := gopacket.SerializeLayers(g.buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		panic("bench: synth: serializing a frame built here cannot fail: " + err.Error())
	}
	return append([]byte(nil), g.buf.Bytes()...)
}

func setProto(n gopacket.NetworkLayer, p layers.IPProtocol) {
	switch ip := n.(type) {
	case *layers.IPv4:
		ip.Protocol = p
	case *layers.IPv6:
		ip.NextHeader = p
	}
}
