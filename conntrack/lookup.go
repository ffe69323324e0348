package conntrack

// Lookups without a state transition, for ICMP errors: IPVS finds the connection an
// ICMP error quotes (ip_vs_in_icmp, ip_vs_out_icmp, docs/ipvs-semantics.md §5.7) but neither
// runs the TCP state machine nor restarts the connection's timer for it.

// Lookup finds the live input-direction connection k (the §6.2 rules, NO_CPORT retry
// included) and fills c. It changes nothing and allocates nothing.
func (t *Table) Lookup(k *Key, now int64, c *Conn) bool {
	if t.lookup(k, k.CPort, now, c) {
		return true
	}
	return k.CPort != 0 && t.noCPort.Load() > 0 && t.lookup(k, 0, now, c)
}

func (t *Table) lookup(k *Key, cport uint16, now int64, c *Conn) bool {
	h := t.hash(k.Proto, k.IPv6, &k.CAddr, cport)
	si := t.shardOf(h)
	s := &t.shards[si]
	s.mu.Lock()
	i := t.findInLocked(s, k, cport, h, now)
	if i == 0 {
		s.mu.Unlock()
		return false
	}
	e := s.at(i)
	d := t.destOf(e)
	t.fillLocked(si, i, e, c)
	s.mu.Unlock()
	fillDAddr(c, d)
	return true
}

// LookupOut finds the connection of a packet from a real server (saddr, sport) to a
// client (daddr, dport), as Out does, and fills c. It changes nothing.
func (t *Table) LookupOut(proto uint8, ipv6 bool, saddr [16]byte, sport uint16, daddr [16]byte, dport uint16, now int64, c *Conn) bool {
	h := t.hash(proto, ipv6, &daddr, dport)
	si := t.shardOf(h)
	s := &t.shards[si]
	s.mu.Lock()
	i, e, d := t.findOutLocked(s, h, proto, ipv6, &saddr, sport, &daddr, dport, now)
	if i != 0 {
		t.fillLocked(si, i, e, c)
	}
	s.mu.Unlock()
	if i == 0 {
		return false
	}
	fillDAddr(c, d)
	return true
}
