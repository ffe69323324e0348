package header

import (
	"encoding/binary"
	"math/bits"
)

// Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//
// Conventions used throughout the package:
//
//   - A "sum" is the 16-bit one's complement sum of a byte range, not inverted, with
//     the range read as big-endian 16-bit words (a trailing odd byte is padded with a
//     zero low byte, RFC 1071 §4.1). Sums compose with ChecksumCombine as long as
//     every range but the last has an even length.
//   - A "checksum" is the value stored in a header field: the one's complement of the
//     sum over everything the field covers, taken while the field itself is zero.
//   - A range with a stored checksum verifies when its sum (field included) is 0xffff.

// Checksum returns the one's complement sum of b added to initial. It allocates
// nothing and handles any length, including odd ones.
//
// The loop adds little-endian 64-bit words with carry: one's complement addition is
// byte-order independent (RFC 1071 §2(B)), so the result only needs a final byte
// swap, and 2^16 ≡ 1 (mod 2^16−1) lets 64-bit partial sums fold down to 16 bits.
func Checksum(b []byte, initial uint16) uint16 {
	acc := uint64(bits.ReverseBytes16(initial))
	var carry uint64
	for len(b) >= 32 {
		// BCE: one check for the four loads below.
		_ = b[31]
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[0:8]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[8:16]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[16:24]), carry)
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b[24:32]), carry)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b), carry)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, carry = bits.Add64(acc, uint64(binary.LittleEndian.Uint32(b)), carry)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, carry = bits.Add64(acc, uint64(binary.LittleEndian.Uint16(b)), carry)
		b = b[2:]
	}
	if len(b) == 1 {
		// The odd byte is the high byte of a big-endian word, i.e. the low byte of
		// the little-endian word we are summing.
		acc, carry = bits.Add64(acc, uint64(b[0]), carry)
	}
	// End-around carry; adding it can carry once more only if acc was all ones.
	acc, carry = bits.Add64(acc, carry, 0)
	acc += carry
	return bits.ReverseBytes16(fold64(acc))
}

// fold64 folds a 64-bit one's complement accumulator to 16 bits.
func fold64(acc uint64) uint16 {
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 16) + (acc & 0xffff)
	acc = (acc >> 16) + (acc & 0xffff)
	acc = (acc >> 16) + (acc & 0xffff)
	return uint16(acc)
}

// ChecksumCombine returns the one's complement sum a + b.
func ChecksumCombine(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s + s>>16)
}

// PseudoHeaderSum returns the sum of the TCP/UDP/ICMPv6 pseudo-header: for IPv4
// (len(src) == 4) source, destination, zero, protocol and the 16-bit L4 length (RFC
// 793 §3.1, RFC 768); for IPv6 (len(src) == 16) source, destination, the 32-bit
// upper-layer length and the next header (RFC 8200 §8.1). src and dst must have the
// same length.
func PseudoHeaderSum(src, dst []byte, proto uint8, length uint32) uint16 {
	s := Checksum(src, 0)
	s = Checksum(dst, s)
	return ChecksumCombine(s, ChecksumCombine(uint16(proto), ChecksumCombine(uint16(length>>16), uint16(length))))
}

// ChecksumUpdate16 returns checksum field hc after one 16-bit word it covers changed
// from old to new: HC' = ~(~HC + ~m + m') (RFC 1624 §3, eqn. 3). Eqn. 3 never turns a
// checksum into 0xffff (−0), which RFC 1624 §5 shows eqn. 2 can.
func ChecksumUpdate16(hc, from, to uint16) uint16 {
	s := uint32(^hc) + uint32(^from) + uint32(to)
	s = (s & 0xffff) + (s >> 16)
	s = (s & 0xffff) + (s >> 16)
	return ^uint16(s)
}

// ChecksumUpdate32 is ChecksumUpdate16 for a 32-bit field (two adjacent words, the
// first at an even offset).
func ChecksumUpdate32(hc uint16, from, to uint32) uint16 {
	s := uint64(^hc) + uint64(^from>>16) + uint64(^from&0xffff) + uint64(to>>16) + uint64(to&0xffff)
	s = (s & 0xffff) + (s >> 16)
	s = (s & 0xffff) + (s >> 16)
	return ^uint16(s)
}

// ChecksumUpdateBytes is ChecksumUpdate16 for a field of even length (an IPv4 or IPv6
// address) that changed from from to to; from and to must have the same even length
// and the field must start at an even offset of the checksummed range. Compute the
// update before writing to into the packet if from aliases it.
func ChecksumUpdateBytes(hc uint16, from, to []byte) uint16 {
	if len(from) == 4 && len(to) == 4 {
		// An IPv4 address: two words, no loop.
		return ChecksumUpdate32(hc, binary.BigEndian.Uint32(from), binary.BigEndian.Uint32(to))
	}
	return checksumApply(hc, checksumDelta(from, to))
}

// checksumDelta returns the unfolded one's complement sum ~from + to (RFC 1624 eqn. 3's
// ~m + m') over equal-length, even-length fields. 32-bit words are summed whole:
// 2^16 ≡ 1 (mod 2^16−1).
func checksumDelta(from, to []byte) uint64 {
	if len(from) == 16 && len(to) == 16 {
		// An IPv6 address: four words, no loop.
		f, t := (*[16]byte)(from), (*[16]byte)(to)
		return uint64(^binary.BigEndian.Uint32(f[0:])) + uint64(binary.BigEndian.Uint32(t[0:])) +
			uint64(^binary.BigEndian.Uint32(f[4:])) + uint64(binary.BigEndian.Uint32(t[4:])) +
			uint64(^binary.BigEndian.Uint32(f[8:])) + uint64(binary.BigEndian.Uint32(t[8:])) +
			uint64(^binary.BigEndian.Uint32(f[12:])) + uint64(binary.BigEndian.Uint32(t[12:]))
	}
	n := min(len(from), len(to))
	var s uint64
	i := 0
	for ; i+4 <= n; i += 4 {
		s += uint64(^binary.BigEndian.Uint32(from[i:])) + uint64(binary.BigEndian.Uint32(to[i:]))
	}
	if i+2 <= n {
		s += uint64(^binary.BigEndian.Uint16(from[i:])) + uint64(binary.BigEndian.Uint16(to[i:]))
	}
	return s
}

// checksumApply returns checksum field hc updated by a delta from checksumDelta:
// HC' = ~(~HC + delta).
func checksumApply(hc uint16, delta uint64) uint16 { return ^fold64(uint64(^hc) + delta) }
