#!/usr/bin/env bash
# tools/check-layers.sh - check that mm/ is a portable heap whose calls
# only go down (docs/ARCHITECTURE.md, Layers).
#
#   tools/check-layers.sh [--build DIR]
#
# From the sources: no file of mm/ includes a header of kernel/, tests/ or
# lib/ (only <system> headers, mm/ headers and, in mm/platform.h, the
# platform's mm_platform.h); no inline assembly and no SPANHEAP_HOSTED
# under mm/. From the objects (nm on the hosted build's per-file objects,
# DIR/host/opt/mm/*.o and, when built, DIR/host-debug/opt/mm/*.o; DIR is
# build/ unless --build says otherwise): no object of a lower layer needs a
# symbol that an object of a higher layer defines. The layers, top down:
#
#   api       malloc mdebug mstats mheapmap mverify
#   tiny      tiny
#   mcache    mcache
#   mcentral  mcentral
#   heap      mheap mscavenge mpagecache mspan pagemap fixalloc sizeclasses
#             badptr
#   (below: the platform, whatever no object of mm/ defines)
#
# Every file of mm/ must have a place in that table. A last check feeds the
# checker a made-up upward call, which it must report (a checker that
# cannot fail is no check). Prints KTAP and "N passed, N failed".
set -u
cd "$(dirname "$0")/.."

build=build
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	*) echo "usage: $0 [--build DIR]" >&2; exit 2 ;;
	esac
done

# File (without .c/.h) -> layer number; higher calls lower.
declare -A layer=(
	[malloc]=4 [mdebug]=4 [mstats]=4 [mheapmap]=4 [mverify]=4 [malloc_internal]=4 [kmalloc]=4
	[tiny]=3
	[mcache]=2
	[mcentral]=1
	[mheap]=0 [mscavenge]=0 [mheap_internal]=0 [mpagecache]=0 [mspan]=0 [pagemap]=0 [fixalloc]=0 [sizeclasses]=0 [badptr]=0
	[platform]=0 [mlock]=0 [mbug]=0 [bitops]=0
)
layer_names=(heap mcentral mcache tiny api)

npass=0 nfail=0 n=0
result() {   # result OK|FAIL description [details...]
	local ok=$1 what=$2; shift 2
	n=$((n + 1))
	if [ "$ok" = OK ]; then
		echo "ok $n - $what"; npass=$((npass + 1))
	else
		echo "not ok $n - $what"; nfail=$((nfail + 1))
		local line
		for line in "$@"; do echo "    # $line"; done
	fi
}

objdirs=("$build/host/opt/mm")
[ -d "$build/host-debug/opt/mm" ] && objdirs+=("$build/host-debug/opt/mm")

echo "KTAP version 1"
echo "1..$((5 + ${#objdirs[@]}))"

# 1. Every file of mm/ has a layer.
bad=()
for f in mm/*.c mm/*.h; do
	b=$(basename "$f"); b=${b%.*}
	[ -n "${layer[$b]+x}" ] || bad+=("$f is in no layer of tools/check-layers.sh")
done
[ ${#bad[@]} = 0 ] && result OK "every file of mm/ has a layer" ||
	result FAIL "every file of mm/ has a layer" "${bad[@]}"

# 2. Includes: <system>, "mm/...", and "mm_platform.h" in mm/platform.h.
bad=()
while IFS= read -r hit; do
	file=${hit%%:*}; rest=${hit#*:}; line=${rest%%:*}; text=${rest#*:}
	hdr=$(echo "$text" | sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]*)".*/\1/p')
	[ -z "$hdr" ] && continue
	case $hdr in
	mm/*) ;;
	mm_platform.h) [ "$file" = mm/platform.h ] || bad+=("$file:$line includes $hdr (only mm/platform.h may)") ;;
	*) bad+=("$file:$line includes \"$hdr\"") ;;
	esac
done < <(grep -nE '^[[:space:]]*#[[:space:]]*include' mm/*.c mm/*.h)
[ ${#bad[@]} = 0 ] && result OK "no file of mm/ includes a header of kernel/, tests/ or lib/" ||
	result FAIL "no file of mm/ includes a header of kernel/, tests/ or lib/" "${bad[@]}"

# 3. No inline assembly.
hits=$(grep -nE '(^|[^A-Za-z0-9_])(__asm__|__asm|asm)([[:space:]]+(volatile|__volatile__|goto))?[[:space:]]*\(' mm/*.c mm/*.h)
[ -z "$hits" ] && result OK "no inline assembly under mm/" ||
	result FAIL "no inline assembly under mm/" "expected none, found:" "$hits"

# 4. No build switch for the hosted platform.
hits=$(grep -n 'SPANHEAP_HOSTED' mm/*.c mm/*.h)
[ -z "$hits" ] && result OK "no SPANHEAP_HOSTED under mm/" ||
	result FAIL "no SPANHEAP_HOSTED under mm/" "expected none, found:" "$hits"

# Symbol table of a directory of objects (those whose source is in mm/):
# "file D sym" for each global symbol a file defines, "file U sym" for
# each it needs.
symbols() {
	local o
	for o in "$1"/*.o; do
		[ -f "mm/$(basename "$o" .o).c" ] || continue   # stale: source gone
		nm -P "$o" | awk -v f="$(basename "$o" .o)" '
			$2 == "U" { print f, "U", $1; next }
			$2 ~ /^[TDBRCVW]$/ { print f, "D", $1 }'
	done
}

# Upward references in a symbol table (stdin): "user (layer) needs sym
# of definer (layer)", one per line.
upward() {
	local spec="" k
	for k in "${!layer[@]}"; do spec+="$k=${layer[$k]} "; done
	awk -v spec="$spec" -v names="${layer_names[*]}" '
		BEGIN { n = split(spec, kv, " "); for (i = 1; i <= n; i++) { split(kv[i], p, "="); L[p[1]] = p[2] }
			split(names, N, " ") }
		$2 == "D" { def[$3] = $1; next }
		$2 == "U" { use[++nu] = $1 " " $3 }
		END {
			for (i = 1; i <= nu; i++) {
				split(use[i], u, " "); d = def[u[2]]
				if (d == "" || d == u[1]) continue
				if (!(u[1] in L) || !(d in L)) { print u[1] " or " d ": no layer"; continue }
				if (L[d] > L[u[1]])
					print u[1] " (" N[L[u[1]] + 1] ") calls up: " u[2] " of " d " (" N[L[d] + 1] ")"
			}
		}'
}

# 5... For each object directory: nothing goes up.
for dir in "${objdirs[@]}"; do
	what="no lower layer of mm/ calls a higher one ($dir/*.o)"
	if ! ls "$dir"/*.o >/dev/null 2>&1; then
		result FAIL "$what" "no objects in $dir: build them first (make BUILD=$build host)"
		continue
	fi
	missing=()
	for f in mm/*.c; do
		[ -f "$dir/$(basename "$f" .c).o" ] || missing+=("$f has no object in $dir (stale build?)")
	done
	ups=$(symbols "$dir" | upward)
	if [ -z "$ups" ] && [ ${#missing[@]} = 0 ]; then
		result OK "$what"
	else
		mapfile -t lines <<<"$ups"
		[ -z "$ups" ] && lines=()
		result FAIL "$what" "${missing[@]}" "${lines[@]}"
	fi
done

# Last: the checker itself catches an upward call (made up: mspan needing
# kmalloc_init, which malloc defines).
ups=$( { symbols "${objdirs[0]}" 2>/dev/null; echo "mspan U kmalloc_init"; echo "malloc D kmalloc_init"; } | upward)
if echo "$ups" | grep -q '^mspan (heap) calls up: kmalloc_init of malloc (api)$'; then
	result OK "the checker reports a made-up upward call (mspan -> kmalloc_init)"
else
	result FAIL "the checker reports a made-up upward call (mspan -> kmalloc_init)" \
		"expected: mspan (heap) calls up: kmalloc_init of malloc (api)" "saw: ${ups:-nothing}"
fi

echo "$npass passed, $nfail failed"
[ "$nfail" = 0 ]
