//go:build !linux

package lab

import "errors"

func (l *Lab) tapSYNs(host string, n int) (func() []string, error) {
	return nil, errors.New("lab: capturing needs Linux")
}
