package conntrack

// walkHold bounds how many slots Walk looks at per hold of a shard lock, so a long
// walk delays the data path's packets of that shard by little.
const walkHold = 256

// Walk visits at most max live entries, starting at cursor (0: the beginning), in
// slab order — shard by shard, slot by slot — and returns the cursor to continue from
// and whether it reached the end. The cursor is shard<<32 | slab index: an entry keeps
// its slot for its life, so a pass from 0 to done visits no entry twice, even while
// entries are inserted and removed (those may or may not be visited).
//
// fn gets a copy of the entry and its sync metadata; when it returns true the entry
// was sent and its LastSync becomes now. fn runs under the entry's shard lock, so it
// must not call into the Table. Entries past their expiry time are skipped. now and
// SyncMeta's times are on the data path's clock (the time the workers pass to the
// table), not the wall clock. Walk allocates nothing but, the first time, the table's
// sync side.
func (t *Table) Walk(cursor uint64, max int, now int64, fn func(c *Conn, m *SyncMeta) bool) (next uint64, done bool) {
	t.enableSync()
	si, i := int(cursor>>32), uint32(cursor)
	if i == 0 {
		i = 1 // slot 0 is never used
	}
	var c Conn
	var m SyncMeta
	for si < len(t.shards) && max > 0 {
		s := &t.shards[si]
		s.mu.Lock()
		for n := 0; i < s.nalloc && max > 0 && n < walkHold; i, n = i+1, n+1 {
			e := s.at(i)
			if e.flags&fLive == 0 || (e.expires <= now && e.nctl == 0) {
				continue
			}
			max--
			t.fillLocked(si, i, e, &c)
			var r syncRec
			t.loadSync(e, &r)
			if e.flags&fUnbound != 0 {
				c.DAddr = s.sx.unbound[i]
			} else {
				fillDAddr(&c, t.destOf(e))
			}
			m = SyncMeta{Origin: r.origin, LastSync: r.lastSync, Pkts: r.pkts}
			if r.origin == 0 {
				// The timer is re-armed to the packet's time plus the timeout by
				// every local packet, so the last one is expires - timeout.
				m.LastActive = e.expires - int64(e.timeout)*msNs
			}
			if fn(&c, &m) {
				r.lastSync = now
				r.oldState = uint8(e.state)
				r.retries = 0
				t.storeSync(e, &r)
			}
		}
		more := i < s.nalloc
		s.mu.Unlock()
		if !more {
			si, i = si+1, 1
		}
	}
	if si >= len(t.shards) {
		return uint64(len(t.shards)) << 32, true
	}
	return uint64(si)<<32 | uint64(i), false
}
