# tests/host/host.mk - the heap's hosted stress and fuzz targets (included by
# the top Makefile after its "hosted" section; uses HOST_LIB_SRCS and
# HOST_CFLAGS from there).
#
#   make host-stress      tests/host/stress_tsan.c: threads standing in for
#                         CPUs allocate and cross-free, under ThreadSanitizer;
#                         last line "N passed, N failed"
#   make host-stress-native  the same program without sanitizers (the
#                         optimised library), a million rounds of tiny
#                         double frees racing restarts
#   make fuzz             libFuzzer on tests/host/fuzz_kmalloc.c for
#                         FUZZ_SECONDS (default 300), seeded from
#                         tests/host/fuzz-corpus/; new inputs go to
#                         build/host/fuzz/corpus/, crashes to build/host/fuzz/
#   make host-fuzz-short  the same for 60 s; last line "1 passed, 0 failed"
#                         or "0 passed, 1 failed"
#
# The library sources are compiled again for each sanitizer: objects under
# build/host/tsan/ (gcc -fsanitize=thread) and build/host/fuzz/ (clang with
# libFuzzer's coverage, ASan and UBSan); with DEBUG_HEAP=1 under
# build/host-debug/ instead, so both modes can be stressed and fuzzed. libFuzzer needs clang's runtime
# (Debian: clang-14 and libclang-rt-14-dev).

# ------------------------------------------------------------- TSan stress --

HOST_DIR    ?= $(BUILD)/host
TSAN_DIR    := $(HOST_DIR)/tsan
TSAN_CFLAGS := $(HOST_CFLAGS) -fsanitize=thread
STRESS_TSAN := $(TSAN_DIR)/stress-tsan
STRESS_ARGS ?= --threads 8 --ops 20000 --rounds 2

$(TSAN_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(HOSTCC) $(TSAN_CFLAGS) -c $< -o $@

$(STRESS_TSAN): $(patsubst %.c,$(TSAN_DIR)/%.o,$(HOST_LIB_SRCS) tests/host/stress_tsan.c)
	$(HOSTCC) $(TSAN_CFLAGS) -o $@ $^ -lpthread

# TSan writes its reports to $(TSAN_DIR)/report.<pid>; the program fails its
# "no data race" check when that file exists and shows it.
host-stress: $(STRESS_TSAN)
	@rm -f $(TSAN_DIR)/report.*
	@TSAN_OPTIONS="log_path=$(TSAN_DIR)/report halt_on_error=0 $${TSAN_OPTIONS:-}" \
		$(STRESS_TSAN) $(STRESS_ARGS) --tsan-log $(TSAN_DIR)/report

# The same program at full speed, where the tiny races of mm/tiny.pml come
# often enough to be seen (about one in 100 000 rounds).
STRESS_NATIVE := $(HOST_DIR)/stress-native
$(STRESS_NATIVE): tests/host/stress_tsan.c $(HOST_LIB)
	$(HOSTCC) $(HOST_CFLAGS) -O2 -o $@ tests/host/stress_tsan.c $(HOST_LIB) -lpthread

host-stress-native: $(STRESS_NATIVE)
	@$(STRESS_NATIVE) --threads 4 --ops 20000 --rounds 1 --tiny-rounds 1000000

# ------------------------------------------------------------------ fuzzing --

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 300
FUZZ_DIR     := $(HOST_DIR)/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
# The heap's own warnings are gcc -Werror's business (make host); clang may
# warn differently, which must not stop the fuzzer from building.
FUZZ_CFLAGS  := $(filter-out -Werror,$(HOST_CFLAGS)) $(FUZZ_SAN)
FUZZ_BIN     := $(FUZZ_DIR)/fuzz-kmalloc
FUZZ_CORPUS  := tests/host/fuzz-corpus

$(FUZZ_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	@command -v $(FUZZ_CC) >/dev/null || { echo "$(FUZZ_CC) not found: apt-get install clang-14 libclang-rt-14-dev"; exit 1; }
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_DIR)/tests/host/fuzz_kmalloc.o: tests/host/fuzz_kmalloc.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BIN): $(patsubst %.c,$(FUZZ_DIR)/%.o,$(HOST_LIB_SRCS) tests/host/fuzz_kmalloc.c)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ -lpthread

# run_fuzz SECONDS: the first corpus directory (in build/) receives new
# inputs; the committed seeds are read only.
define run_fuzz
	@mkdir -p $(FUZZ_DIR)/corpus
	$(FUZZ_BIN) $(FUZZ_DIR)/corpus $(FUZZ_CORPUS) -max_total_time=$(1) \
		-artifact_prefix=$(FUZZ_DIR)/ -print_final_stats=1 -rss_limit_mb=4096 \
		-max_len=4096
endef

fuzz: $(FUZZ_BIN)
	$(call run_fuzz,$(FUZZ_SECONDS))

host-fuzz-short: $(FUZZ_BIN)
	@mkdir -p $(FUZZ_DIR)/corpus
	@if $(FUZZ_BIN) $(FUZZ_DIR)/corpus $(FUZZ_CORPUS) -max_total_time=60 \
		-artifact_prefix=$(FUZZ_DIR)/ -print_final_stats=1 -rss_limit_mb=4096 \
		-max_len=4096 >$(FUZZ_DIR)/short.log 2>&1; then \
		tail -n 15 $(FUZZ_DIR)/short.log; \
		echo "ok 1 fuzz_kmalloc: 60 s without a failure"; \
		echo "1 passed, 0 failed"; \
	else \
		tail -n 80 $(FUZZ_DIR)/short.log; \
		echo "not ok 1 fuzz_kmalloc: failed, see $(FUZZ_DIR)/short.log and the crash- input there"; \
		echo "0 passed, 1 failed"; exit 1; \
	fi

.PHONY: host-stress host-stress-native fuzz host-fuzz-short
