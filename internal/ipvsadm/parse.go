package ipvsadm

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unique"

	"github.com/gvs-lb/gvs/ipvs"
)

// opt is an option as ipvsadm counts them for its "multiple … options" and
// command/option checks. Several spellings may set one opt (-g, -m and -i all
// set optForward).
type opt uint8

const (
	optNumeric opt = iota
	optConnection
	optService
	optScheduler
	optPersistent
	optNetmask
	optServer
	optForward
	optWeight
	optUThreshold
	optLThreshold
	optMcast
	optTimeout
	optDaemon
	optStats
	optRate
	optThresholds
	optPersistentConn
	optNoSort
	optSyncID
	optExact
	optOPS
	optPE
	optSchedFlags
	optMcastGroup
	optMcastPort
	optMcastTTL
	optSyncMaxLen
	optTunInfo
	optTunType
	optTunPort
	optTunNoCsum
	optTunCsum
	optTunRemCsum
	numOpts
)

// String returns the option's name in ipvsadm's messages.
func (o opt) String() string {
	switch o {
	case optNumeric:
		return "numeric"
	case optConnection:
		return "connection"
	case optService:
		return "service-address"
	case optScheduler:
		return "scheduler"
	case optPersistent:
		return "persistent"
	case optNetmask:
		return "netmask"
	case optServer:
		return "real-server"
	case optForward:
		return "forwarding-method"
	case optWeight:
		return "weight"
	case optUThreshold:
		return "u-threshold"
	case optLThreshold:
		return "l-threshold"
	case optMcast:
		return "mcast-interface"
	case optTimeout:
		return "timeout"
	case optDaemon:
		return "daemon"
	case optStats:
		return "stats"
	case optRate:
		return "rate"
	case optThresholds:
		return "thresholds"
	case optPersistentConn:
		return "persistent-conn"
	case optNoSort:
		return "nosort"
	case optSyncID:
		return "syncid"
	case optExact:
		return "exact"
	case optOPS:
		return "ops"
	case optPE:
		return "pe"
	case optSchedFlags:
		return "sched-flags"
	case optMcastGroup:
		return "mcast-group"
	case optMcastPort:
		return "mcast-port"
	case optMcastTTL:
		return "mcast-ttl"
	case optSyncMaxLen:
		return "sync-maxlen"
	case optTunInfo:
		return "tun-info"
	case optTunType:
		return "tun-type"
	case optTunPort:
		return "tun-port"
	case optTunNoCsum:
		return "tun-nocsum"
	case optTunCsum:
		return "tun-csum"
	case optTunRemCsum:
		return "tun-remcsum"
	}
	return "?"
}

type optSet uint64

func (s optSet) has(o opt) bool { return s&(1<<o) != 0 }

func opts(os ...opt) optSet {
	var s optSet
	for _, o := range os {
		s |= 1 << o
	}
	return s
}

// rule says which options a command takes: required ones, optional ones, and
// mutually exclusive optional ones (at most one). Every other option is
// illegal with the command.
type rule struct{ required, optional, exclusive optSet }

func ruleOf(op Op) rule {
	switch op {
	case OpAddService, OpEditService:
		return rule{
			required: opts(optService),
			optional: opts(optScheduler, optPersistent, optNetmask, optOPS, optPE, optSchedFlags),
		}
	case OpDeleteService:
		return rule{required: opts(optService)}
	case OpList:
		return rule{
			optional: opts(optNumeric, optStats, optRate, optThresholds, optPersistentConn,
				optNoSort, optSyncID, optExact, optTunInfo),
			exclusive: opts(optConnection, optService, optTimeout, optDaemon),
		}
	case OpAddServer, OpEditServer:
		return rule{
			required: opts(optService, optServer),
			optional: opts(optForward, optWeight, optUThreshold, optLThreshold,
				optTunType, optTunPort, optTunNoCsum, optTunCsum, optTunRemCsum),
		}
	case OpDeleteServer:
		return rule{required: opts(optService, optServer)}
	case OpStartDaemon:
		return rule{optional: opts(optMcast, optSyncID, optMcastGroup, optMcastPort, optMcastTTL, optSyncMaxLen)}
	case OpStopDaemon:
		return rule{optional: opts(optSyncID)}
	case OpSave:
		return rule{optional: opts(optNumeric)}
	case OpZero:
		return rule{optional: opts(optService)}
	}
	return rule{} // -C, --set, -R: no options at all
}

// check reports the first option, in ipvsadm's option order, that is missing,
// illegal, or in conflict with an earlier one.
func (r rule) check(op Op, given optSet) error {
	first := numOpts
	for o := opt(0); o < numOpts; o++ {
		if !given.has(o) {
			if r.required.has(o) {
				return failf("You need to supply the '" + o.String() + "' option for the '" + op.String() + "' command")
			}
			continue
		}
		switch {
		case r.exclusive.has(o):
			if first == numOpts {
				first = o
				continue
			}
			return failf("The option '" + o.String() + "' conflicts with the '" + first.String() + "' option in the '" + op.String() + "' command")
		case !r.required.has(o) && !r.optional.has(o):
			return failf("Illegal '" + o.String() + "' option with the '" + op.String() + "' command")
		}
	}
	return nil
}

// Parser parses ipvsadm command lines. The zero value accepts numeric
// addresses and ports only and names the program "ipvsadm" in its help hint.
// A Parser is safe for concurrent use if its Lookup is.
type Parser struct {
	// Names resolves host and service names in addresses; nil accepts numbers
	// only.
	Names Lookup
	// Program is the name in "Try `ipvsadm -h' …"; "" means "ipvsadm".
	Program string
}

// Parse parses one ipvsadm command line, without the program name, with the
// zero Parser. See Parser.Parse.
func Parse(args []string) (*Command, error) {
	var p Parser
	return p.Parse(args)
}

// Parse parses one ipvsadm command line, args being the words after the
// program name. An empty line is -L, as ipvsadm lists the table when run
// without arguments. The error is an *Error whose text is ipvsadm's message.
//
// Parse follows ipvsadm 1.31's option processing, with two differences, both
// noted in the package documentation: the port of -r defaults to the
// service's port and -M is read in the service's family whatever the order of
// the options, and -M must be a contiguous IPv4 mask other than 0.0.0.0.
func (p *Parser) Parse(args []string) (*Command, error) {
	c := new(Command)
	if err := p.ParseInto(c, args); err != nil {
		return nil, err
	}
	return c, nil
}

// ParseInto parses args as Parse does into *c, which it overwrites whole
// (nothing of what c held before is kept, nor written through), so that a
// caller can parse each of its commands into a Command it reuses. After an
// error *c is undefined.
func (p *Parser) ParseInto(c *Command, args []string) error {
	*c = Command{}
	if len(args) == 0 {
		c.Op = OpList
		return nil
	}
	// The state stays on the stack (the option tables' setters take the
	// *Command): the parse allocates nothing that outlives it but c's own.
	st := parseState{p: p, sc: scanner{args: args}, c: c}
	r, err := st.run()
	if err != nil {
		return err
	}
	if r != c { // -h, -v: a command of their own
		*c = *r
	}
	return nil
}

func (p *Parser) tryHelp() *Error {
	prog := p.Program
	if prog == "" {
		prog = "ipvsadm"
	}
	return &Error{Msg: "Try `" + prog + " -h' or '" + prog + " --help' for more information.", Status: StatusUsage}
}

type parseState struct {
	p     *Parser
	sc    scanner
	c     *Command // what Parse returns
	given optSet

	netmaskArg    string
	schedFlagsArg string
	tunCsum       TunnelCsum
}

func (st *parseState) set(o opt) error {
	if st.given.has(o) {
		return failf("multiple '" + o.String() + "' options specified")
	}
	st.given |= 1 << o
	return nil
}

func (st *parseState) run() (*Command, error) {
	c := st.c
	ev, done, errText := st.sc.scan()
	if done || errText != "" {
		return nil, st.p.tryHelp()
	}
	switch ev.key {
	case kAddService:
		c.Op = OpAddService
	case kEditService:
		c.Op = OpEditService
	case kDeleteService:
		c.Op = OpDeleteService
	case kClear:
		c.Op = OpClear
	case kList:
		c.Op = OpList
	case kZero:
		c.Op = OpZero
	case kAddServer:
		c.Op = OpAddServer
	case kEditServer:
		c.Op = OpEditServer
	case kDeleteServer:
		c.Op = OpDeleteServer
	case kSet:
		c.Op = OpSetTimeouts
	case kRestore:
		c.Op = OpRestore
	case kSave:
		c.Op = OpSave
	case kStartDaemon, kStopDaemon:
		c.Op = OpStartDaemon
		msg := "illegal start-daemon parameter specified"
		if ev.key == kStopDaemon {
			c.Op = OpStopDaemon
			msg = "illegal start_daemon specified" // sic
		}
		switch ev.arg {
		case "master":
			c.Sync.State = SyncMaster
		case "backup":
			c.Sync.State = SyncBackup
		default:
			return nil, failf(msg)
		}
	case kHelp:
		// ipvsadm prints the usage and exits at once, whatever follows.
		return &Command{Op: OpHelp}, nil
	case kVersion:
		return &Command{Op: OpVersion}, nil
	default:
		return nil, st.p.tryHelp()
	}
	if c.Op == OpAddServer || c.Op == OpEditServer || c.Op == OpDeleteServer {
		c.Dest.Weight = ipvs.DefaultWeight
		c.Dest.Method = methodOf(ipvs.DefaultMethod)
	}

	for {
		ev, done, errText := st.sc.scan()
		if done {
			break
		}
		if errText != "" {
			return nil, &Error{Msg: st.sc.last + ": " + errText, Status: StatusUsage, Returns: true}
		}
		if err := st.option(ev); err != nil {
			return nil, err
		}
	}
	return st.finish()
}

// option handles one option after the command.
// flagOptions are the options that only switch something on: each marks its option
// as given (so a repeated or misplaced one is refused like the others) and sets one
// field. (Read-only: a map literal, as the scheduler registry.)
var flagOptions = map[key]struct {
	o   opt
	set func(c *Command)
}{
	kConnection:     {optConnection, func(c *Command) { c.Connections = true }},
	kNumeric:        {optNumeric, func(c *Command) { c.Format.Numeric = true }},
	kTimeout:        {optTimeout, func(c *Command) { c.Timeouts = true }},
	kDaemon:         {optDaemon, func(c *Command) { c.Daemons = true }},
	kStats:          {optStats, func(c *Command) { c.Format.Stats = true }},
	kRate:           {optRate, func(c *Command) { c.Format.Rate = true }},
	kThresholds:     {optThresholds, func(c *Command) { c.Format.Thresholds = true }},
	kPersistentConn: {optPersistentConn, func(c *Command) { c.Format.PersistentConn = true }},
	kNoSort:         {optNoSort, func(c *Command) { c.Format.NoSort = true }},
	kExact:          {optExact, func(c *Command) { c.Format.Exact = true }},
	kOPS:            {optOPS, func(c *Command) { c.Service.OPS = true }},
	kTunInfo:        {optTunInfo, func(c *Command) { c.Format.TunInfo = true }},
}

// numberOptions are the options that take one number: each marks its option as
// given, checks the range and gives ipvsadm's message when it is out of it.
var numberOptions = map[key]struct {
	o        opt
	min, max int64
	illegal  string
	set      func(c *Command, n int64)
}{
	kWeight:     {optWeight, 0, 65535, "illegal weight specified", func(c *Command, n int64) { c.Dest.Weight = int(n) }},
	kUThreshold: {optUThreshold, 0, 1<<31 - 1, "illegal u_threshold specified", func(c *Command, n int64) { c.Dest.UThreshold = uint32(n) }},
	kLThreshold: {optLThreshold, 0, 1<<31 - 1, "illegal l_threshold specified", func(c *Command, n int64) { c.Dest.LThreshold = uint32(n) }},
	kSyncID:     {optSyncID, 0, 255, "illegal syncid specified", func(c *Command, n int64) { c.Sync.SyncID = uint8(n) }},
	kMcastPort:  {optMcastPort, 1, 65535, "illegal mcast-port specified", func(c *Command, n int64) { c.Sync.Port = uint16(n) }},
	kMcastTTL:   {optMcastTTL, 1, 255, "illegal mcast-ttl specified", func(c *Command, n int64) { c.Sync.TTL = uint8(n) }},
	kSyncMaxLen: {optSyncMaxLen, 1, 65535 - 20 - 8, "illegal sync-maxlen specified", func(c *Command, n int64) { c.Sync.MaxLen = uint16(n) }},
	kTunPort:    {optTunPort, 1, 65535, "illegal tunnel port specified", func(c *Command, n int64) { c.Dest.TunnelPort = uint16(n) }},
}

func (st *parseState) option(ev event) error {
	c := st.c
	if f, ok := flagOptions[ev.key]; ok {
		if err := st.set(f.o); err != nil {
			return err
		}
		f.set(c)
		return nil
	}
	if f, ok := numberOptions[ev.key]; ok {
		if err := st.set(f.o); err != nil {
			return err
		}
		n, ok := stringToNumber(ev.arg, f.min, f.max)
		if !ok {
			return failf(f.illegal)
		}
		f.set(c, n)
		return nil
	}
	switch ev.key {
	case kTCP, kUDP, kSCTP:
		if err := st.set(optService); err != nil {
			return err
		}
		c.Service.Protocol = TCP
		switch ev.key {
		case kUDP:
			c.Service.Protocol = UDP
		case kSCTP:
			c.Service.Protocol = SCTP
		}
		addr, port, res := parseAddrPort(ev.arg, c.Service.Protocol, st.p.Names)
		if res&svcAddr == 0 {
			return failf("illegal virtual server address[:port] specified")
		}
		c.Service.Addr, c.Service.Port = addr, port
		c.HasService = true
	case kFWMark:
		if err := st.set(optService); err != nil {
			return err
		}
		n, ok := strtol(ev.arg)
		if !ok || n <= 0 || n > 1<<32-1 {
			return failf("invalid fwmark value `" + ev.arg + "' specified")
		}
		// ipvsadm sets TCP "to a sane value, even though it is not used";
		// it does matter for service names in -r.
		c.Service.Protocol = TCP
		c.Service.FWMark = uint32(n)
		c.HasService = true
	case kIPv6:
		if c.Service.FWMark == 0 {
			return failf("-6 used before -f\n")
		}
		c.Service.IPv6 = true
	case kScheduler:
		if err := st.set(optScheduler); err != nil {
			return err
		}
		// The canonical copy of the name: a service kept for as long as it runs
		// does not keep the line it was read from (a restore's line each).
		c.Service.Scheduler = unique.Make(truncate(ev.arg, schedNameMax)).Value()
	case kPersistent:
		if err := st.set(optPersistent); err != nil {
			return err
		}
		c.Service.Persistent = true
		c.Service.Timeout = DefaultPersistentTimeout
		if ev.hasArg {
			t, err := parseTimeout(ev.arg, 1)
			if err != nil {
				return err
			}
			c.Service.Timeout = t
		}
	case kNetmask:
		if err := st.set(optNetmask); err != nil {
			return err
		}
		st.netmaskArg = ev.arg
	case kRealServer:
		if err := st.set(optServer); err != nil {
			return err
		}
		addr, port, res := parseAddrPort(ev.arg, c.Service.Protocol, st.p.Names)
		if res&svcAddr == 0 {
			return failf("illegal real server address[:port] specified")
		}
		c.Dest.Addr, c.Dest.Port = addr, port
		if res&svcPort == 0 {
			// ipvsadm copies the service's port as it stands when it meets
			// -r: 0 when -t or -u comes later.
			c.Dest.Port = c.Service.Port
		}
	case kGate, kMasq, kIPIP:
		if err := st.set(optForward); err != nil {
			return err
		}
		c.Dest.Method = MethodRoute
		switch ev.key {
		case kMasq:
			c.Dest.Method = MethodMasq
		case kIPIP:
			c.Dest.Method = MethodTunnel
		}
	case kMcastIfn:
		if err := st.set(optMcast); err != nil {
			return err
		}
		c.Sync.McastIfn = truncate(ev.arg, ifNameMax)
	case kSort:
		// Sorting is the default; --sort is accepted for compatibility.
	case kPE:
		if err := st.set(optPE); err != nil {
			return err
		}
		c.Service.PE = truncate(ev.arg, peNameMax)
	case kSchedFlags:
		if err := st.set(optSchedFlags); err != nil {
			return err
		}
		st.schedFlagsArg = truncate(ev.arg, schedFlagsMax)
	case kMcastGroup:
		if err := st.set(optMcastGroup); err != nil {
			return err
		}
		if strings.Contains(ev.arg, ":") {
			a, ok := parseIPv6(ev.arg)
			if !ok || !a.IsMulticast() {
				return failf("invalid IPv6 mcast-group `" + ev.arg + "'")
			}
			c.Sync.Group = a
		} else {
			a, ok := parseIPv4Strict(ev.arg)
			if !ok || !a.IsMulticast() {
				return failf("invalid IPv4 mcast-group `" + ev.arg + "'")
			}
			c.Sync.Group = a
		}
	case kTunType:
		if err := st.set(optTunType); err != nil {
			return err
		}
		switch ev.arg {
		case "ipip":
			c.Dest.TunnelType = TunnelIPIP
		case "gue":
			c.Dest.TunnelType = TunnelGUE
		case "gre":
			c.Dest.TunnelType = TunnelGRE
		default:
			return failf("illegal tunnel type specified")
		}
	case kTunNoCsum:
		if err := st.set(optTunNoCsum); err != nil {
			return err
		}
	case kTunCsum:
		if err := st.set(optTunCsum); err != nil {
			return err
		}
		st.tunCsum |= TunnelCsumOn
	case kTunRemCsum:
		if err := st.set(optTunRemCsum); err != nil {
			return err
		}
		st.tunCsum |= TunnelRemCsum
	default:
		// A command after the first, -h or -v: popt knows it, ipvsadm's
		// option switch does not.
		return failf("invalid option `" + st.sc.last + "'")
	}
	return nil
}

// finish runs ipvsadm's checks after the options, in its order, and fills in
// the defaults.
func (st *parseState) finish() (*Command, error) {
	c := st.c
	if st.given.has(optNetmask) {
		if err := st.netmask(); err != nil {
			return nil, err
		}
	}
	if c.Op == OpSetTimeouts {
		var vals [3]time.Duration
		for i := range vals {
			w, ok := st.sc.leftover()
			if !ok {
				return nil, failf("--set option requires 3 timeout values")
			}
			t, err := parseTimeout(w, 0)
			if err != nil {
				return nil, err
			}
			vals[i] = t
		}
		c.SetTimeouts = Timeouts{TCP: vals[0], TCPFin: vals[1], UDP: vals[2]}
	}
	if w, ok := st.sc.leftover(); ok {
		return nil, failf("unexpected argument " + w)
	}
	if st.schedFlagsArg != "" {
		flags, err := parseSchedFlags(c.Service.Scheduler, st.schedFlagsArg)
		if err != nil {
			return nil, err
		}
		c.Service.Flags = flags
	}
	if err := ruleOf(c.Op).check(c.Op, st.given); err != nil {
		return nil, err
	}

	switch c.Op {
	case OpAddService, OpEditService:
		if c.Service.FWMark == 0 && c.Service.Port == 0 && !c.Service.Persistent {
			return nil, failf("Zero port specified for non-persistent service")
		}
		if c.Service.OPS && c.Service.FWMark == 0 && c.Service.Protocol != UDP {
			return nil, failf("One-Packet Scheduling is only for UDP virtual services")
		}
		if c.Service.Scheduler == "" {
			c.Service.Scheduler = DefaultScheduler
		}
		if len(c.Service.Flags) > 0 {
			// Rename the flags for the final scheduler.
			c.Service.Flags = flagNames(c.Service.Scheduler, flagBits(c.Service.Flags))
		}
	case OpStartDaemon:
		if c.Sync.McastIfn == "" {
			c.Sync.McastIfn = "eth0"
		}
	}

	if c.Op == OpAddServer || c.Op == OpEditServer {
		m := c.Dest.Method
		// DR and tunnels cannot change the port.
		if c.Service.FWMark == 0 && (m == MethodTunnel || m == MethodRoute) {
			c.Dest.Port = c.Service.Port
		}
		if c.Dest.Addr.Is6() != c.Service.is6() && m != MethodTunnel {
			return nil, failf("Different address family is allowed only for tunneling servers")
		}
		tunOpts := opts(optTunType, optTunPort, optTunNoCsum, optTunCsum, optTunRemCsum)
		if st.given&tunOpts != 0 && m != MethodTunnel {
			return nil, failf("Tunnel options conflict with forward method")
		}
		if err := st.tunnelCheck(); err != nil {
			return nil, err
		}
		c.Dest.TunnelCsum = st.tunCsum
	}
	if c.Op == OpList {
		g := st.given
		if (g&opts(optConnection, optTimeout, optDaemon) != 0 && g&opts(optStats, optRate, optThresholds) != 0) ||
			(g&opts(optTimeout, optDaemon) != 0 && g.has(optPersistentConn)) {
			return nil, failf("options conflicts in the list command")
		}
	}
	if c.Op != OpAddServer && c.Op != OpEditServer && c.Op != OpDeleteServer {
		c.Dest = Dest{}
	}
	return c, nil
}

// tunnelCheck applies the tunnel type's option rules: GUE needs --tun-port,
// and GUE and GRE take at most one checksum option.
func (st *parseState) tunnelCheck() error {
	tt := st.c.Dest.TunnelType
	var r rule
	switch tt {
	case TunnelGUE:
		r = rule{required: opts(optTunPort), exclusive: opts(optTunNoCsum, optTunCsum, optTunRemCsum)}
	case TunnelGRE:
		r = rule{exclusive: opts(optTunNoCsum, optTunCsum, optTunRemCsum)}
	}
	first := numOpts
	for _, o := range []opt{optTunPort, optTunNoCsum, optTunCsum, optTunRemCsum} {
		if !st.given.has(o) {
			if r.required.has(o) {
				return failf("You need to supply the '" + o.String() + "' option for the '" + tt.String() + "' tunnel type")
			}
			continue
		}
		switch {
		case r.exclusive.has(o):
			if first == numOpts {
				first = o
				continue
			}
			return failf("The option '" + o.String() + "' conflicts with the '" + first.String() + "' option in the '" + tt.String() + "' tunnel type")
		case !r.required.has(o):
			return failf("Illegal '" + o.String() + "' option with the '" + tt.String() + "' tunnel type")
		}
	}
	return nil
}

// netmask reads -M in the service's family. An IPv4 mask is read as ipvsadm's
// parse_netmask reads it: inet_aton (so "24" is the address 0.0.0.24, not a
// prefix length), else a host name. ipvsadm hands any 32-bit value to the
// kernel; gvs groups clients by prefix, so a mask of leading ones becomes its
// length, 0.0.0.0 becomes NetmaskAll, and any other value is refused with an
// *UnsupportedError naming it.
func (st *parseState) netmask() error {
	s := &st.c.Service
	if !s.is6() {
		a, ok := inetAton(st.netmaskArg)
		if !ok && st.p.Names != nil {
			a, ok = st.p.Names.HostAddr(st.netmaskArg)
		}
		if !ok || !a.Is4() {
			return failf("illegal virtual server persistent mask specified")
		}
		m := a.As4()
		v := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
		ones := 0
		for rest := v; rest&(1<<31) != 0; rest <<= 1 {
			ones++
		}
		switch {
		case v == 0:
			s.Netmask = NetmaskAll
		case v != ^uint32(0)<<(32-ones):
			hint := ""
			if strings.Trim(st.netmaskArg, "0123456789") == "" {
				hint = " (ipvsadm reads -M " + st.netmaskArg + " as the address " + a.String() + ", not as a prefix length)"
			}
			return &UnsupportedError{Msg: "-M " + a.String() + " is not a netmask of leading ones" + hint +
				": gvs groups persistent clients by address prefix; write the prefix as a mask, e.g. -M 255.255.255.0 for /24"}
		case ones == 32:
			s.Netmask = 0
		default:
			s.Netmask = ones
		}
		return nil
	}
	n := atoi(st.netmaskArg)
	if n < 1 || n > 128 {
		return failf("illegal ipv6 netmask specified")
	}
	if n == 128 {
		n = 0
	}
	s.Netmask = int(n)
	return nil
}

// Field limits of the kernel structures, which ipvsadm truncates to.
const (
	schedNameMax  = 15  // IP_VS_SCHEDNAME_MAXLEN - 1
	peNameMax     = 15  // IP_VS_PENAME_MAXLEN - 1
	ifNameMax     = 15  // IP_VS_IFNAME_MAXLEN - 1
	schedFlagsMax = 127 // ipvsadm's sched_flags_arg buffer
)

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Scheduler flag bits (IP_VS_SVC_F_SCHED1..3).
const (
	sched1 = 1 << iota
	sched2
	sched3
)

// parseSchedFlags reads -b for the scheduler named with -s (wlc if none).
func parseSchedFlags(sched, arg string) ([]string, error) {
	if sched == "" {
		sched = DefaultScheduler
	}
	var bits uint8
	fields := strings.FieldsFunc(arg, func(r rune) bool { return r == ',' })
	if len(fields) == 0 {
		// ipvsadm dereferences NULL here.
		return nil, failf("invalid scheduler flag `" + arg + "'")
	}
	for _, f := range fields {
		var b uint8
		var want string
		switch f {
		case "flag-1":
			b = sched1
		case "flag-2":
			b = sched2
		case "flag-3":
			b = sched3
		case "sh-fallback":
			b, want = sched1, "sh"
		case "sh-port":
			b, want = sched2, "sh"
		case "mh-fallback":
			b, want = sched1, "mh"
		case "mh-port":
			b, want = sched2, "mh"
		default:
			return nil, failf("invalid scheduler flag `" + f + "'")
		}
		if want != "" && sched != want {
			return nil, failf("incompatible scheduler flag `" + f + "'")
		}
		bits |= b
	}
	return flagNames(sched, bits), nil
}

// flagBits maps flag names to bits; unknown names are ignored.
func flagBits(names []string) uint8 {
	var bits uint8
	for _, n := range names {
		switch n {
		case "flag-1", "sh-fallback", "mh-fallback":
			bits |= sched1
		case "flag-2", "sh-port", "mh-port":
			bits |= sched2
		case "flag-3":
			bits |= sched3
		}
	}
	return bits
}

// flagNames names bits in canonical order under sched's names.
func flagNames(sched string, bits uint8) []string {
	var names []string
	n1, n2 := "flag-1", "flag-2"
	switch sched {
	case "sh":
		n1, n2 = "sh-fallback", "sh-port"
	case "mh":
		n1, n2 = "mh-fallback", "mh-port"
	}
	if bits&sched1 != 0 {
		names = append(names, n1)
	}
	if bits&sched2 != 0 {
		names = append(names, n2)
	}
	if bits&sched3 != 0 {
		names = append(names, "flag-3")
	}
	return names
}

// parseTimeout reads a timeout in seconds between min and MaxTimeout.
func parseTimeout(s string, min int64) (time.Duration, error) {
	n, ok := stringToNumber(s, min, int64(MaxTimeout/time.Second))
	if !ok {
		return 0, failf("invalid timeout value `" + s + "' specified")
	}
	return time.Duration(n) * time.Second, nil
}

// Results of parseAddrPort, as bits.
const (
	svcAddr = 1 << iota
	svcPort
)

// parseAddrPort reads "host[:port]" or "[v6addr]:port" as ipvsadm's
// parse_service does, quirks included: a bare IPv6 address has no port, a
// bracketed IPv4 address loses its port, and a word of digits only is not an
// address.
func parseAddrPort(buf string, proto Protocol, names Lookup) (addr netip.Addr, port uint16, res int) {
	if allDigits(buf) {
		return addr, 0, 0
	}
	host := buf
	portStr, hasPort := "", false
	if buf[0] == '[' {
		rest := buf[1:]
		i := strings.IndexByte(rest, ']')
		if i < 0 {
			return addr, 0, 0
		}
		host = rest[:i]
		after := rest[i+1:]
		if after == "" || after[0] != ':' {
			return addr, 0, 0
		}
		portStr, hasPort = after[1:], true
	}
	if a, ok := parseIPv6(host); ok {
		addr = a
	} else {
		hasPort = false
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			portStr, hasPort = host[i+1:], true
			host = host[:i]
		}
		if a, ok := inetAton(host); ok {
			addr = a
		} else if a, ok := lookupHost(names, host); ok {
			addr = a
		} else {
			return netip.Addr{}, 0, 0
		}
	}
	res = svcAddr
	if hasPort {
		res |= svcPort
		if n, ok := stringToNumber(portStr, 0, 65535); ok {
			port = uint16(n)
		} else if n, ok := lookupService(names, portStr, proto); ok {
			port = n
		} else {
			return netip.Addr{}, 0, 0
		}
	}
	return addr, port, res
}

func lookupHost(names Lookup, host string) (netip.Addr, bool) {
	if names == nil || host == "" {
		return netip.Addr{}, false
	}
	a, ok := names.HostAddr(host)
	if !ok || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

func lookupService(names Lookup, name string, proto Protocol) (uint16, bool) {
	if names == nil || name == "" || (proto != TCP && proto != UDP && proto != SCTP) {
		return 0, false
	}
	return names.ServicePort(name, proto)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseIPv6 accepts what inet_pton(AF_INET6) accepts: no zone, no bare IPv4.
func parseIPv6(s string) (netip.Addr, bool) {
	// A '.' before the first ':' makes netip read IPv4 (and fail on the ':',
	// allocating its error): "198.18.0.1:80" is never an IPv6 address.
	i := strings.IndexByte(s, ':')
	if i < 0 || strings.IndexByte(s[:i], '.') >= 0 || strings.Contains(s, "%") {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return netip.Addr{}, false
	}
	return a, true
}

// parseIPv4Strict accepts what inet_pton(AF_INET) accepts: four decimal parts.
func parseIPv4Strict(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// inetAton reads an IPv4 address as glibc's inet_aton: one to four parts,
// each decimal, octal (leading 0) or hex (0x); the last part fills the
// remaining bytes ("10.1" is 10.0.0.1); trailing white space ends the
// address.
func inetAton(s string) (netip.Addr, bool) {
	var parts [3]uint64
	np := 0
	i := 0
	var val uint64
	for {
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return netip.Addr{}, false
		}
		val = 0
		base := uint64(10)
		digit := false
		if s[i] == '0' {
			i++
			if i < len(s) && (s[i] == 'x' || s[i] == 'X') {
				base = 16
				i++
			} else {
				base = 8
				digit = true
			}
		}
		for i < len(s) {
			c := s[i]
			var d uint64
			switch {
			case c >= '0' && c <= '9':
				if base == 8 && c >= '8' {
					return netip.Addr{}, false
				}
				d = uint64(c - '0')
			case base == 16 && c >= 'a' && c <= 'f':
				d = uint64(c-'a') + 10
			case base == 16 && c >= 'A' && c <= 'F':
				d = uint64(c-'A') + 10
			default:
				goto endPart
			}
			val = val*base + d
			if val > 0xffffffff {
				return netip.Addr{}, false
			}
			i++
			digit = true
		}
	endPart:
		if i < len(s) && s[i] == '.' {
			if np > 2 || val > 0xff {
				return netip.Addr{}, false
			}
			parts[np] = val
			np++
			i++
			continue
		}
		if !digit {
			return netip.Addr{}, false
		}
		break
	}
	if i < len(s) && !isSpace(s[i]) {
		return netip.Addr{}, false
	}
	maxLast := [4]uint64{0xffffffff, 0xffffff, 0xffff, 0xff}
	if val > maxLast[np] {
		return netip.Addr{}, false
	}
	for k := 0; k < np; k++ {
		val |= parts[k] << (24 - 8*k)
	}
	return netip.AddrFrom4([4]byte{byte(val >> 24), byte(val >> 16), byte(val >> 8), byte(val)}), true
}

// strtol reads a decimal integer as strtol(s, &end, 10) with the checks
// ipvsadm makes: leading white space and a sign are allowed, nothing may
// follow the digits, and there must be a digit.
func strtol(s string) (int64, bool) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	var n int64
	overflow := false
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if n > (1<<63-1-int64(s[i]-'0'))/10 {
			overflow = true
		} else {
			n = n*10 + int64(s[i]-'0')
		}
		i++
	}
	if i == start || i != len(s) || overflow {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// stringToNumber is ipvsadm's string_to_number: strtol within [min, max].
func stringToNumber(s string, min, max int64) (int64, bool) {
	n, ok := strtol(s)
	if !ok || n < min || n > max {
		return 0, false
	}
	return n, true
}

// atoi is C's atoi: the leading number, 0 if none.
func atoi(s string) int64 {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	var n int64
	for i < len(s) && s[i] >= '0' && s[i] <= '9' && n < 1<<40 {
		n = n*10 + int64(s[i]-'0')
		i++
	}
	if neg {
		n = -n
	}
	return n
}

// itoa is strconv.Itoa for the formatting code.
func itoa(n int) string { return strconv.Itoa(n) }
