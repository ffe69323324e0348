package config

import (
	"strings"
	"testing"
)

func TestUnconfirmedKeys(t *testing.T) {
	cfg := mustParse(t, []byte("[director]\nconn_max = 1000\nconn_unconfirmed_max = 400\nconn_unconfirmed_max_per_service = 100\n"))
	if d := cfg.Director; d.ConnUnconfirmedMax != 400 || d.ConnUnconfirmedPerService != 100 {
		t.Fatalf("%d %d", d.ConnUnconfirmedMax, d.ConnUnconfirmedPerService)
	}
	if d := mustParse(t, []byte("[director]\nconn_unconfirmed_max = -1\n")).Director; d.ConnUnconfirmedMax != -1 {
		t.Fatal(d.ConnUnconfirmedMax)
	}
	if d := Default().Director; d.ConnUnconfirmedMax != 0 || d.ConnUnconfirmedPerService != 0 {
		t.Fatal("defaults are not 0 (conn_max fractions)")
	}
	d := mustParse(t, []byte("[director]\nconn_max = 1000\ndrop_entry = 1\nsecure_tcp = 3\namemthresh = 100\n")).Director
	if s := d.Sysctl; s.DropEntry != 1 || s.SecureTCP != 3 || s.AMemThresh != 100 {
		t.Fatalf("%+v", s)
	}
	for _, tc := range []struct{ body, want string }{
		{"drop_entry = 4", "director.drop_entry: must be at most 3 (got 4)"},
		{"secure_tcp = -1", "director.secure_tcp: must not be negative"},
		{"conn_max = 10\namemthresh = 11", "director.amemthresh: must not exceed conn_max (11 > 10)"},
		{"conn_max = 100\nconn_unconfirmed_max = 101", "director.conn_unconfirmed_max: must not exceed conn_max (101 > 100)"},
		{"conn_unconfirmed_max = -2", "director.conn_unconfirmed_max: must be at least -1 (got -2)"},
		{"conn_max = 100\nconn_unconfirmed_max_per_service = 51", "director.conn_unconfirmed_max_per_service: must not exceed conn_unconfirmed_max (51 > 50)"},
		{"conn_unconfirmed_max = 10\nconn_unconfirmed_max_per_service = 11", "must not exceed conn_unconfirmed_max (11 > 10)"},
		{"conn_unconfirmed_max = -1\nconn_unconfirmed_max_per_service = 5", "turns the budget off"},
		{"conn_unconfirmed_max_per_service = -1", "director.conn_unconfirmed_max_per_service: must not be negative"},
	} {
		_, err := Parse("t.toml", []byte("[director]\n"+tc.body+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.body, err, tc.want)
		}
	}
}
