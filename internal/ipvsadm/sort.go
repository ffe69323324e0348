package ipvsadm

import "net/netip"

// ipvsadm sorts with glibc's qsort and libipvs's comparison functions. Those
// subtract unsigned 32-bit values and keep the result in an int, so two
// values 2^31 or more apart compare the wrong way round (10.0.0.1 sorts
// after 192.168.0.1), and the relation is not even transitive. The order
// that comes out therefore depends on the sorting algorithm too: glibc
// (Debian bookworm's 2.36) sorts with a top-down merge sort, reproduced by
// mergeSort, so that gvs lists in the same order as ipvsadm in every case.

// wrapDiff is (int)(a - b) for unsigned 32-bit a and b, as C computes it.
func wrapDiff(a, b uint32) int { return int(int32(a - b)) }

// addrWords is an address as libipvs's union nf_inet_addr, in host-order
// 32-bit words: an IPv4 address fills the first word, the rest are zero.
func addrWords(a netip.Addr) [4]uint32 {
	var w [4]uint32
	if a.Is4() {
		b := a.As4()
		w[0] = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		return w
	}
	if a.Is6() {
		b := a.As16()
		for i := range w {
			w[i] = uint32(b[4*i])<<24 | uint32(b[4*i+1])<<16 | uint32(b[4*i+2])<<8 | uint32(b[4*i+3])
		}
	}
	return w
}

// Address families as the kernel numbers them; IPv4 sorts first.
const (
	afInet  = 2
	afInet6 = 10
)

// compareAddrs compares as libipvs: all four words if the first address is
// IPv6, else the first word only.
func compareAddrs(a, b netip.Addr, aIs6 bool) int {
	wa, wb := addrWords(a), addrWords(b)
	if !aIs6 {
		return wrapDiff(wa[0], wb[0])
	}
	for i := range wa {
		if r := wrapDiff(wa[i], wb[i]); r != 0 {
			return r
		}
	}
	return 0
}

// compareServices is ipvs_cmp_services: fwmark, family, protocol, address,
// port. An fwmark service has protocol, address and port zero, as the
// kernel reports it.
func compareServices(a, b *Service) int {
	if r := wrapDiff(a.FWMark, b.FWMark); r != 0 {
		return r
	}
	afA, afB := afInet, afInet
	if a.is6() {
		afA = afInet6
	}
	if b.is6() {
		afB = afInet6
	}
	if r := afA - afB; r != 0 {
		return r
	}
	if r := int(serviceProto(a)) - int(serviceProto(b)); r != 0 {
		return r
	}
	var addrA, addrB netip.Addr
	var portA, portB uint16
	if a.FWMark == 0 {
		addrA, portA = a.Addr, a.Port
	}
	if b.FWMark == 0 {
		addrB, portB = b.Addr, b.Port
	}
	if r := compareAddrs(addrA, addrB, afA == afInet6); r != 0 {
		return r
	}
	return int(portA) - int(portB)
}

// compareDests is ipvs_cmp_dests: address, then port.
func compareDests(a, b *Dest) int {
	if r := compareAddrs(a.Addr, b.Addr, a.Addr.Is6()); r != 0 {
		return r
	}
	return int(a.Port) - int(b.Port)
}

// mergeSort sorts s as glibc's msort_with_tmp: split at n/2, sort both
// halves, merge taking from the left half while cmp(left, right) <= 0.
func mergeSort[T any](s []*T, cmp func(a, b *T) int) {
	if len(s) < 2 {
		return
	}
	tmp := make([]*T, len(s))
	mergeSortTmp(s, tmp, cmp)
}

func mergeSortTmp[T any](s, tmp []*T, cmp func(a, b *T) int) {
	n := len(s)
	if n < 2 {
		return
	}
	n1 := n / 2
	mergeSortTmp(s[:n1], tmp, cmp)
	mergeSortTmp(s[n1:], tmp, cmp)
	i, j, k := 0, n1, 0
	for i < n1 && j < n {
		if cmp(s[i], s[j]) <= 0 {
			tmp[k] = s[i]
			i++
		} else {
			tmp[k] = s[j]
			j++
		}
		k++
	}
	// What is left of the right half is already in place.
	k += copy(tmp[k:], s[i:n1])
	copy(s, tmp[:k])
}
