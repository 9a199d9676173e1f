# tests/bench/meta.mk - the heap's metadata on the hosted workloads
# (included by the top Makefile).
#
#   make bench-metadata   each workload of META_CASES on libspanheap.so with
#                         tests/bench/meta_sample.c preloaded: one META line
#                         per case (heap, span records, bitmaps, ... at the
#                         heap's peak; see that file), through `run-bench
#                         meta` (also into $(BUILD)/bench/meta.jsonl).
#                         Figures, not a test.
#
# make bench runs the same step on the same META_CASES (the one list) and
# reports them with the target of issue 11 (metadata <= 1.5 % of heap bytes).
# META_CASES: "program:case:threads" words; META_SCALE: --scale of each run.

META_SAMPLE := $(BUILD)/bench/meta-sample.so
META_SCALE  ?= 0.2
META_CASES  ?= glibc-simple:fifo-100000:1 glibc-simple:fifo-1600:1 alloc-test:pareto-1k:1 \
	larson:sized-8-1000:2 xmalloc-test:producer-consumer:2 shbench:sh6:1 \
	rptest:random-16-16k:1 mem:mixed-200m:1

$(META_SAMPLE): tests/bench/meta_sample.c mm/kmalloc.h
	@mkdir -p $(dir $@)
	$(HOSTCC) -std=gnu11 -O2 -g -Wall -Wextra -Werror -shared -fPIC -DSPANHEAP_HOSTED \
		-I. -Ihosted -pthread -o $@ $< -ldl

bench-build: $(META_SAMPLE)

bench-metadata: $(META_SAMPLE) $(HOST_SO) bench-workloads
	@nice tests/bench/run-bench meta --wl-dir $(WL_OUT) --spanheap $(HOST_SO) --sample $(META_SAMPLE) \
		--out $(BUILD)/bench --cases "$(META_CASES)" --scale $(META_SCALE) --print

.PHONY: bench-metadata
