# tools/efi.mk - the gnu-efi loader (boot/efi/) and the disk image it boots
# from, included by the top Makefile.
#
#   make efi-img                      $(BUILD)/spanheap-efi.img: FAT (mtools,
#                                     no root, no loop device) holding
#                                     EFI/BOOT/BOOTX64.EFI, EFI/spanheap/spanheap.elf
#                                     and EFI/spanheap/cmdline (EFI_CMDLINE);
#                                     also spanheap-efi-retry.img, the same
#                                     with efi.stale_map_key (make test)
#   make run FIRMWARE=efi-direct      boot it under OVMF, no GRUB
#   make host-efiload                 hosted test of the loader's pure parts
#                                     (boot/efi/efiload.c) under ASan + UBSan
#
# BOOTX64.EFI is built the way Debian's gnu-efi expects: position-independent
# objects, linked as a shared object with crt0-efi-x86_64.o and
# elf_x86_64_efi.lds against libefi/libgnuefi, then turned into a PE32+ EFI
# application by objcopy.

EFI_INC    ?= /usr/include/efi
EFI_LIBDIR ?= /usr/lib
EFI_CMDLINE ?= from=efi-cmdline
EFI_DIR    := $(BUILD)/efi
EFI_APP    := $(EFI_DIR)/BOOTX64.EFI
EFI_IMG    := $(BUILD)/spanheap-efi.img
EFI_SRCS   := boot/efi/main.c boot/efi/efiload.c
EFI_OBJS   := $(patsubst boot/efi/%.c,$(EFI_DIR)/%.o,$(EFI_SRCS))

EFI_CFLAGS := -std=gnu11 -O2 -Wall -Wextra -Werror -Wno-unused-parameter \
	-I$(EFI_INC) -I$(EFI_INC)/x86_64 -I. -fpic -ffreestanding \
	-fno-stack-protector -fno-stack-check -fshort-wchar -mno-red-zone \
	-maccumulate-outgoing-args -fcf-protection=none -mgeneral-regs-only \
	-DEFI_FUNCTION_WRAPPER -DGNU_EFI_USE_MS_ABI -MMD -MP

$(EFI_DIR)/%.o: boot/efi/%.c boot/efi/efiload.h
	@mkdir -p $(dir $@)
	$(CC) $(EFI_CFLAGS) -c $< -o $@

$(EFI_DIR)/loader.so: $(EFI_OBJS)
	$(LD) -nostdlib -znocombreloc -shared -Bsymbolic -T $(EFI_LIBDIR)/elf_x86_64_efi.lds \
		-L$(EFI_LIBDIR) $(EFI_LIBDIR)/crt0-efi-x86_64.o $^ -lefi -lgnuefi -o $@

$(EFI_APP): $(EFI_DIR)/loader.so
	$(OBJCOPY) -j .text -j .sdata -j .data -j .rodata -j .dynamic -j .dynsym \
		-j .rel -j .rela -j '.rel.*' -j '.rela.*' -j .reloc \
		--target efi-app-x86_64 --subsystem=10 $< $@

# A 32 MiB FAT16 "superfloppy" (no partition table): OVMF's FAT driver
# takes the whole disk, and its boot manager finds EFI/BOOT/BOOTX64.EFI.
$(EFI_IMG): $(EFI_APP) $(KERNEL)
	@tools/need.sh iso
	rm -f $@.tmp && truncate -s 32M $@.tmp
	mformat -i $@.tmp -T 65536 -h 64 -s 32 ::
	mmd -i $@.tmp ::/EFI ::/EFI/BOOT ::/EFI/spanheap
	mcopy -i $@.tmp $(EFI_APP) ::/EFI/BOOT/BOOTX64.EFI
	mcopy -i $@.tmp $(KERNEL) ::/EFI/spanheap/spanheap.elf
	printf '%s\n' "$(EFI_CMDLINE)" > $(EFI_DIR)/cmdline
	mcopy -i $@.tmp $(EFI_DIR)/cmdline ::/EFI/spanheap/cmdline
	mv $@.tmp $@

# The same with efi.stale_map_key added to the command line: the loader
# makes its first memory-map key stale, to test the ExitBootServices retry.
EFI_IMG_RETRY := $(BUILD)/spanheap-efi-retry.img
$(EFI_IMG_RETRY): $(EFI_IMG)
	cp $< $@.tmp
	printf '%s\n' "$(EFI_CMDLINE) efi.stale_map_key" > $(EFI_DIR)/cmdline-retry
	mcopy -o -i $@.tmp $(EFI_DIR)/cmdline-retry ::/EFI/spanheap/cmdline
	mv $@.tmp $@

efi-img: $(EFI_IMG) $(EFI_IMG_RETRY)

# make run FIRMWARE=efi-direct boots the image (tests/run-qemu finds it
# beside the ISO).
ifeq ($(FIRMWARE),efi-direct)
run debug soak: $(EFI_IMG)
endif

# Hosted test of the loader's pure parts.
EFI_HOST_TEST := $(BUILD)/host/efiload-test
$(EFI_HOST_TEST): tests/host/efiload_test.c boot/efi/efiload.c boot/efi/efiload.h \
		kernel/multiboot2.c kernel/multiboot2.h
	@mkdir -p $(dir $@)
	$(HOSTCC) -std=gnu11 -O1 -g -Wall -Wextra -Werror -DSPANHEAP_HOSTED -I. -Ihosted \
		$(HOST_SAN) -o $@ tests/host/efiload_test.c boot/efi/efiload.c kernel/multiboot2.c

host-efiload: $(EFI_HOST_TEST)
	$(EFI_HOST_TEST)

.PHONY: efi-img host-efiload
-include $(EFI_OBJS:.o=.d)
