// Command gvs is a userspace layer-4 load balancer: what Linux LVS/IPVS, ipvsadm and
// keepalived do, in one binary that needs no kernel IPVS module.
//
// Main parses flags and wires packages together; the logic lives in the library.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gvs-lb/gvs/internal/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

const usage = `gvs — a userspace IPVS (LVS) load balancer

Usage:
  gvs run -c FILE                   run a director (foreground; SIGHUP reload, SIGTERM stop)
  gvs adm [ipvsadm args]            talk to a running director with ipvsadm's syntax (gvs adm -h)
  gvs check -c FILE                 validate a config: exit 0, or every error with file:line
  gvs bench synth --out F [...]     write a synthetic pcap trace
  gvs bench replay -c FILE --in F   run a pcap through the Director in-process and report
  gvs bench dump --in F             print a pcap like tcpdump -e -n
  gvs bench live                    live pps vs nftables and the bridge in a lab (root)
  gvs import keepalived|ipvsadm FILE [-o OUT]
                                    turn a keepalived.conf or ipvsadm-save dump into gvs TOML
  gvs lab up|down|status|demo       network-namespace teaching lab (see gvs lab -h)
  gvs cluster bird-config [--ospf]  print the BIRD 2 config that announces this director's VIPs
  gvs man --out DIR                 write the manual pages gvs.8 and gvs.toml.5
  gvs version                       print the version

Run "gvs COMMAND -h" for a command's flags and examples.
`

// errUsage marks errors that are the user's invocation, printed with the usage hint.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stdout, stderr)
	case "adm":
		err = cmdAdm(args[1:], stdout, stderr)
	case "check":
		err = cmdCheck(args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(args[1:], stdout, stderr)
	case "lab":
		err = cmdLab(args[1:], stdout, stderr)
	case "import":
		err = cmdImport(args[1:], stdout, stderr)
	case "cluster":
		err = cmdCluster(args[1:], stdout, stderr)
	case "man":
		err = cmdMan(args[1:], stdout, stderr)
	case "version", "--version", "-V":
		fmt.Fprintf(stdout, "gvs %s\n", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "gvs: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var es exitStatus
	switch {
	case err == nil:
		return 0
	case errors.As(err, &es):
		// gvs adm: ipvsadm's own exit status, its message already printed.
		return int(es)
	case errors.Is(err, errHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "gvs: %v\n", err)
		return 2
	default:
		// A config with several problems prints one per line, each with file:line.
		var ce config.Errors
		if errors.As(err, &ce) {
			for _, e := range ce {
				fmt.Fprintf(stderr, "gvs: %v\n", e)
			}
			return 1
		}
		fmt.Fprintf(stderr, "gvs: %v\n", err)
		return 1
	}
}
