package sched

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Errors returned by New and ParseFlags; the returned errors wrap them with details.
var (
	ErrUnknownScheduler = errors.New("unknown scheduler")
	ErrFlag             = errors.New("bad scheduler flag")
	ErrOption           = errors.New("bad scheduler option")
)

// Options configure the scheduler New builds. The zero value selects the kernel's
// defaults (docs/ipvs-semantics.md, notes at the top).
type Options struct {
	// Flags are the service's scheduler flags (ipvsadm -b), see ParseFlags.
	Flags Flags
	// MHTableSize is mh's lookup table size M, one of the primes the kernel's
	// CONFIG_IP_VS_MH_TAB_INDEX selects: 251 509 1021 2039 4093 8191 16381 32749
	// 65521 131071. 0 selects 4093 (§4.12).
	MHTableSize int
	// MHCanonical builds mh's table from the dests sorted by address and port
	// instead of in list order (gvs's cluster mode, mh_order = "canonical"): the
	// list order depends on the history of adds, which differs between directors,
	// and so would the tables (docs/cluster.md §2).
	MHCanonical bool
	// Rand returns a uniformly distributed number in [0, n); n == 0 asks for any
	// uint32, as the kernel's get_random_u32_below(0). twos draws two numbers per
	// decision (§4.9). It is called with the Pool's lock held. nil selects a PCG
	// generator with a fixed seed, so runs are reproducible.
	Rand func(n uint32) uint32
	// LBLCExpiration and LBLCRExpiration are the lblc_expiration and
	// lblcr_expiration sysctls: how long a cache entry lives after its last use
	// (§4.13, §4.14). 0 selects 24h.
	LBLCExpiration  time.Duration
	LBLCRExpiration time.Duration
	// LBLCCapacity bounds the entries of an lblc or lblcr cache. The kernel only
	// aims at 16384 entries (its collector works harder above that) and allocates
	// as long as memory lasts; at this bound gvs behaves as the kernel does when
	// that allocation fails: the decision stands, it is just not cached (lblcr's
	// dest sets hold at most 4·LBLCCapacity members together, likewise). 0 selects
	// 65536; values below 16384 are raised to 16384.
	LBLCCapacity int
}

// constructors builds each scheduler IPVS has, by its module name.
var constructors = map[string]func(Options) (Scheduler, error){
	"rr":    func(Options) (Scheduler, error) { return newRR(), nil },
	"wrr":   func(Options) (Scheduler, error) { return newWRR(), nil },
	"lc":    func(Options) (Scheduler, error) { return lc{}, nil },
	"wlc":   func(Options) (Scheduler, error) { return wlc{}, nil },
	"sed":   func(Options) (Scheduler, error) { return sed{}, nil },
	"nq":    func(Options) (Scheduler, error) { return nq{}, nil },
	"fo":    func(Options) (Scheduler, error) { return fo{}, nil },
	"ovf":   func(Options) (Scheduler, error) { return ovf{}, nil },
	"twos":  func(o Options) (Scheduler, error) { return newTwoS(o.Rand), nil },
	"sh":    func(o Options) (Scheduler, error) { return newSH(o.Flags), nil },
	"dh":    func(Options) (Scheduler, error) { return newDH(), nil },
	"mh":    newMHWith,
	"lblc":  func(o Options) (Scheduler, error) { return newLBLC(o) },
	"lblcr": func(o Options) (Scheduler, error) { return newLBLCR(o) },
}

// NoScheduler is the name ipvsadm and the kernel accept for a service without a
// scheduler (§3): every scheduling attempt finds no destination.
const NoScheduler = "none"

// New returns a fresh scheduler of the named kind ("rr", "wlc", "mh" …, or
// NoScheduler) configured by opts. Each Pool needs its own.
func New(name string, opts Options) (Scheduler, error) {
	if opts.Flags&^(FlagSched1|FlagSched2|FlagSched3) != 0 {
		return nil, fmt.Errorf("sched: %s: %w: unknown bits %#x", name, ErrFlag, uint8(opts.Flags))
	}
	if name == NoScheduler {
		return none{}, nil
	}
	mk, ok := constructors[name]
	if !ok {
		return nil, fmt.Errorf("sched: %w %q (valid: %s %s)", ErrUnknownScheduler, name, strings.Join(Names(), " "), NoScheduler)
	}
	s, err := mk(opts)
	if err != nil {
		return nil, fmt.Errorf("sched: %s: %w", name, err)
	}
	return s, nil
}

// Names returns the names of the schedulers New builds, sorted. NoScheduler, which is
// no scheduler (the kernel has no module for it either), is not among them.
func Names() []string {
	names := make([]string, 0, len(constructors))
	for n := range constructors {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// A flagName is one of ipvsadm's -b names (ipvsadm parse_sched_flags).
type flagName struct {
	name  string
	owner string // the only scheduler the name is valid for; "" = any
	bit   Flags
}

var flagNames = []flagName{
	{"flag-1", "", FlagSched1},
	{"flag-2", "", FlagSched2},
	{"flag-3", "", FlagSched3},
	{"sh-fallback", "sh", FlagSched1},
	{"sh-port", "sh", FlagSched2},
	{"mh-fallback", "mh", FlagSched1},
	{"mh-port", "mh", FlagSched2},
}

// ParseFlags turns ipvsadm -b flag names for scheduler sched into Flags. Each element
// of names may itself be a comma-separated list, as on ipvsadm's command line.
// flag-1, flag-2 and flag-3 are accepted for every scheduler; sh-fallback and sh-port
// only for sh, mh-fallback and mh-port only for mh.
func ParseFlags(sched string, names []string) (Flags, error) {
	if _, ok := constructors[sched]; !ok && sched != NoScheduler {
		return 0, fmt.Errorf("sched: %w %q (valid: %s %s)", ErrUnknownScheduler, sched, strings.Join(Names(), " "), NoScheduler)
	}
	var f Flags
	for _, list := range names {
		for name := range strings.SplitSeq(list, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			i := slices.IndexFunc(flagNames, func(fn flagName) bool { return fn.name == name })
			if i < 0 {
				valid := make([]string, len(flagNames))
				for j, fn := range flagNames {
					valid[j] = fn.name
				}
				return 0, fmt.Errorf("sched: %w: unknown flag %q (valid: %s)", ErrFlag, name, strings.Join(valid, " "))
			}
			fn := flagNames[i]
			if fn.owner != "" && fn.owner != sched {
				return 0, fmt.Errorf("sched: %w: %s is a flag of the %s scheduler, not of %s", ErrFlag, name, fn.owner, sched)
			}
			f |= fn.bit
		}
	}
	return f, nil
}

// FlagNames returns f as ipvsadm -L prints it for scheduler sched: sh and mh name
// their own two flags, every other bit is flag-N.
func FlagNames(sched string, f Flags) []string {
	names := [3]string{"flag-1", "flag-2", "flag-3"}
	if sched == "sh" || sched == "mh" {
		names[0], names[1] = sched+"-fallback", sched+"-port"
	}
	var out []string
	for i, n := range names {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// none is NoScheduler: a service with it never finds a destination.
type none struct{}

func (none) Name() string                    { return NoScheduler }
func (none) Schedule([]*Dest, *Packet) *Dest { return nil }

// defaultRand is Options.Rand's nil value: PCG with a fixed seed, private to one
// scheduler (no global generator).
func defaultRand() func(n uint32) uint32 { return pcgDraw(defaultPCG()) }

// defaultPCG is the fixed-seed generator behind defaultRand.
func defaultPCG() *rand.PCG { return rand.NewPCG(0x67766c62, 0x74776f73) }

// pcgDraw draws from p as Options.Rand does; it is not safe for concurrent use (twos
// calls it under its Pool's lock, and a cloned twos gets its own copy of p).
func pcgDraw(p *rand.PCG) func(n uint32) uint32 {
	r := rand.New(p)
	return func(n uint32) uint32 {
		if n == 0 {
			return r.Uint32()
		}
		return r.Uint32N(n)
	}
}

// What each scheduler implements besides Scheduler.
var (
	_ Hooks = (*rr)(nil)
	_ Hooks = (*wrr)(nil)
	_ Hooks = (*sh)(nil)
	_ Hooks = (*dh)(nil)
	_ Hooks = (*mh)(nil)
	_ Sizer = (*mh)(nil)
	_ Hooks = (*lblc)(nil)
	_ Hooks = (*lblcr)(nil)
)
