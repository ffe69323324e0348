package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// BirdProtocol is one row of BIRD's "show protocols".
type BirdProtocol struct {
	Name, Proto, Table, State, Since, Info string
}

// ErrBirdNotRunning is wrapped by BirdStatus's error when nothing answers on the
// control socket.
var ErrBirdNotRunning = errors.New("BIRD is not running")

// BirdProtocols asks the BIRD answering on the control socket path (bird -s, by
// default /run/bird/bird.ctl) for its protocols, speaking BIRD's line protocol: a
// greeting with code 0001, then reply lines "CODE-text" or " text", ended by a line
// with code 0000 (success) or 8xxx/9xxx (an error).
func BirdProtocols(ctx context.Context, path string) ([]BirdProtocol, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w (no control socket at %s): %w", ErrBirdNotRunning, path, err)
	}
	defer c.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	c.SetDeadline(deadline)
	r := bufio.NewScanner(c)
	if !r.Scan() || !strings.HasPrefix(r.Text(), "0001 ") {
		return nil, fmt.Errorf("cluster: %s does not greet like BIRD: %q %v", path, r.Text(), r.Err())
	}
	if _, err := c.Write([]byte("show protocols\n")); err != nil {
		return nil, fmt.Errorf("cluster: asking BIRD: %w", err)
	}
	return parseBirdProtocols(r)
}

// parseBirdProtocols reads BIRD's reply to "show protocols" up to its end line.
func parseBirdProtocols(r *bufio.Scanner) ([]BirdProtocol, error) {
	var out []BirdProtocol
	code := ""
	for r.Scan() {
		line := r.Text()
		text := line
		if len(line) >= 5 && (line[4] == '-' || line[4] == ' ') && line[0] != ' ' {
			code, text = line[:4], line[5:]
		} else if strings.HasPrefix(line, " ") {
			text = line[1:]
		}
		switch {
		case code == "":
			return nil, fmt.Errorf("cluster: BIRD's reply does not start with a code: %q", line)
		case len(line) >= 5 && line[4] == ' ' && line[0] != ' ' && code == "0000":
			return out, nil
		case code[0] == '8' || code[0] == '9':
			return nil, fmt.Errorf("cluster: BIRD refused show protocols: %s", text)
		case code == "1002":
			f := strings.Fields(text)
			if len(f) < 4 {
				continue
			}
			p := BirdProtocol{Name: f[0], Proto: f[1], Table: f[2], State: f[3]}
			if len(f) > 4 {
				p.Since = f[4]
			}
			if len(f) > 5 {
				p.Info = strings.Join(f[5:], " ")
			}
			out = append(out, p)
		}
	}
	return nil, fmt.Errorf("cluster: BIRD's reply ended early: %v", r.Err())
}

// BirdState is what BirdStatus found.
type BirdState struct {
	Kernel      []BirdProtocol // gvs's kernel protocols (gvs_kernel4/6): learn the VIP routes
	Speakers    []BirdProtocol // BGP and OSPF protocols
	Established int            // speakers with a session up (BGP Established, OSPF running)
}

// BirdStatus checks that a BIRD with gvs's configuration runs and says why not, so
// the daemon can log the cause once and gvs adm can show it: VIPs gvs announces reach
// the router only through it.
func BirdStatus(ctx context.Context, path string) (BirdState, error) {
	var st BirdState
	ps, err := BirdProtocols(ctx, path)
	if err != nil {
		return st, err
	}
	for _, p := range ps {
		switch {
		case p.Proto == "Kernel" && strings.HasPrefix(p.Name, "gvs_kernel"):
			st.Kernel = append(st.Kernel, p)
		case p.Proto == "BGP" || p.Proto == "OSPF":
			st.Speakers = append(st.Speakers, p)
			if p.State == "up" && (p.Proto == "OSPF" || strings.HasPrefix(p.Info, "Established")) {
				st.Established++
			}
		}
	}
	switch {
	case len(st.Kernel) == 0:
		return st, errors.New("cluster: BIRD runs but has no gvs_kernel protocol: its configuration is not the one `gvs cluster bird-config` writes, so it does not learn gvs's VIP routes")
	case len(st.Speakers) == 0:
		return st, errors.New("cluster: BIRD runs but has no BGP or OSPF protocol: nothing announces the VIPs to the router")
	}
	for _, k := range st.Kernel {
		if k.State != "up" {
			return st, fmt.Errorf("cluster: BIRD's %s protocol is %s (%s): VIP routes are not learned", k.Name, k.State, k.Info)
		}
	}
	return st, nil
}
