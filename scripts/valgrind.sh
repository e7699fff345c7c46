#!/bin/sh
# Runs one small job of every verb under valgrind (memcheck) on a build
# without sanitizers, and exits 1 when any of them has a memory error or a
# definite leak.  Complements the ASan/UBSan test suite (scripts/test.sh).
#   scripts/valgrind.sh [VERB...]
set -e
cd "$(dirname "$0")/.."
scripts/deps.sh valgrind
b=build-valgrind
cmake -S . -B $b -DCMAKE_BUILD_TYPE=Debug -DMESHPLAN_SANITIZE=OFF -DMESHPLAN_TESTS=OFF >/dev/null
cmake --build $b -j"$(nproc)" --target meshplan >/dev/null
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
T=tests/data/tiny.xml
C=tests/data/tiny-cluster.xml
M="$T --cluster $C --batch 16"
# the plan the plan-reading verbs take
$b/meshplan simulate $M --manual dp=2,tp=2,pp=2,mbs=2 -o "$t/plan.xml" >/dev/null
$b/meshplan compile $M --quiet -o "$t/compiled.xml" >/dev/null
printf 'a\t%s\t16\tdp=2,tp=2,pp=2,mbs=2\tstep_s\t0.01\nb\t%s\t16\tdp=4,tp=2,pp=1,mbs=2\tstep_s\t0.012\n' \
	$T $T >"$t/runs.tsv"
jobs="list:list
info:info $T --set layers=2
shard:shard $T --cluster $C --mesh 2x2 --batch 4
compile:compile $M -o $t/c.xml --trace $t/c.json
explain:explain $t/compiled.xml --json
simulate:simulate $t/plan.xml --trace $t/s.json --trace-detail gpu --svg-timeline $t/t.svg --svg-mesh $t/m.svg --svg-memory $t/mem.svg --json
report:report $t/plan.xml -o $t/r.html --tokens 1e9
export:export $t/plan.xml --to megatron -o $t/megatron.txt
import:import hf tests/data/hf/gpt2.json -o $t/gpt2.xml
compare:compare $M --cluster tests/data/tiny-cluster-fast.xml --nodes 1
estimate:estimate $t/plan.xml --tokens 1e9 --failures --runs 20
calibrate:calibrate $t/runs.tsv --cluster $C --fit gemm-scale
sweep:sweep tests/data/sweep-small.xml -o $t/sweep.jsonl
provision:provision $T --set h=512,layers=1 --tokens 1e9 --deadline-days 30 --cluster $C --nodes-max 2"
echo "$jobs" | while IFS=: read -r verb args; do
	[ $# -gt 0 ] && ! echo " $* " | grep -q " $verb " && continue
	start=$(date +%s)
	if valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
		--log-file="$t/$verb.vg" $b/meshplan $args >/dev/null 2>"$t/$verb.err"; then
		echo "valgrind $verb: clean ($(( $(date +%s) - start )) s)"
	else
		rc=$?
		echo "valgrind $verb: exit $rc"
		sed -n 1,40p "$t/$verb.vg" "$t/$verb.err"
		echo fail >>"$t/failed"
	fi
done
[ ! -e "$t/failed" ]
