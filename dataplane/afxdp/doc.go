// Package afxdp is the AF_XDP link of gvs's data path (issue 11, point 2): a
// dataplane.Link per receive queue of an interface, each an XDP socket (XSK) with its
// own UMEM whose frames the Director handles in place, and the XDP program that steers
// the frames a director needs into those sockets and passes every other frame to the
// kernel.
//
// The XDP program is assembled at run time with cilium/ebpf's asm package (no C, no
// clang). It redirects, through an XSKMAP indexed by the frame's receive queue:
//
//   - IPv4 and IPv6 packets whose destination is a VIP (a BPF hash map, so the number
//     of VIPs is bounded by the map, not by the program);
//   - IPv4 and IPv6 packets whose source is a NAT real server (the same map);
//   - ARP requests whose target address is a VIP;
//   - ICMPv6 neighbour solicitations (type 135) whose target is a VIP, read from the
//     payload when ICMPv6 directly follows the IPv6 header (RFC 4861 NS carry no
//     extension headers in practice); every other NS goes to the kernel, which needs
//     them for the host's own addresses;
//   - VRRP (IP protocol 112) only when Config.RedirectVRRP is set: gvs's VRRP transport
//     is a raw IP socket of the kernel, which never sees a frame XDP redirected, so the
//     daemon leaves VRRP with the kernel.
//
// Frames with one IEEE 802.1Q tag (TPID 0x8100) still in the data are handled as
// untagged ones; 802.1ad (0x88a8) and deeper stacks are passed to the kernel. Every
// other frame, and every frame too short for the header a decision needs, is passed.
// A frame due to a queue that has no socket (the queue count grew at run time) is
// passed and counted (Stats.NoSocket).
//
// Attachment: a BPF link (bpf_link, link.AttachXDP), driver mode where the driver
// supports XDP, generic mode otherwise. The link is deliberately not pinned under
// /sys/fs/bpf: an unpinned link lives exactly as long as the process's file
// descriptors, so the kernel itself detaches it when gvs exits, SIGKILL included,
// and a restart finds the hook free — nothing to find, nothing to stack, and no
// bpffs mount needed (a pinned link would survive the crash and have to be found and
// replaced, and would keep steering traffic into sockets nobody reads meanwhile).
// Programs are told apart by name (ProgramName, read through rtnetlink's IFLA_XDP
// and bpf_prog_get_info): a gvs program attached the old way (netlink, which does
// outlive its process) is replaced; a gvs program held by a live BPF link is
// another gvs running on the interface and is refused; anyone else's program is
// refused with its name and ID (ErrForeignProgram) unless Config.ReplaceForeign.
//
// Checksums: a frame sent by a local stack over veth arrives with its TCP/UDP
// checksum left partial (only the pseudo-header sum) and AF_XDP does not say so. With
// Config.Checksums on (the default on veth), every TCP/UDP frame whose checksum field
// holds exactly its pseudo-header sum and whose full checksum does not verify is
// marked Frame.CsumPartial, and the Director completes it before forwarding.
//
// Sockets exist on Linux only; elsewhere Open fails with errors.ErrUnsupported.
//
// Performance contract: ReadBatch and WriteBatch allocate nothing per frame or per
// batch.
package afxdp
