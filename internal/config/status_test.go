package config

import (
	"strings"
	"testing"
)

func TestStatusKeys(t *testing.T) {
	base := "[director]\ninterface = \"eth0\"\n"
	for _, tc := range []struct {
		name, keys, want string
		listen           string
		actions          bool
	}{
		{name: "off by default"},
		{name: "listen", keys: "status_listen = \"198.18.0.3:9200\"\n", listen: "198.18.0.3:9200"},
		{name: "actions", keys: "status_listen = \":9200\"\nmetrics_web_config = \"web.yml\"\nstatus_actions = true\n", listen: ":9200", actions: true},
		{name: "bad address", keys: "status_listen = \"9200\"\n", want: "status_listen: want host:port"},
		{name: "bad port", keys: "status_listen = \":http2\"\n", want: "status_listen: invalid port"},
		{name: "same as metrics", keys: "metrics_listen = \":9100\"\nstatus_listen = \":9100\"\n", want: "give the status page its own port"},
		{name: "actions without page", keys: "metrics_web_config = \"web.yml\"\nstatus_actions = true\n", want: "status_actions: needs status_listen"},
		{name: "actions without auth", keys: "status_listen = \":9200\"\nstatus_actions = true\n", want: "needs metrics_web_config with basic_auth_users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("gvs.toml", []byte(base+tc.keys))
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want one containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cfg.Director; d.StatusListen != tc.listen || d.StatusActions != tc.actions {
				t.Fatalf("status_listen %q status_actions %v, want %q %v", d.StatusListen, d.StatusActions, tc.listen, tc.actions)
			}
		})
	}
}
