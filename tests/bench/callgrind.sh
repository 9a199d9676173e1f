#!/bin/sh
# tests/bench/callgrind.sh - instructions per kmalloc+kfree pair, counted by
# valgrind's callgrind. Each figure is (Ir(2N) - Ir(N)) / N: the program's
# start-up, the heap's initialization and its first spans cancel out.
# Usage: callgrind.sh path/to/bench-callgrind [N]
set -eu
bin=$1
n=${2:-20000}
command -v valgrind >/dev/null 2>&1 || {
	echo "valgrind not found: apt-get install -y valgrind" >&2; exit 1; }

# Total instructions (Ir) of one run.
ir() {
	valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 |
		sed -n 's/.*Collected : *\([0-9][0-9]*\).*/\1/p'
}

# Instructions per iteration, one decimal.
per_iter() {
	a=$(ir "$bin" "$1" "$2" "$n" ${3:-})
	b=$(ir "$bin" "$1" "$2" $((2 * n)) ${3:-})
	[ -n "$a" ] && [ -n "$b" ] || { echo "?"; return; }
	echo "$a $b $n" | awk '{ printf "%.1f", ($2 - $1) / $3 }'
}

echo "instructions per operation (callgrind, (Ir(2N)-Ir(N))/N, N=$n)"
printf '%-34s %10s %10s\n' operation spanheap glibc
for size in 16 32 64 128 256 65536; do
	printf '%-34s %10s %10s\n' "malloc+free $size B" \
		"$(per_iter spanheap "$size")" "$(per_iter libc "$size")"
done
printf '%-34s %10s %10s\n' "2x tiny 8 B NOSCAN + 2 kfree" \
	"$(per_iter spanheap 8 tiny)" "-"
