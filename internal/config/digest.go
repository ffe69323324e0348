package config

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/gvs-lb/gvs/ipvs"
)

// The cluster digest (docs/cluster.md §5) is built from parts so that a running
// director can keep it as its table changes, one service at a time: a digest of
// every service's scheduling (ServiceDigest), summed in any order (DigestSum), the
// part only the file sets (ClusterFileDigest) and the timeouts, which gvs adm --set
// changes too. ClusterDigest is that function of a file; the daemon applies the same
// one to its running table, so a director changed by hand differs from its peers.

// DigestSum is an order-independent combination of service digests: their sum
// modulo 2^128. Adding or removing one service costs one addition, whatever the
// order in which the services were listed or changed. The zero value is the empty
// table.
type DigestSum struct{ hi, lo uint64 }

// Add returns s with the digest d added.
func (s DigestSum) Add(d [16]byte) DigestSum {
	lo, carry := bits.Add64(s.lo, binary.BigEndian.Uint64(d[8:]), 0)
	hi, _ := bits.Add64(s.hi, binary.BigEndian.Uint64(d[:8]), carry)
	return DigestSum{hi, lo}
}

// Plus returns the combination of s and t.
func (s DigestSum) Plus(t DigestSum) DigestSum {
	lo, carry := bits.Add64(s.lo, t.lo, 0)
	hi, _ := bits.Add64(s.hi, t.hi, carry)
	return DigestSum{hi, lo}
}

// ServiceDigest is one service's part of the cluster digest: its key, scheduler,
// flags, mh table size, persistence and its granularity, one-packet scheduling,
// match rules and real servers with weights, thresholds and methods — what makes two
// directors schedule alike. Real servers and rules count in sorted order; a real
// server's pinned MAC does not count (each director may resolve it).
func ServiceDigest(s *ipvs.Service) [16]byte {
	var b strings.Builder
	fmt.Fprintf(&b, "service %s sched=%s flags=%d mh=%d persist=%d mask=%v ops=%v\n",
		s.Key, s.Scheduler, s.Flags, s.MHTableSize, s.Persistence, s.Netmask, s.OPS)
	rules := make([]string, 0, len(s.Match))
	for _, m := range s.Match {
		rules = append(rules, fmt.Sprintf(" match %+v\n", m))
	}
	slices.Sort(rules)
	servers := make([]string, 0, len(s.RealServers))
	for _, r := range s.RealServers {
		servers = append(servers, fmt.Sprintf(" rs %v weight=%d method=%v u=%d l=%d\n", r.Addr, r.Weight, r.Method, r.UpperThreshold, r.LowerThreshold))
	}
	slices.Sort(servers)
	for _, l := range append(rules, servers...) {
		b.WriteString(l)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return [16]byte(sum[:16])
}

// ClusterDigestOf combines the parts: the file's (ClusterFileDigest), the services'
// sum and the timeouts.
func ClusterDigestOf(file [16]byte, services DigestSum, t ipvs.Timeouts) [16]byte {
	var b [16 + 16 + 24]byte
	copy(b[:16], file[:])
	binary.BigEndian.PutUint64(b[16:], services.hi)
	binary.BigEndian.PutUint64(b[24:], services.lo)
	binary.BigEndian.PutUint64(b[32:], uint64(t.TCP))
	binary.BigEndian.PutUint64(b[40:], uint64(t.TCPFin))
	binary.BigEndian.PutUint64(b[48:], uint64(t.UDP))
	sum := sha256.Sum256(b[:])
	return [16]byte(sum[:16])
}
