package daemon

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// reloading is the sd_notify message that a reload begins, with the
// CLOCK_MONOTONIC time systemd uses to tell this reload's READY=1 from an older
// one's (sd_notify(3), RELOADING=1).
func reloading() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "RELOADING=1"
	}
	return "RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(ts.Nano()/1000, 10)
}
