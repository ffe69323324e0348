-- Wireshark dissector for gvs's cluster control channel (UDP 8849): heartbeats,
-- bulk-sync requests and completions. The layout is in gvs's docs/cluster.md §5.
-- Port 8848 is the Linux IPVS sync protocol, which Wireshark decodes itself.
--
-- Use:  tshark -X lua_script:contrib/wireshark/gvs_cluster.lua -r capture.pcap
--   or  copy it to ~/.local/lib/wireshark/plugins/
-- Filter fields: gvsc.type, gvsc.node_id, gvsc.incarnation, gvsc.state, gvsc.digest,
-- gvsc.sent_messages, gvsc.sent_records, gvsc.request, gvsc.target, gvsc.count, …

local gvsc = Proto("gvsc", "gvs cluster control")

local types = { [1] = "heartbeat", [2] = "bulk-request", [3] = "bulk-done" }
local states = { [0] = "COLD", [1] = "SYNCING", [2] = "READY", [3] = "ANNOUNCED", [4] = "DRAINING" }

local f = {
	magic        = ProtoField.string("gvsc.magic", "Magic"),
	version      = ProtoField.uint8("gvsc.version", "Version"),
	type         = ProtoField.uint8("gvsc.type", "Type", base.DEC, types),
	node_id      = ProtoField.string("gvsc.node_id", "Node ID"),
	incarnation  = ProtoField.uint64("gvsc.incarnation", "Incarnation", base.HEX),
	state        = ProtoField.uint8("gvsc.state", "State", base.DEC, states),
	digest       = ProtoField.bytes("gvsc.digest", "Config digest"),
	sent_msgs    = ProtoField.uint64("gvsc.sent_messages", "Sync messages sent"),
	sent_records = ProtoField.uint64("gvsc.sent_records", "Sync records sent"),
	health       = ProtoField.uint64("gvsc.health", "Health digest", base.HEX),
	syncid       = ProtoField.uint8("gvsc.syncid", "Sync ID"),
	request      = ProtoField.uint32("gvsc.request", "Request ID"),
	target       = ProtoField.string("gvsc.target", "Target node"),
	count        = ProtoField.uint64("gvsc.count", "Records pushed"),
	push_target  = ProtoField.string("gvsc.push_target", "Bulk push in progress for"),
	push_request = ProtoField.uint32("gvsc.push_request", "Bulk push request ID"),
	seq          = ProtoField.uint64("gvsc.seq", "Datagram number in the incarnation"),
	push_port    = ProtoField.uint16("gvsc.push_port", "Bulk push's UDP source port"),
	hmac         = ProtoField.bytes("gvsc.hmac", "HMAC-SHA256"),
	unknown      = ProtoField.bytes("gvsc.unknown", "Unknown field"),
}
gvsc.fields = {
	f.magic, f.version, f.type, f.node_id, f.incarnation, f.state, f.digest, f.sent_msgs,
	f.sent_records, f.health, f.syncid, f.request, f.target, f.count, f.push_target,
	f.push_request, f.seq, f.push_port, f.hmac, f.unknown,
}

local malformed = ProtoExpert.new("gvsc.malformed", "Malformed gvs control datagram",
	expert.group.MALFORMED, expert.severity.ERROR)
gvsc.experts = { malformed }

-- TLV type → field, and the length it must have (nil: any).
local tlvs = {
	[1] = { f.node_id }, [2] = { f.incarnation, 8 }, [3] = { f.state, 1 }, [4] = { f.digest, 16 },
	[5] = { f.sent_msgs, 8 }, [6] = { f.sent_records, 8 }, [7] = { f.health, 8 }, [8] = { f.syncid, 1 },
	[9] = { f.request, 4 }, [10] = { f.target }, [11] = { f.count, 8 }, [12] = { f.push_target },
	[13] = { f.push_request, 4 }, [14] = { f.seq, 8 }, [15] = { f.push_port, 2 }, [255] = { f.hmac, 32 },
}

function gvsc.dissector(tvb, pinfo, tree)
	local len = tvb:len()
	if len < 6 or tvb(0, 4):string() ~= "GVSC" then
		return 0
	end
	pinfo.cols.protocol = "GVSC"
	local t = tree:add(gvsc, tvb())
	t:add(f.magic, tvb(0, 4))
	t:add(f.version, tvb(4, 1))
	t:add(f.type, tvb(5, 1))
	local info = types[tvb(5, 1):uint()] or "unknown type"
	local off = 6
	while off < len do
		if off + 3 > len then
			t:add_proto_expert_info(malformed, "truncated field header")
			break
		end
		local typ, n = tvb(off, 1):uint(), tvb(off + 1, 2):uint()
		if off + 3 + n > len then
			t:add_proto_expert_info(malformed, "field runs past the datagram")
			break
		end
		local def = tlvs[typ]
		if def == nil then
			if n > 0 then t:add(f.unknown, tvb(off + 3, n)) end
		elseif def[2] ~= nil and def[2] ~= n then
			t:add_proto_expert_info(malformed, "field " .. typ .. " has length " .. n)
		elseif n == 0 then
			t:add(def[1], tvb(off, 3), "") -- an empty string: the header stands for it
		else
			t:add(def[1], tvb(off + 3, n))
			if typ == 1 then info = info .. " from " .. tvb(off + 3, n):string() end
			if typ == 10 then info = info .. " for " .. tvb(off + 3, n):string() end
		end
		off = off + 3 + n
	end
	pinfo.cols.info = info
	return len
end

DissectorTable.get("udp.port"):add(8849, gvsc)
