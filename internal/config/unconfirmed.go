package config

import "math"

// defenseModes reads drop_entry, secure_tcp and amemthresh (docs/defense.md §8).
func defenseModes(t *table, d *Director) {
	t.intField("drop_entry", 0, 3, &d.Sysctl.DropEntry)
	t.intField("secure_tcp", 0, 3, &d.Sysctl.SecureTCP)
	if t.intField("amemthresh", 0, math.MaxInt32, &d.Sysctl.AMemThresh) && d.Sysctl.AMemThresh > d.ConnMax {
		t.errorf("amemthresh", "must not exceed conn_max (%d > %d): it counts free connection-table entries", d.Sysctl.AMemThresh, d.ConnMax)
	}
}

// unconfirmed reads conn_unconfirmed_max and conn_unconfirmed_max_per_service, the
// unconfirmed budget of the connection table (docs/defense.md §7), and checks them
// against conn_max and each other, then the defense modes.
func unconfirmed(t *table, d *Director) {
	defer defenseModes(t, d)
	if t.intField("conn_unconfirmed_max", -1, math.MaxInt32, &d.ConnUnconfirmedMax) && d.ConnUnconfirmedMax > d.ConnMax {
		t.errorf("conn_unconfirmed_max", "must not exceed conn_max (%d > %d); 0 = conn_max/2, -1 = off", d.ConnUnconfirmedMax, d.ConnMax)
	}
	if t.intField("conn_unconfirmed_max_per_service", 0, math.MaxInt32, &d.ConnUnconfirmedPerService) {
		total := d.ConnUnconfirmedMax
		if total == 0 {
			total = max(1, d.ConnMax/2)
		}
		switch {
		case d.ConnUnconfirmedMax == -1 && d.ConnUnconfirmedPerService != 0:
			t.errorf("conn_unconfirmed_max_per_service", "is set but conn_unconfirmed_max = -1 turns the budget off; remove one of them")
		case d.ConnUnconfirmedMax != -1 && d.ConnUnconfirmedPerService > total:
			t.errorf("conn_unconfirmed_max_per_service", "must not exceed conn_unconfirmed_max (%d > %d)", d.ConnUnconfirmedPerService, total)
		}
	}
}
