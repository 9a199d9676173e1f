/* kernel/ksyms.h - address -> "symbol+0xoff" for stack traces. */
#ifndef KERNEL_KSYMS_H
#define KERNEL_KSYMS_H
#include <stdint.h>
/* Name of the function containing addr and the offset into it, or NULL. */
const char *ksym_lookup(uintptr_t addr, uintptr_t *offset);
/* Address of a symbol by name, 0 if unknown. */
uintptr_t ksym_address(const char *name);
#endif
