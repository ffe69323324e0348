package config

import "testing"

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
