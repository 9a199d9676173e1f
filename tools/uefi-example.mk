# tools/uefi-example.mk - examples/uefi/: the heap (mm/) as the allocator
# of a UEFI application built with gnu-efi, and its test under OVMF;
# included by the top Makefile after tools/efi.mk, whose recipe it reuses
# (EFI_CFLAGS, crt0-efi-x86_64.o, elf_x86_64_efi.lds, objcopy to PE32+).
#
#   make uefi-example        $(BUILD)/uefi-example.img: a FAT image (mtools)
#                            holding EFI/BOOT/BOOTX64.EFI = the example
#   make uefi-example-test   boot it under OVMF (tests/run-qemu
#                            --firmware efi-direct, 1 CPU, 256 MiB): the
#                            self-test's KTAP on the serial port, then
#                            isa-debug-exit; last line "N passed, N failed"
#
# mm/*.c are compiled exactly as docs/INTEGRATING.md says (the root and the
# directory of examples/uefi/mm_platform.h on the include path), with the
# gnu-efi flags (position-independent, MS ABI calls, no red zone); libefi
# provides memset/memcpy.

UEFIEX_DIR  := $(BUILD)/uefi-example
UEFIEX_APP  := $(UEFIEX_DIR)/BOOTX64.EFI
UEFIEX_IMG  := $(BUILD)/uefi-example.img
UEFIEX_SRCS := $(wildcard examples/uefi/*.c) $(wildcard mm/*.c)
UEFIEX_OBJS := $(patsubst %.c,$(UEFIEX_DIR)/%.o,$(UEFIEX_SRCS))
UEFIEX_MEM  ?= 256M
QEMU_TIMEOUT ?= 400

$(UEFIEX_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(EFI_CFLAGS) -Iexamples/uefi -c $< -o $@

$(UEFIEX_DIR)/uefi-example.so: $(UEFIEX_OBJS)
	$(LD) -nostdlib -znocombreloc -shared -Bsymbolic -T $(EFI_LIBDIR)/elf_x86_64_efi.lds \
		-L$(EFI_LIBDIR) $(EFI_LIBDIR)/crt0-efi-x86_64.o $^ -lefi -lgnuefi \
		$(shell $(CC) -print-libgcc-file-name) -o $@

$(UEFIEX_APP): $(UEFIEX_DIR)/uefi-example.so
	$(OBJCOPY) -j .text -j .sdata -j .data -j .rodata -j .dynamic -j .dynsym \
		-j .rel -j .rela -j '.rel.*' -j '.rela.*' -j .reloc \
		--target efi-app-x86_64 --subsystem=10 $< $@

# The same 32 MiB FAT16 superfloppy as tools/efi.mk's, with only the example.
$(UEFIEX_IMG): $(UEFIEX_APP)
	@tools/need.sh iso
	rm -f $@.tmp && truncate -s 32M $@.tmp
	mformat -i $@.tmp -T 65536 -h 64 -s 32 ::
	mmd -i $@.tmp ::/EFI ::/EFI/BOOT
	mcopy -i $@.tmp $(UEFIEX_APP) ::/EFI/BOOT/BOOTX64.EFI
	mv $@.tmp $@

uefi-example: $(UEFIEX_IMG)

uefi-example-test: $(UEFIEX_IMG)
	tests/run-qemu --firmware efi-direct --disk $(UEFIEX_IMG) --smp 1 --mem $(UEFIEX_MEM) \
		--accel $(ACCEL) --timeout $(QEMU_TIMEOUT) --name uefi-example

.PHONY: uefi-example uefi-example-test
-include $(UEFIEX_OBJS:.o=.d)
