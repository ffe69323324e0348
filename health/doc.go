// Package health runs real-server health checks with keepalived's timing semantics and
// reports state changes; it never touches the tables itself (the daemon applies them).
//
// # Checkers
//
// A Checker probes one real server once: Check(ctx) returns a Result and never blocks
// past the context or the checker's own Timeout, whichever ends first. Checkers are
// built from a plain Spec by New: TCP connect, HTTP and HTTPS GET (status code ranges,
// MD5 body digest or substring, Host header, SNI, TLS verification on or off), UDP
// (send a payload, optionally require a reply) and exec (a command whose exit code says
// up or down and, with Dynamic, sets the weight as keepalived's misc_dynamic does:
// exit 0 up with the weight unchanged, exit 1 down, exit 2–255 up with weight exit−2).
// Every checker may probe another address or port than the real server's service
// (ConnectIP, ConnectName, ConnectPort). What a probe reads is bounded (HTTP headers
// 64 KiB, bodies MaxBodyBytes, one UDP datagram); exec runs through internal/script
// (the script user, enable_script_security, Spec.Env naming the real server; see
// docs/scripts.md §3), keeps at most a few KiB of output, and on timeout stops the
// command's whole process group. A probe that cannot complete —
// refused, unreachable, unresolvable, hung, garbage on the wire, a missing binary — is
// a failed Result whose Reason says why ("connect refused", "HTTP 503",
// "timeout after 3s", "exec: not found"); checkers never panic on bad input.
//
// # Monitor and keepalived timing
//
// A Monitor owns one goroutine per target. Semantics, with keepalived's names:
//
//   - Interval (delay_loop) separates the starts of consecutive checks; the first check
//     of a target is delayed by a stagger in [0, Interval) derived from its ID, so
//     hundreds of targets are not probed at once and a restart probes in the same order.
//   - Timeout (connect_timeout) bounds every probe.
//   - Retries (retry) and RetryDelay (delay_before_retry): while a target is UP, a
//     failed probe is retried up to Retries times, RetryDelay apart; the check fails
//     only when all 1+Retries probes failed. A DOWN target is not retried.
//   - Fall and Rise (absent from keepalived for real servers; 0 means 1): an UP target
//     goes DOWN after Fall consecutive failed checks, so with Fall 1 (keepalived) it goes
//     DOWN after Retries+1 consecutive failed probes; a DOWN target comes UP after Rise
//     consecutive successful probes (with Rise 1, on the first success, as keepalived).
//   - Alpha: the target starts DOWN and comes UP only after its checks pass; without
//     Alpha it starts UP. The initial state is not a Transition: the daemon applies it
//     when it adds the server (Spec.InitialUp, or Snapshot after Update).
//   - Omega (keepalived: "on daemon shutdown consider quorum and RS down notifiers"):
//     when the Monitor stops, or a reload removes a target, every such target that is UP
//     and has Omega is reported DOWN with one last Transition, so the daemon can run its
//     down notifiers and quorum_down. Without Omega stopping reports nothing.
//
// Transitions are delivered to Options.Notify one at a time, only when a target's state
// changes (or a dynamic exec check changes the weight of an UP target), and each is
// logged once at Info level with its reason. Per-target counters (checks, failures,
// transitions, last reason and duration) are read with Snapshot, for gvs adm and the
// metrics endpoint.
//
// Update applies a reload: a target whose Spec is unchanged keeps its goroutine, state,
// counters and schedule; a target whose Spec changed restarts with fresh counters and
// streaks but keeps its current UP/DOWN state and weight, so a reload never flaps a
// server; new targets start in their initial state; removed targets stop.
//
// Quorum evaluates keepalived's virtual-service quorum with hysteresis as pure
// functions; applying it (sorry_server, quorum_up/quorum_down scripts) is the daemon's.
//
// Performance contract: none on the data path — this package never runs there. A probe
// allocates freely; the Monitor's cost is one goroutine and one timer per target.
package health
