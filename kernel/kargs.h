/* kernel/kargs.h - the kernel's arguments (multiboot2 command line + the
 * fw_cfg file opt/spanheap/args), for code outside kmain.c. */
#ifndef KERNEL_KARGS_H
#define KERNEL_KARGS_H
#include <stddef.h>
/* 1 if "key" or "key=value" was given (value copied into out, if out),
 * else 0. */
int kernel_arg(const char *key, char *out, size_t size);
#endif
