# tests/bench/workloads.mk - the benchmark workloads (tests/bench/wl_*.c,
# see tests/bench/README.md), included by the top Makefile.
#
#   make bench-workloads  one Linux program per workload, $(BUILD)/bench/wl/<name>,
#                         over plain glibc malloc (swap the allocator with
#                         LD_PRELOAD)
#   make bench-smoke      every program --smoke (tiny scale, contents checked,
#                         1 and 2 threads) under LD_PRELOAD of
#                         $(HOST_DIR)/libspanheap.so, or of WL_PRELOAD if
#                         given (WL_PRELOAD= for glibc's malloc);
#                         last line "N passed, N failed"
#
# The kernel side (tests/bench/wl_kernel.c) is linked into the kernel by
# the top Makefile's KSRCS; kernel argument "wl" (see wl_kernel.h).

WL_OUT     := $(BUILD)/bench/wl
WL_SRCS    := $(filter-out tests/bench/wl_host.c tests/bench/wl_kernel.c,$(wildcard tests/bench/wl_*.c))
WL_STEMS   := $(patsubst tests/bench/wl_%.c,%,$(WL_SRCS))
WL_BINS    := $(addprefix $(WL_OUT)/,$(subst _,-,$(WL_STEMS)))
WL_CFLAGS  := -std=gnu11 -O2 -g -Wall -Wextra -Werror -pthread -DWL_HOST -I.

# One rule per program: build/bench/wl/glibc-simple <- wl_glibc_simple.c.
define WL_PROGRAM
$(WL_OUT)/$(subst _,-,$(1)): tests/bench/wl_$(1).c tests/bench/wl_host.c tests/bench/workload.h
	@mkdir -p $$(dir $$@)
	$$(HOSTCC) $$(WL_CFLAGS) -DWL_SYMBOL=wl_$(1) -o $$@ tests/bench/wl_host.c tests/bench/wl_$(1).c -lpthread
endef
$(foreach s,$(WL_STEMS),$(eval $(call WL_PROGRAM,$(s))))

bench-workloads: $(WL_BINS)

# The allocator under test: spanheap's drop-in malloc unless WL_PRELOAD
# says otherwise (WL_PRELOAD= for glibc itself).
WL_PRELOAD ?= $(HOST_DIR)/libspanheap.so

bench-smoke: $(WL_BINS) $(filter $(HOST_DIR)/libspanheap.so,$(WL_PRELOAD))
	@bash tests/bench/wl-smoke.sh "$(WL_PRELOAD)" $(WL_BINS)

.PHONY: bench-workloads bench-smoke
