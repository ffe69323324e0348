// Package lab builds the gvs teaching and test topology of docs/lab.md out of Linux
// network namespaces, veth pairs and a bridge, with nothing but iproute2 and root:
// the seeds' docker labs (client, switch, lvs1, rs1, rs2) without docker. It
// serves `gvs lab`, the integration tests and live benchmarks, and is never linked
// into `gvs run`.
//
// # Topology
//
// Every name starts with the lab's prefix p. Namespace p-sw holds the switch, bridge
// br0 (and br1, NAT's outside network), and nothing else; each other host is a
// namespace with eth0, a veth whose other end is a port of the bridge. On
// Spec.Subnet (default 198.18.0.0/24): p-client .2, p-dir1 .3, p-dir2 .4 (with two
// directors), p-rs1 .5, p-rs2 .6 …, VIP .100. MACs are 02:00:00:00:LL:XX, XX the
// address's last octet and LL the network (00 Subnet, 01 outside), so `tcpdump -e`
// reads like the addresses: the DR rewrite is 02:00:00:00:00:02 > …:03, then
// …:03 > …:05. lo is up everywhere.
//
//   - Directors get no VIP on the kernel (gvs answers ARP for it from userspace),
//     ip_forward and forwarding off, send_redirects off, as the seeds set them.
//   - DR and TUN real servers hold the VIP on lo with arp_ignore=1 and
//     arp_announce=2 on "all" and lo (the seeds' settings).
//   - NAT: the client moves to the outside network Spec.Outside (default
//     198.18.1.0/24; client .2, MAC 02:00:00:00:01:02) behind a gateway p-gw (.1
//     on both networks, ip_forward on), and the real servers' default route is
//     dir1's address. The gateway is a namespace of its own rather than a second leg
//     of the director because gvs's data path is one-armed: one [director]
//     interface, NAT replies sent to gateway_mac. A kernel router inside the
//     director's namespace could not hand client→VIP frames to gvs (it would ARP
//     for the VIP on its own wire, where gvs's answer never reaches its own stack),
//     and it would need forwarding on, which gvs run refuses. Without a director,
//     the client still reaches a real server's address (the gateway forwards) but
//     never gets an answer: the reply goes to dir1, whose kernel drops it.
//   - TUN: this kernel has no ipip module, so each real server runs a userspace
//     decapsulator (`gvs lab rs-tun`): a raw IPPROTO_IPIP socket receives the
//     director's IP-in-IP packets (and, by existing, stops the kernel answering
//     "protocol unreachable"); the inner packet is written into TUN device tun0, the
//     kernel delivers it to the VIP on lo, and the reply leaves eth0 as in DR.
//     rp_filter is off on the real servers, since the inner packets arrive on tun0
//     from a client routed via eth0.
//   - The switch has bridge netfilter off (the per-bridge nf_call_* options, and
//     the bridge-nf-call-* sysctls where br_netfilter provides them), no STP, no
//     multicast snooping, and IPv6 disabled so its ports stay silent.
//   - Every interface (hosts' and switch ports) has TSO, GSO and GRO off
//     (SIOCETHTOOL, no ethtool binary needed), so frames crossing a director are
//     MTU-sized: a veth otherwise hands AF_PACKET 64 KB GSO frames.
//   - Spec.IPv6 adds IPv6 (host n of the subnet is 2001:db8::n, NAT's outside
//     network 2001:db8:0:1::/64, VIP6 2001:db8::100) without duplicate address
//     detection; DR and TUN real servers hold VIP6/128 on lo (Linux answers
//     neighbour solicitations only for addresses of the interface asked on, so
//     the VIP on lo stays hidden without an arp_ignore), TUN's decapsulator
//     takes IPv6-in-IPv6 too, and the director configs get IPv6 services.
//
// # Processes
//
// Each real server runs `gvs lab serve`: an HTTP server answering its name
// ("rs1\n") on every address at Spec.HTTPPort (80) — GET /whoami answers the
// name and the peer's address as the server sees it, GET /bytes?n=N N bytes of
// PatternBytes — and a UDP echo on
// Spec.UDPPort (53) that answers "rs1: " plus the datagram, from the address the
// datagram was sent to (IP_PKTINFO), so answers to the VIP come from the VIP. The
// lab starts them as `ip netns exec <ns> <Exe> lab serve …` (ip execs, so the PID is
// the server's), in a session of their own, output appended to RunDir/<host>-<name>.log,
// and waits until each writes "ready" on an inherited pipe (--ready-fd). They are
// recorded in the state file with their start time and stopped by PID on Down
// (SIGTERM, then SIGKILL, each waited for at most 2 s; a PID whose start time
// differs is not touched).
//
// Exe defaults to os.Executable(). In tests that is the test binary: its TestMain
// hands `lab …` arguments to RunHelper, so the same code serves (see lab_test.go).
// StartDirector runs `Exe run -c FILE` in a director's namespace: the hook for
// `gvs lab demo` once gvs run exists; Up writes each director's config (see
// DirectorConfig) to ConfigPath.
//
// # State
//
// Up first creates the state file StateDir/<prefix>.json (default /run/gvs-lab)
// with O_EXCL, which is the prefix's lock and lists every namespace the lab will
// make; it is rewritten after each process start. So Down(dir, prefix) from any
// process — or after a crash half way through Up — finds every name and PID. Without
// a state file Down still deletes the namespaces the prefix can have made (exact
// names: p-sw, p-gw, p-client, p-dirN, p-rsN), but kills nothing. Up tears down
// everything it made when it fails or its context ends. DownStale removes labs
// whose creator died without tearing them down.
//
// # Privileges and namespaces
//
// Links, addresses and routes are made with `ip -n <ns> -batch -`, one process per
// namespace; every veth is created from inside the switch's namespace with its
// peer placed directly in the host's, so nothing ever exists in the caller's
// namespace. Sysctls are written to /proc/sys from an OS thread that entered the
// namespace with setns(2) (InNetns): no process per setting. Creating links needs
// root; Preflight says what is missing.
//
// A Lab is safe for concurrent use; one process at a time should manage a given
// lab's processes (Start, Down).
package lab
