package ipvsadm

import (
	"errors"
	"strconv"
)

// KernelError is a message ipvsadm prints when the kernel refuses a command
// (libipvs's ipvs_strerror). Parse never returns one: the daemon that carries
// out a Command returns the constant that fits, callers test for it with
// errors.Is, and the CLI prints Error() as ipvsadm would. The texts are
// ipvsadm's, capitals and all, which is why they are constants of their own
// type rather than errors.New values.
type KernelError string

func (e KernelError) Error() string { return string(e) }

// The kernel-path errors. Which errno maps to which text depends on the
// operation, so each is listed with the operations that report it.
const (
	// -A
	ErrServiceExists     KernelError = "Service already exists"
	ErrSchedulerNotFound KernelError = "Scheduler or persistence engine not found" // -A, -E
	// -E, -D, -Z, -L with a service, and a listing whose service vanished
	ErrNoSuchService KernelError = "No such service"
	// -a, -e, -d
	ErrServiceNotDefined KernelError = "Service not defined"
	ErrDestExists        KernelError = "Destination already exists" // -a
	ErrNoSuchDest        KernelError = "No such destination"        // -e, -d
	// --start-daemon, --stop-daemon
	ErrDaemonRunning KernelError = "Daemon has already run"
	ErrNoDaemon      KernelError = "No daemon is running"
	// Any operation.
	ErrPermission      KernelError = "Permission denied (you must be root)"
	ErrInvalid         KernelError = "Invalid operation.  Possibly wrong module version, address not unicast, ..."
	ErrNoProtocol      KernelError = "Protocol not available"
	ErrNoMemory        KernelError = "Memory allocation problem"
	ErrIPv6Unsupported KernelError = "Operation not supported with IPv6"
	ErrAFUnsupported   KernelError = "Operation not supported with specified address family"
	ErrWrongVersion    KernelError = "Module is wrong version"
)

// Exit statuses of ipvsadm.
const (
	// StatusFail is the status of ipvsadm's own argument checks (its fail()).
	StatusFail = 2
	// StatusUsage is the status of a command line that popt could not read,
	// and of a failed kernel operation (ipvsadm returns -1 from main).
	StatusUsage = 255
)

// Error is a command line ipvsadm refuses before it reaches the kernel.
// Error() is exactly what ipvsadm prints on stderr, without the final newline,
// so a CLI prints it unchanged; callers tell kinds apart with Status, never by
// the text.
type Error struct {
	Msg    string
	Status int // StatusFail or StatusUsage
	// Returns marks popt's errors after the command (an unknown option, a
	// missing argument): ipvsadm prints them and returns -1 from its option
	// processing instead of exiting, so -R goes on with the next line. Every
	// other Error is an exit (fail(), the help hint), which ends -R.
	Returns bool
}

func (e *Error) Error() string { return e.Msg }

func failf(msg string) *Error { return &Error{Msg: msg, Status: StatusFail} }

// LineError is an error in one line of a restore stream (ParseRestore).
// ipvsadm -R prints no line number; gvs adds it.
type LineError struct {
	Line int // 1-based
	Err  error
}

func (e *LineError) Error() string {
	return "line " + strconv.Itoa(e.Line) + ": " + e.Err.Error()
}

func (e *LineError) Unwrap() error { return e.Err }

// ExitStatus returns the status ipvsadm exits with after err: 0 for nil,
// Error.Status for its own checks, StatusUsage (255) for a KernelError (its
// main returns -1) and an UnsupportedError, and 1 for anything else, as ipvsadm
// exits 1 when a listing fails.
func ExitStatus(err error) int {
	if err == nil {
		return 0
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	var k KernelError
	var u *UnsupportedError
	if errors.As(err, &k) || errors.As(err, &u) {
		return StatusUsage
	}
	return 1
}
