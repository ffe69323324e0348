//go:build !linux

package lab

import (
	"errors"
	"syscall"
)

func procStat(pid int) (byte, uint64, error) { return 0, 0, errors.ErrUnsupported }

func alive(id procID) bool { return false }

func sysProcAttr() *syscall.SysProcAttr { return nil }

func signalProc(id procID, sig syscall.Signal) (bool, error) { return false, errors.ErrUnsupported }
