package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gvs-lb/gvs/internal/importer"
	ipvsadmimport "github.com/gvs-lb/gvs/internal/importer/ipvsadm"
	"github.com/gvs-lb/gvs/internal/importer/keepalived"
	"github.com/gvs-lb/gvs/internal/ipvsadm"
)

const importHelp = `Usage: gvs import keepalived FILE [-o OUT] [-i ID]
       gvs import ipvsadm FILE [-o OUT]

Translates a keepalived.conf (with the files it includes) or an ipvsadm-save dump
into a gvs config. The TOML goes to stdout, or to OUT; every note — what was not
translated exactly, and why — goes to stderr and into comments at the top of the
TOML. Blocks gvs would refuse are written commented out, so the result always
passes gvs check. The exit code is 1 when FILE cannot be read or parsed (each
error with file:line), 0 otherwise, notes or not. FILE "-" reads stdin.

Examples:
  gvs import keepalived /etc/keepalived/keepalived.conf -o /etc/gvs/gvs.toml
  gvs import keepalived keepalived.conf -i high    # keepalived -i high: use @high lines
  ipvsadm-save -n | gvs import ipvsadm - -o gvs.toml`

// cmdImport runs gvs import keepalived|ipvsadm.
func cmdImport(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: gvs import keepalived|ipvsadm FILE [-o OUT] (see gvs import -h)", errUsage)
	}
	kind := args[0]
	switch kind {
	case "keepalived", "ipvsadm":
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stderr, importHelp)
		return errHelp
	default:
		return fmt.Errorf("%w: unknown import source %q (keepalived or ipvsadm)", errUsage, kind)
	}
	fs := newFlags("import "+kind, importHelp, stderr)
	out := fs.String("o", "", "write the TOML to this file instead of stdout")
	var id *string
	if kind == "keepalived" {
		id = fs.String("i", "", "keepalived's config id (keepalived -i): lines \"@ID ...\" apply")
	}
	file, rest := splitFileArg(args[1:])
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if file == "" {
		return fmt.Errorf("%w: import %s: FILE is required", errUsage, kind)
	}
	if *out != "" && *out != "-" && file != "-" && sameFile(*out, file) {
		return fmt.Errorf("%w: import %s: -o %s would overwrite the input", errUsage, kind, *out)
	}

	var im *importer.Imported
	var err error
	// Port names in a dump are read as ipvsadm -R reads them; host names are not
	// resolved (the dump's host names need not be this machine's), so a dump made
	// without -n is refused with a hint.
	ipvsadmOpt := ipvsadmimport.Options{Names: serviceNames("/etc/services")}
	switch {
	case kind == "ipvsadm" && file == "-":
		im, err = ipvsadmimport.Import(os.Stdin, "stdin", ipvsadmOpt)
	case kind == "ipvsadm":
		var f *os.File
		if f, err = os.Open(file); err != nil {
			return fmt.Errorf("import: %w", err)
		}
		im, err = ipvsadmimport.Import(f, file, ipvsadmOpt)
		f.Close()
	case file == "-":
		var data []byte
		if data, err = io.ReadAll(os.Stdin); err != nil {
			return fmt.Errorf("import: %w", err)
		}
		im, err = keepalived.Import("stdin", data, keepalived.Options{ConfigID: *id})
	default:
		im, err = keepalived.ImportFile(file, keepalived.Options{ConfigID: *id})
	}
	if err != nil {
		return err
	}

	for _, n := range im.Notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	dest := "stdout"
	if *out == "" || *out == "-" {
		if _, err := stdout.Write(im.TOML); err != nil {
			return fmt.Errorf("import: %w", err)
		}
	} else {
		if err := os.WriteFile(*out, im.TOML, 0o644); err != nil {
			return fmt.Errorf("import: %w", err)
		}
		dest = *out
	}
	fmt.Fprintf(stderr, "gvs import %s: %s -> %s: %d services, %d vrrp instances, %d notes\n",
		kind, file, dest, len(im.Config.Services), len(im.Config.VRRP), len(im.Notes))
	return nil
}

// serviceNames reads the port names of an /etc/services file; one that cannot be
// read gives no names (ports must then be numbers).
func serviceNames(path string) *ipvsadm.Names {
	n := &ipvsadm.Names{}
	if f, err := os.Open(path); err == nil {
		_ = n.ReadServices(f) // what was read before an error is kept
		f.Close()
	}
	return n
}

// splitFileArg takes FILE out of args, before or after the flags.
func splitFileArg(args []string) (file string, flags []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-" || !strings.HasPrefix(a, "-"):
			if file == "" {
				file = a
				continue
			}
			flags = append(flags, a) // a second operand: parseFlags names it
		case strings.Contains("|-o|--o|-i|--i|", "|"+a+"|") && i+1 < len(args):
			flags = append(flags, a, args[i+1]) // the flag's value is never FILE
			i++
		default:
			flags = append(flags, a)
		}
	}
	return file, flags
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	if err1 == nil && err2 == nil {
		return os.SameFile(sa, sb)
	}
	return filepath.Clean(a) == filepath.Clean(b)
}
