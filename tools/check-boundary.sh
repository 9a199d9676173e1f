#!/usr/bin/env bash
# tools/check-boundary.sh - the heap's boundary, proved from a copy of
# exactly what `make export-mm` exports and the minimal example platform
# (examples/minimal/), nothing else of the project:
#
#   1. export-mm copies every .c and .h of mm/ and nothing more;
#   2-3. the exported heap compiled alone for a kernel (-ffreestanding
#      -nostdlib -nostdinc -mno-red-zone -mcmodel=kernel, no SSE) and
#      linked into one relocatable object needs exactly the symbols listed
#      in docs/INTEGRATING.md ("The symbols the heap needs"), with
#      DEBUG_HEAP=0 and =1 (nm -u);
#   4. with the minimal platform linked in, only the documented libgcc ones
#      are left (none since mm/bitops.h: the list is empty);
#   5. the heap's code uses no SSE register;
#   6. the comparison reports a symbol the list does not have (a checker
#      that cannot fail is no check);
#   7. the same sources and platform built for user space: the self-test
#      examples/minimal/selftest.c (every size, contents, mheap_verify,
#      every arena byte back) passes.
#
#   tools/check-boundary.sh [--build DIR]     (work files in DIR/boundary/)
#
# Prints KTAP and "N passed, N failed".
set -u
cd "$(dirname "$0")/.."

build=build
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	*) echo "usage: $0 [--build DIR]" >&2; exit 2 ;;
	esac
done
CC=${CC:-gcc}
[ "$CC" = cc ] && CC=gcc
work=$build/boundary
rm -rf "$work" && mkdir -p "$work"

FREE_CFLAGS=(-std=gnu11 -O2 -Wall -Wextra -Werror -ffreestanding -nostdlib
	-nostdinc -isystem "$($CC -print-file-name=include)" -fno-builtin
	-fno-pic -fno-pie -fno-stack-protector -fcf-protection=none
	-mno-red-zone -mgeneral-regs-only -mno-sse -mno-mmx -mcmodel=kernel
	-I"$work/src" -Iexamples/minimal)

npass=0 nfail=0 n=0
result() {   # result OK|FAIL description [details...]
	local ok=$1 what=$2; shift 2
	n=$((n + 1))
	if [ "$ok" = OK ]; then
		echo "ok $n - $what"; npass=$((npass + 1))
	else
		echo "not ok $n - $what"; nfail=$((nfail + 1))
		local arg line
		for arg in "$@"; do
			while IFS= read -r line; do echo "    # $line"; done <<<"$arg"
		done
	fi
}

# The documented list: "U name" / "w name" lines between the markers.
documented() {   # documented all|strong|libgcc
	sed -n '/<!-- boundary-undefined-begin -->/,/<!-- boundary-undefined-end -->/p' \
		docs/INTEGRATING.md | awk -v which="$1" '
		$1 != "U" && $1 != "w" { next }
		which == "strong" && $1 != "U" { next }
		which == "libgcc" && $0 !~ /libgcc/ { next }
		{ print $1, $2 }' | sort
}
undefined() { nm -u "$1" | awk '{ print $1, $2 }' | sort; }
# compare EXPECTED SEEN: nothing when equal, else the differences.
compare() { diff <(echo "$1") <(echo "$2") | sed -n 's/^< /missing: /p; s/^> /unexpected: /p'; }

echo "KTAP version 1"
echo "1..7"

# 1. The export.
make -s --no-print-directory export-mm DEST="$work/src" >"$work/export.log" 2>&1
want=$(cd mm && ls *.c *.h | sort)
got=$(cd "$work/src/mm" 2>/dev/null && ls | sort)
d=$(compare "$want" "$got")
[ -z "$d" ] && result OK "make export-mm copies exactly mm/*.c and mm/*.h" ||
	result FAIL "make export-mm copies exactly mm/*.c and mm/*.h" "$(cat "$work/export.log")" "$d"

# heap_object DEBUG_HEAP OUT: the exported heap, freestanding, one object.
heap_object() {
	local dh=$1 out=$2 f objs=()
	mkdir -p "$work/obj$dh"
	for f in "$work"/src/mm/*.c; do
		local o="$work/obj$dh/$(basename "$f" .c).o"
		$CC "${FREE_CFLAGS[@]}" -DDEBUG_HEAP="$dh" -c "$f" -o "$o" 2>>"$work/build$dh.log" || return 1
		objs+=("$o")
	done
	ld -r -o "$out" "${objs[@]}"
}

# 2-3. The heap alone needs exactly the documented symbols.
for dh in 0 1; do
	what="the exported heap alone (freestanding, DEBUG_HEAP=$dh) needs exactly the documented symbols"
	if ! heap_object $dh "$work/heap$dh.o"; then
		result FAIL "$what" "build failed:" "$(head -20 "$work/build$dh.log")"
		continue
	fi
	[ $dh = 0 ] && want=$(documented strong) || want=$(documented all)
	d=$(compare "$want" "$(undefined "$work/heap$dh.o")")
	[ -z "$d" ] && result OK "$what" || result FAIL "$what" "nm -u against docs/INTEGRATING.md:" "$d"
done

# 4. With the minimal platform, only libgcc's are left (none documented).
what="heap + examples/minimal/platform.c leave only the documented libgcc symbols (none) undefined"
if $CC "${FREE_CFLAGS[@]}" -c examples/minimal/platform.c -o "$work/platform.o" 2>"$work/platform.log" &&
	ld -r -o "$work/heap+platform.o" "$work/heap0.o" "$work/platform.o"; then
	d=$(compare "$(documented libgcc)" "$(undefined "$work/heap+platform.o")")
	[ -z "$d" ] && result OK "$what" || result FAIL "$what" "$d"
else
	result FAIL "$what" "build failed:" "$(cat "$work/platform.log")"
fi

# 5. No SSE register in the heap's code.
hits=$(objdump -d "$work/heap0.o" 2>/dev/null | grep -cE '%[xyz]mm')
[ "$hits" = 0 ] && [ -f "$work/heap0.o" ] && result OK "no SSE register in the freestanding heap's code" ||
	result FAIL "no SSE register in the freestanding heap's code" "expected 0 instructions using %xmm/%ymm/%zmm, saw ${hits:-no object}"

# 6. The comparison catches an extra need (a made-up call to puts).
echo 'int puts(const char *); void boundary_probe(void) { puts("x"); }' > "$work/probe.c"
$CC "${FREE_CFLAGS[@]}" -c "$work/probe.c" -o "$work/probe.o" &&
	ld -r -o "$work/heap+probe.o" "$work/heap0.o" "$work/probe.o"
d=$(compare "$(documented strong)" "$(undefined "$work/heap+probe.o")")
[ "$d" = "unexpected: U puts" ] && result OK "the check reports an undocumented need (a made-up call to puts)" ||
	result FAIL "the check reports an undocumented need (a made-up call to puts)" \
		"expected: unexpected: U puts" "saw: ${d:-nothing}"

# 7. The same sources and platform in user space, run.
what="user space: examples/minimal/selftest.c on the exported heap and the minimal platform"
if $CC -std=gnu11 -O2 -g -Wall -Wextra -Werror -I"$work/src" -Iexamples/minimal \
	-DMINIMAL_ARENA_BYTES='(64UL << 20)' -o "$work/selftest" \
	"$work"/src/mm/*.c examples/minimal/platform.c examples/minimal/selftest.c 2>"$work/selftest-build.log"; then
	"$work/selftest" >"$work/selftest.out" 2>&1
	rc=$?
	sed 's/^/    /' "$work/selftest.out"
	last=$(tail -n 1 "$work/selftest.out")
	if [ $rc = 0 ] && echo "$last" | grep -qE '^[1-9][0-9]* passed, 0 failed$'; then
		result OK "$what"
	else
		result FAIL "$what" "expected exit 0 and 'N passed, 0 failed', saw exit $rc and '$last'"
	fi
else
	result FAIL "$what" "build failed:" "$(head -20 "$work/selftest-build.log")"
fi

echo "$npass passed, $nfail failed"
[ "$nfail" = 0 ]
