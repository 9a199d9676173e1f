# tests/bench/bench.mk - hosted benchmarks (included by the top Makefile).
#
#   make bench            all three below
#   make bench-host       native rdtsc figures, spanheap next to glibc
#   make bench-callgrind  instructions per kmalloc+kfree pair under callgrind
#   make bench-kernel     the in-kernel figures (tests/bench/kbench.c) from
#                         one QEMU boot under TCG with -icount shift=0, where
#                         a TSC tick is one retired instruction
#
# The hosted two link the optimised, sanitizer-free build/host/libspanheap.a.
# `make run` also ends with the in-kernel figures (kernel argument "bench").

BENCH_OUT    := $(BUILD)/bench
BENCH_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -DSPANHEAP_HOSTED \
	-I. -Ihosted -pthread

$(BENCH_OUT)/bench-host: tests/bench/bench_host.c tests/bench/kbench_loops.h $(HOST_LIB)
	@mkdir -p $(dir $@)
	$(HOSTCC) $(BENCH_CFLAGS) -o $@ tests/bench/bench_host.c $(HOST_LIB) -lpthread

$(BENCH_OUT)/bench-callgrind: tests/bench/bench_callgrind.c $(HOST_LIB)
	@mkdir -p $(dir $@)
	$(HOSTCC) $(BENCH_CFLAGS) -o $@ tests/bench/bench_callgrind.c $(HOST_LIB) -lpthread

bench-host: $(BENCH_OUT)/bench-host
	$(BENCH_OUT)/bench-host

bench-callgrind: $(BENCH_OUT)/bench-callgrind
	sh tests/bench/callgrind.sh $(BENCH_OUT)/bench-callgrind

# The boot runs one short suite (the runner wants a KTAP plan) and then the
# benchmark; only the kbench lines of the serial log are shown.
bench-kernel: $(ISO)
	@tools/need.sh run
	@tests/run-qemu --iso $(ISO) --smp 1 --accel tcg --icount --name bench \
		--args "ktest=sizeclasses bench" > /dev/null || \
		{ echo "bench-kernel: boot failed, see $(BUILD)/logs/bench.log"; exit 1; }
	@grep 'kbench:' $(BUILD)/logs/bench.log | tr -d '\r'

bench: bench-host bench-callgrind bench-kernel

.PHONY: bench bench-host bench-callgrind bench-kernel
