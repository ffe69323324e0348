// Package script runs the external commands a configuration names — vrrp_script
// checks, VRRP notify commands, exec health checks and quorum commands — the way
// keepalived runs its scripts, with its two safety rules (docs/scripts.md §3):
//
//   - each command runs as a configured user (keepalived's script_user and a
//     script's own user; by default the unprivileged user keepalived_script when it
//     exists, else gvs's own user, with a warning);
//   - with Secure (keepalived's enable_script_security) a command that would run
//     as root is refused when its program, or any directory above it, is writable
//     by someone other than root; the error names the path.
//
// A command runs in a process group of its own with no stdin. When its timeout
// passes the whole group gets SIGTERM, then SIGKILL after a grace period, so a
// script's children cannot outlive it (keepalived does the same), and the run counts
// as timed out.
//
// Nothing here is on the per-packet path: a run forks a process and costs
// milliseconds.
package script
