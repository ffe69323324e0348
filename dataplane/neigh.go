package dataplane

import "github.com/gvs-lb/gvs/dataplane/header"

// The director owns its VIPs from userspace: it answers ARP requests and IPv6
// neighbour solicitations for them itself, and announces them with gratuitous ARP /
// unsolicited neighbour advertisements, so the VIP never has to be added to a kernel
// interface (which would make the kernel answer and forward VIP traffic too).

// answerARP turns an ARP request for a VIP into the reply, in place (RFC 826: swap
// sender and target, fill in our MAC, op = reply), and queues it.
func (w *Worker) answerARP(f *Frame) {
	b := f.Bytes()
	mac := w.srcMAC(b)
	if !w.s.set.hasMAC {
		// A broadcast request names no director MAC; without one configured there is
		// nothing to answer with.
		w.drop(ReasonNotIP)
		return
	}
	header.ReplyToARPRequest(b, &w.p, mac)
	w.C.Reasons[ReasonNeighbor]++
	w.C.Generated++
	w.out = append(w.out, *f)
}

// answerNS answers a neighbour solicitation for a VIP with a solicited neighbour
// advertisement (Solicited and Override set) from the VIP, built in a worker buffer.
func (w *Worker) answerNS(f *Frame, target [16]byte) {
	if !w.s.set.hasMAC || w.nicmp >= len(w.icmp) {
		w.C.ICMPSuppressed++
		w.drop(ReasonNeighbor)
		return
	}
	buf := w.icmp[w.nicmp]
	n := header.NeighborAdvertFor(buf, f.Bytes(), &w.p, w.s.set.mac, target)
	w.nicmp++
	w.C.Reasons[ReasonNeighbor]++
	w.C.Generated++
	w.out = append(w.out, Frame{Buf: buf, Len: n})
}
