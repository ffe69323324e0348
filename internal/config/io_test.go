package config

import (
	"testing"
	"time"
)

// TestIO reads [director] io (issue 11): the three backends, any case, "auto" by
// default; anything else is refused at its line with a suggestion.
func TestIO(t *testing.T) {
	if got := mustParse(t, nil).Director.IO; got != IOAuto {
		t.Errorf("default io %q, want %q", got, IOAuto)
	}
	for in, want := range map[string]string{"auto": IOAuto, "afxdp": IOAFXDP, "AF_packet": "", "AFPacket": IOAFPacket} {
		c, err := Parse("gvs.toml", file(`[director]`, `io = "`+in+`"`, `xdp_replace_foreign = true`))
		if want == "" {
			if err == nil {
				t.Errorf("io = %q accepted as %q", in, c.Director.IO)
			}
			continue
		}
		if err != nil {
			t.Errorf("io = %q: %v", in, err)
			continue
		}
		if c.Director.IO != want || !c.Director.XDPReplaceForeign {
			t.Errorf("io = %q: got %q (replace %v), want %q", in, c.Director.IO, c.Director.XDPReplaceForeign, want)
		}
	}
	checkErrors(t, file(`[director]`, `interface = "eth0"`, `io = "afxpd"`),
		[]wantErr{{3, "director.io", `unknown io backend "afxpd" (did you mean "afxdp"?); one of: auto, afxdp, afpacket`}})
}

// TestRxSpin reads [director] rx_spin: off by default, a Go duration or seconds,
// and at most MaxRxSpin; a negative or longer spin is refused at its line.
func TestRxSpin(t *testing.T) {
	if got := mustParse(t, nil).Director.RxSpin; got != 0 {
		t.Errorf("default rx_spin %v, want 0", got)
	}
	for in, want := range map[string]time.Duration{`"200us"`: 200 * time.Microsecond, `0.0005`: 500 * time.Microsecond, `"10ms"`: MaxRxSpin, `0`: 0} {
		c, err := Parse("gvs.toml", file(`[director]`, `rx_spin = `+in))
		if err != nil || c.Director.RxSpin != want {
			t.Errorf("rx_spin = %s: got %v (%v), want %v", in, c.Director.RxSpin, err, want)
		}
	}
	checkErrors(t, file(`[director]`, `interface = "eth0"`, `rx_spin = "20ms"`),
		[]wantErr{{3, "director.rx_spin", `at most 10ms (got 20ms): it is how long a reader polls its ring after a batch before it sleeps`}})
	checkErrors(t, file(`[director]`, `interface = "eth0"`, `rx_spin = "-1ms"`),
		[]wantErr{{3, "director.rx_spin", `negative`}})
}
