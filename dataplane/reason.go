package dataplane

// Reason says what the Director did with a frame other than forwarding it. Every
// frame that is not sent on is counted under exactly one reason (parse failures under
// ReasonMalformed, with the detail in Counters.Malformed), so nothing is dropped
// silently.
type Reason uint8

const (
	_                   Reason = iota
	ReasonMalformed            // header.Decode refused the frame (see Counters.Malformed)
	ReasonNotIP                // ARP, NDP-less EtherTypes…: not for the data path
	ReasonNotOurs              // IP, but neither to a VIP nor a reply from a NAT real server
	ReasonFragment             // an IP fragment to a VIP: gvs does not reassemble
	ReasonProtocol             // to a VIP with an L4 protocol no service handles
	ReasonNoService            // to a VIP, but no service for that protocol and port
	ReasonNotSYN               // TCP without SYN (or with RST) and no connection
	ReasonNoDest               // the scheduler found no real server: ICMP unreachable sent
	ReasonPortZero             // port-0 service that is not persistent: ICMP unreachable sent
	ReasonTableFull            // conn_max reached: the new connection is refused
	ReasonDestDeleted          // the connection's real server was deleted (expire_nodest_conn off)
	ReasonTTLExceeded          // TTL/hop limit would reach 0: ICMP time exceeded sent
	ReasonTooBig               // larger than the MTU with DF (or IPv6): frag-needed / packet-too-big sent
	ReasonTooBigNoDF           // larger than the MTU without DF: gvs does not fragment
	ReasonNoMAC                // the real server has no known MAC address
	ReasonNoGateway            // a NAT reply but no next hop toward clients is known
	ReasonICMPUnrelated        // ICMP to a VIP that concerns no tracked connection
	ReasonReplyNoConn          // from a NAT real server, but no connection matches
	ReasonFTPData              // FTP data-port fallback without a destination: accepted
	ReasonNeighbor             // an ARP request / neighbour solicitation for a VIP: answered
	ReasonNotOwned             // to a VIP this director does not own now (VRRP backup)
	ReasonOtherHost            // unicast to another MAC than the director's (Linux: PACKET_OTHERHOST)
	ReasonGroupMAC             // broadcast/multicast MAC, and not ARP, NDP or VRRP (IPVS: not PACKET_HOST)
	ReasonVLAN                 // 802.1Q tag of a VLAN the config does not name, or stacked / 802.1ad tags
	ReasonSourceRoute          // IPv4 with an LSRR or SSRR option (accept_source_route is off)
	ReasonSourceLimit          // a new connection over its client /24 or /64's rate (source_conn_rate)
	NumReasons
)

var reasonNames = [NumReasons]string{
	ReasonMalformed:     "malformed",
	ReasonNotIP:         "not_ip",
	ReasonNotOurs:       "not_ours",
	ReasonFragment:      "fragment",
	ReasonProtocol:      "protocol",
	ReasonNoService:     "no_service",
	ReasonNotSYN:        "not_syn",
	ReasonNoDest:        "no_dest",
	ReasonPortZero:      "port_zero",
	ReasonTableFull:     "table_full",
	ReasonDestDeleted:   "dest_deleted",
	ReasonTTLExceeded:   "ttl_exceeded",
	ReasonTooBig:        "too_big",
	ReasonTooBigNoDF:    "too_big_no_df",
	ReasonNoMAC:         "no_mac",
	ReasonNoGateway:     "no_gateway",
	ReasonICMPUnrelated: "icmp_unrelated",
	ReasonReplyNoConn:   "reply_no_conn",
	ReasonFTPData:       "ftp_data",
	ReasonNeighbor:      "neighbor_answered",
	ReasonNotOwned:      "not_owned",
	ReasonOtherHost:     "other_host",
	ReasonGroupMAC:      "group_mac",
	ReasonVLAN:          "vlan",
	ReasonSourceRoute:   "source_route",
	ReasonSourceLimit:   "source_limit",
}

func (r Reason) String() string {
	if r > 0 && r < NumReasons {
		return reasonNames[r]
	}
	return "invalid"
}
