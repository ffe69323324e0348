package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/internal/control"
	"github.com/gvs-lb/gvs/internal/ipvsadm"
)

// admProgram is gvs adm's name in ipvsadm's messages ("Try `gvs adm -h' …").
const admProgram = "gvs adm"

// defaultSocket is the control socket when neither a flag, GVS_SOCKET nor a
// config names one (config.Default's control_socket).
const defaultSocket = "/run/gvs/gvs.sock"

const admHelp = `
gvs adm talks to a running director (gvs run) through its control socket, with
ipvsadm's syntax, semantics, messages and exit statuses: every line above works as
"gvs adm" in place of "ipvsadm", and -Ln prints the same layout byte for byte.
Changes apply at once, atomically, and keep established connections. -R runs a
stream line by line as ipvsadm does: a line the table refuses prints its message
and the next runs, a line ipvsadm's own checks refuse (or a '#' comment line)
ends it, and the status is the last line's; the lines that worked take effect
together. A configuration reload (SIGHUP) replaces the table with the config's,
as keepalived's reload does.

gvs options (anywhere among the ipvsadm arguments):
  --atomic                with -R: all of the stream or, if any line fails,
                          nothing ('#' starts a comment then)
  --match RULE            with -A or -E of an fwmark service: the packets that
                          carry its mark, RULE being address=ADDR[,protocol=tcp|udp]
                          [,port=N|N-M] (gvs has no netfilter to set marks; -A -f
                          needs at least one); repeat for more rules. -S writes
                          them in a "# gvs: --match …" line before the service,
                          which -R reads (Debian's ipvsadm init script drops it)
  --vrrp                  alone: list the VRRP instances — state, configured
                          and effective priority, master, last transition and
                          its reason
  --cluster               alone: cluster mode — this node and its state, the
                          config digest against the peers', sync counters,
                          bulk sync progress, BIRD, every peer (state, last
                          heard, records sent, received and lost) and every
                          VIP (gate, route, and why it is not announced)
  --cluster-drain         withdraw every VIP's route at once; forwarding and
                          sync go on (SIGTERM drains too, for drain_time)
  --cluster-undrain       let the gates open again
  --socket PATH           the director's control socket
  --config FILE           use the control_socket of this gvs config
  -c FILE                 the same, as the first argument only (elsewhere -c is
                          ipvsadm's --connection)
  Without either, the socket is $GVS_SOCKET, else /run/gvs/gvs.sock.

Examples:
  gvs adm -Ln                                          list the table, numerically
  gvs adm -A -t 198.18.0.100:80 -s rr                  add a virtual service
  gvs adm -a -t 198.18.0.100:80 -r 198.18.0.5 -g -w 2  add a real server (direct routing)
  gvs adm -e -t 198.18.0.100:80 -r 198.18.0.5 -g -w 0  quiesce it: no new connections
  gvs adm -d -t 198.18.0.100:80 -r 198.18.0.5          remove it
  gvs adm -Lnc                                         list connections with state and expiry
  gvs adm -Ln --stats        gvs adm -Ln --rate        counters, and rates per second
  gvs adm -Z                                           zero the counters
  gvs adm -A -f 7 -s rr --match address=198.18.0.110,protocol=tcp,port=8000-8099
                                                       an fwmark service and its packets
  gvs adm -S -n > rules && gvs adm -C && gvs adm -R < rules   save, clear, restore
  gvs adm -R --atomic < rules                          restore all or nothing
  gvs adm --set 900 120 300                            tcp tcpfin udp timeouts
  gvs adm --cluster                                    peers, sync and announced VIPs
  gvs adm -L --daemon                                  the sync daemons, as ipvsadm lists them
  gvs adm -c /etc/gvs/gvs.toml -Ln                     a director with another socket
`

// exitStatus is the status gvs adm exits with, already reported on stderr: main
// exits with it and prints nothing more.
type exitStatus int

func (e exitStatus) Error() string { return "exit status " + strconv.Itoa(int(e)) }

// cmdAdm runs gvs adm. Its error is nil or an exitStatus.
func cmdAdm(args []string, stdout, stderr io.Writer) error {
	if st := admMain(args, os.Stdin, stdout, stderr, os.Getenv); st != 0 {
		return exitStatus(st)
	}
	return nil
}

// admMain runs gvs adm and returns its exit status: the director's (ipvsadm's)
// status for a command it carried out or refused, 1 when the director cannot be
// reached, 2 for gvs's own options.
func admMain(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	o, rest, err := splitAdmArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "gvs adm: %v\n", err)
		return 2
	}
	// ipvsadm's first word is its command; parse locally only to spot -h (answered
	// here, with no director needed) and -R (which sends standard input). The
	// director parses again, with its names, and has the last word.
	p := ipvsadm.Parser{Program: admProgram}
	_, words, perr := ipvsadm.SplitOptions(rest)
	var c *ipvsadm.Command
	if perr == nil {
		c, perr = p.Parse(words)
	}
	if perr == nil && c.Op == ipvsadm.OpHelp {
		if err := ipvsadm.FormatUsage(stdout, admProgram); err != nil {
			return 1
		}
		io.WriteString(stdout, admHelp)
		return 0
	}
	path, err := o.socketPath(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "gvs adm: %v\n", err)
		return 1
	}
	req := control.Request{Args: rest}
	if perr == nil && c.Op == ipvsadm.OpRestore {
		b, err := io.ReadAll(io.LimitReader(stdin, control.MaxRequestSize+1))
		if err != nil {
			fmt.Fprintf(stderr, "gvs adm: read standard input: %v\n", err)
			return 1
		}
		if len(b) > control.MaxRequestSize {
			fmt.Fprintf(stderr, "gvs adm: restore: standard input is larger than %d bytes\n", control.MaxRequestSize)
			return 1
		}
		req.Stdin = string(b)
	}
	// A connection listing comes streamed and is written as it arrives; anything
	// else comes whole in resp.Stdout.
	resp, err := control.CallStream(path, req, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "gvs adm: %v\n", err)
		return 1
	}
	io.WriteString(stdout, resp.Stdout)
	io.WriteString(stderr, resp.Stderr)
	return resp.Status
}

// admOptions are gvs adm's own options.
type admOptions struct {
	socket, config string
}

// splitAdmArgs takes gvs's options out of args and returns the ipvsadm
// arguments. --socket and --config may be anywhere (ipvsadm has neither);
// -c FILE only before the ipvsadm command, where ipvsadm's -c cannot be.
func splitAdmArgs(args []string) (admOptions, []string, error) {
	var o admOptions
	if len(args) >= 1 && args[0] == "-c" {
		if len(args) < 2 {
			return o, nil, errors.New("-c needs a config file")
		}
		o.config = args[1]
		args = args[2:]
	}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		var dst *string
		var name string
		switch {
		case a == "--socket" || strings.HasPrefix(a, "--socket="):
			dst, name = &o.socket, "--socket"
		case a == "--config" || strings.HasPrefix(a, "--config="):
			dst, name = &o.config, "--config"
		default:
			rest = append(rest, a)
			continue
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			*dst = v
		} else if i+1 < len(args) {
			i++
			*dst = args[i]
		} else {
			return o, nil, fmt.Errorf("%s needs a value", name)
		}
		if *dst == "" {
			return o, nil, fmt.Errorf("%s needs a value", name)
		}
	}
	return o, rest, nil
}

// socketPath picks the control socket: --socket, else the config's
// control_socket (--config or -c), else $GVS_SOCKET, else the default.
func (o admOptions) socketPath(getenv func(string) string) (string, error) {
	if o.socket != "" {
		return o.socket, nil
	}
	if o.config != "" {
		c, err := config.Load(o.config)
		if err != nil {
			return "", err
		}
		if c.Director.ControlSocket == "" {
			return "", fmt.Errorf("%s: [director] control_socket is empty: that director has no control socket", o.config)
		}
		return c.Director.ControlSocket, nil
	}
	if s := getenv("GVS_SOCKET"); s != "" {
		return s, nil
	}
	return defaultSocket, nil
}
