//go:build !linux

package main

import (
	"errors"

	"github.com/gvs-lb/gvs/internal/lab"
)

// pinLabServers is Linux-only (sched_setaffinity); elsewhere gvs bench live has no lab.
func pinLabServers(*lab.Lab, int) error {
	return errors.New("pinning the real servers needs Linux")
}
