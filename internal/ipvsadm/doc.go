// Package ipvsadm reproduces the command line and the output of ipvsadm 1.31
// (the Debian bookworm binary, 1:1.31-1+b1) as pure functions, for
// `gvs adm` and the control socket. It does no I/O except writing to the
// io.Writer it is given, keeps no global state, and never resolves a name by
// itself: callers pass a Resolver (for listings) or a Lookup (for command
// lines), and without one everything is numeric.
//
// The contract is docs/ipvsadm-format.md, byte for byte:
//
//   - Parse and Parser.Parse turn a command line into a Command, with
//     ipvsadm's defaults filled in and ipvsadm's messages as errors (*Error,
//     with ipvsadm's exit status). Command.Args turns it back into words that
//     parse to the same Command.
//   - FormatList, FormatService, FormatConns, FormatTimeouts, FormatDaemons,
//     FormatUsage and FormatVersion write the listings of -L in all their
//     forms; FormatSave writes -S; ReadRestore reads -R line by line as
//     ipvsadm runs it (which lines end it, which only fail).
//   - The errors ipvsadm prints when the kernel refuses a command are
//     exported as KernelError constants (ErrServiceExists, ErrNoSuchDest, …)
//     for the daemon to return; ExitStatus gives ipvsadm's exit status for
//     any error.
//   - Edit applies a table command (-A -E -D -C -a -e -d) to gvs's model of
//     the table ([]ipvs.Service) as the kernel would, refusing with the
//     KernelError ipvsadm prints: the one copy of ipvsadm's edit semantics,
//     for gvs adm and for gvs import ipvsadm. ServiceOf converts a model
//     service back to the listing model, for -L and -S. An Editor applies
//     a run of commands in place, each costing what it changes.
//   - SplitOptions and ApplyOptions take gvs adm's own options (--atomic,
//     --match) out of the arguments before Parse, so its messages stay
//     ipvsadm's.
//
// Service, Dest, Conn and the other types of listings are this package's own,
// shaped as ipvsadm prints them; the model (package ipvs) is what Edit edits,
// and the only other gvs packages it imports are ipvs and sched.
//
// Where gvs differs from ipvsadm 1.31, on purpose:
//
//   - -M is read in the family of the service even when it comes before it
//     (ipvsadm reads it in the family known at that point). An IPv4 -M is
//     read as ipvsadm reads it (inet_aton, then a host name: "24" is
//     0.0.0.24), but gvs groups persistent clients by prefix, so only a mask
//     of leading ones or 0.0.0.0 (NetmaskAll) is taken; any other value is
//     refused with an *UnsupportedError naming how ipvsadm read it, where
//     ipvsadm passes any 32-bit value to the kernel.
//   - -b with only commas (-b ,) is refused as an invalid flag; ipvsadm
//     crashes.
//   - ReadRestore reads -R as ipvsadm 1.31 does, '#' included (a word like
//     any other: ipvsadm's comment code looks for it where it never is, so a
//     comment line ends the restore with the help hint); ParseRestore, for gvs
//     adm -R --atomic and the importers, treats '#' as the start of a comment
//     and carries line numbers in its errors (LineError); ipvsadm's have none.
//     Both read gvs's "# gvs: --match …" lines, which FormatSave writes before
//     an fwmark service with match rules (Service.Match) and ipvsadm -R would
//     refuse; Debian's init script drops comment lines before ipvsadm -R.
//   - Lines of -R that list, save, zero or start a sync daemon fail with an
//     *UnsupportedError (Edit); ipvsadm carries them out.
//   - The help hint and the usage text take the program name from the caller
//     (Parser.Program), as ipvsadm takes argv[0].
//
// Kept on purpose, because ipvsadm does it: -p without a value is 360 s, not
// the man page's 300; sorting reproduces libipvs's int-subtraction quirk for
// addresses and fwmarks and glibc's merge sort; an fwmark of 2^31 or more is
// printed negative ("FWM  -1412536447", "-f -1412536447"), so such a service
// saved with -S cannot be restored; -E without -s resets the scheduler to
// wlc and -e without -w resets the weight to 1.
//
// None of this is on the packet path; functions allocate freely.
package ipvsadm
