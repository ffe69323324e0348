package health

import (
	"errors"
	"os/exec"
	"syscall"
)

// setProcessGroup puts cmd in a process group of its own and makes cancellation kill
// that whole group, the command's children included.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// Wait has not reaped the leader yet, so its pid still names the group.
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return err
	}
}
