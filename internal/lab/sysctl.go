package lab

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// A sysctl is one setting written under /proc/sys inside a namespace.
type sysctl struct {
	key      string // dotted, as sysctl(8) names it: "net.ipv4.conf.all.arp_ignore"
	val      string
	optional bool // a missing knob is fine (e.g. bridge-nf-call-* without br_netfilter)
}

// setSysctls writes the settings inside namespace ns, from one thread that entered
// it (see InNetns): no process per write, and the values land in ns only.
func setSysctls(ns string, settings []sysctl) error {
	if len(settings) == 0 {
		return nil
	}
	return InNetns(ns, func() error {
		for _, s := range settings {
			path := "/proc/sys/" + strings.ReplaceAll(s.key, ".", "/")
			if err := os.WriteFile(path, []byte(s.val), 0o644); err != nil {
				if s.optional && errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return fmt.Errorf("lab: %s: sysctl %s=%s: %w", ns, s.key, s.val, err)
			}
		}
		return nil
	})
}

// readSysctl reads one setting inside namespace ns.
func readSysctl(ns, key string) (string, error) {
	var v string
	err := InNetns(ns, func() error {
		b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}
