/*
 * hosted/dropin_aliases.h - forced into every object of libspanheap.so
 * (-include, Makefile): kmalloc_noflags and kfree with default visibility,
 * so that the link can export them under the names malloc and free
 * (--defsym, Makefile) and a program's malloc lands on the heap's entry
 * itself, not on a jump to it (2 instructions a malloc+free pair). The
 * version script (hosted/libspanheap.map) still keeps both names local;
 * only the aliases are exported. An alias of a hidden symbol would be
 * local, and an alias attribute must sit in the file that defines its
 * target (mm/malloc.c, or mm/mdebug.c in the debug build), which is
 * portable and names no malloc.
 */
#ifndef HOSTED_DROPIN_ALIASES_H
#define HOSTED_DROPIN_ALIASES_H

#include <stddef.h>

void *kmalloc_noflags(size_t size) __attribute__((visibility("default")));
void kfree(const void *p) __attribute__((visibility("default")));

#endif
