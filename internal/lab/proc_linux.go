package lab

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// procStat returns a process's state letter and start time (clock ticks since
// boot) from /proc/PID/stat.
func procStat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// "pid (comm) S ppid ...": comm may hold spaces and parentheses; the fields
	// after the last ')' start with the state (field 3); starttime is field 22.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || len(f[0]) != 1 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return f[0][0], start, err
}

// alive reports whether id still names a running process: the PID exists, has the
// recorded start time (so it was not reused) and is not a zombie.
func alive(id procID) bool {
	st, start, err := procStat(id.PID)
	return err == nil && start == id.Start && st != 'Z' && st != 'X'
}

// sysProcAttr puts a lab process in a session of its own: Ctrl-C in the shell
// that ran gvs lab up must not reach it.
//
// No PR_SET_PDEATHSIG, tempting as it is for tying the processes of a lab that is
// not detached to its creator: the signal fires when the forking *thread* exits,
// and the Go runtime ends threads (one whose goroutine exits while locked to it,
// as InNetns does when it cannot return), which would kill a server at random.
// DownStale cleans up after a creator that died instead.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true}
}

// signalProc sends sig to the process id names, and only to it: a pidfd is opened
// first and the start time checked after, so a PID reused in between is never
// signalled. It reports false if the process is gone.
func signalProc(id procID, sig syscall.Signal) (bool, error) {
	fd, err := unix.PidfdOpen(id.PID, 0)
	if err != nil {
		if err == unix.ESRCH {
			return false, nil
		}
		return false, fmt.Errorf("pidfd_open %d: %w", id.PID, err)
	}
	defer unix.Close(fd)
	if !alive(id) {
		return false, nil
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		if err == unix.ESRCH {
			return false, nil
		}
		return false, fmt.Errorf("kill %d: %w", id.PID, err)
	}
	return true, nil
}
