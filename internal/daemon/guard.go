package daemon

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"time"
)

// ingressGuard is the optional nftables netdev ingress rule that drops frames to
// the VIPs on the director's interface. Packet taps (gvs's AF_PACKET ring) run before
// the ingress hook, so gvs still sees every frame, while the kernel never spends a
// trip up its IP stack on them — and could never forward them even if forwarding were
// turned on later.
type ingressGuard struct {
	ifname string
	table  string
}

func newIngressGuard(ifname string) *ingressGuard {
	return &ingressGuard{ifname: ifname, table: "gvs_" + strings.NewReplacer("-", "_", ".", "_").Replace(ifname)}
}

// script returns the nft input that (re)creates the guard's table for vips.
func (g *ingressGuard) script(vips []netip.Addr) string {
	var v4, v6 []string
	for _, a := range vips {
		if a.Is4() {
			v4 = append(v4, a.String())
		} else if a.Is6() {
			v6 = append(v6, a.String())
		}
	}
	var b strings.Builder
	// Declaring then deleting the table makes the script idempotent.
	fmt.Fprintf(&b, "table netdev %s {}\ndelete table netdev %s\n", g.table, g.table)
	fmt.Fprintf(&b, "table netdev %s {\n\tchain ingress {\n\t\ttype filter hook ingress device %q priority 0; policy accept;\n", g.table, g.ifname)
	if len(v4) > 0 {
		fmt.Fprintf(&b, "\t\tip daddr { %s } drop\n", strings.Join(v4, ", "))
	}
	if len(v6) > 0 {
		fmt.Fprintf(&b, "\t\tip6 daddr { %s } drop\n", strings.Join(v6, ", "))
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

var _ Guard = (*ingressGuard)(nil)

// Install creates or replaces the guard for vips.
func (g *ingressGuard) Install(ctx context.Context, vips []netip.Addr) error {
	return g.nft(ctx, g.script(vips))
}

// Remove deletes the guard's table.
func (g *ingressGuard) Remove(ctx context.Context) error {
	return g.nft(ctx, fmt.Sprintf("table netdev %s {}\ndelete table netdev %s\n", g.table, g.table))
}

func (g *ingressGuard) nft(ctx context.Context, script string) error {
	path, err := exec.LookPath("nft")
	if err != nil {
		return fmt.Errorf("ingress_drop needs the nft command (Debian package nftables), or set ingress_drop = false: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}
