package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/dataplane/afpacket"
	"github.com/gvs-lb/gvs/dataplane/afxdp"
	"github.com/gvs-lb/gvs/internal/config"
)

// TestOpenLinksChoice: which backend each io value takes, with AF_XDP succeeding,
// refused by the kernel (an injected EOPNOTSUPP, as a driver without XDP answers),
// or refused because of someone else's XDP program; and the log line saying which
// and why.
func TestOpenLinksChoice(t *testing.T) {
	foreign := &afxdp.ForeignProgramError{Interface: "gvs0", Name: "xdp_fw", ID: 42, Mode: "driver"}
	refused := fmt.Errorf("attach XDP in generic mode: %w", syscall.EOPNOTSUPP)
	for _, tc := range []struct {
		name     string
		io       string
		xdpErr   error
		noXDP    bool   // Deps.OpenXDP nil
		want     string // "afxdp", "afpacket" or "error"
		wantLog  string
		wantZC   bool // OpenXDP asked for native zero-copy only
		askedXDP bool
	}{
		{"afpacket forced", config.IOAFPacket, nil, false, "afpacket", `data path: AF_PACKET" interface=gvs0 io=afpacket why="io = \"afpacket\""`, false, false},
		{"afxdp", config.IOAFXDP, nil, false, "afxdp", `data path: AF_XDP" interface=gvs0 io=afxdp why="io = \"afxdp\""`, false, true},
		{"afxdp refused by the kernel", config.IOAFXDP, refused, false, "afpacket", `AF_XDP refused by the kernel or driver; falling back to AF_PACKET`, false, true},
		{"afxdp beside a foreign program", config.IOAFXDP, foreign, false, "error", "", false, true},
		{"auto with zero-copy", config.IOAuto, nil, false, "afxdp", `why="the driver runs XDP natively with zero-copy sockets"`, true, true},
		{"auto on veth", config.IOAuto, fmt.Errorf("%w: driver veth runs AF_XDP in copy mode only", ErrNoZeroCopy), false, "afpacket", `why="no native zero-copy AF_XDP on this interface" links=1 detail="no zero-copy AF_XDP: driver veth runs AF_XDP in copy mode only"`, true, true},
		{"auto beside a foreign program", config.IOAuto, foreign, false, "afpacket", `xdp_fw`, true, true},
		{"no AF_XDP opener", config.IOAFXDP, nil, true, "afpacket", `why="no AF_XDP opener in this daemon's dependencies"`, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs strings.Builder
			d := &Daemon{ifi: Interface{Name: "gvs0"}, log: slog.New(slog.NewTextHandler(&logs, nil))}
			packetLink, xdpLink := newChannel(), newChannel()
			var asked *XDPOptions
			deps := Deps{
				OpenLinks: func(Interface, *afpacket.Filter, PacketOptions) ([]dataplane.Link, error) {
					return []dataplane.Link{packetLink}, nil
				},
				OpenXDP: func(_ Interface, _ *afpacket.Filter, o XDPOptions) ([]dataplane.Link, error) {
					asked = &o
					if tc.xdpErr != nil {
						return nil, tc.xdpErr
					}
					return []dataplane.Link{xdpLink}, nil
				},
			}
			if tc.noXDP {
				deps.OpenXDP = nil
			}
			cfg := config.Default()
			cfg.Director.IO = tc.io
			cfg.Director.XDPReplaceForeign = true
			links, err := d.openLinks(deps, cfg, &afpacket.Filter{})
			got := "error"
			if err == nil && len(links) == 1 {
				switch links[0] {
				case packetLink:
					got = "afpacket"
				case xdpLink:
					got = "afxdp"
				}
			}
			if got != tc.want {
				t.Fatalf("got %s (%v), want %s", got, err, tc.want)
			}
			if tc.want == "error" && !errors.Is(err, afxdp.ErrForeignProgram) {
				t.Errorf("error %v, want ErrForeignProgram", err)
			}
			if (asked != nil) != tc.askedXDP {
				t.Fatalf("AF_XDP tried: %v, want %v", asked != nil, tc.askedXDP)
			}
			if asked != nil && (asked.NativeZeroCopy != tc.wantZC || !asked.ReplaceForeign) {
				t.Errorf("OpenXDP asked with %+v, want NativeZeroCopy %v and ReplaceForeign", *asked, tc.wantZC)
			}
			if !strings.Contains(logs.String(), tc.wantLog) {
				t.Errorf("log:\n%s\nwant it to contain %s", logs.String(), tc.wantLog)
			}
		})
	}
}

// TestAFXDPRefusedFallsBack: a whole director with io = "afxdp" whose AF_XDP open
// the kernel refuses runs on its AF_PACKET link.
func TestAFXDPRefusedFallsBack(t *testing.T) {
	tried := false
	ta := newTestDirector(t, directorConf+"io = \"afxdp\"\n", func(deps *Deps) {
		deps.OpenXDP = func(Interface, *afpacket.Filter, XDPOptions) ([]dataplane.Link, error) {
			tried = true
			return nil, &dataplane.OpError{Op: "open", Link: "gvs0", Err: syscall.EPERM}
		}
	})
	if !tried {
		t.Fatal("AF_XDP was not tried")
	}
	if s := ta.logs.String(); !strings.Contains(s, "falling back to AF_PACKET") || !strings.Contains(s, "data path: AF_PACKET") {
		t.Errorf("log does not tell the fallback:\n%s", s)
	}
}

// TestOpenLinksRxSpin: [director] rx_spin reaches the AF_PACKET opener and the log
// line, and an AF_XDP data path says it does not use it.
func TestOpenLinksRxSpin(t *testing.T) {
	for _, io := range []string{config.IOAFPacket, config.IOAFXDP} {
		var logs strings.Builder
		d := &Daemon{ifi: Interface{Name: "gvs0"}, log: slog.New(slog.NewTextHandler(&logs, nil))}
		var got *PacketOptions
		deps := Deps{
			OpenLinks: func(_ Interface, _ *afpacket.Filter, o PacketOptions) ([]dataplane.Link, error) {
				got = &o
				return []dataplane.Link{newChannel()}, nil
			},
			OpenXDP: func(Interface, *afpacket.Filter, XDPOptions) ([]dataplane.Link, error) {
				return []dataplane.Link{newChannel()}, nil
			},
		}
		cfg := config.Default()
		cfg.Director.IO = io
		cfg.Director.RxSpin = 200 * time.Microsecond
		if _, err := d.openLinks(deps, cfg, &afpacket.Filter{}); err != nil {
			t.Fatal(err)
		}
		switch io {
		case config.IOAFPacket:
			if got == nil || got.Spin != 200*time.Microsecond {
				t.Errorf("io %s: OpenLinks got %+v, want Spin 200µs", io, got)
			}
			if !strings.Contains(logs.String(), "rx_spin=200µs") {
				t.Errorf("io %s: log %q does not name rx_spin", io, logs.String())
			}
		default:
			if got != nil {
				t.Errorf("io %s: AF_PACKET opened", io)
			}
			if !strings.Contains(logs.String(), `rx_spin="not used: it applies to AF_PACKET rings"`) {
				t.Errorf("io %s: log %q does not say rx_spin is not used", io, logs.String())
			}
		}
	}
}
