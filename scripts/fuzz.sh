#!/bin/sh
# Builds the libFuzzer targets of fuzz/ with clang (ASan + UBSan, -O2 with
# assertions on) and runs each for SECONDS (default 30), one after another,
# seeded from the zoo and tests/data.  Per target it prints the executions,
# the crashes and the slowest input of the corpus.  Exits 1 when a target
# crashed, leaked, ran over 2 s or 512 MB on one input; the input is then in
# build-fuzz/crashes/ (make it a file in tests/data/ and a regression test).
#   scripts/fuzz.sh [SECONDS] [TARGET...]   (targets: model cluster plan set expr manual)
# FUZZ_TIMEOUT=S changes the 2 s per input (libFuzzer measures wall time:
# on a loaded machine a longer one tells slow inputs from a busy CPU).
set -e
cd "$(dirname "$0")/.."
secs=${1:-30}
[ $# -gt 0 ] && shift
targets=${*:-"model cluster plan set expr manual"}
scripts/deps.sh fuzz
root=$(pwd)
b=$root/build-fuzz
CC=clang cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=Debug -DMESHPLAN_FUZZ=ON -DMESHPLAN_TESTS=OFF \
	>/dev/null
cmake --build "$b" -j"$(nproc)" >/dev/null
mkdir -p "$b/crashes"

# Seeds: every XML file of the zoo and tests/data; plans written by simulate.
seed() {
	d=$b/corpus/$1
	mkdir -p "$d"
	[ -n "$(ls -A "$d")" ] && return 0
	case $1 in
	model) cp models/*.xml tests/data/*.xml tests/data/bad/*.xml tests/data/hostile/*.xml "$d"/ ;;
	cluster) cp clusters/*.xml tests/data/tiny-cluster.xml tests/data/hostile/*.xml "$d"/ ;;
	plan)
		i=0
		for m in "dp=2,tp=2,pp=2,mbs=2" "dp=1,tp=4,pp=2,mbs=1" "dp=8,tp=1,pp=1,mbs=2" \
			"dp=2,tp=1,pp=4,mbs=1,v=2,zero=1"; do
			i=$((i + 1))
			"$b/meshplan" simulate tests/data/tiny.xml --cluster tests/data/tiny-cluster.xml \
				--batch 32 --manual "$m" -o "$d/plan$i.xml" >/dev/null 2>&1 || true
		done ;;
	set) printf 'layers=2' >"$d/a"; printf 'h=4*8,batch=2' >"$d/b"
		printf 'attention=fused,layers=(1+2)*3' >"$d/c" ;;
	expr) printf '4*hidden' >"$d/a"; printf 'hidden/heads' >"$d/b"
		printf '(batch+1)%%2-neg' >"$d/c"; printf 'big*big' >"$d/d" ;;
	manual) printf 'dp=2,tp=2,pp=2,mbs=2' >"$d/a"
		printf 'dp=1,tp=8,pp=4,mbs=1,v=2,schedule=interleaved,recompute=full,zero=1' >"$d/b"
		printf 'dp=4,tp=2,pp=1,mbs=4,method=zero3' >"$d/c" ;;
	esac
}

fail=0
for t in $targets; do
	seed "$t"
	dict=""
	case $t in model | cluster | plan) dict="-dict=$root/fuzz/xml.dict" ;; esac
	log=$b/fuzz_$t.log
	rc=0
	# -timeout: an input over 2 s is a failure; -rss_limit_mb likewise at 512 MB.
	"$b/fuzz_$t" "$b/corpus/$t" $dict -max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-2}" \
		-rss_limit_mb=512 \
		-max_len=65536 -print_final_stats=1 -artifact_prefix="$b/crashes/$t-" \
		>"$log" 2>&1 || rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	# the slowest input of the corpus, each run once
	slow=$("$b/fuzz_$t" $(find "$b/corpus/$t" -type f) 2>&1 |
		sed -n 's/^Executed .* in \([0-9]*\) ms$/\1/p' | sort -n | tail -1)
	crashes=$(ls "$b/crashes" | grep -c "^$t-" || true)
	echo "fuzz_$t: ${secs}s, ${runs:-0} executions, $crashes crash files, slowest corpus input ${slow:-?} ms, exit $rc"
	if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
		fail=1
		grep -E 'ERROR|SUMMARY|Slowest|timeout|out-of-memory' "$log" | head -5
	fi
done
exit $fail
