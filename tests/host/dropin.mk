# tests/host/dropin.mk - libspanheap.so as a program's malloc (included by
# the top Makefile).
#
#   make host-dropin   build tests/host/dropin_test.c against the C library
#                      alone and run it with LD_PRELOAD of the library;
#                      last line "N passed, N failed"

DROPIN_TEST := $(HOST_DIR)/dropin-test

# The test makes impossible requests and bad frees on purpose: gcc's
# warnings about exactly those are off.
$(DROPIN_TEST): tests/host/dropin_test.c mm/kmalloc.h
	@mkdir -p $(dir $@)
	$(HOSTCC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -Wno-alloc-size-larger-than \
		-Wno-use-after-free -Wno-free-nonheap-object -I. -pthread -o $@ $< -ldl

host-dropin: $(DROPIN_TEST) $(HOST_SO)
	LD_PRELOAD=$(abspath $(HOST_SO)) $(DROPIN_TEST)

.PHONY: host-dropin
