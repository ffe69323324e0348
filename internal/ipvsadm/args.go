package ipvsadm

import (
	"strconv"
	"strings"
	"time"
)

// Args returns an ipvsadm command line, without the program name, that Parse
// reads back into a Command equal to c. The words come in the order ipvsadm
// -S writes rules ("-A -t 10.0.0.1:80 -s rr -p 360"), addresses and ports
// are numeric, and defaults are written out (-s wlc, -g, -w 1), so the line is
// explicit. Args is meant for Commands that Parse returns; a Command built by
// hand with values Parse never produces (an unknown protocol, a zero Op)
// yields a line that does not parse.
func (c *Command) Args() []string {
	var a []string
	switch c.Op {
	case OpAddService, OpEditService:
		a = append(a, map2(c.Op == OpAddService, "-A", "-E"))
		a = append(a, serviceArgs(&c.Service)...)
		a = append(a, "-s", c.Service.Scheduler)
		if c.Service.Persistent {
			a = append(a, "-p", seconds(c.Service.Timeout))
		}
		if c.Service.Netmask != 0 {
			a = append(a, "-M", maskString(&c.Service))
		}
		if c.Service.PE != "" {
			a = append(a, "--pe", c.Service.PE)
		}
		if c.Service.OPS {
			a = append(a, "-o")
		}
		if len(c.Service.Flags) > 0 {
			a = append(a, "-b", strings.Join(c.Service.Flags, ","))
		}
	case OpDeleteService:
		a = append(a, "-D")
		a = append(a, serviceArgs(&c.Service)...)
	case OpClear:
		a = append(a, "-C")
	case OpList:
		a = append(a, "-L")
		if c.HasService {
			a = append(a, serviceArgs(&c.Service)...)
		}
		a = append(a, formatArgs(c.Format)...)
		if c.Connections {
			a = append(a, "-c")
		}
		if c.Timeouts {
			a = append(a, "--timeout")
		}
		if c.Daemons {
			a = append(a, "--daemon")
		}
		if c.Sync.SyncID != 0 {
			a = append(a, "--syncid", strconv.Itoa(int(c.Sync.SyncID)))
		}
	case OpAddServer, OpEditServer, OpDeleteServer:
		switch c.Op {
		case OpAddServer:
			a = append(a, "-a")
		case OpEditServer:
			a = append(a, "-e")
		default:
			a = append(a, "-d")
		}
		a = append(a, serviceArgs(&c.Service)...)
		d := &c.Dest
		a = append(a, "-r", addrPortNumeric(d.Addr, d.Port))
		if c.Op == OpDeleteServer {
			break
		}
		a = append(a, methodSwitch(d.Method), "-w", strconv.Itoa(d.Weight))
		if d.UThreshold != 0 {
			a = append(a, "-x", strconv.FormatUint(uint64(d.UThreshold), 10))
		}
		if d.LThreshold != 0 {
			a = append(a, "-y", strconv.FormatUint(uint64(d.LThreshold), 10))
		}
		if d.Method == MethodTunnel {
			a = append(a, tunnelArgs(d)...)
		}
	case OpSetTimeouts:
		t := c.SetTimeouts
		a = append(a, "--set", seconds(t.TCP), seconds(t.TCPFin), seconds(t.UDP))
	case OpStartDaemon, OpStopDaemon:
		y := &c.Sync
		a = append(a, map2(c.Op == OpStartDaemon, "--start-daemon", "--stop-daemon"), y.State.String())
		if y.McastIfn != "" {
			a = append(a, "--mcast-interface", y.McastIfn)
		}
		if y.SyncID != 0 {
			a = append(a, "--syncid", strconv.Itoa(int(y.SyncID)))
		}
		if y.Group.IsValid() {
			a = append(a, "--mcast-group", y.Group.String())
		}
		if y.Port != 0 {
			a = append(a, "--mcast-port", strconv.Itoa(int(y.Port)))
		}
		if y.TTL != 0 {
			a = append(a, "--mcast-ttl", strconv.Itoa(int(y.TTL)))
		}
		if y.MaxLen != 0 {
			a = append(a, "--sync-maxlen", strconv.Itoa(int(y.MaxLen)))
		}
	case OpRestore:
		a = append(a, "-R")
	case OpSave:
		a = append(a, "-S")
		if c.Format.Numeric {
			a = append(a, "-n")
		}
	case OpZero:
		a = append(a, "-Z")
		if c.HasService {
			a = append(a, serviceArgs(&c.Service)...)
		}
	case OpHelp:
		a = append(a, "-h")
	case OpVersion:
		a = append(a, "-v")
	}
	return a
}

func map2(cond bool, yes, no string) string {
	if cond {
		return yes
	}
	return no
}

func seconds(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10)
}

// serviceArgs names a service as -S does, but with the fwmark unsigned.
func serviceArgs(s *Service) []string {
	if s.FWMark != 0 {
		a := []string{"-f", strconv.FormatUint(uint64(s.FWMark), 10)}
		if s.IPv6 {
			a = append(a, "-6")
		}
		return a
	}
	return []string{protocolSwitch(s.Protocol), addrPortNumeric(s.Addr, s.Port)}
}

func protocolSwitch(p Protocol) string {
	switch p {
	case TCP:
		return "-t"
	case UDP:
		return "-u"
	case SCTP:
		return "--sctp-service"
	}
	return "--xxx-service"
}

// methodSwitch is the -S switch of a forwarding method; Local is added as -g.
func methodSwitch(m Method) string {
	switch m {
	case MethodMasq:
		return "-m"
	case MethodTunnel:
		return "-i"
	case MethodRoute, MethodLocal:
		return "-g"
	}
	return "(null)"
}

func tunnelArgs(d *Dest) []string {
	switch d.TunnelType {
	case TunnelGUE:
		return []string{"--tun-type", "gue", "--tun-port", strconv.Itoa(int(d.TunnelPort)), csumSwitch(d.TunnelCsum)}
	case TunnelGRE:
		return []string{"--tun-type", "gre", csumSwitch(d.TunnelCsum)}
	}
	return []string{"--tun-type", "ipip"}
}

func csumSwitch(c TunnelCsum) string {
	switch c {
	case TunnelCsumOn:
		return "--tun-csum"
	case TunnelRemCsum:
		return "--tun-remcsum"
	}
	return "--tun-nocsum"
}

func formatArgs(f Format) []string {
	var a []string
	if f.Numeric {
		a = append(a, "-n")
	}
	if f.Stats {
		a = append(a, "--stats")
	}
	if f.Rate {
		a = append(a, "--rate")
	}
	if f.Thresholds {
		a = append(a, "--thresholds")
	}
	if f.PersistentConn {
		a = append(a, "--persistent-conn")
	}
	if f.TunInfo {
		a = append(a, "--tun-info")
	}
	if f.Exact {
		a = append(a, "--exact")
	}
	if f.NoSort {
		a = append(a, "--nosort")
	}
	return a
}
