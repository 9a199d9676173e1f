#!/usr/bin/env bash
# tools/run-tests.sh - what `make test` runs: build everything, run the
# hosted suites, boot every configuration, and sum it all up in one last
# line "N passed, N failed". Each suite prints its own "N passed, N failed"
# as its last line; a suite that dies without one counts as 1 failed. A
# suite's "N skipped" line (tests that skipped themselves, e.g. for lack of
# memory) is shown in the summary, counted as neither.
#
# Environment: ACCEL=tcg|kvm, CONFIGS="name ..." to run only some boot
# configurations, MAKE_FLAGS for extra make variables (e.g. KTEST_SELFCHECK=1),
# SKIP_HOST=1 to skip the hosted suites, SKIP_DEBUG_HEAP=1 to skip the
# heap debug-mode boot, SKIP_DEBUG_LOCKS=1 to skip the lock-debug boot,
# SKIP_MICROVM=1 to skip the microvm (PVH) boot,
# SKIP_EFI=1 to skip the gnu-efi loader's test and boots and the
# examples/uefi test,
# QEMU_TIMEOUT seconds per boot.
set -u
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
ACCEL=${ACCEL:-tcg}
QEMU_TIMEOUT=${QEMU_TIMEOUT:-400}
MAKE_FLAGS=${MAKE_FLAGS:-}
mkdir -p build/logs
total_passed=0 total_failed=0
summary=()

# run_suite NAME COMMAND...: run, show output, add its closing counts.
run_suite() {
	local name=$1; shift
	local out="build/logs/suite-$name.out"
	echo "=== $name: $*"
	local t0=$(date +%s)
	"$@" 2>&1 | tee "$out"
	local rc=${PIPESTATUS[0]}
	local line p f sk
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	if [ -n "$line" ]; then
		p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
		f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
	else
		p=0 f=0
	fi
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1   # died or failed without counting it
	fi
	total_passed=$((total_passed + p))
	total_failed=$((total_failed + f))
	sk=$(grep -E '^[0-9]+ skipped$' "$out" | tail -n 1 | cut -d' ' -f1)
	summary+=("$(printf '%-28s %5d passed, %3d failed  (%ss)%s' "$name" "$p" "$f" \
		$(( $(date +%s) - t0 )) "${sk:+  $sk skipped}")")
}

echo "=== build"
if ! $MAKE -s $MAKE_FLAGS all host >build/logs/build.out 2>&1; then
	cat build/logs/build.out
	echo "build failed"
	echo "0 passed, 1 failed"
	exit 1
fi

if [ "${SKIP_HOST:-0}" != 1 ]; then
	# The heap's and pmm's reports of deliberately bad calls go to stderr:
	# kept in build/logs/, out of the way of the test results.
	run_suite host-ktest sh -c "build/host/ktest-host 2>build/logs/host-ktest.stderr"
	for t in sizeclasses-check host-stress host-stress-native host-dropin host-pagemap-window host-fuzz-short bench-smoke; do
		if $MAKE -n $t >/dev/null 2>&1; then
			run_suite "$t" $MAKE -s $MAKE_FLAGS $t
		fi
	done
fi

# The heap's debug mode (DEBUG_HEAP=1, mm/mdebug.c), built in its own
# directories: hosted and one boot, every suite (heap_debug included).
if [ "${SKIP_HOST:-0}" != 1 ]; then
	run_suite host-ktest-debug-heap sh -c "$MAKE -s $MAKE_FLAGS host DEBUG_HEAP=1 \
		>build/logs/build-host-debug.out 2>&1 || { cat build/logs/build-host-debug.out; exit 1; }
		build/host-debug/ktest-host 2>build/logs/host-ktest-debug-heap.stderr"
fi

# mm/ is one seam and one direction: includes, no asm, nm of the objects.
run_suite check-layers tools/check-layers.sh
# The cross-CPU protocols' Promela models (mm/mcentral.pml, mm/tiny.pml), by spin.
run_suite check-model tools/check-model.sh
# mm/ exported alone against examples/minimal/: nm -u = docs/INTEGRATING.md's list, then run.
run_suite check-boundary tools/check-boundary.sh

# Real programs (python3, sort, gcc, git, the project's own build) with
# LD_PRELOAD of build/host/libspanheap.so, compared with runs without it.
if [ "${SKIP_HOST:-0}" != 1 ] && $MAKE -n host-realprogs >/dev/null 2>&1; then
	run_suite host-realprogs $MAKE -s $MAKE_FLAGS host-realprogs
fi

# Boot configurations: firmware, CPUs, memory, CPU model[, kernel args].
# qemu64 has no 1 GiB pages, so that configuration exercises the 2 MiB
# direct map; smp.fake_missing_cpu makes the kernel also try to start a CPU
# that does not exist (the AP time-out path), after the real ones or, with
# =1, between the boot CPU and the first AP (CPU ids must stay dense).
# The 24 MiB boot is the smallest machine: a test that needs more memory
# than there is skips itself ("# SKIP needs X MiB, have Y MiB").
ALL_CONFIGS="bios:1:24M:qemu64 bios:1:64M:qemu64 bios:2:5G:max:smp.fake_missing_cpu bios:4:128M:max:smp.fake_missing_cpu=1 uefi:1:5G:max uefi:2:256M:qemu64 uefi:4:4G:max"
for c in ${CONFIGS:-$ALL_CONFIGS}; do
	IFS=: read -r fw smp mem cpu kargs <<<"$c"
	# Under KVM the runner picks the host CPU model itself.
	cpuopt=(--cpu "$cpu")
	[ "$ACCEL" = kvm ] && cpuopt=()
	run_suite "$fw-smp$smp-$mem" tests/run-qemu --iso build/spanheap.iso \
		--firmware "$fw" --smp "$smp" --mem "$mem" "${cpuopt[@]}" \
		--accel "$ACCEL" --timeout "$QEMU_TIMEOUT" --name "$fw-smp$smp-$mem" \
		${kargs:+--args "$kargs"}
done

# The PVH entry: the kernel ELF itself on QEMU's microvm (no GRUB, no ISO).
[ "${SKIP_MICROVM:-0}" != 1 ] && run_suite microvm-smp2-256M tests/run-microvm \
	--kernel build/spanheap.elf --smp 2 --mem 256M --accel "$ACCEL" \
	--timeout "$QEMU_TIMEOUT" --name microvm-smp2-256M

# The gnu-efi loader (boot/efi/, tools/efi.mk): its pure parts hosted under
# ASan/UBSan, then its FAT image booted straight from OVMF (no GRUB) on 1 CPU
# with 5 GiB and on 4 CPUs, and two bad kernels it must refuse and return.
if [ "${SKIP_EFI:-0}" != 1 ]; then
	run_suite host-efiload $MAKE -s $MAKE_FLAGS host-efiload
	if $MAKE -s $MAKE_FLAGS efi-img >build/logs/build-efi-img.out 2>&1; then
		run_suite efi-direct-smp1-5G tests/run-qemu --firmware efi-direct \
			--disk build/spanheap-efi.img --smp 1 --mem 5G \
			--accel "$ACCEL" --timeout "$QEMU_TIMEOUT" --name efi-direct-smp1-5G
		# The retry image: the loader's first map key goes stale on purpose
		# (efi.stale_map_key in EFI/spanheap/cmdline); the kernel must say
		# ExitBootServices succeeded on try 2 and show the file's arguments.
		run_suite efi-direct-smp4-256M-retry sh -c "tests/run-qemu --firmware efi-direct \
			--disk build/spanheap-efi-retry.img --smp 4 --mem 256M --accel $ACCEL \
			--timeout $QEMU_TIMEOUT --name efi-direct-smp4-256M-retry &&
			grep -q 'boot loader: .*ExitBootServices try 2' build/logs/efi-direct-smp4-256M-retry.log &&
			grep -q 'args \"from=efi-cmdline efi.stale_map_key' build/logs/efi-direct-smp4-256M-retry.log ||
			{ echo 'expected the boot log to name ExitBootServices try 2 and the args from EFI/spanheap/cmdline'; exit 1; }"
		run_suite efi-bad-kernel tests/run-efi-bad-kernel build/spanheap-efi.img 120
	else
		run_suite efi-img sh -c "cat build/logs/build-efi-img.out; echo 'make efi-img failed'; exit 1"
	fi
	# examples/uefi/: the heap as a gnu-efi application's allocator under OVMF (tools/uefi-example.mk).
	run_suite uefi-example $MAKE -s $MAKE_FLAGS uefi-example-test ACCEL="$ACCEL" QEMU_TIMEOUT="$QEMU_TIMEOUT"
fi

# The benchmark workloads at smoke scale in the kernel (tests/bench/wl_kernel.h).
run_suite bench-smoke-kernel tests/run-qemu --iso build/spanheap.iso --smp 2 --mem 512M \
	--accel "$ACCEL" --timeout "$QEMU_TIMEOUT" --name bench-smoke-kernel --args "notests wl=smoke"

# The gdb helpers (tools/gdb/spanheap.py) in batch-mode gdb against a kernel stopped after its tests.
run_suite gdb-helpers tools/gdb/check-gdb.sh --build build

if [ "${SKIP_DEBUG_HEAP:-0}" != 1 ]; then
	run_suite debug-heap-bios-smp2-256M sh -c "$MAKE -s $MAKE_FLAGS BUILD=build/debug-heap DEBUG_HEAP=1 all \
		>build/logs/build-debug-heap.out 2>&1 || { cat build/logs/build-debug-heap.out; exit 1; }
		tests/run-qemu --iso build/debug-heap/spanheap.iso --firmware bios --smp 2 \
		--mem 256M --accel $ACCEL --timeout $QEMU_TIMEOUT --name debug-heap-bios-smp2-256M"
fi

# The lock-debug kernel (DEBUG=1: every heap lock records its holder,
# MM_HELD checks "under lock X" at each such function's entry, unlocks by
# another CPU and long waits panic), on 4 CPUs: the arenas' and the
# mcentrals' lock rules under real concurrency.
if [ "${SKIP_DEBUG_LOCKS:-0}" != 1 ]; then
	run_suite debug-locks-bios-smp4-256M sh -c "$MAKE -s $MAKE_FLAGS BUILD=build/debug-locks DEBUG=1 all \
		>build/logs/build-debug-locks.out 2>&1 || { cat build/logs/build-debug-locks.out; exit 1; }
		tests/run-qemu --iso build/debug-locks/spanheap.iso --firmware bios --smp 4 \
		--mem 256M --accel $ACCEL --timeout $QEMU_TIMEOUT --name debug-locks-bios-smp4-256M"
fi

echo
echo "=== summary"
for s in "${summary[@]}"; do echo "  $s"; done
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" = 0 ]
