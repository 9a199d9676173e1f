# tests/bench/meta.mk - the heap's metadata on the hosted workloads
# (included by the top Makefile).
#
#   make bench-metadata   each workload of META_CASES on libspanheap.so with
#                         tests/bench/meta_sample.c preloaded: one META line
#                         per case (heap, span records, bitmaps, ... at the
#                         heap's peak; see that file). Figures, not a test.
#
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

bench-metadata: $(META_SAMPLE) $(HOST_SO) bench-workloads
	@set -u; for c in $(META_CASES); do \
		prog=$${c%%:*}; rest=$${c#*:}; cas=$${rest%%:*}; thr=$${rest#*:}; \
		line=$$(LD_PRELOAD="$(abspath $(HOST_SO)) $(abspath $(META_SAMPLE))" timeout 300 \
			nice $(WL_OUT)/$$prog --case $$cas --threads $$thr --scale $(META_SCALE) \
			2>&1 >/dev/null | grep '^META'); \
		echo "$$prog/$$cas/$$thr $${line:-META missing}"; \
	done

.PHONY: bench-metadata
