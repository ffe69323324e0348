package script

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// isRoot reports whether gvs itself runs as root.
func isRoot() bool { return os.Geteuid() == 0 || os.Getegid() == 0 }

// lookPath finds prog as exec would, wrapping ErrNotFound.
func lookPath(prog string) (string, error) {
	p, err := exec.LookPath(prog)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return "", fmt.Errorf("script: %q: %w", prog, fs.ErrPermission)
	case err != nil:
		return "", fmt.Errorf("%w: %q: %v", ErrNotFound, prog, err)
	}
	return p, nil
}

// checkSecure applies keepalived's rule to prog, found in PATH when it has no
// slash: the path as written and the path with symlinks resolved must each consist
// of entries owned by root, and none of them may be writable by a group other than
// root or by everyone — a directory with the sticky bit (/tmp) excepted for its
// write bits, since others cannot replace what they do not own in it
// (docs/scripts.md §3).
func checkSecure(prog string) error {
	p, err := lookPath(prog)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return fmt.Errorf("script: %q: %w", prog, err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return fmt.Errorf("%w: %q: %v", ErrNotFound, prog, err)
	}
	if err := walkSecure(prog, abs); err != nil {
		return err
	}
	if resolved != abs {
		return walkSecure(prog, resolved)
	}
	return nil
}

// walkSecure checks every entry of the absolute path p, from / down to p itself;
// the last one must be a regular file or a symlink.
func walkSecure(prog, p string) error {
	parts := strings.Split(strings.TrimPrefix(filepath.Clean(p), "/"), "/")
	cur := "/"
	for i := -1; i < len(parts); i++ {
		if i >= 0 {
			cur = filepath.Join(cur, parts[i])
		}
		last := i == len(parts)-1
		var st syscall.Stat_t
		if err := syscall.Lstat(cur, &st); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w: %q: %s does not exist", ErrNotFound, prog, cur)
			}
			return fmt.Errorf("script: %q: %s: %w", prog, cur, err)
		}
		mode := st.Mode & syscall.S_IFMT
		isDir, isReg, isLink := mode == syscall.S_IFDIR, mode == syscall.S_IFREG, mode == syscall.S_IFLNK
		switch {
		case !last && !isDir && !isLink:
			return fmt.Errorf("script: %q: %s is not a directory", prog, cur)
		case last && !isReg && !isLink:
			return fmt.Errorf("script: %q: %s is not a regular file", prog, cur)
		}
		if why := unsafeMode(&st, isDir, isReg); why != "" {
			return &InsecureError{Command: prog, Path: cur, Why: why}
		}
	}
	return nil
}

// unsafeMode says why an entry lets someone other than root change what runs, or
// "" when it does not.
func unsafeMode(st *syscall.Stat_t, isDir, isReg bool) string {
	if st.Uid != 0 {
		return fmt.Sprintf("owned by uid %d, not root", st.Uid)
	}
	if isDir && st.Mode&syscall.S_ISVTX != 0 || !isDir && !isReg {
		return ""
	}
	switch {
	case st.Mode&0o002 != 0:
		return "writable by everyone"
	case st.Gid != 0 && st.Mode&0o020 != 0:
		return fmt.Sprintf("writable by group %d", st.Gid)
	}
	return ""
}
