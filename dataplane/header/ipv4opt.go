package header

// IPv4 options (RFC 791 §3.1) follow the fixed header, up to 40 bytes. Each is one
// byte of type, then — for every type but End of Option List and No Operation — a
// length byte counting the whole option, and its data:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+- - - -
//	|  Option type  | Option length |  Option data …
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+- - - -
//	 |C|Cl.| Number|
//
// The type byte is a copied flag, a class and a number; the whole byte names the
// option. Loose and Strict Source and Record Route (LSRR 131, SSRR 137) make a host
// that accepts them forward the packet along a path the sender chose: Linux drops
// them unless accept_source_route is set, which it is not by default for IPv4
// (docs/defense.md §1.3).
const (
	IPv4OptEnd  = 0   // End of Option List
	IPv4OptNOP  = 1   // No Operation
	IPv4OptLSRR = 131 // Loose Source and Record Route
	IPv4OptSSRR = 137 // Strict Source and Record Route

	ipv4OptType = 0
	ipv4OptLen  = 1
	// ipv4OptMinLen is the length of an option with a length byte and no data.
	ipv4OptMinLen = 2
)

// scanIPv4Options walks the options of an IPv4 header (the bytes between the fixed
// header and IHL*4, at most 40) and reports whether a source route (LSRR or SSRR) is
// among them, and whether their type-length structure is sound: every option with a
// length byte has a length of at least 2 that stays inside the options, as Linux's
// ip_options_compile checks before it looks at any option. Options after End of
// Option List are padding and not read. The walk advances at least one byte per
// step, so it costs at most len(opts) ≤ 40 steps whatever the bytes say.
func scanIPv4Options(opts []byte) (sourceRoute, ok bool) {
	for i := 0; i < len(opts); {
		switch t := opts[i+ipv4OptType]; t {
		case IPv4OptEnd:
			return sourceRoute, true
		case IPv4OptNOP:
			i++
			continue
		default:
			if len(opts)-i < ipv4OptMinLen {
				return sourceRoute, false
			}
			n := int(opts[i+ipv4OptLen])
			if n < ipv4OptMinLen || n > len(opts)-i {
				return sourceRoute, false
			}
			if t == IPv4OptLSRR || t == IPv4OptSSRR {
				sourceRoute = true
			}
			i += n
		}
	}
	return sourceRoute, true
}
