/* kernel/fwcfg.h - read a file from QEMU's fw_cfg device. */
#ifndef KERNEL_FWCFG_H
#define KERNEL_FWCFG_H
#include <stddef.h>
/* Copy the fw_cfg file `name` (e.g. "opt/spanheap/args") into buf,
 * NUL-terminated, cut to size - 1 bytes. Returns the bytes copied (with
 * size 0: copies nothing and returns the file's length), or -1 if there is
 * no fw_cfg device or no such file. */
int fwcfg_read_file(const char *name, char *buf, size_t size);
#endif
