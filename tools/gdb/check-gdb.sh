#!/usr/bin/env bash
# tools/gdb/check-gdb.sh - the gdb helpers (tools/gdb/spanheap.py) against
# a real kernel: a scripted batch-mode gdb session checked against the
# kernel's own report.
#
#   tools/gdb/check-gdb.sh [--build build] [--keep]
#
# Boots build/spanheap.iso in QEMU (one CPU, TCG) with a gdb stub on a free
# port and the kernel arguments "ktest=heap,heap_stats gdbstop": the kernel
# runs those self-tests, leaves some objects live, prints kmem_dump(), the
# per-CPU counters and kmem_heap_map() to the serial log, and halts in
# kmain_gdb_stop(). Then gdb -batch attaches, sources the script and runs
# every spanheap command; the checks compare its output with the log:
# - `spanheap classes`: the same rows as kmem_dump's table (every counter);
# - `spanheap spans`: per class, as many spans as kmem_dump's num_spans and
#   (but for the tiny class, whose bits are blocks) the live objects found
#   in the spans' bitmaps sum to kmem_dump's active objects;
# - `spanheap span ADDR`: a span's first object is object 0 of its class,
#   an address inside it an interior pointer; an address between the ends
#   of a free run (unmapped in the page map) is found in that run;
# - `spanheap mcache 0`: CPU 0's mallocs, tiny allocations and frees, large
#   allocations and frees as the kernel's "mcache per CPU" line;
# - `spanheap heapmap`: the very text kmem_heap_map() printed.
# Prints KTAP and ends with "N passed, N failed"; QEMU is killed at the end
# and everything runs under timeout. The gdb transcript stays in
# BUILD/logs/gdb-check.gdb.log.
set -u

build=build keep=0
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift ;;
	--keep) keep=1 ;;
	*) echo "check-gdb: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
here=$(cd "$(dirname "$0")" && pwd)
iso=$build/spanheap.iso elf=$build/spanheap.elf
logs=$build/logs
mkdir -p "$logs"
serial=$logs/gdb-check.log gdblog=$logs/gdb-check.gdb.log
passed=0 failed=0 n=0

ok() { n=$((n + 1)); passed=$((passed + 1)); echo "ok $n $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n $1"; shift; for l in "$@"; do echo "    # $l"; done; }
finish() { echo "1..$n"; echo "$passed passed, $failed failed"; exit $((failed > 0)); }

echo "KTAP version 1"
for f in "$iso" "$elf"; do
	[ -e "$f" ] || { not_ok "build present" "missing $f (make BUILD=$build all)"; finish; }
done
command -v gdb >/dev/null || { not_ok "gdb present" "gdb not installed"; finish; }

port=$((20000 + $$ % 20000))
rm -f "$serial" "$gdblog"
timeout 120 qemu-system-x86_64 -machine q35 -m 256M -smp 1 -no-reboot -display none \
	-accel tcg -cpu max -cdrom "$iso" -boot d \
	-fw_cfg "name=opt/spanheap/args,string=ktest=heap,,heap_stats gdbstop" \
	-serial "file:$serial" -gdb "tcp:127.0.0.1:$port" >"$serial.qemu" 2>&1 &
qemu=$!
trap 'kill $qemu 2>/dev/null; wait $qemu 2>/dev/null' EXIT

# Wait (bounded) for the kernel to reach its stop.
for _ in $(seq 1 600); do
	grep -q "stopped for gdb in kmain_gdb_stop" "$serial" 2>/dev/null && break
	kill -0 $qemu 2>/dev/null || break
	sleep 0.1
done
if ! grep -q "stopped for gdb in kmain_gdb_stop" "$serial" 2>/dev/null; then
	not_ok "kernel stops for gdb" "no 'stopped for gdb' in $serial (tail follows)" \
		"$(tail -5 "$serial" 2>/dev/null)"
	finish
fi
ok "kernel stops for gdb after the self-tests"

# The first free run of 3+ pages: the span found for its second page.
interior_py='
runs = [gv("mheap")["free"][i] for i in range(128)]
s = next((r for r in runs if int(r) and int(r["npages"]) >= 3), None)
if s is None:
    print("no free run of 3 pages or more")
else:
    got = span_containing(int(s["startaddr"]) + (1 << PAGE_SHIFT))
    print("run 0x%x found 0x%x" % (int(s), int(got) if got is not None else 0))
'
timeout 60 gdb -nx -batch -q "$elf" \
	-ex "target remote 127.0.0.1:$port" \
	-ex "source $here/spanheap.py" \
	-ex 'echo @@ where\n' -ex 'info symbol $pc' \
	-ex 'echo @@ classes\n' -ex 'spanheap classes' \
	-ex 'echo @@ spans\n' -ex 'spanheap spans' \
	-ex 'echo @@ mcache\n' -ex 'spanheap mcache 0' \
	-ex 'echo @@ heapmap\n' -ex 'spanheap heapmap' \
	-ex 'echo @@ interior\n' -ex "python $interior_py" \
	-ex 'echo @@ end\n' >"$gdblog" 2>&1
section() { awk -v s="@@ $1" '$0 == s {on = 1; next} /^@@ / {on = 0} on' "$gdblog"; }

if section where | grep -q kmain_gdb_stop; then
	ok "gdb attaches in kmain_gdb_stop"
else
	not_ok "gdb attaches in kmain_gdb_stop" "expected kmain_gdb_stop, saw: $(section where | head -3)"
fi

# kmem_dump's table rows (kmalloc-*/tiny-*) and gdb's, as fields.
# (kmem_dump pads the name, then prints the noscan 'n' apart: joined here.)
dump_rows() { grep -E '^(kmalloc|tiny)-[0-9]+' "$serial" | tr -d '\r' |
	sed 's/^\([a-z]*-[0-9]*\) *n /\1n /; s/ : slack *[0-9]* *[0-9]* / /; s/ : / /g; s/spandata //; s/lock //' |
	tr -s ' '; }
gdb_rows() { section classes | grep -E '^(kmalloc|tiny)-[0-9]+' | sed 's/ : / /g; s/spandata //; s/lock //' | tr -s ' '; }
if [ -n "$(dump_rows)" ] && diff <(dump_rows) <(gdb_rows) >/dev/null; then
	ok "spanheap classes matches kmem_dump ($(dump_rows | wc -l) classes)"
else
	not_ok "spanheap classes matches kmem_dump" "diff (< kmem_dump, > gdb):" \
		"$(diff <(dump_rows) <(gdb_rows) | head -8)"
fi

# Per class: spans and live objects found by walking the heap.
want=$(dump_rows | awk '{print $1, $7, $2}' | sort)
seen=$(section spans | awk '/^0x/ {split($4, lo, "/"); spans[$3]++; live[$3] += lo[1]}
	END {for (c in spans) print c, spans[c], live[c]}' | sort)
# Classes with no span in the dump are not listed by the walk.
want_nonzero=$(echo "$want" | awk '$2 > 0')
check=$(join -a1 -e0 -o 1.1,1.2,1.3,2.2,2.3 <(echo "$want_nonzero") <(echo "$seen") |
	awk '$2 != $4 || ($1 !~ /^tiny/ && $3 != $5)')
if [ -n "$want_nonzero" ] && [ -z "$check" ]; then
	ok "spanheap spans: spans and live objects per class as kmem_dump"
else
	not_ok "spanheap spans: spans and live objects per class as kmem_dump" \
		"class dump-spans dump-active gdb-spans gdb-live:" "$check"
fi

# spanheap span on the first listed span: its start, then 8 bytes in.
first=$(section spans | awk '/^0x/ && $3 !~ /^tiny/ {print $1, $3; exit}')
set -- $first
if [ $# = 2 ]; then
	addr=$1 cls=$2
	out=$(timeout 30 gdb -nx -batch -q "$elf" -ex "target remote 127.0.0.1:$port" \
		-ex "source $here/spanheap.py" -ex "spanheap span $addr" \
		-ex "spanheap span $addr+8" 2>&1 | tee -a "$gdblog")
	if echo "$out" | grep -q "class $cls .*: object 0 at $(printf '0x%x' "$addr")," &&
	   echo "$out" | grep -q "object 0 at .*(interior pointer)"; then
		ok "spanheap span: object 0 of $cls, interior pointer 8 bytes in"
	else
		not_ok "spanheap span ADDR" "expected object 0 of class $cls at $addr and an interior pointer; saw:" "$out"
	fi
else
	not_ok "spanheap span ADDR" "no small span listed by spanheap spans"
fi

run=$(section interior)
if echo "$run" | awk '$1 == "run" && $2 == $4 {found = 1} END {exit !found}'; then
	ok "spanheap span: a free run's inner page is found in that run ($run)"
else
	not_ok "spanheap span: a free run's inner page is found in that run" "saw: $run"
fi

cpu_line=$(tr -d '\r' <"$serial" | grep -E '^  cpu 0 ' | head -1 | awk '{print $3, $4, $5, $6, $7}')
gdb_cpu=$(section mcache | awk '/mallocs/ {print $2, $4, $6, $8, $10}')
if [ -n "$cpu_line" ] && [ "$cpu_line" = "$gdb_cpu" ]; then
	ok "spanheap mcache 0: mallocs, tiny and large allocations and frees as the kernel's ($cpu_line)"
else
	not_ok "spanheap mcache 0" "kernel: '$cpu_line', gdb: '$gdb_cpu'"
fi

kmap=$(tr -d '\r' <"$serial" | sed -n '/^heap map: /,/^spanheap: stopped/p' | grep -v '^spanheap: stopped')
gmap=$(section heapmap)
if [ -n "$kmap" ] && [ "$kmap" = "$gmap" ]; then
	ok "spanheap heapmap is kmem_heap_map's text ($(echo "$kmap" | wc -l) lines)"
else
	not_ok "spanheap heapmap is kmem_heap_map's text" "diff (< kernel, > gdb):" \
		"$(diff <(echo "$kmap") <(echo "$gmap") | head -8)"
fi

[ $keep = 1 ] && echo "# QEMU left running (pid $qemu, gdb port $port)" && trap - EXIT
finish
