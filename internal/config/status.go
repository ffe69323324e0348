package config

import (
	"net"
	"strconv"
)

// status reads the status page's keys of [director] (docs/status.md):
// status_listen, and status_actions, which needs the page served and
// metrics_web_config (whose basic auth guards the actions).
func (r *reader) status(t *table, d *Director) {
	if t.str("status_listen", &d.StatusListen) && d.StatusListen != "" {
		if _, port, err := net.SplitHostPort(d.StatusListen); err != nil {
			t.errorf("status_listen", "want host:port or :port, got %q", d.StatusListen)
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			t.errorf("status_listen", "invalid port %q", port)
		} else if d.StatusListen == d.MetricsListen {
			t.errorf("status_listen", "is metrics_listen's address %q: give the status page its own port", d.StatusListen)
		}
	}
	if t.boolean("status_actions", &d.StatusActions) && d.StatusActions {
		switch {
		case d.StatusListen == "":
			t.errorf("status_actions", "needs status_listen (the page the actions are on)")
		case d.MetricsWebConfig == "":
			t.errorf("status_actions", "needs metrics_web_config with basic_auth_users: drain and undrain are never served without authentication")
		}
	}
}
