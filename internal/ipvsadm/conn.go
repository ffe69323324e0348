package ipvsadm

import (
	"fmt"
	"io"
	"strconv"
	"time"
)

// connProtoName is the kernel's protocol name in /proc/net/ip_vs_conn.
func connProtoName(p Protocol) string {
	switch p {
	case 0:
		return "IP"
	case 1:
		return "ICMP"
	case TCP, UDP, SCTP:
		return p.String()
	case 58:
		return "ICMPv6"
	}
	return "ERR!"
}

// FormatConns writes the connection table as ipvsadm -L -c (-Lnc with
// f.Numeric): a heading, the column titles, and one line per entry in the
// order given; nothing is sorted or cut. With f.PersistentConn the titles,
// and the entries that carry persistence-engine data, gain two columns.
func FormatConns(w io.Writer, conns []Conn, f Format, r Resolver) error {
	l := NewConnLister(w, f, r)
	for i := range conns {
		if err := l.Add(&conns[i]); err != nil {
			return err
		}
	}
	return l.Close()
}

// connFlushBytes is how much of a listing a ConnLister holds before it writes: a
// few hundred lines.
const connFlushBytes = 32 << 10

// A ConnLister writes the same listing as FormatConns one entry at a time, so a
// table of any size is listed with the memory of one connFlushBytes buffer: the
// heading and titles first, then each Add's line, written out whenever the
// buffer fills, and the rest at Close. The zero value is not usable; it is not
// safe for concurrent use.
type ConnLister struct {
	p   *printer
	w   io.Writer
	err error
}

// NewConnLister starts a -c listing to w.
func NewConnLister(w io.Writer, f Format, r Resolver) *ConnLister {
	p := newPrinter(f, r)
	p.b = make([]byte, 0, connFlushBytes+512)
	p.str("IPVS connection entries\n")
	p.str("pro expire ")
	p.left("state", 11)
	p.str(" ")
	p.left("source", 18)
	p.str(" ")
	p.left("virtual", 18)
	p.str(" ")
	if f.PersistentConn {
		p.left("destination", 18)
		p.str(" ")
		p.left("pe name", 16)
		p.str(" pe_data\n")
	} else {
		p.str("destination\n")
	}
	return &ConnLister{p: p, w: w}
}

// Add appends c's line. After a write error it does nothing and returns that
// error (so does Close).
func (l *ConnLister) Add(c *Conn) error {
	if l.err != nil {
		return l.err
	}
	p := l.p
	proto := c.Protocol
	if proto != TCP && proto != UDP && proto != SCTP {
		proto = 0
	}
	cname := p.addrPort(c.Client.Addr(), c.Client.Port(), proto)
	vname := p.addrPort(c.Virtual.Addr(), c.Virtual.Port(), proto)
	dname := p.addrPort(c.Dest.Addr(), c.Dest.Port(), proto)
	secs := int64(c.Expires / time.Second)
	if secs < 0 {
		secs = 0
	}
	p.left(connProtoName(c.Protocol), 3)
	p.str(" ")
	p.left(twoDigits(secs/60)+":"+twoDigits(secs%60), 6)
	p.str(" ")
	p.left(c.State, 11)
	p.str(" ")
	p.left(cname, 18)
	p.str(" ")
	p.left(vname, 18)
	p.str(" ")
	if p.f.PersistentConn && c.PEName != "" && c.PEData != "" {
		// ipvsadm's line puts the destination in a 16-wide column and
		// the engine name in an 18-wide one, the other way round from
		// its titles.
		p.left(dname, 16)
		p.str(" ")
		p.left(c.PEName, 18)
		p.str(" " + c.PEData + "\n")
	} else {
		p.str(dname + "\n")
	}
	if len(p.b) >= connFlushBytes {
		l.err = p.flush(l.w)
		p.b = p.b[:0]
	}
	return l.err
}

// Close writes what is left of the listing.
func (l *ConnLister) Close() error {
	if l.err == nil {
		l.err = l.p.flush(l.w)
		l.p.b = l.p.b[:0]
	}
	return l.err
}

// twoDigits is printf "%02d".
func twoDigits(n int64) string {
	if n >= 0 && n < 10 {
		return "0" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}

// FormatTimeouts writes ipvsadm -L --timeout:
// "Timeout (tcp tcpfin udp): 900 120 300".
func FormatTimeouts(w io.Writer, t Timeouts) error {
	_, err := fmt.Fprintf(w, "Timeout (tcp tcpfin udp): %d %d %d\n",
		int64(t.TCP/time.Second), int64(t.TCPFin/time.Second), int64(t.UDP/time.Second))
	if err != nil {
		return fmt.Errorf("ipvsadm: write timeouts: %w", err)
	}
	return nil
}

// FormatDaemons writes ipvsadm -L --daemon: one line per running sync daemon
// (entries with no State are skipped), e.g.
// "master sync daemon (mcast=eth0, syncid=1, maxlen=1472, port=8848, ttl=1)".
// Zero optional fields are left out, as the kernel leaves them out.
func FormatDaemons(w io.Writer, ds []SyncDaemon) error {
	var p printer
	for _, d := range ds {
		if d.State != SyncMaster && d.State != SyncBackup {
			continue
		}
		p.str(d.State.String() + " sync daemon (mcast=" + d.McastIfn + ", syncid=" + strconv.Itoa(int(d.SyncID)))
		if d.MaxLen != 0 {
			p.str(", maxlen=" + strconv.Itoa(int(d.MaxLen)))
		}
		if d.Group.IsValid() {
			p.str(", group=" + ntop(d.Group))
		}
		if d.Port != 0 {
			p.str(", port=" + strconv.Itoa(int(d.Port)))
		}
		if d.TTL != 0 {
			p.str(", ttl=" + strconv.Itoa(int(d.TTL)))
		}
		p.str(")\n")
	}
	return p.flush(w)
}
