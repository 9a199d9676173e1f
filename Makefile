# spanheap - build the kernel, its GRUB ISO, the hosted heap library and the
# tests. Everything is built out of tree, in build/.
#
#   make            kernel ELF + hybrid BIOS/UEFI ISO
#   make run        boot it in QEMU, serial on the terminal
#   make test       every boot configuration + the hosted tests
#   make debug      QEMU paused with -s -S, plus the gdb command line
#   make host       build/host/libspanheap.a, libspanheap.so and the hosted
#                   test binary (DEBUG_HEAP=1: in build/host-debug/)
#   make bench      hosted and in-kernel benchmarks
#   make soak       10M-operation heap soak, spread over every CPU (kernel)
#   make clean

BUILD   ?= build
CC      ?= gcc
HOSTCC  ?= gcc
LD      ?= ld
OBJCOPY ?= objcopy
ACCEL   ?= tcg

# Build switches (each 0 or 1, but KTEST_SELFCHECK: 0 to 4, the harness's
# deliberately failing builds, tests/kernel/harness_test.c and smp_test.c).
# KTESTS=0 links no self-tests and no benchmarks into the kernel (it then
# boots, reports and exits).
KTESTS          ?= 1
KTEST_SELFCHECK ?= 0
DEBUG_HEAP      ?= 0
DEBUG           ?= 0

ifeq ($(CC),cc)
CC := gcc
endif

# ---------------------------------------------------------------- kernel --

KCFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror \
	-ffreestanding -fno-pic -fno-pie -fno-stack-protector \
	-fcf-protection=none -mno-red-zone -mgeneral-regs-only -mno-sse \
	-mcmodel=kernel -fno-omit-frame-pointer -fno-strict-aliasing \
	-fno-builtin -nostdinc -isystem $(shell $(CC) -print-file-name=include) \
	-I. -Ikernel -MMD -MP \
	-DKTEST_SELFCHECK=$(KTEST_SELFCHECK) -DDEBUG_HEAP=$(DEBUG_HEAP) \
	$(if $(filter 1,$(DEBUG)),-DSPINLOCK_DEBUG)
KASFLAGS := $(KCFLAGS) -D__ASSEMBLY__
KLDFLAGS := -n -nostdlib -z max-page-size=0x1000 --no-warn-rwx-segments

# The self-tests and benchmarks reach the kernel only as boot jobs
# (kernel/bootjob.h) and ktests entries, so leaving them out is a link choice.
KTEST_SRCS := $(wildcard tests/kernel/*.c) tests/bench/kbench.c \
	 $(filter-out tests/bench/wl_host.c,$(wildcard tests/bench/wl_*.c))
KSRCS := $(wildcard boot/*.S) $(wildcard kernel/*.S) $(wildcard kernel/*.c) $(wildcard mm/*.c) \
	 $(wildcard lib/*.c) $(if $(filter 1,$(KTESTS)),$(KTEST_SRCS))
KOBJS := $(patsubst %,$(BUILD)/kernel/%.o,$(KSRCS))

KERNEL := $(BUILD)/spanheap.elf
ISO    := $(BUILD)/spanheap.iso

all: $(KERNEL) $(ISO)

# Objects are rebuilt when the build switches change.
KFLAGS_STAMP := $(BUILD)/kernel/flags.$(KTEST_SELFCHECK)$(DEBUG_HEAP)$(DEBUG)$(KTESTS)
$(KFLAGS_STAMP):
	@mkdir -p $(dir $@) && rm -f $(BUILD)/kernel/flags.* && touch $@

$(BUILD)/kernel/%.c.o: %.c $(KFLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(KCFLAGS) -c $< -o $@

$(BUILD)/kernel/%.S.o: %.S $(KFLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(KASFLAGS) -c $< -o $@

# The kernel is linked twice: the first link yields the symbol table that
# panic() uses for stack traces, the second embeds it (same layout, since the
# table's section is the last thing in the image and sized by a first pass).
$(BUILD)/kernel.1.elf: $(KOBJS) linker.ld $(BUILD)/ksyms0.o
	$(LD) $(KLDFLAGS) -T linker.ld -o $@ $(KOBJS) $(BUILD)/ksyms0.o

$(BUILD)/ksyms0.o: tools/ksyms.sh
	@mkdir -p $(dir $@)
	printf '' | sh tools/ksyms.sh > $(BUILD)/ksyms0.S
	$(CC) $(KASFLAGS) -c $(BUILD)/ksyms0.S -o $@

$(BUILD)/ksyms.o: $(BUILD)/kernel.1.elf tools/ksyms.sh
	nm -n $< | sh tools/ksyms.sh > $(BUILD)/ksyms.S
	$(CC) $(KASFLAGS) -c $(BUILD)/ksyms.S -o $@

$(KERNEL): $(KOBJS) linker.ld $(BUILD)/ksyms.o
	$(LD) $(KLDFLAGS) -T linker.ld -o $@ $(KOBJS) $(BUILD)/ksyms.o
	@tools/check-multiboot.sh $@

$(ISO): $(KERNEL) boot/grub.cfg
	@tools/need.sh iso
	@rm -rf $(BUILD)/isodir && mkdir -p $(BUILD)/isodir/boot/grub
	cp $(KERNEL) $(BUILD)/isodir/boot/spanheap.elf
	cp boot/grub.cfg $(BUILD)/isodir/boot/grub/grub.cfg
	grub-mkrescue --locales= --fonts= --themes= -o $@ $(BUILD)/isodir 2> $(BUILD)/grub-mkrescue.log || \
		{ cat $(BUILD)/grub-mkrescue.log; exit 1; }

# ---------------------------------------------------------------- hosted --
# mm/ (the portable heap), built for Linux with the platform layer in hosted/:
# the static kmalloc library libspanheap.a, the drop-in malloc
# libspanheap.so (hosted/libc_malloc.c; LD_PRELOAD it or link it), and the
# hosted self-test binary (the same suites as tests/kernel/, under ASan +
# UBSan).

HOST_SAN    ?= -fsanitize=address,undefined -fno-sanitize-recover=all
HOST_CFLAGS := -std=gnu11 -O1 -g -Wall -Wextra -Werror -fno-omit-frame-pointer \
	-DSPANHEAP_HOSTED -DDEBUG_HEAP=$(DEBUG_HEAP) -I. -Ihosted -MMD -MP -pthread
# make host DEBUG_HEAP=1 builds the heap's debug mode into build/host-debug/.
HOST_DIR    := $(BUILD)/host$(if $(filter 1,$(DEBUG_HEAP)),-debug)
HOST_LIB_SRCS := $(wildcard mm/*.c) hosted/platform_linux.c hosted/format.c
HOST_SO_SRCS  := $(HOST_LIB_SRCS) hosted/libc_malloc.c
HOST_TEST_SRCS := tests/kernel/ktest.c $(wildcard tests/kernel/*_test.c) \
	tests/host/ktest_host_main.c kernel/pmm.c kernel/multiboot2.c kernel/pvh.c

HOST_LIB      := $(HOST_DIR)/libspanheap.a
HOST_LIB_SAN  := $(HOST_DIR)/libspanheap-san.a
HOST_KTEST    := $(HOST_DIR)/ktest-host
HOST_SO       := $(HOST_DIR)/libspanheap.so

host: $(HOST_LIB) $(HOST_KTEST) $(HOST_SO)

# Optimised, sanitizer-free library: what programs link.
$(HOST_DIR)/opt/%.o: %.c
	@mkdir -p $(dir $@)
	$(HOSTCC) $(HOST_CFLAGS) -O2 -c $< -o $@
# Sanitized objects for the tests.
$(HOST_DIR)/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(HOSTCC) $(HOST_CFLAGS) $(HOST_SAN) -c $< -o $@

# Position-independent objects for the shared library: hidden by default
# (direct calls inside it), initial-exec TLS (no __tls_get_addr), no frame
# pointer (as the peers ship theirs), fork-safe (hosted/mm_platform.h).
# malloc and free are kmalloc_noflags and kfree under a second name
# (hosted/dropin_aliases.h).
$(HOST_DIR)/pic/%.o: %.c hosted/dropin_aliases.h
	@mkdir -p $(dir $@)
	$(HOSTCC) $(HOST_CFLAGS) -O2 -DMM_HOST_FORK_SAFE -fPIC -fvisibility=hidden \
		-ftls-model=initial-exec -fomit-frame-pointer \
		-include hosted/dropin_aliases.h -c $< -o $@

$(HOST_SO): $(patsubst %.c,$(HOST_DIR)/pic/%.o,$(HOST_SO_SRCS)) hosted/libspanheap.map
	$(HOSTCC) -shared -pthread -Wl,--version-script=hosted/libspanheap.map \
		-Wl,--defsym=malloc=kmalloc_noflags -Wl,--defsym=free=kfree \
		-Wl,--defsym=__libc_malloc=kmalloc_noflags -Wl,--defsym=__libc_free=kfree \
		-Wl,-z,now -Wl,-z,relro -o $@ $(filter %.o,$^)

$(HOST_LIB): $(patsubst %.c,$(HOST_DIR)/opt/%.o,$(HOST_LIB_SRCS))
	rm -f $@ && ar rcs $@ $^
$(HOST_LIB_SAN): $(patsubst %.c,$(HOST_DIR)/san/%.o,$(HOST_LIB_SRCS))
	rm -f $@ && ar rcs $@ $^
$(HOST_KTEST): $(patsubst %.c,$(HOST_DIR)/san/%.o,$(HOST_TEST_SRCS)) $(HOST_LIB_SAN)
	$(HOSTCC) $(HOST_CFLAGS) $(HOST_SAN) -o $@ $^ -lpthread

-include $(wildcard tools/*.mk tests/host/*.mk tests/bench/*.mk)

# ----------------------------------------------------------------- run --

QEMU_MEM ?= 256M
QEMU_SMP ?= 4
FIRMWARE ?= bios

# make run: the self-tests, the heap tables, then the in-kernel benchmark
# (TSC ticks under plain TCG: indicative only; `make bench-kernel` boots with
# -icount shift=0, where a tick is one retired instruction, for repeatable
# figures).
RUN_ARGS ?= bench
run: all
	@tools/need.sh run
	tests/run-qemu --iso $(ISO) --firmware $(FIRMWARE) --mem $(QEMU_MEM) \
		--smp $(QEMU_SMP) --accel $(ACCEL) --interactive --args "$(RUN_ARGS)"

debug: all
	@tools/need.sh run
	@echo "In another terminal:"
	@echo "  gdb -ex 'target remote :1234' -ex 'symbol-file $(KERNEL)' -ex 'source tools/gdb/spanheap.py' -ex 'hbreak kmain' -ex continue"
	tests/run-qemu --iso $(ISO) --firmware $(FIRMWARE) --mem $(QEMU_MEM) \
		--smp $(QEMU_SMP) --accel $(ACCEL) --interactive --debug

# make soak: the in-kernel soak self-test, long version (10 million mixed
# heap operations in all, spread over every CPU, contents checked, verifier
# between rounds).
soak: all
	@tools/need.sh run
	tests/run-qemu --iso $(ISO) --firmware $(FIRMWARE) --mem $(QEMU_MEM) \
		--smp $(QEMU_SMP) --accel $(ACCEL) --timeout 3600 \
		--args "ktest=soak soak=long" --name soak-long

test:
	@tools/need.sh test
	@tools/run-tests.sh

clean:
	rm -rf $(BUILD)

.PHONY: all run debug test clean host soak
-include $(KOBJS:.o=.d)
-include $(shell find $(BUILD)/host $(BUILD)/host-debug -name '*.d' 2>/dev/null)
