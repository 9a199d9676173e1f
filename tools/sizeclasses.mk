# tools/sizeclasses.mk - generated size-class tables (included by Makefile).
#
#   make sizeclasses-check  regenerate into build/gen/ and diff against the
#                           committed mm/sizeclasses.{h,c}; last line is
#                           "1 passed, 0 failed" or "0 passed, 1 failed"
#   make sizeclasses        regenerate mm/sizeclasses.{h,c} in place
#
# mm/sizeclasses.{h,c} are committed so that mm/ can be lifted into another
# kernel without running any tool.

MKSIZECLASSES := $(BUILD)/gen/mksizeclasses

$(MKSIZECLASSES): tools/mksizeclasses.c
	@mkdir -p $(dir $@)
	$(HOSTCC) -std=gnu11 -O2 -Wall -Wextra -Werror -o $@ $<

sizeclasses-check: $(MKSIZECLASSES)
	@$(MKSIZECLASSES) $(BUILD)/gen
	@if diff -u mm/sizeclasses.h $(BUILD)/gen/sizeclasses.h && \
	    diff -u mm/sizeclasses.c $(BUILD)/gen/sizeclasses.c; then \
		echo "ok 1 sizeclasses-check: mm/sizeclasses.{h,c} match tools/mksizeclasses.c"; \
		echo "1 passed, 0 failed"; \
	else \
		echo "not ok 1 sizeclasses-check: mm/sizeclasses.{h,c} differ from the generator's output (run make sizeclasses)"; \
		echo "0 passed, 1 failed"; exit 1; \
	fi

sizeclasses: $(MKSIZECLASSES)
	$(MKSIZECLASSES) mm

.PHONY: sizeclasses-check sizeclasses
