package cluster

import (
	"net/netip"
	"time"

	"github.com/gvs-lb/gvs/ipvs"
	"github.com/gvs-lb/gvs/ipvssync"
)

// Flags are the properties of an Entry that travel in sync records.
type Flags uint8

const (
	FlagTemplate Flags = 1 << iota // a persistence template
	FlagNoOutput                   // no reply seen yet (DR/TUN)
	FlagInactive                   // counted as inactive
	FlagNoCPort                    // client port unknown
	FlagAssured                    // template: a controlled connection was established
)

// Protocol states as gvs's connection table numbers them: the TCP states have the
// kernel's numbers, and UDP (every protocol but TCP) is one state of its own.
const (
	StateEstablished uint8 = 1
	StateUDP         uint8 = 11
)

// Entry is one connection or persistence template as sync carries it: a snapshot of
// a connection-table entry, in gvs's numbering (ipvs.Method, the table's states and
// flags), independent of the wire format. The zero value is invalid (no addresses).
type Entry struct {
	Proto   uint8
	CAddr   netip.Addr
	VAddr   netip.Addr
	DAddr   netip.Addr
	CPort   uint16
	VPort   uint16
	DPort   uint16
	FwMark  uint32
	Method  ipvs.Method // zero for a template whose method is unknown
	Flags   Flags
	State   uint8         // TCP 0–10, StateUDP for other protocols; ignored for templates
	Timeout time.Duration // the full timeout of the entry's state
}

// Key returns the entry's lookup key, as the kernel receiver looks entries up.
func (e *Entry) Key() Key {
	return Key{Proto: e.Proto, Template: e.Flags&FlagTemplate != 0, CAddr: e.CAddr, VAddr: e.VAddr, CPort: e.CPort, VPort: e.VPort}
}

// Key identifies an entry: (protocol, client, virtual service), and whether it is a
// template.
type Key struct {
	Proto    uint8
	Template bool
	CAddr    netip.Addr
	VAddr    netip.Addr
	CPort    uint16
	VPort    uint16
}

// toRecord translates e into the wire's numbering (docs/cluster.md §4.2): the method
// into the forwarding bits, StateUDP to the single state 0, a template's ASSURED flag to
// state 1, the timeout in whole seconds rounded up.
func toRecord(e *Entry, r *ipvssync.Record) {
	*r = ipvssync.Record{
		Protocol: e.Proto, CPort: e.CPort, VPort: e.VPort, DPort: e.DPort, FwMark: e.FwMark,
		CAddr: e.CAddr, VAddr: e.VAddr, DAddr: e.DAddr,
		Timeout: uint32(min((e.Timeout+time.Second-1)/time.Second, 1<<32-1)),
	}
	if e.Method != 0 {
		r.Flags = e.Method.KernelFlags()
	}
	if e.Flags&FlagNoOutput != 0 {
		r.Flags |= ipvssync.FlagNoOutput
	}
	if e.Flags&FlagInactive != 0 {
		r.Flags |= ipvssync.FlagInactive
	}
	if e.Flags&FlagNoCPort != 0 {
		r.Flags |= ipvssync.FlagNoCPort
	}
	switch {
	case e.Flags&FlagTemplate != 0:
		r.Flags |= ipvssync.FlagTemplate
		if e.Flags&FlagAssured != 0 {
			r.State = ipvssync.TemplateAssured
		}
	case e.Proto == ipvssync.ProtoTCP:
		r.State = uint16(e.State)
	default:
		r.State = ipvssync.UDPNormal
	}
}

// fromRecord translates a received record, keeping only the flags a kernel receiver
// keeps. It returns the reason the record cannot become an entry, or dropNone.
func fromRecord(r *ipvssync.Record, e *Entry) dropReason {
	if len(r.PEName) != 0 || len(r.PEData) != 0 {
		return dropPersistenceEngine
	}
	tpl := r.Flags&ipvssync.FlagTemplate != 0
	if !tpl && r.Protocol != ipvssync.ProtoTCP && r.Protocol != ipvssync.ProtoUDP {
		return dropProtocol
	}
	m, ok := ipvs.MethodFromKernel(r.Flags & ipvssync.FwdMask)
	if !ok {
		return dropMethod
	}
	*e = Entry{
		Proto: r.Protocol, CAddr: r.CAddr, VAddr: r.VAddr, DAddr: r.DAddr,
		CPort: r.CPort, VPort: r.VPort, DPort: r.DPort, FwMark: r.FwMark, Method: m,
		Timeout: time.Duration(r.Timeout) * time.Second,
	}
	if r.Flags&ipvssync.FlagNoOutput != 0 {
		e.Flags |= FlagNoOutput
	}
	if r.Flags&ipvssync.FlagInactive != 0 {
		e.Flags |= FlagInactive
	}
	if r.Flags&ipvssync.FlagNoCPort != 0 {
		e.Flags |= FlagNoCPort
	}
	switch {
	case tpl:
		e.Flags |= FlagTemplate
		if r.State == ipvssync.TemplateAssured {
			e.Flags |= FlagAssured
		}
	case r.Protocol == ipvssync.ProtoTCP:
		e.State = uint8(r.State)
	default:
		e.State = StateUDP
	}
	return dropNone
}
