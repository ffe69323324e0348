package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const clusterTOML = `
[director]
interface = "eth1"
address = "198.18.0.21"

[cluster]
node_id = "dir1"
announce_table = 201
announce_device = "gvs-ann"
sync_interface = "eth0"

[[service]]
address = "198.18.100.1:80"
scheduler = "mh"
[[service.real_server]]
address = "198.18.0.5:80"

[[service]]
address = "198.18.100.2:443"
scheduler = "mh"
[[service.real_server]]
address = "198.18.0.5:443"
`

func TestClusterBirdConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gvs.toml")
	if err := os.WriteFile(cfg, []byte(clusterTOML), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb strings.Builder
	err := cmdCluster([]string{"bird-config", "-c", cfg, "--router", "198.18.0.1", "--router-as", "65000", "--as", "65001"}, &out, &errb)
	if err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	for _, want := range []string{`director "dir1"`, "router id 198.18.0.21;", "kernel table 201;", `TAP device "gvs-ann"`,
		"198.18.100.1/32, 198.18.100.2/32", "local 198.18.0.21 as 65001;", "neighbor 198.18.0.1 as 65000;", `interface "eth0"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if bird, err := exec.LookPath("bird"); err == nil {
		f := filepath.Join(dir, "bird.conf")
		os.WriteFile(f, []byte(out.String()), 0o644)
		if b, err := exec.Command(bird, "-p", "-c", f).CombinedOutput(); err != nil {
			t.Fatalf("bird -p: %v\n%s", err, b)
		}
	}
	out.Reset()
	if err := cmdCluster([]string{"bird-config", "-c", cfg, "--ospf", "--vip", "198.18.100.9"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "protocol ospf v2") || !strings.Contains(s, "198.18.100.9/32") || strings.Contains(s, "198.18.100.1/32") {
		t.Fatalf("--ospf --vip:\n%s", s)
	}
	for _, args := range [][]string{
		{"bird-config", "-c", cfg, "--router", "198.18.0.1", "--router-as", "65000"}, // no --as
		{"frr-config"},
		{},
	} {
		if err := cmdCluster(args, &out, &errb); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
	if err := cmdCluster([]string{"bird-config", "--router", "198.18.0.1", "--as", "1", "--router-as", "2"}, &out, &errb); err == nil ||
		!strings.Contains(err.Error(), "no VIPs") {
		t.Fatalf("without VIPs: %v", err)
	}
}
