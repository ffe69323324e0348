#!/usr/bin/env bash
# The replay demo: synthesise ten HTTP-like connections from one client, replay them
# through the Director with the seed-000 config (DR, rr, rs1 and rs2), show the
# per-real-server split and the MAC rewrite, before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
gvs=./bin/gvs
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== gvs bench synth: 10 connections from client 198.19.0.1 to VIP 198.18.0.100:80"
$gvs bench synth --out "$out/in.pcap" --flows 10 --clients 1 --packets-per-flow 5 --concurrent 1
echo
echo "== gvs bench replay -c testdata/demo.toml (rr over rs1, rs2; DR)"
$gvs bench replay -c testdata/demo.toml --in "$out/in.pcap" --out "$out/out.pcap"
echo
echo "== which real server got each connection (the SYNs leaving the director):"
$gvs bench dump --in "$out/out.pcap" --syn-only --by-mac 02:00:00:00:00:05=rs1,02:00:00:00:00:06=rs2
echo
echo "== the DR rewrite of the first SYN: only the MACs change (and TTL 64 -> 63)"
if command -v tcpdump >/dev/null 2>&1; then
	echo "-- arriving at the director (client 02:00:00:00:00:02 > director 02:00:00:00:00:03):"
	tcpdump -e -n -v -c 1 -r "$out/in.pcap" 2>/dev/null
	echo "-- leaving the director (director 02:00:00:00:00:03 > real server):"
	tcpdump -e -n -v -c 1 -r "$out/out.pcap" 2>/dev/null
else
	echo "-- arriving at the director:"
	$gvs bench dump --in "$out/in.pcap" --count 1
	echo "-- leaving the director:"
	$gvs bench dump --in "$out/out.pcap" --count 1
fi
