#!/bin/sh
# tools/check-multiboot.sh ELF - fail the build if GRUB would not recognise
# ELF as a multiboot2 kernel (header 8-byte aligned in the first 32 KiB,
# valid checksum). Without grub-file (not installed yet) it checks nothing
# and passes.
elf=$1
if command -v grub-file >/dev/null 2>&1; then
	if ! grub-file --is-x86-multiboot2 "$elf"; then
		echo "error: $elf has no valid multiboot2 header in its first 32 KiB" >&2
		exit 1
	fi
fi
exit 0
