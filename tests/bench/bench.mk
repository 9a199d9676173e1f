# tests/bench/bench.mk - hosted benchmarks (included by the top Makefile).
#
#   make bench-host       native rdtsc figures, spanheap next to glibc
#   make bench-callgrind  instructions per kmalloc+kfree pair under callgrind
#
# Both link the optimised, sanitizer-free build/host/libspanheap.a. The
# in-kernel figures come from tests/bench/kbench.c, which the kernel runs
# at the end of `make run`.

BENCH_OUT    := $(BUILD)/bench
BENCH_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -DSPANHEAP_HOSTED \
	-I. -Itests/host -pthread

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

.PHONY: bench-host bench-callgrind
