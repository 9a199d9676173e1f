#!/usr/bin/env bash
# tests/host/realprogs.sh - real programs nobody here wrote, run on the heap:
# each runs twice, once on the C library's malloc and once with
# LD_PRELOAD of libspanheap.so, and the two runs must agree.
#
# For every program the same command runs in the same directory path
# (the first run's directory is moved aside before the second starts, so
# even paths written into object files agree), from the same inputs, each
# under `timeout`. The runs must agree on the exit status (which must be 0),
# on stdout, on stderr, and on the files left in the directory; under the
# library, stderr must carry no bad-free report (the heap's reports read
# "kfree(0x...): ...", its panics "spanheap panic: ..."). A program that
# fails its run without the library is a failure too: nothing was compared.
#
#   python-threads  tests/host/realprogs/threads.py with PYTHONMALLOC=malloc
#                   (every object from malloc): thread pool, short-lived
#                   threads, cross-thread producer/consumer, 80 threads
#                   alive at once, fork() while threads allocate; digests
#                   compared
#   sort            GNU sort --parallel=2 with a small -S (temporary files and
#                   merges) on 800 000 generated lines, three orders; output
#                   files compared byte for byte
#   gcc             gcc -O2 -g on a generated C file of about 2 300 lines,
#                   then the link and a run of the program; object file and
#                   executable compared byte for byte
#   git             a clone of this repository: log --stat/-p/-S, diff, blame,
#                   grep, archive, fast-export into fast-import, repack -adf,
#                   gc, fsck, a commit with fixed dates; outputs compared (the
#                   object databases through cat-file and rev-list, since
#                   pack files may differ)
#   make-build      the project's own `make -j2 all host` on a snapshot of the
#                   working tree, with make and everything it runs under the
#                   library; every file built compared byte for byte except
#                   the ISO, whose contents are compared file by file except
#                   efi.img (GRUB's FAT image and the ISO carry timestamps)
#
# Before them, "preload" checks that the library really serves malloc and
# free in a preloaded process (ld.so's LD_DEBUG=bindings).
#
# Usage: tests/host/realprogs.sh LIB   (LIB: path of libspanheap.so)
# Environment: REALPROGS_WORK (work directory, default build/realprogs),
# REALPROGS_ONLY="name ..." (run only these programs), REALPROGS_KEEP=1
# (keep the directories of passing programs too), REALPROGS_TIMEOUT
# (seconds for a run without the library, default 300; with it, 60 s +
# 10 times the time without). Prints KTAP and ends with "N passed, N failed".
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ $# -ne 1 ]; then
	echo "usage: $0 path/to/libspanheap.so" >&2
	exit 2
fi
LIB=$(realpath -- "$1" 2>/dev/null || echo "$1")
WORK=${REALPROGS_WORK:-$ROOT/build/realprogs}
mkdir -p "$WORK" && WORK=$(cd "$WORK" && pwd)
export INPUTS=$WORK/inputs
PROGRAMS="python-threads sort gcc git make-build"
PLAIN_TIMEOUT=${REALPROGS_TIMEOUT:-300}
# A line of the heap's own on stderr: a bad-free report or a panic.
HEAP_REPORT='spanheap|(^|[^[:alnum:]_])k?(free|realloc|free_sized|free_aligned_sized)\('

# The project's build below must not join an outer make's jobserver.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES
export LC_ALL=C TZ=UTC

passed=0 failed=0 number=0

# result NAME [PROBLEM...]: print the KTAP line; no problem means ok.
result() {
	local name=$1; shift
	number=$((number + 1))
	if [ $# -eq 0 ]; then
		echo "ok $number $name"
		passed=$((passed + 1))
	else
		local why=$1; shift
		local p
		for p in "$@"; do why+="; $p"; done
		echo "not ok $number $name # $why"
		failed=$((failed + 1))
	fi
}

# diag FILE: show the first lines of FILE as KTAP diagnostics.
diag() {
	head -n "${2:-8}" "$1" | sed 's/^/#   /'
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# describe_status N: "status N" or "killed by SIGxxx" or "timed out".
describe_status() {
	local st=$1 t=$2
	if [ "$st" = 124 ] || [ "$st" = 137 ]; then
		echo "timed out after ${t}s"
	elif [ "$st" -gt 128 ] && [ "$st" -lt 160 ]; then
		echo "killed by SIG$(kill -l $((st - 128)))"
	else
		echo "exit status $st"
	fi
}

# ======================================================== the programs ==
# For each program P: prepare_P (once, without the library: inputs shared by
# both runs, in $INPUTS), setup_P (in the empty run directory, before each
# run, without the library), CMD_P (the command, an array, run in the run
# directory), check_P PLAIN LIB (extra comparisons of the two finished run
# directories; prints one line per difference). Optional: SORT_STDOUT_P=1
# compares stdout as a sorted set of lines (make -j2 prints in any order),
# EXCLUDE_P (diff -x patterns of produced files not compared byte for byte).

# ------------------------------------------------------ python-threads --
prepare_python-threads() { :; }
setup_python-threads() { :; }
CMD_python_threads=(env PYTHONMALLOC=malloc /usr/bin/python3
	"$ROOT/tests/host/realprogs/threads.py" --scale 4)
check_python-threads() { :; }

# ---------------------------------------------------------------- sort --
# 800 000 lines of words, counters, signed numbers and hex: an LCG in awk
# (every intermediate below 2^53, so exact in awk's doubles).
prepare_sort() {
	awk 'BEGIN {
		x = 12345
		w = "alphabetagammadeltaepsilonzetaetathetaiotakappalambdamu"
		for (i = 0; i < 800000; i++) {
			x = (x * 69069 + 1) % 4294967296
			y = (x * 1664525 + 1013904223) % 4294967296
			printf "%s-%d\t%d\t%08x %s\n", substr(w, x % 40 + 1, x % 9 + 1),
				i % 977, x % 100000 - 50000, y, (i % 3 ? "red" : "green")
		}
	}' >"$INPUTS/sort.in"
}
setup_sort() { mkdir tmp; }
sort_steps() {
	set -e
	local s="sort --parallel=2 -S 8M -T tmp"
	$s -t $'\t' -k3,3n -k1,1 -o by-number.txt "$INPUTS/sort.in"
	$s -u -k1,1 -o unique-word.txt "$INPUTS/sort.in"
	$s -r -V -s -k1,1 -o by-version.txt "$INPUTS/sort.in"
	$s -c -t $'\t' -k3,3n -k1,1 by-number.txt && echo "by-number.txt is sorted"
	wc -l by-number.txt unique-word.txt by-version.txt
}
CMD_sort=(bash -c "$(declare -f sort_steps); sort_steps")
check_sort() { :; }

# ----------------------------------------------------------------- gcc --
# A generated C program: per function a table, a loop over a list, an
# 8-way switch, snprintf and a call to the previous function.
prepare_gcc() {
	awk -v nfun=120 'BEGIN {
		print "#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include <stdint.h>"
		print "struct node { struct node *next; uint64_t key; char name[24]; double w; };"
		x = 7
		for (f = 0; f < nfun; f++) {
			printf "static const int table_%d[] = {", f
			for (i = 0; i < 64; i++) { x = (x * 69069 + 1) % 4294967296; printf "%d,", x % 1000 }
			print "};"
			printf "__attribute__((noinline)) uint64_t f_%d(struct node *n, int k)\n{\n", f
			print "\tuint64_t acc = " f ";"
			print "\tfor (int i = 0; n && i < k; i++, n = n->next) {"
			print "\t\tswitch ((n->key + i) % 8) {"
			for (c = 0; c < 8; c++) {
				x = (x * 69069 + 1) % 4294967296
				printf "\t\tcase %d: acc = acc * %d + table_%d[(n->key >> %d) & 63] + strlen(n->name); n->w += %d.5 * acc; break;\n", c, x % 97 + 3, f, c, x % 13
			}
			print "\t\t}"
			print "\t\tif (acc & " (x % 31 + 1) ") snprintf(n->name, sizeof n->name, \"%s%d\", \"f" f "\", (int)(acc & 0xffff));"
			print "\t}"
			if (f > 0) print "\treturn acc ^ (k > 1 ? f_" f - 1 "(n, k - 1) : 0);"
			else print "\treturn acc;"
			print "}"
		}
		print "int main(int argc, char **argv)\n{\n\tstruct node *head = NULL;"
		print "\tfor (int i = 0; i < 100; i++) { struct node *n = calloc(1, sizeof *n); n->key = i * 2654435761u; n->next = head; head = n; }"
		print "\tuint64_t s = 0;"
		for (f = 0; f < nfun; f += 7) print "\ts += f_" f "(head, argc + " f % 5 ");"
		print "\tprintf(\"%llu\\n\", (unsigned long long)s);\n\t(void)argv;\n\treturn 0;\n}"
	}' >"$INPUTS/big.c"
}
setup_gcc() { cp "$INPUTS/big.c" big.c; mkdir tmp; }
gcc_steps() {
	set -e
	export TMPDIR=$PWD/tmp
	gcc -std=gnu11 -O2 -g -Wall -c big.c -o big.o
	gcc -O2 -o big big.o
	./big
}
CMD_gcc=(bash -c "$(declare -f gcc_steps); gcc_steps")
check_gcc() { :; }

# ----------------------------------------------------------------- git --
# One clone of the repository (HEAD when the suite starts) serves both runs.
prepare_git() {
	git clone -q --no-hardlinks "$ROOT" "$INPUTS/repo"
}
setup_git() { cp -a "$INPUTS/repo" repo; }
git_steps() {
	set -e
	cd repo
	export GIT_AUTHOR_NAME=realprogs GIT_AUTHOR_EMAIL=realprogs@example.org
	export GIT_COMMITTER_NAME=realprogs GIT_COMMITTER_EMAIL=realprogs@example.org
	export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:00Z"
	local n=$(( $(git rev-list --count HEAD) - 1 ))
	[ "$n" -gt 20 ] && n=20
	echo "== log --stat"; git log --stat --format='%H %an %ad %s'
	echo "== diff HEAD~$n"; git diff --stat "HEAD~$n"; git diff "HEAD~$n"
	echo "== log -p mm/"; git log -p --format=%H -- mm | sha256sum
	echo "== log -p -M all"; git log -p -M --stat --all | sha256sum
	echo "== pickaxe"; git log -S kfree --format='%H %s'
	echo "== blame"
	local f
	for f in mm/*.c; do git blame -M -C --line-porcelain "$f"; done | sha256sum
	echo "== grep"; git grep -n -e kmalloc -e mheap | sha256sum
	echo "== archive"; git archive --format=tar HEAD | sha256sum
	echo "== fast-export/import"
	git fast-export --all --signed-tags=strip >../export.stream
	git init -q ../imported
	git -C ../imported fast-import --quiet <../export.stream
	git -C ../imported log --all --format=%H | sha256sum
	git log --all --format=%H | sha256sum
	echo "== repack"; git -c pack.threads=2 repack -adf -q --window=250 --depth=50
	echo "== fsck"; git fsck --full --strict --no-progress
	echo "== objects"; git cat-file --batch-all-objects --batch-check | sort
	echo "== commit"
	git mv README.md README.txt
	echo "realprogs" >>Makefile
	git commit -q -a -m "realprogs: a commit with fixed dates"
	git log -1 --format=%H
	echo "== gc"; git gc -q --prune=now
	git count-objects -v | grep -E '^(count|in-pack|packs|prune-packable|garbage):'
	git fsck --full --strict --no-progress
	git rev-list --objects --all | sort | sha256sum
	git status --porcelain
}
CMD_git=(bash -c "$(declare -f git_steps); git_steps")
EXCLUDE_git=(-x .git -x imported)
check_git() { :; }

# ---------------------------------------------------------- make-build --
# A snapshot of the working tree (tracked and untracked files, not the
# ignored ones, not the engineers' build-*/ directories) serves both runs.
prepare_make-build() {
	mkdir -p "$INPUTS/src"
	(cd "$ROOT" && git ls-files -co --exclude-standard | grep -Ev '^build[^/]*/' |
		while IFS= read -r f; do [ -f "$f" ] && printf '%s\n' "$f"; done |
		tar -cf - -T -) | tar -xf - -C "$INPUTS/src"
}
setup_make-build() { cp -a "$INPUTS/src" src; mkdir tmp; }
CMD_make_build=(bash -c 'TMPDIR=$PWD/tmp exec make -C src BUILD=out -j2 all host')
SORT_STDOUT_make_build=1
EXCLUDE_make_build=(-x spanheap.iso -x grub-mkrescue.log)
check_make-build() {
	local p=$1/src/out/spanheap.iso l=$2/src/out/spanheap.iso d
	[ -f "$p" ] || { echo "no ISO from the plain build"; return; }
	[ -f "$l" ] || { echo "no ISO from the build under the library"; return; }
	for d in plain lib; do
		rm -rf "$WORK/make-build/iso-$d"
	done
	xorriso -osirrox on -indev "$p" -extract / "$WORK/make-build/iso-plain" >/dev/null 2>&1 ||
		{ echo "cannot read the plain build's ISO"; return; }
	xorriso -osirrox on -indev "$l" -extract / "$WORK/make-build/iso-lib" >/dev/null 2>&1 ||
		{ echo "cannot read the ISO built under the library"; return; }
	if ! diff -r -x efi.img "$WORK/make-build/iso-plain" "$WORK/make-build/iso-lib" \
		>"$WORK/make-build/iso.diff" 2>&1; then
		echo "ISO contents differ: $(head -n 1 "$WORK/make-build/iso.diff")"
	fi
}

# ============================================================ the runner ==

# run_mode NAME VAR MODE TIMEOUT: set up the run directory, run the command
# (with the library when MODE is lib), keep everything under $WORK/NAME/MODE*.
run_mode() {
	local name=$1 var=$2 mode=$3 limit=$4
	local dir=$WORK/$name
	local -n cmd="CMD_$var"
	rm -rf "$dir/run" "$dir/$mode"
	mkdir -p "$dir/run"
	if ! (cd "$dir/run" && "setup_$name") >"$dir/$mode.setup" 2>&1; then
		echo "setup failed: $(head -n 1 "$dir/$mode.setup")" >"$dir/$mode.problem"
	fi
	local t0=$(now_ms)
	# (timeout dies of its program's signal; the shell's words about it
	# go to $mode.shell)
	{
		(
			cd "$dir/run" || exit 1
			if [ "$mode" = lib ]; then
				exec timeout -k 10 "$limit" env LD_PRELOAD="$LIB" "${cmd[@]}"
			else
				exec timeout -k 10 "$limit" "${cmd[@]}"
			fi
		) >"$dir/$mode.stdout" 2>"$dir/$mode.stderr" </dev/null
		echo $? >"$dir/$mode.status"
	} 2>"$dir/$mode.shell"
	echo $(( $(now_ms) - t0 )) >"$dir/$mode.ms"
	mv "$dir/run" "$dir/$mode"
}

# compare NAME VAR: every difference between the two runs, one per line.
compare() {
	local name=$1 var=$2 dir=$WORK/$1
	local pst lst
	pst=$(cat "$dir/plain.status") lst=$(cat "$dir/lib.status")
	local plimit=$PLAIN_TIMEOUT llimit=$(cat "$dir/lib.limit")
	[ -s "$dir/plain.problem" ] && cat "$dir/plain.problem"
	[ -s "$dir/lib.problem" ] && cat "$dir/lib.problem"
	if [ "$pst" != 0 ]; then
		echo "without the library: $(describe_status "$pst" "$plimit") (nothing to compare; see $dir/plain.stderr)"
		return
	fi
	[ "$lst" != 0 ] && echo "with the library: $(describe_status "$lst" "$llimit"), without: exit status 0"
	# stdout
	local sv="SORT_STDOUT_$var"
	if [ "${!sv:-0}" = 1 ]; then
		diff <(sort "$dir/plain.stdout") <(sort "$dir/lib.stdout") >"$dir/stdout.diff"
	else
		diff "$dir/plain.stdout" "$dir/lib.stdout" >"$dir/stdout.diff"
	fi
	[ $? != 0 ] && echo "stdout differs ($(grep -c '^[<>]' "$dir/stdout.diff") lines, see $dir/stdout.diff)"
	# stderr: the heap's reports (lines like them that the plain run also
	# printed are the program's own), then everything else
	grep -vxF -f "$dir/plain.stderr" "$dir/lib.stderr" |
		grep -E "$HEAP_REPORT" >"$dir/heap-reports"
	if [ -s "$dir/heap-reports" ]; then
		echo "$(wc -l <"$dir/heap-reports") heap report(s) on stderr, first: $(head -n 1 "$dir/heap-reports")"
	fi
	grep -vxF -f "$dir/heap-reports" "$dir/lib.stderr" >"$dir/lib.stderr.rest"
	if ! diff "$dir/plain.stderr" "$dir/lib.stderr.rest" >"$dir/stderr.diff"; then
		echo "stderr differs (see $dir/stderr.diff): $(grep -m 1 '^[<>]' "$dir/stderr.diff")"
	fi
	# produced files
	local -n excl="EXCLUDE_$var"
	if ! diff -r --no-dereference "${excl[@]}" "$dir/plain" "$dir/lib" >"$dir/files.diff" 2>&1; then
		echo "files differ: $(head -n 1 "$dir/files.diff" | sed "s|$dir/||g")"
	fi
	"check_$name" "$dir/plain" "$dir/lib"
}

# run_program NAME: prepare, run twice, compare, print the KTAP line.
run_program() {
	local name=$1 var=${1//-/_} dir=$WORK/$1
	rm -rf "$dir" && mkdir -p "$dir"
	declare -p "EXCLUDE_$var" >/dev/null 2>&1 || eval "EXCLUDE_$var=()"
	if ! "prepare_$name" >"$dir/prepare.log" 2>&1; then
		diag "$dir/prepare.log"
		result "$name" "preparing the inputs failed (see $dir/prepare.log)"
		return
	fi
	run_mode "$name" "$var" plain "$PLAIN_TIMEOUT"
	local pms=$(cat "$dir/plain.ms")
	local llimit=$(( 60 + 10 * pms / 1000 ))
	echo "$llimit" >"$dir/lib.limit"
	run_mode "$name" "$var" lib "$llimit"
	local lms=$(cat "$dir/lib.ms")
	echo "# $name: $(awk -v a="$pms" -v b="$lms" 'BEGIN { printf "%.1f s without the library, %.1f s with it", a / 1000, b / 1000 }')"
	local problems=()
	mapfile -t problems < <(compare "$name" "$var")
	if [ ${#problems[@]} -ne 0 ]; then
		local f
		for f in stdout.diff stderr.diff files.diff heap-reports; do
			if [ -s "$dir/$f" ]; then
				echo "# $f:"
				diag "$dir/$f"
			fi
		done
		if [ -s "$dir/lib.stderr" ]; then
			echo "# stderr with the library (last lines):"
			tail -n 8 "$dir/lib.stderr" | sed 's/^/#   /'
		fi
	fi
	result "$name" "${problems[@]}"
	if [ ${#problems[@]} -eq 0 ] && [ "${REALPROGS_KEEP:-0}" != 1 ]; then
		rm -rf "$dir/plain" "$dir/lib" "$dir"/iso-*
	fi
}

# preload: ld.so binds malloc and free to the library in a preloaded process.
check_preload() {
	if [ ! -f "$LIB" ]; then
		result preload "$LIB does not exist"
		return 1
	fi
	local b sym missing=()
	b=$(LD_DEBUG=bindings LD_PRELOAD="$LIB" /bin/cat /dev/null 2>&1)
	for sym in malloc free calloc realloc; do
		grep -qF "to $LIB [0]: normal symbol \`$sym'" <<<"$b" || missing+=("$sym")
	done
	if [ ${#missing[@]} -ne 0 ]; then
		result preload "ld.so does not bind ${missing[*]} of /bin/cat to $LIB"
		return 1
	fi
	result preload
}

selected=${REALPROGS_ONLY:-$PROGRAMS}
echo "KTAP version 1"
echo "1..$(( 1 + $(wc -w <<<"$selected") ))"
echo "# library: $LIB; work directory: $WORK"
rm -rf "$INPUTS" && mkdir -p "$INPUTS"
t_start=$(now_ms)
if check_preload; then
	for p in $selected; do
		run_program "$p"
	done
else
	for p in $selected; do
		result "$p" "not run: the library is not preloaded"
	done
fi
[ "$failed" = 0 ] && [ "${REALPROGS_KEEP:-0}" != 1 ] && rm -rf "$INPUTS"
echo "# $(( ($(now_ms) - t_start) / 1000 )) s in all"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
