package linktest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/gvs-lb/gvs/dataplane"
	"github.com/gvs-lb/gvs/internal/testutil"
)

func frameOf(b []byte) dataplane.Frame { return dataplane.Frame{Buf: b, Len: len(b)} }

func TestPairDelivers(t *testing.T) {
	testutil.CheckLeaks(t)
	a, b := NewPair()
	defer a.Close()
	defer b.Close()
	var out []dataplane.Frame
	for i := range 10 {
		out = append(out, frameOf([]byte(fmt.Sprintf("frame number %02d", i))))
	}
	if n, err := a.WriteBatch(out); n != len(out) || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	in := make([]dataplane.Frame, 4)
	var got [][]byte
	for len(got) < len(out) {
		n, err := b.ReadBatch(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range in[:n] {
			if f.Off < dataplane.Headroom {
				t.Fatalf("headroom %d", f.Off)
			}
			// The headroom is the reader's to write.
			for i := range f.Buf[:f.Off] {
				f.Buf[i] = 0xee
			}
			got = append(got, append([]byte(nil), f.Bytes()...))
		}
	}
	for i := range out {
		if !bytes.Equal(got[i], out[i].Bytes()) {
			t.Errorf("frame %d: got %q, want %q", i, got[i], out[i].Bytes())
		}
	}
	// And the other way.
	if n, err := b.WriteBatch(out[:1]); n != 1 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	if n, err := a.ReadBatch(in); n != 1 || err != nil || !bytes.Equal(in[0].Bytes(), out[0].Bytes()) {
		t.Fatalf("ReadBatch = %d, %v", n, err)
	}
}

func TestPairDropsWhenFull(t *testing.T) {
	a, b := NewPairConfig(Config{Capacity: 4, MaxFrame: 100})
	frames := []dataplane.Frame{frameOf(make([]byte, 101)), frameOf(nil)}
	for range 6 {
		frames = append(frames, frameOf([]byte("x")))
	}
	if n, _ := a.WriteBatch(frames); n != 4 || b.Drops() != 4 {
		t.Fatalf("wrote %d, dropped %d; want 4 and 4 (too long, empty, 2 over capacity)", n, b.Drops())
	}
	// Buffers come back with the next ReadBatch.
	in := make([]dataplane.Frame, 8)
	if n, _ := b.ReadBatch(in); n != 4 {
		t.Fatalf("read %d, want 4", n)
	}
	b.ReadBatch(nil)
	if n, _ := a.WriteBatch(frames[2:]); n != 4 {
		t.Fatalf("wrote %d after the reader freed its batch, want 4", n)
	}
}

func TestPairCloseWakesReader(t *testing.T) {
	testutil.CheckLeaks(t)
	a, b := NewPair()
	errc := make(chan error)
	go func() {
		_, err := b.ReadBatch(make([]dataplane.Frame, 4))
		errc <- err
	}()
	testutil.Eventually(t, 5*time.Second, func() bool { return testutil.Parked("linktest.(*Endpoint).ReadBatch") },
		"the reader blocked in ReadBatch")
	b.Close()
	b.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReadBatch after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake ReadBatch")
	}
	if _, err := b.WriteBatch(nil); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("WriteBatch after Close: %v", err)
	}
	// The peer still writes; its frames are dropped.
	if n, err := a.WriteBatch([]dataplane.Frame{frameOf([]byte("x"))}); n != 0 || err != nil || b.Drops() != 1 {
		t.Fatalf("write to a closed peer: %d, %v, %d drops", n, err, b.Drops())
	}
}

func TestPairAllocatesNothing(t *testing.T) {
	a, b := NewPair()
	out := []dataplane.Frame{frameOf(make([]byte, 60)), frameOf(make([]byte, 1500))}
	in := make([]dataplane.Frame, 4)
	allocs := testing.AllocsPerRun(100, func() {
		a.WriteBatch(out)
		b.ReadBatch(in)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per write+read, want 0", allocs)
	}
}

func TestChannel(t *testing.T) {
	testutil.CheckLeaks(t)
	c := NewChannel(8)
	c.Inbound <- []byte("one")
	c.Inbound <- []byte("two")
	in := make([]dataplane.Frame, 4)
	n, err := c.ReadBatch(in)
	if err != nil || n != 2 || string(in[0].Bytes()) != "one" || string(in[1].Bytes()) != "two" || in[0].Off < dataplane.Headroom {
		t.Fatalf("ReadBatch = %d, %v", n, err)
	}
	if n, err := c.WriteBatch(in[:n]); n != 2 || err != nil {
		t.Fatalf("WriteBatch = %d, %v", n, err)
	}
	if got := string(<-c.Outbound) + string(<-c.Outbound); got != "onetwo" {
		t.Fatalf("collected %q", got)
	}
	errc := make(chan error)
	go func() {
		_, err := c.ReadBatch(in)
		errc <- err
	}()
	testutil.Eventually(t, 5*time.Second, func() bool { return testutil.Parked("linktest.(*Channel).ReadBatch") },
		"the reader blocked in ReadBatch")
	c.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReadBatch after Close: %v", err)
	}
	c.Close()
}
