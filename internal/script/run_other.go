//go:build !linux

package script

import (
	"errors"
	"os/exec"
)

// gvs runs on Linux; other systems only build the package for development: no user
// switching, no process groups, no security checks.

func isRoot() bool { return false }

func lookPath(prog string) (string, error) {
	p, err := exec.LookPath(prog)
	if err != nil {
		return "", errors.Join(ErrNotFound, err)
	}
	return p, nil
}

func checkSecure(prog string) error {
	_, err := lookPath(prog)
	return err
}

func setup(cmd *exec.Cmd, u *User) {}

func signalGroup(cmd *exec.Cmd, kill bool) {
	if kill {
		_ = cmd.Process.Kill()
	}
}
