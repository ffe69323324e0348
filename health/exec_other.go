//go:build !linux

package health

import "os/exec"

// setProcessGroup leaves the default cancellation, which kills the command only: gvs
// runs on Linux, other systems only build the package for development.
func setProcessGroup(cmd *exec.Cmd) {}
