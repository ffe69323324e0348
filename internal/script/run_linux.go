package script

import (
	"os/exec"
	"syscall"
)

// setup puts cmd in a process group of its own and, when u is set, runs it as u.
func setup(cmd *exec.Cmd, u *User) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if u != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID, Groups: u.Groups}
	}
}

// signalGroup sends SIGTERM, or SIGKILL when kill is set, to cmd's process group.
// The leader may be reaped already; its pid still names the group while members
// remain (the kernel does not reuse it meanwhile).
func signalGroup(cmd *exec.Cmd, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig) // ESRCH: the group is gone
}
