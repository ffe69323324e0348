// Package track runs the objects a VRRP instance tracks besides interfaces and
// services, with keepalived's semantics (docs/scripts.md §1, §2):
//
//   - Script: a vrrp_script run every interval, bounded by its timeout, whose
//     exit status moves it between up and down after rise successes or fall
//     failures (init_fail starts it down);
//   - File: a track_file whose content is read as an integer;
//   - Process: a track_process, the number of processes matching a name (and
//     arguments) found in /proc, against a quorum, with delays.
//
// Each runs on its own goroutine (Run) and keeps its last result, which the VRRP
// runner reads without blocking; a change calls the tracker's OnChange so it can
// take effect before the next poll. Contribution and FileContribution turn a
// result into what keepalived does to the instance: a priority delta or FAULT.
//
// Nothing here is on the per-packet path.
package track
