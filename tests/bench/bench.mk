# tests/bench/bench.mk - the benchmarks (included by the top Makefile).
#
#   make bench            the side-by-side benchmark: every host workload
#                         ($(BUILD)/bench/wl/*, tests/bench/workloads.mk)
#                         under spanheap (LD_PRELOAD of libspanheap.so),
#                         glibc, mimalloc, jemalloc and tcmalloc, interleaved,
#                         BENCH_ROUNDS rounds on BENCH_THREADS threads;
#                         spanheap's metadata on META_CASES (tests/bench/meta.mk;
#                         only the cases of BENCH_WORKLOADS when that is set);
#                         the instructions per malloc+free pair of each under
#                         callgrind; kmalloc/kfree natively (bench-host, rdtsc);
#                         the in-kernel workloads and kbench under
#                         TCG -icount on BENCH_KCPUS CPUs (and under KVM via
#                         tests/run-microvm when it can); then
#                         $(BUILD)/bench/report.md and $(BUILD)/bench/*.svg.
#                         tests/bench/run-bench does the work.
#   make bench-quick      the same, 1 round, 1 thread, a tenth of the work:
#                         for development, not for numbers
#   make bench-docs       copy the last report's tables into docs/PERFORMANCE.md
#   make bench-host       native rdtsc figures of kmalloc/kfree, next to glibc
#   make bench-callgrind  instructions per kmalloc+kfree pair under callgrind
#   make bench-kernel     the in-kernel figures: kbench and the workloads
#                         (kernel argument $(BENCH_KARGS)) on BENCH_KCPUS CPUs,
#                         under TCG with -icount shift=0 (a TSC tick is one
#                         retired instruction), or with ACCEL=kvm under KVM
#                         through tests/run-microvm (a tick is a TSC cycle)
#
# bench-host and bench-callgrind link the optimised, sanitizer-free
# build/host/libspanheap.a. bench-build also builds $(META_SAMPLE) (that
# prerequisite is in tests/bench/meta.mk, which make reads after this
# file). `make run` also ends with the in-kernel kbench figures (kernel
# argument "bench").

BENCH_OUT    := $(BUILD)/bench
BENCH_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -DSPANHEAP_HOSTED \
	-I. -Ihosted -pthread

# Knobs of make bench (defaults: 4-5 minutes of runs on a quiet 2-core machine).
BENCH_ROUNDS     ?= 5
BENCH_THREADS    ?= 1 2
BENCH_SCALE      ?= 1
BENCH_WORKLOADS  ?=
BENCH_TIMEOUT    ?= 120
BENCH_PAIR_ITERS ?= 20000
BENCH_PAIR_SIZES ?= 16 64 1024 65536
BENCH_KCPUS      ?= 1 2 4
BENCH_KMEM       ?= 1G
BENCH_KARGS      ?= wl
BENCH_KTIMEOUT   ?= 900
# auto: also measure under KVM when tests/run-microvm and /dev/kvm are there.
BENCH_KVM        ?= auto

BENCH_SO  := $(HOST_DIR)/libspanheap.so
BENCH_RUN := tests/bench/run-bench
BENCH_WL  := $(BUILD)/bench/wl

$(BENCH_OUT)/bench-host: tests/bench/bench_host.c tests/bench/kbench_loops.h $(HOST_LIB)
	@mkdir -p $(dir $@)
	$(HOSTCC) $(BENCH_CFLAGS) -o $@ tests/bench/bench_host.c $(HOST_LIB) -lpthread

$(BENCH_OUT)/bench-callgrind: tests/bench/bench_callgrind.c $(HOST_LIB)
	@mkdir -p $(dir $@)
	$(HOSTCC) $(BENCH_CFLAGS) -o $@ tests/bench/bench_callgrind.c $(HOST_LIB) -lpthread

# Plain glibc; the allocator under test is preloaded.
$(BENCH_OUT)/bench-pair-malloc: tests/bench/bench_pair_malloc.c
	@mkdir -p $(dir $@)
	$(HOSTCC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -o $@ $<

bench-host: $(BENCH_OUT)/bench-host
	$(BENCH_OUT)/bench-host

bench-callgrind: $(BENCH_OUT)/bench-callgrind
	sh tests/bench/callgrind.sh $(BENCH_OUT)/bench-callgrind

# One boot per CPU count; kbench rides on the first. ACCEL=kvm boots the
# ELF through tests/run-microvm (PVH entry), or says why it cannot.
bench-kernel: $(if $(filter kvm,$(ACCEL)),$(KERNEL),$(ISO))
	@tools/need.sh run
	@$(BENCH_RUN) kernel --accel $(ACCEL) --iso $(ISO) --elf $(KERNEL) \
		--builddir $(BUILD) --out $(BENCH_OUT) --cpus "$(BENCH_KCPUS)" \
		--mem $(BENCH_KMEM) --args "$(BENCH_KARGS)" --timeout $(BENCH_KTIMEOUT) --print

bench-need:
	@tools/need.sh bench run

bench-build: bench-need $(BENCH_SO) bench-workloads $(BENCH_OUT)/bench-pair-malloc \
		$(BENCH_OUT)/bench-callgrind $(BENCH_OUT)/bench-host $(ISO) $(KERNEL)

# The timed runs are niced: on a shared machine they yield to nobody's
# detriment, on a quiet one nice changes nothing.
bench: bench-build
	@echo "bench: $(BENCH_ROUNDS) rounds, threads $(BENCH_THREADS), scale $(BENCH_SCALE); report in $(BENCH_OUT)/report.md"
	@rm -f $(BENCH_OUT)/host.jsonl $(BENCH_OUT)/pairs.jsonl $(BENCH_OUT)/native.jsonl \
		$(BENCH_OUT)/kernel-*.jsonl $(BENCH_OUT)/meta.json $(BENCH_OUT)/meta.jsonl
	@set -u; start=$$(date +%s); \
	nice -n 5 $(BENCH_RUN) host --wl-dir $(BENCH_WL) --spanheap $(BENCH_SO) --out $(BENCH_OUT) \
		--rounds $(BENCH_ROUNDS) --threads "$(BENCH_THREADS)" --scale $(BENCH_SCALE) \
		--timeout $(BENCH_TIMEOUT) --workloads "$(BENCH_WORKLOADS)" || exit 1; \
	nice -n 5 $(BENCH_RUN) meta --wl-dir $(BENCH_WL) --spanheap $(BENCH_SO) --sample $(META_SAMPLE) \
		--out $(BENCH_OUT) --cases "$(META_CASES)" --scale $(META_SCALE) \
		--workloads "$(BENCH_WORKLOADS)" || exit 1; \
	nice -n 5 $(BENCH_RUN) pairs --bin $(BENCH_OUT)/bench-pair-malloc \
		--kmalloc-bin $(BENCH_OUT)/bench-callgrind --spanheap $(BENCH_SO) --out $(BENCH_OUT) \
		--sizes "$(BENCH_PAIR_SIZES)" --iters $(BENCH_PAIR_ITERS) || exit 1; \
	nice -n 5 $(BENCH_RUN) native --bin $(BENCH_OUT)/bench-host --out $(BENCH_OUT) || exit 1; \
	nice -n 5 $(BENCH_RUN) kernel --accel tcg --iso $(ISO) --builddir $(BUILD) --out $(BENCH_OUT) \
		--cpus "$(BENCH_KCPUS)" --mem $(BENCH_KMEM) --args "$(BENCH_KARGS)" \
		--timeout $(BENCH_KTIMEOUT) || exit 1; \
	kvm=$(if $(filter kvm,$(ACCEL)),1,$(BENCH_KVM)); \
	if [ $$kvm = auto ]; then [ -x tests/run-microvm ] && [ -w /dev/kvm ] && kvm=1 || kvm=0; fi; \
	if [ $$kvm = 1 ]; then $(BENCH_RUN) kernel --accel kvm --elf $(KERNEL) --builddir $(BUILD) \
		--out $(BENCH_OUT) --cpus "$(BENCH_KCPUS)" --mem $(BENCH_KMEM) --args "$(BENCH_KARGS)" \
		--timeout $(BENCH_KTIMEOUT) || exit 1; fi; \
	$(BENCH_RUN) report --out $(BENCH_OUT) --started $$start && \
	echo "bench: done in $$(( $$(date +%s) - start )) s: $(BENCH_OUT)/report.md, $(BENCH_OUT)/*.svg"

# Copy the latest report's tables into docs/PERFORMANCE.md (its
# <!-- bench: SECTION --> blocks); the prose around them is written by hand.
bench-docs:
	@$(BENCH_RUN) docs --out $(BENCH_OUT) --doc docs/PERFORMANCE.md

bench-quick:
	@$(MAKE) --no-print-directory bench BENCH_ROUNDS=1 BENCH_THREADS=1 BENCH_SCALE=0.1 \
		BENCH_KCPUS=1 BENCH_PAIR_ITERS=5000 BENCH_PAIR_SIZES="16 65536"

.PHONY: bench bench-quick bench-docs bench-build bench-need bench-host bench-callgrind bench-kernel
