/*
 * kernel/kargs.h - the kernel's arguments: one space-separated line of
 * "key" and "key=value" words, gathered at boot from the multiboot2 command
 * line (a PVH boot's command line becomes one) and QEMU's fw_cfg file
 * opt/spanheap/args, then read by whoever needs a switch (kernel/kargs.c).
 */
#ifndef KERNEL_KARGS_H
#define KERNEL_KARGS_H
#include <stddef.h>
/* 1 if "key" or "key=value" was given (value copied into out, if out,
 * cut to size - 1 bytes), else 0. The first occurrence wins. */
int kernel_arg(const char *key, char *out, size_t size);
/* Add the words of s after those already given (boot time only). */
void kargs_append(const char *s);
/* The whole argument line, for the boot log. */
const char *kargs_line(void);
#endif
