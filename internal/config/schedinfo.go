package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gvs-lb/gvs/sched"
)

// The sched package's registry is the authority on scheduler names and flags;
// these helpers only turn its answers into config messages.

// SchedulerNames returns the names a service's scheduler may take (sched's and
// "none").
func SchedulerNames() []string { return append(sched.Names(), sched.NoScheduler) }

// ParseSchedFlag returns the bit of one scheduler_flags element for scheduler, or
// an error naming the flags it takes.
func ParseSchedFlag(scheduler, flag string) (sched.Flags, error) {
	f, err := sched.ParseFlags(scheduler, []string{flag})
	if err == nil && f == 0 {
		err = sched.ErrFlag // "" or ",": names no flag
	}
	if err != nil {
		valid := sched.FlagNames(scheduler, sched.FlagSched1|sched.FlagSched2|sched.FlagSched3)
		msg := fmt.Sprintf("flag %q is not valid for scheduler %s", flag, scheduler)
		if s := suggest(flag, valid); s != "" && s != flag {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		return 0, fmt.Errorf("%s; valid: %s", msg, strings.Join(valid, ", "))
	}
	return f, nil
}

// mhTableSizeOK reports whether n is one of MHTableSizes.
func mhTableSizeOK(n int) bool { return slices.Contains(MHTableSizes(), n) }
