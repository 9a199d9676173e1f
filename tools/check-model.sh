#!/bin/bash
# tools/check-model.sh - check the Promela models of the heap's cross-CPU
# protocols with spin, as make test does: mm/mcentral.pml (remote frees
# of small objects, hand-over of spans, sweeps, drain) and mm/tiny.pml
# (the tiny blocks' balance, freed mask, restart and retirement).
#
# For each configuration (model, CPUs, steps per CPU) it generates the
# verifier (spin -a), compiles it (safety properties: assertions and
# invalid end states), runs an exhaustive search and passes when the
# verifier reports "errors: 0" having searched the whole state space.
# Output: KTAP, then "N passed, N failed" (tools/run-tests.sh sums it).
#
#   tools/check-model.sh [--build DIR]     (work files under DIR/model)
set -u

BUILD=build
[ "${1:-}" = "--build" ] && BUILD=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$ROOT/$BUILD/model
CC=${HOSTCC:-gcc}

# model name NCPU STEPS
CONFIGS=(
	"mcentral two_cpus_5_steps 2 5"
	"mcentral three_cpus_3_steps 3 3"
	"tiny two_cpus_7_steps 2 7"
	"tiny three_cpus_3_steps 3 3"
)

if ! command -v spin >/dev/null; then
	echo "check-model: spin is not installed (Debian package spin; tools/need.sh test)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi
mkdir -p "$WORK"
echo "KTAP version 1"
echo "1..${#CONFIGS[@]}"
n=0 pass=0 fail=0
for c in "${CONFIGS[@]}"; do
	set -- $c
	model=$1 name=$2 ncpu=$3 steps=$4
	MODEL=$ROOT/mm/$model.pml
	n=$((n + 1))
	dir=$WORK/$model-$name
	rm -rf "$dir" && mkdir -p "$dir"
	log=$dir/pan.log
	if (cd "$dir" && spin -DNCPU=$ncpu -DSTEPS=$steps -a "$MODEL" >spin.log 2>&1 &&
	    $CC -O2 -w -DSAFETY -o pan pan.c >cc.log 2>&1 &&
	    ./pan -m100000 >"$log" 2>&1) &&
	   grep -q "errors: 0" "$log" && ! grep -q "max search depth too small" "$log"; then
		states=$(grep -o "[0-9]* states, stored" "$log")
		echo "ok $n ${model}_model.$name # $states"
		pass=$((pass + 1))
	else
		echo "not ok $n ${model}_model.$name"
		echo "    # expected spin to report errors: 0 for mm/$model.pml (NCPU=$ncpu STEPS=$steps); saw:"
		sed 's/^/    # /' "$dir"/spin.log "$dir"/cc.log "$log" 2>/dev/null | grep -v "^    # $" | head -20
		[ -f "$dir/$model.pml.trail" ] || [ -f "$dir/pan.trail" ] &&
			echo "    # trail in $dir (spin -t -p -DNCPU=$ncpu -DSTEPS=$steps $MODEL)"
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
