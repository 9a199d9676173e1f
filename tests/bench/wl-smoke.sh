#!/usr/bin/env bash
# tests/bench/wl-smoke.sh PRELOAD PROGRAM... - run every workload program
# --smoke (under LD_PRELOAD=PRELOAD when not empty), show its KTAP lines,
# and end with the sum: "N passed, N failed". A program that dies without
# its own count line counts as one failure.
set -u
preload=$1; shift
[ -n "$preload" ] && [ -e "$preload" ] && preload=$(realpath "$preload")
passed=0 failed=0
echo "bench-smoke: allocator ${preload:-glibc malloc}"
for bin in "$@"; do
	name=$(basename "$bin")
	if [ -n "$preload" ]; then
		out=$(LD_PRELOAD=$preload timeout 120 "$bin" --smoke 2>&1)
	else
		out=$(timeout 120 "$bin" --smoke 2>&1)
	fi
	rc=$?
	echo "$out" | grep -E '^(not )?ok [0-9]+ |^#' | sed "s/^/[$name] /"
	line=$(echo "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
	if [ -z "$line" ]; then
		echo "[$name] died (status $rc) without a result line:"
		echo "$out" | tail -n 5 | sed "s/^/[$name]   | /"
		failed=$((failed + 1))
		continue
	fi
	p=${line%% passed*}
	f=${line#*passed, }; f=${f%% failed*}
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "[$name] exit status $rc with no failure counted"
		f=1
	fi
	passed=$((passed + p)) failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
