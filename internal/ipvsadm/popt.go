package ipvsadm

import "strings"

// This file reads a command line the way ipvsadm's popt option table does:
// short options cluster (-Lnc), a short option's argument may follow it in
// the same word (-t10.0.0.1:80, -p=60) or be the next word, long options take
// "--name=value" or "--name value", "--" ends the options, and words that are
// not options are set aside ("leftovers") wherever they appear. -p takes its
// argument only when one is attached or the next word does not start with
// '-'. Long options must be spelt in full; popt does not accept prefixes.

type argKind uint8

const (
	argNone argKind = iota
	argRequired
	argOptional
)

// key identifies an entry of the option table.
type key uint8

const (
	_ key = iota
	kAddService
	kEditService
	kDeleteService
	kClear
	kList
	kZero
	kAddServer
	kEditServer
	kDeleteServer
	kSet
	kHelp
	kVersion
	kRestore
	kSave
	kStartDaemon
	kStopDaemon
	kTCP
	kUDP
	kSCTP
	kFWMark
	kScheduler
	kPersistent
	kNetmask
	kRealServer
	kMasq
	kIPIP
	kGate
	kWeight
	kUThreshold
	kLThreshold
	kNumeric
	kConnection
	kMcastIfn
	kSyncID
	kTimeout
	kDaemon
	kStats
	kRate
	kThresholds
	kPersistentConn
	kNoSort
	kSort
	kExact
	kIPv6
	kOPS
	kPE
	kSchedFlags
	kMcastGroup
	kMcastPort
	kMcastTTL
	kSyncMaxLen
	kTunInfo
	kTunType
	kTunPort
	kTunNoCsum
	kTunCsum
	kTunRemCsum
)

type optDef struct {
	key key
	arg argKind
}

// longOption looks up "--name".
func longOption(name string) (optDef, bool) {
	switch name {
	case "add-service":
		return optDef{kAddService, argNone}, true
	case "edit-service":
		return optDef{kEditService, argNone}, true
	case "delete-service":
		return optDef{kDeleteService, argNone}, true
	case "clear":
		return optDef{kClear, argNone}, true
	case "list":
		return optDef{kList, argNone}, true
	case "zero":
		return optDef{kZero, argNone}, true
	case "add-server":
		return optDef{kAddServer, argNone}, true
	case "edit-server":
		return optDef{kEditServer, argNone}, true
	case "delete-server":
		return optDef{kDeleteServer, argNone}, true
	case "set":
		return optDef{kSet, argNone}, true
	case "help":
		return optDef{kHelp, argNone}, true
	case "version":
		return optDef{kVersion, argNone}, true
	case "restore":
		return optDef{kRestore, argNone}, true
	case "save":
		return optDef{kSave, argNone}, true
	case "start-daemon":
		return optDef{kStartDaemon, argRequired}, true
	case "stop-daemon":
		return optDef{kStopDaemon, argRequired}, true
	case "tcp-service":
		return optDef{kTCP, argRequired}, true
	case "udp-service":
		return optDef{kUDP, argRequired}, true
	case "sctp-service":
		return optDef{kSCTP, argRequired}, true
	case "fwmark-service":
		return optDef{kFWMark, argRequired}, true
	case "scheduler":
		return optDef{kScheduler, argRequired}, true
	case "persistent":
		return optDef{kPersistent, argOptional}, true
	case "netmask":
		return optDef{kNetmask, argRequired}, true
	case "real-server":
		return optDef{kRealServer, argRequired}, true
	case "masquerading":
		return optDef{kMasq, argNone}, true
	case "ipip":
		return optDef{kIPIP, argNone}, true
	case "gatewaying":
		return optDef{kGate, argNone}, true
	case "weight":
		return optDef{kWeight, argRequired}, true
	case "u-threshold":
		return optDef{kUThreshold, argRequired}, true
	case "l-threshold":
		return optDef{kLThreshold, argRequired}, true
	case "numeric":
		return optDef{kNumeric, argNone}, true
	case "connection":
		return optDef{kConnection, argNone}, true
	case "mcast-interface":
		return optDef{kMcastIfn, argRequired}, true
	case "syncid":
		return optDef{kSyncID, argRequired}, true
	case "timeout":
		return optDef{kTimeout, argNone}, true
	case "daemon":
		return optDef{kDaemon, argNone}, true
	case "stats":
		return optDef{kStats, argNone}, true
	case "rate":
		return optDef{kRate, argNone}, true
	case "thresholds":
		return optDef{kThresholds, argNone}, true
	case "persistent-conn":
		return optDef{kPersistentConn, argNone}, true
	case "nosort":
		return optDef{kNoSort, argNone}, true
	case "sort":
		return optDef{kSort, argNone}, true
	case "exact":
		return optDef{kExact, argNone}, true
	case "ipv6":
		return optDef{kIPv6, argNone}, true
	case "ops":
		return optDef{kOPS, argNone}, true
	case "pe":
		return optDef{kPE, argRequired}, true
	case "sched-flags":
		return optDef{kSchedFlags, argRequired}, true
	case "mcast-group":
		return optDef{kMcastGroup, argRequired}, true
	case "mcast-port":
		return optDef{kMcastPort, argRequired}, true
	case "mcast-ttl":
		return optDef{kMcastTTL, argRequired}, true
	case "sync-maxlen":
		return optDef{kSyncMaxLen, argRequired}, true
	case "tun-info":
		return optDef{kTunInfo, argNone}, true
	case "tun-type":
		return optDef{kTunType, argRequired}, true
	case "tun-port":
		return optDef{kTunPort, argRequired}, true
	case "tun-nocsum":
		return optDef{kTunNoCsum, argNone}, true
	case "tun-csum":
		return optDef{kTunCsum, argNone}, true
	case "tun-remcsum":
		return optDef{kTunRemCsum, argNone}, true
	}
	return optDef{}, false
}

// shortOption looks up "-c".
func shortOption(c byte) (optDef, bool) {
	switch c {
	case 'A':
		return optDef{kAddService, argNone}, true
	case 'E':
		return optDef{kEditService, argNone}, true
	case 'D':
		return optDef{kDeleteService, argNone}, true
	case 'C':
		return optDef{kClear, argNone}, true
	case 'L', 'l':
		return optDef{kList, argNone}, true
	case 'Z':
		return optDef{kZero, argNone}, true
	case 'a':
		return optDef{kAddServer, argNone}, true
	case 'e':
		return optDef{kEditServer, argNone}, true
	case 'd':
		return optDef{kDeleteServer, argNone}, true
	case 'h':
		return optDef{kHelp, argNone}, true
	case 'v':
		return optDef{kVersion, argNone}, true
	case 'R':
		return optDef{kRestore, argNone}, true
	case 'S':
		return optDef{kSave, argNone}, true
	case 't':
		return optDef{kTCP, argRequired}, true
	case 'u':
		return optDef{kUDP, argRequired}, true
	case 'f':
		return optDef{kFWMark, argRequired}, true
	case 's':
		return optDef{kScheduler, argRequired}, true
	case 'p':
		return optDef{kPersistent, argOptional}, true
	case 'M':
		return optDef{kNetmask, argRequired}, true
	case 'r':
		return optDef{kRealServer, argRequired}, true
	case 'm':
		return optDef{kMasq, argNone}, true
	case 'i':
		return optDef{kIPIP, argNone}, true
	case 'g':
		return optDef{kGate, argNone}, true
	case 'w':
		return optDef{kWeight, argRequired}, true
	case 'x':
		return optDef{kUThreshold, argRequired}, true
	case 'y':
		return optDef{kLThreshold, argRequired}, true
	case 'n':
		return optDef{kNumeric, argNone}, true
	case 'c':
		return optDef{kConnection, argNone}, true
	case 'X':
		return optDef{kExact, argNone}, true
	case '6':
		return optDef{kIPv6, argNone}, true
	case 'o':
		return optDef{kOPS, argNone}, true
	case 'b':
		return optDef{kSchedFlags, argRequired}, true
	}
	return optDef{}, false
}

// popt's error texts (poptStrerror).
const (
	poptBadOpt      = "unknown option"
	poptNoArg       = "missing argument"
	poptUnwantedArg = "option does not take an argument"
)

// scanner hands out options one at a time, like poptGetNextOpt.
type scanner struct {
	args      []string
	next      int    // index of the next word
	cluster   string // short options left in the current word
	dashdash  bool
	leftovers []string
	last      string // the last word consumed, which poptBadOption reports
}

type event struct {
	key    key
	arg    string
	hasArg bool
}

// scan returns the next option. done is true at the end of the words;
// errText is a popt error, to be reported against s.last.
func (s *scanner) scan() (ev event, done bool, errText string) {
	for {
		if s.cluster != "" {
			c := s.cluster[0]
			s.cluster = s.cluster[1:]
			def, ok := shortOption(c)
			if !ok {
				s.cluster = ""
				return event{}, false, poptBadOpt
			}
			ev.key = def.key
			if def.arg == argNone {
				return ev, false, ""
			}
			if s.cluster != "" {
				ev.arg, ev.hasArg = strings.TrimPrefix(s.cluster, "="), true
				s.cluster = ""
				return ev, false, ""
			}
			return s.takeArg(ev, def.arg)
		}
		if s.next >= len(s.args) {
			return event{}, true, ""
		}
		w := s.args[s.next]
		s.next++
		s.last = w
		if s.dashdash || len(w) < 2 || w[0] != '-' {
			s.leftovers = append(s.leftovers, w)
			continue
		}
		if w == "--" {
			s.dashdash = true
			continue
		}
		if w[1] != '-' {
			s.cluster = w[1:]
			continue
		}
		name, val, hasVal := strings.Cut(w[2:], "=")
		def, ok := longOption(name)
		if !ok {
			return event{}, false, poptBadOpt
		}
		ev.key = def.key
		if def.arg == argNone {
			if hasVal {
				return event{}, false, poptUnwantedArg
			}
			return ev, false, ""
		}
		if hasVal {
			ev.arg, ev.hasArg = val, true
			return ev, false, ""
		}
		return s.takeArg(ev, def.arg)
	}
}

// takeArg takes an option's argument from the next word.
func (s *scanner) takeArg(ev event, kind argKind) (event, bool, string) {
	if s.next >= len(s.args) {
		if kind == argOptional {
			return ev, false, ""
		}
		return event{}, false, poptNoArg
	}
	w := s.args[s.next]
	if kind == argOptional && strings.HasPrefix(w, "-") {
		return ev, false, ""
	}
	s.next++
	s.last = w
	ev.arg, ev.hasArg = w, true
	return ev, false, ""
}

// leftover returns the next word that was not an option, as poptGetArg.
// Words after the last option are only found by scanning to the end, which
// the caller has done.
func (s *scanner) leftover() (string, bool) {
	if len(s.leftovers) == 0 {
		return "", false
	}
	w := s.leftovers[0]
	s.leftovers = s.leftovers[1:]
	return w, true
}
