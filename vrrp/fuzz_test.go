package vrrp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzUnmarshal decodes arbitrary IP packets. Seeds: testdata/fuzz/FuzzUnmarshal/,
// one file per kind of captured keepalived advert (each file says which). Invariants
// for anything that decodes: it re-encodes without error to a packet that decodes to
// the same value, with the same VRRP bytes (bar the v3 reserved bits) and a verifying
// checksum. Every input is tried twice, the second time with its IPv4 header and VRRP
// checksums repaired, so that mutations get past the checksums to the checks behind.
func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte{})                       // empty
	f.Add([]byte{0x60})                   // a lone IPv6 version nibble
	f.Add(bytes.Repeat([]byte{0x45}, 60)) // IPv4 version/IHL everywhere
	f.Fuzz(func(t *testing.T, b []byte) {
		roundTrip(t, b)
		if fixed := repairChecksums(b); fixed != nil {
			roundTrip(t, fixed)
		}
	})
}

func roundTrip(t *testing.T, b []byte) {
	var p Packet
	if err := p.UnmarshalBinary(b); err != nil {
		var r Reason
		if !errors.As(err, &r) || r == 0 || r >= NumReasons || err != r {
			t.Fatalf("UnmarshalBinary(%x) = %v, not a bare Reason", b, err)
		}
		return
	}
	a := &p.Advert
	if len(a.Addrs) > MaxAddrs || (a.Version != Version2 && a.Version != Version3) {
		t.Fatalf("decoded impossible advert %+v", a)
	}
	for _, ip := range a.Addrs {
		if ip.Is4() != p.Src.Is4() {
			t.Fatalf("address %v in a packet from %v", ip, p.Src)
		}
	}
	enc, err := p.MarshalBinary()
	if err != nil {
		t.Fatalf("re-encoding %+v: %v", p, err)
	}
	var q Packet
	if err := q.UnmarshalBinary(enc); err != nil {
		t.Fatalf("re-encoded packet does not decode: %v\n%x", err, enc)
	}
	if d := diffPacket(&p, &q); d != "" {
		t.Fatalf("round trip (-first +second):\n%s", d)
	}

	n := a.Len()
	in, out := payloadOf(b)[:n], enc[len(enc)-n:]
	if got, want := binary.BigEndian.Uint16(out[6:]), checksumRef(out, p.Src, p.Dst); got != want {
		t.Fatalf("re-encoded checksum %#04x, reference %#04x", got, want)
	}
	in, out = bytes.Clone(in), bytes.Clone(out)
	for _, m := range [][]byte{in, out} {
		m[6], m[7] = 0, 0 // checksum: 0x0000 and 0xffff both verify
		if a.Version == Version3 {
			m[4] &= 0x0f // reserved bits are ignored on receive, written as 0
		}
	}
	if !bytes.Equal(in, out) {
		t.Fatalf("VRRP message changed in the round trip:\n in %x\nout %x", in, out)
	}
	if p.Src.Is6() && !bytes.Equal(b[:ip6HeaderLen], enc[:ip6HeaderLen]) {
		t.Fatalf("IPv6 header changed:\n in %x\nout %x", b[:ip6HeaderLen], enc[:ip6HeaderLen])
	}
}

// payloadOf returns the IP payload of a packet that decoded.
func payloadOf(b []byte) []byte {
	if b[0]>>4 == 4 {
		return b[int(b[0]&0x0f)*4 : binary.BigEndian.Uint16(b[2:])]
	}
	return b[ip6HeaderLen : ip6HeaderLen+int(binary.BigEndian.Uint16(b[4:]))]
}

// repairChecksums returns a copy of b with a correct IPv4 header checksum and VRRP
// checksum where the structure allows, or nil.
func repairChecksums(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	b = bytes.Clone(b)
	var src, dst netip.Addr
	var payload []byte
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0x0f) * 4
		if len(b) < ip4MinLen || ihl < ip4MinLen || len(b) < ihl {
			return nil
		}
		fixIPv4(b)
		total := int(binary.BigEndian.Uint16(b[2:]))
		if total < ihl || total > len(b) {
			return b
		}
		src, dst = netip.AddrFrom4([4]byte(b[12:])), netip.AddrFrom4([4]byte(b[16:]))
		payload = b[ihl:total]
	case 6:
		if len(b) < ip6HeaderLen {
			return nil
		}
		end := ip6HeaderLen + int(binary.BigEndian.Uint16(b[4:]))
		if end > len(b) {
			return nil
		}
		src, dst = netip.AddrFrom16([16]byte(b[8:])), netip.AddrFrom16([16]byte(b[24:]))
		payload = b[ip6HeaderLen:end]
	default:
		return nil
	}
	if len(payload) >= headerLen {
		binary.BigEndian.PutUint16(payload[6:], checksumRef(payload, src, dst))
	}
	return b
}

// FuzzInstance drives an Instance with arbitrary event sequences and checks the
// invariants a runner relies on: state changes chain (each From is the previous To),
// BecomeMaster and LeaveMaster alternate and match StateMaster, adverts go out only
// from a master (or right before it takes over), a timer runs exactly in Backup and
// Master, and firing it moves it into the future.
func FuzzInstance(f *testing.F) {
	// config byte, priority byte, then (op, dt, arg) triples.
	f.Add([]byte{0, 100, 0, 0, 0, 3, 200, 0, 2, 10, 150, 3, 255, 0})
	f.Add([]byte{1, 255, 0, 0, 0, 2, 5, 255, 4, 5, 0, 5, 5, 0, 3, 255, 0, 1, 1, 0})
	f.Add([]byte{7, 150, 0, 0, 0, 2, 1, 100, 2, 50, 100, 3, 255, 0, 6, 1, 250, 3, 255, 0})
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) < 2 {
			return
		}
		cfg := v2Config()
		cfg.AuthType, cfg.AuthData = AuthNone, [8]byte{}
		if script[0]&1 != 0 {
			cfg.Version = Version3
		}
		cfg.NoPreempt = script[0]&2 != 0 && script[1] != PriorityOwner
		if script[0]&4 != 0 {
			cfg.PreemptDelay = 5 * time.Second
		}
		cfg.LowerPrioNoAdvert = script[0]&8 != 0
		cfg.HigherPrioSendAdvert = script[0]&16 != 0
		cfg.Priority = max(script[1], 1)
		in, err := NewInstance(cfg)
		if err != nil {
			t.Fatal(err)
		}
		srcs := []netip.Addr{mustAddr(ka1), mustAddr(ka2), mustAddr(ka3), mustAddr("198.18.0.200")}
		now, state, holding := t0, StateInitialize, false
		for i := 2; i+2 < len(script); i += 3 {
			op, dt, arg := script[i], script[i+1], script[i+2]
			now = now.Add(time.Duration(dt) * 10 * time.Millisecond)
			var ev Event
			switch op % 7 {
			case 0:
				ev = start
			case 1:
				ev = shutdown
			case 2:
				ev = Event{Kind: EventAdvert, Src: srcs[dt%4], Priority: arg,
					Interval: time.Duration(dt%8+1) * 250 * time.Millisecond}
			case 3:
				ev = timer
				if dl := in.NextDeadline(); !dl.IsZero() && dl.After(now) {
					now = dl
				}
			case 4:
				ev = linkDown
			case 5:
				ev = linkUp
			case 6:
				ev = prio(arg)
			}
			acts := in.Step(now, ev)
			for j, a := range acts {
				if a.Instance != in {
					t.Fatalf("action for another instance: %v", a)
				}
				switch a.Kind {
				case ActionBecomeMaster:
					if holding {
						t.Fatalf("%v: BecomeMaster while master: %v", ev.Kind, acts)
					}
					holding = true
				case ActionLeaveMaster:
					if !holding {
						t.Fatalf("%v: LeaveMaster while not master: %v", ev.Kind, acts)
					}
					holding = false
				case ActionStateChange:
					if a.From != state || a.From == a.To {
						t.Fatalf("%v: state change %v, but state was %v", ev.Kind, a, state)
					}
					state = a.To
				case ActionSendAdvert:
					next := j+1 < len(acts) && acts[j+1].Kind == ActionBecomeMaster
					if !holding && !next {
						t.Fatalf("%v: advert sent while not master: %v", ev.Kind, acts)
					}
				case ActionGratuitous:
					if !holding {
						t.Fatalf("%v: gratuitous ARP while not master: %v", ev.Kind, acts)
					}
				default:
					t.Fatalf("unknown action %v", a)
				}
			}
			if in.State() != state || holding != (state == StateMaster) {
				t.Fatalf("after %v: State() %v, actions say %v, holding VIPs %v", ev.Kind, in.State(), state, holding)
			}
			dl := in.NextDeadline()
			if running := state == StateBackup || state == StateMaster; running == dl.IsZero() {
				t.Fatalf("after %v in %v: deadline %v", ev.Kind, state, dl)
			}
			if ev.Kind == EventTimer && !dl.IsZero() && !dl.After(now) {
				t.Fatalf("timer fired at %v left the deadline at %v", now.Sub(t0), dl.Sub(t0))
			}
		}
	})
}

// TestFuzzSeedsDecode makes sure every committed seed is a valid packet, so that the
// fuzzer starts from the deep end.
func TestFuzzSeedsDecode(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzUnmarshal", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seeds: %v", err)
	}
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitN(string(raw), "\n", 3)
		if len(lines) < 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") {
			t.Fatalf("%s: not a one-value corpus file", name)
		}
		lit, _, ok := strings.Cut(strings.TrimPrefix(lines[1], "[]byte("), ") //")
		if !ok {
			t.Fatalf("%s: seed without a comment", name)
		}
		b, err := strconv.Unquote(lit)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var p Packet
		if err := p.UnmarshalBinary([]byte(b)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
