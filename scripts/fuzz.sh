#!/usr/bin/env bash
# Runs every fuzz target in the module, one after another, each for a fixed number of
# executions (`-fuzztime Nx`), sized so that each takes a few seconds on a 2-core machine.
#
# Why counts and not a duration: with a duration, Go 1.26's fuzz coordinator can report
# "context deadline exceeded" as a failure of the target when the deadline fires while a
# worker is mid-call (golang/go#75804, fixed in Go 1.27). A count has no deadline to race.
#
# FUZZTIME, when set, overrides every budget (e.g. FUZZTIME=2000000x, or FUZZTIME=10m for a
# long local run, accepting the race above).
set -euo pipefail
cd "$(dirname "$0")/.."
GO="${GO:-go}"

# budget PKG TARGET prints the execution count for one target: the default, or less for
# the targets that do a lot per input (rates measured on a 2-core VM).
budget() {
	case "$1/$2" in
	conntrack/FuzzTable) echo 30000x ;;            # ~6k/s: a differential run against the reference table
	conntrack/FuzzUpsert) echo 20000x ;;           # ~2k/s: up to 400 steps, each checked by two walks of the table
	dataplane/FuzzProcess) echo 60000x ;;          # ~15k/s: a Director, a worker and a packet sequence
	internal/importer/keepalived/FuzzKeepalived) echo 25000x ;; # ~4k/s: import, then the full TOML check and round trip
	internal/importer/ipvsadm/FuzzIpvsadm) echo 60000x ;;        # ~8k/s once the corpus grows
	internal/config/FuzzLineIndex) echo 60000x ;;  # ~5k/s once the inputs grow
	internal/config/FuzzLimits) echo 60000x ;;     # ~15k/s: the limit scan, then the TOML decoder as its oracle
	*) echo "${FUZZEXECS:-150000}x" ;;             # 17k–75k/s for the rest
	esac
}

mod=$($GO list -m)
failed=0
for pkg in $($GO list ./...); do
	dir=$($GO list -f '{{.Dir}}' "$pkg")
	rel=${pkg#"$mod"/}
	for t in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
		n=${FUZZTIME:-$(budget "$rel" "$t")}
		echo "fuzz $rel $t for $n"
		if ! (cd "$dir" && $GO test -run '^$' -fuzz "^$t\$" -fuzztime "$n" .); then
			echo "FAIL fuzz $rel $t (a failing input, if one was found, is in $dir/testdata/fuzz/$t)"
			failed=1
		fi
	done
done
exit $failed
