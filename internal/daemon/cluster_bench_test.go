package daemon

import (
	"net/netip"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/conntrack"
	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/internal/cluster"
	"github.com/gvs-lb/gvs/internal/config"
	"github.com/gvs-lb/gvs/ipvs"
)

// benchAdapter is a table adapter over a Director with clusterConf's services, and
// n received connections to 198.18.100.1:80 from distinct clients, served by
// 172.19.0.10.
func benchAdapter(tb testing.TB, n int) (*tableAdapter, []cluster.Entry) {
	tb.Helper()
	cfg, err := config.Parse("test.toml", []byte(clusterConf("dir1", "")))
	if err != nil {
		tb.Fatal(err)
	}
	dir, err := NewDirector(cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	d := &Daemon{d: dir, start: time.Unix(1_700_000_000, 0)}
	es := make([]cluster.Entry, n)
	for i := range es {
		es[i] = cluster.Entry{Proto: 6, CAddr: netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), CPort: uint16(10000 + i),
			VAddr: netip.MustParseAddr("198.18.100.1"), VPort: 80, DAddr: netip.MustParseAddr("172.19.0.10"), DPort: 80,
			Method: ipvs.DR, State: cluster.StateEstablished, Timeout: 900 * time.Second}
	}
	return newTableAdapter(d), es
}

// BenchmarkClusterUpsert is a received record's cost from the Node to the table:
// translation, the real server's lookup in the running generation and Upsert — a
// refresh of an entry the table holds, the steady state of a synced connection.
func BenchmarkClusterUpsert(b *testing.B) {
	a, es := benchAdapter(b, 4096)
	now := a.d.start.Add(time.Second)
	for i := range es {
		if !a.Upsert(&es[i], 1, now) {
			b.Fatal("Upsert refused")
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		a.Upsert(&es[i%len(es)], 1, now)
	}
}

// BenchmarkClusterEvent is a sync event's cost from the ring's snapshot to the
// Node: translation into cluster.Entry and Enqueue (a full message goes to a
// transport that drops it).
func BenchmarkClusterEvent(b *testing.B) {
	a, es := benchAdapter(b, 1)
	n, err := cluster.NewNode(cluster.DefaultConfig("dir1"), cluster.Deps{Sink: a, Table: a, Transport: discardNet{}})
	if err != nil {
		b.Fatal(err)
	}
	var r conntrack.Remote
	remoteOf(&es[0], &r)
	c := conntrack.Conn{Key: r.Key, DAddr: r.DAddr, DPort: r.DPort, HasDest: true, Method: r.Method, State: r.State, Timeout: r.Timeout}
	now := a.d.start.Add(time.Second)
	var e cluster.Entry
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		c.Key.CPort = uint16(i)
		entryOf(&c, &e)
		n.Enqueue(&e, now)
	}
}

type discardNet struct{}

func (discardNet) SendSync(int, []byte) error            { return nil }
func (discardNet) SendControl([]byte) error              { return nil }
func (discardNet) OpenPush() (cluster.PushSender, error) { return discardPush{}, nil }

type discardPush struct{}

func (discardPush) SendSync(int, []byte) error { return nil }
func (discardPush) Port() uint16               { return 40001 }
func (discardPush) Close() error               { return nil }

// TestClusterAdapterAllocs: a refresh through the table adapter and an event's
// translation allocate nothing; the translations are each other's inverse.
func TestClusterAdapterAllocs(t *testing.T) {
	a, es := benchAdapter(t, 64)
	now := a.d.start.Add(time.Second)
	for i := range es {
		if !a.Upsert(&es[i], 1, now) {
			t.Fatal("Upsert refused")
		}
	}
	i := 0
	if n := testing.AllocsPerRun(1000, func() { a.Upsert(&es[i%len(es)], 1, now); i++ }); n != 0 {
		t.Errorf("a refresh allocates %v times", n)
	}
	var r conntrack.Remote
	var back cluster.Entry
	for _, e := range []cluster.Entry{es[0], {Proto: 0, CAddr: netip.MustParseAddr("2001:db8::"), VAddr: netip.AddrFrom16([16]byte{3: 7}),
		DAddr: netip.MustParseAddr("2001:db8::5"), Flags: cluster.FlagTemplate | cluster.FlagAssured, Timeout: time.Minute}} {
		if !remoteOf(&e, &r) {
			t.Fatalf("%+v refused", e)
		}
		c := conntrack.Conn{Key: r.Key, DAddr: r.DAddr, DPort: r.DPort, Method: r.Method, Flags: r.Flags, State: r.State, Timeout: r.Timeout}
		if n := testing.AllocsPerRun(100, func() { entryOf(&c, &back) }); n != 0 {
			t.Errorf("entryOf allocates %v times", n)
		}
		if e.Proto == 0 {
			e.FwMark = 7 // a fwmark service's template: the mark is its virtual address
		}
		if back != e {
			t.Errorf("round trip:\n got %+v\nwant %+v", back, e)
		}
	}
}

// nopLink is a link whose every read returns one frame at once.
type nopLink struct{ f dataplane.Frame }

func (l *nopLink) ReadBatch(frames []dataplane.Frame) (int, error) {
	if len(frames) == 0 {
		return 0, nil
	}
	frames[0] = l.f
	return 1, nil
}
func (*nopLink) WriteBatch(frames []dataplane.Frame) (int, error) { return len(frames), nil }
func (*nopLink) BatchSize() int                                   { return 64 }
func (*nopLink) Close() error                                     { return nil }

// BenchmarkWorkerBeat is the data-path heartbeat's cost: one batch read through the
// wrapper ("beat") against the link itself ("direct"); the difference is paid per
// batch, not per packet.
func BenchmarkWorkerBeat(b *testing.B) {
	frames := make([]dataplane.Frame, 64)
	for _, bc := range []struct {
		name string
		l    dataplane.Link
	}{{"direct", &nopLink{}}, {"beat", (&clusterRun{}).beat(&nopLink{})}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				bc.l.ReadBatch(frames)
			}
		})
	}
}
