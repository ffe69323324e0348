// Package daemon is the director's controller: one owner of the desired state — the
// config file ⊕ gvs adm edits ⊕ the health overlay ⊕ VRRP ownership ⊕ resolved MACs
// — built as New(cfg, Deps) + Run, as seesaw's engine manager and wireguard-go's
// NewDevice are.
//
// One goroutine receives typed events (adm requests with a reply channel, health and
// VRRP transitions, reloads, resolved MACs, ticks), computes the effective services
// and applies them to the Director; side effects (link filters, the ingress guard,
// announcements, quorum scripts) run afterwards on a goroutine of their own, in
// order, outside any lock. Nothing waits for the network while holding anything
// another part waits on: a real server whose MAC is unknown is added at once
// (counted as no_mac) and resolved in the background.
//
// Everything that touches the host comes in through Deps (links, neighbour
// resolution, the ingress guard, announcements, host checks, the clock, health
// checks, VRRP transports), so a whole director runs over dataplane/linktest
// without root; LiveDeps builds the real ones for gvs run.
//
// A reload applies the difference between the previous file and the new one (see
// mergeReload): adm changes it does not touch survive, and the log names each one
// it overrides. Every [director] key but interface, conn_shards and control_socket
// takes effect on reload; those three are named in a warning. [[vrrp]] changes
// apply at start.
package daemon
