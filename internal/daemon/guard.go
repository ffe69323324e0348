package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ingressGuard is the optional nftables netdev ingress rule that drops frames to
// the VIPs on the director's interface. Packet taps (gvs's AF_PACKET ring) run before
// the ingress hook, so gvs still sees every frame, while the kernel never spends a
// trip up its IP stack on them — and could never forward them even if forwarding were
// turned on later.
//
// The table is owned by the process that installed it: its comment carries the
// owner's pid and start time (processOwner). Remove deletes the table only while
// it still carries that comment, by its handle, so a stopping gvs never removes
// the guard a newer gvs on the same interface installed meanwhile — the newer one
// replaced the table, which changed both (docs/operations.md §4).
type ingressGuard struct {
	ifname string
	table  string
	owner  string   // the table's comment: who installed it
	nft    []string // the nft command and its leading arguments
	log    *slog.Logger
}

// newIngressGuard returns the guard of interface ifname, owned by this process.
// log (nil: discard) hears of a guard left to its newer owner.
func newIngressGuard(ifname string, log *slog.Logger) *ingressGuard {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ingressGuard{
		ifname: ifname,
		table:  "gvs_" + strings.NewReplacer("-", "_", ".", "_").Replace(ifname),
		owner:  processOwner(),
		log:    log,
	}
}

// processOwner names this process for as long as it lives: its pid and its start
// time (clock ticks after boot, /proc/self/stat field 22), which together are
// never reused while the machine is up. Without /proc, the time gvs started.
func processOwner() string {
	start := ""
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		// The command name (field 2) is in parentheses and may hold blanks:
		// count fields after its closing one.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 {
			if f := strings.Fields(string(b[i+1:])); len(f) > 19 {
				start = f[19]
			}
		}
	}
	if start == "" {
		start = "t" + strconv.FormatInt(time.Now().UnixNano(), 10)
	}
	return "gvs pid=" + strconv.Itoa(os.Getpid()) + " start=" + start
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
	fmt.Fprintf(&b, "table netdev %s {\n\tcomment %q\n\tchain ingress {\n\t\ttype filter hook ingress device %q priority 0; policy accept;\n", g.table, g.owner, g.ifname)
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

// Install creates or replaces the guard for vips, owned by this process.
func (g *ingressGuard) Install(ctx context.Context, vips []netip.Addr) error {
	_, err := g.run(ctx, g.script(vips), "-f", "-")
	return err
}

// Remove deletes the guard's table if this process owns it. A table that is gone
// is not an error; one another gvs owns is left to it.
func (g *ingressGuard) Remove(ctx context.Context) error {
	out, err := g.run(ctx, "", "-a", "list", "table", "netdev", g.table)
	if err != nil {
		if strings.Contains(err.Error(), "No such file or directory") {
			return nil
		}
		return err
	}
	handle, owner, ok := tableOwner(out, g.table)
	if !ok {
		return fmt.Errorf("nft: cannot read the handle of table netdev %s from:\n%s", g.table, out)
	}
	if owner != g.owner {
		g.log.Info("ingress guard left in place: another gvs installed it since", "table", g.table, "owner", owner, "we", g.owner)
		return nil
	}
	// By handle: if a newer gvs replaced the table since the listing, this
	// handle is gone and the newer table stays.
	if _, err := g.run(ctx, "", "delete", "table", "netdev", "handle", strconv.Itoa(handle)); err != nil {
		if strings.Contains(err.Error(), "No such file or directory") {
			return nil
		}
		return err
	}
	return nil
}

var (
	nftTableLine   = regexp.MustCompile(`^table netdev (\S+) \{ # handle (\d+)$`)
	nftCommentLine = regexp.MustCompile(`^\tcomment "(.*)"$`)
)

// tableOwner reads `nft -a list table netdev NAME`'s output: the table's handle
// and its comment ("" when it has none).
func tableOwner(out []byte, table string) (handle int, owner string, ok bool) {
	lines := strings.Split(string(out), "\n")
	for i, line := range lines {
		m := nftTableLine.FindStringSubmatch(line)
		if m == nil || m[1] != table {
			continue
		}
		h, err := strconv.Atoi(m[2])
		if err != nil || h <= 0 {
			return 0, "", false
		}
		if i+1 < len(lines) {
			if c := nftCommentLine.FindStringSubmatch(lines[i+1]); c != nil {
				owner = c[1]
			}
		}
		return h, owner, true
	}
	return 0, "", false
}

// run runs nft with args, stdin as its input, and returns its output.
func (g *ingressGuard) run(ctx context.Context, stdin string, args ...string) ([]byte, error) {
	cmdline := g.nft
	if len(cmdline) == 0 {
		path, err := exec.LookPath("nft")
		if err != nil {
			return nil, fmt.Errorf("ingress_drop needs the nft command (Debian package nftables), or set ingress_drop = false: %w", err)
		}
		cmdline = []string{path}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, cmdline[0], append(append([]string(nil), cmdline[1:]...), args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("nft %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()+out.String()))
	}
	return out.Bytes(), nil
}
