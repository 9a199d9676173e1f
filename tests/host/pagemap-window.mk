# tests/host/pagemap-window.mk - the heap with a small page-map window
# (included by the top Makefile).
#
#   make host-pagemap-window   build tests/host/pagemap_window/ with the
#                              heap (mm/*.c) for two windows, 2^26 bytes
#                              (8 root entries, 8 KiB leaves) and 2^32
#                              (512 entries, 8 KiB leaves), run both;
#                              last line "N passed, N failed"
#
# The platform is the test's own (tests/host/pagemap_window/mm_platform.h):
# one CPU and a window at 32 TiB that chunks can be placed outside of.

PAGEMAP_WINDOW_BITS := 26 32
PAGEMAP_WINDOW_SRCS := $(wildcard mm/*.c) tests/host/pagemap_window/platform.c \
	tests/host/pagemap_window/test.c
PAGEMAP_WINDOW_DEPS := $(PAGEMAP_WINDOW_SRCS) $(wildcard mm/*.h) \
	$(wildcard tests/host/pagemap_window/*.h)

$(BUILD)/host/pagemap-window-%: $(PAGEMAP_WINDOW_DEPS)
	@mkdir -p $(dir $@)
	$(HOSTCC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -fno-omit-frame-pointer \
		-fsanitize=address,undefined -fno-sanitize-recover=all \
		-DPW_BITS=$* -I. -Itests/host/pagemap_window -o $@ $(PAGEMAP_WINDOW_SRCS)

# Both windows' results, summed into one closing line.
host-pagemap-window: $(addprefix $(BUILD)/host/pagemap-window-,$(PAGEMAP_WINDOW_BITS))
	@p=0 f=0; for t in $^; do \
		$$t > $$t.out 2>&1; rc=$$?; sed '$$d' $$t.out; \
		last=$$(tail -n 1 $$t.out); \
		set -- $$last; \
		if [ $$rc = 0 ] && [ "$$2 $$4" = "passed, failed" ]; then \
			p=$$((p + $$1)); f=$$((f + $$3)); \
		else \
			echo "# $$t: exit $$rc, last line '$$last'"; f=$$((f + 1)); \
		fi; \
	done; echo "$$p passed, $$f failed"; [ $$f = 0 ]

.PHONY: host-pagemap-window
