package ipvsadm

import (
	"time"

	"github.com/gvs-lb/gvs/ipvs"
)

// Op is the command of an ipvsadm command line. The zero value is no command.
type Op uint8

// Commands, in the order of ipvsadm's usage text.
const (
	_               Op = iota
	OpAddService       // -A, --add-service
	OpEditService      // -E, --edit-service
	OpDeleteService    // -D, --delete-service
	OpClear            // -C, --clear
	OpList             // -L, -l, --list; also an empty command line
	OpAddServer        // -a, --add-server
	OpDeleteServer     // -d, --delete-server
	OpEditServer       // -e, --edit-server
	OpSetTimeouts      // --set tcp tcpfin udp
	OpStartDaemon      // --start-daemon master|backup
	OpStopDaemon       // --stop-daemon master|backup
	OpRestore          // -R, --restore
	OpSave             // -S, --save
	OpZero             // -Z, --zero
	OpHelp             // -h, --help
	OpVersion          // -v, --version
)

// String returns ipvsadm's internal name of the command ("add-service", …),
// the one its "Illegal … option with the '…' command" messages use.
func (o Op) String() string {
	switch o {
	case OpAddService:
		return "add-service"
	case OpEditService:
		return "edit-service"
	case OpDeleteService:
		return "delete-service"
	case OpClear:
		return "flush"
	case OpList:
		return "list"
	case OpAddServer:
		return "add-server"
	case OpDeleteServer:
		return "delete-server"
	case OpEditServer:
		return "edit-server"
	case OpSetTimeouts:
		return "set"
	case OpStartDaemon:
		return "start-daemon"
	case OpStopDaemon:
		return "stop-daemon"
	case OpRestore:
		return "restore"
	case OpSave:
		return "save"
	case OpZero:
		return "zero"
	case OpHelp:
		return "help"
	case OpVersion:
		return "version"
	}
	return "none"
}

// Format holds the options that shape a listing (-L) or a save (-S, which
// takes only Numeric). The zero value is ipvsadm's default listing: names
// resolved, sorted.
type Format struct {
	Numeric        bool // -n
	Stats          bool // --stats
	Rate           bool // --rate
	Thresholds     bool // --thresholds
	PersistentConn bool // --persistent-conn
	TunInfo        bool // --tun-info
	Exact          bool // -X, --exact
	NoSort         bool // --nosort
}

// Command is one parsed ipvsadm command line. Parse fills in every default
// ipvsadm fills in, so a Command is complete: -E and -e replace every field of
// the service or real server, exactly as ipvsadm sends the whole structure to
// the kernel (so -E without -s sets the scheduler back to wlc, and -e without
// -w sets the weight back to 1).
//
// Fields that the Op does not take are left zero.
type Command struct {
	Op Op

	// Service is the virtual service and, for -A and -E, its settings. Its
	// Dests, Stats and Rates are unused.
	Service Service
	// HasService reports whether a service was named; it is optional for -L
	// and -Z (the whole table otherwise) and required by the other service
	// and server commands.
	HasService bool

	// Match are gvs's match rules of -A or -E of an fwmark service (--match,
	// see ApplyOptions): which packets carry the mark. nil when none were
	// given: -A then adds a service without rules, -E keeps the service's.
	// Parse never sets it.
	Match []ipvs.Match

	// Dest is the real server of -a, -e and -d (Addr, Port, Method, Weight,
	// thresholds, tunnel parameters). Its counters are unused.
	Dest Dest

	// Listing options, for -L (and Format.Numeric for -S).
	Format      Format
	Connections bool // -c: the connection table
	Timeouts    bool // --timeout: the timeout values
	Daemons     bool // --daemon: the sync daemons

	// SetTimeouts holds the three values of --set (0 leaves a value unchanged).
	SetTimeouts Timeouts

	// Sync is the daemon of --start-daemon and --stop-daemon. -L accepts
	// --syncid too, and ignores it, as ipvsadm does.
	Sync SyncDaemon
}

// DefaultScheduler is the scheduler of -A and -E without -s.
const DefaultScheduler = ipvs.DefaultScheduler

// DefaultPersistentTimeout is the timeout of -p given without a value. It is
// IPVS_SVC_PERSISTENT_TIMEOUT (6*60) in libipvs, not the 300 s the ipvsadm man
// page states.
const DefaultPersistentTimeout = ipvs.DefaultPersistence

// MaxTimeout is the largest timeout -p and --set accept: 31 days.
const MaxTimeout = 31 * 24 * time.Hour

// Listing is which output an OpList command asks for.
type Listing uint8

// Listings. ipvsadm allows at most one of -c, a service, --timeout and
// --daemon (Parse enforces it); without any, it lists the whole table.
const (
	_            Listing = iota
	ListTable            // FormatList
	ListService          // FormatService, for Command.Service
	ListConns            // FormatConns
	ListTimeouts         // FormatTimeouts
	ListDaemons          // FormatDaemons
)

// Listing returns the listing c asks for, or 0 if c is not an OpList
// command.
func (c *Command) Listing() Listing {
	switch {
	case c.Op != OpList:
		return 0
	case c.Connections:
		return ListConns
	case c.HasService:
		return ListService
	case c.Timeouts:
		return ListTimeouts
	case c.Daemons:
		return ListDaemons
	}
	return ListTable
}
