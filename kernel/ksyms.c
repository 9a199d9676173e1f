/*
 * kernel/ksyms.c - the kernel's own symbol table, embedded by the second
 * link (tools/ksyms.sh), searched by address for panic()'s stack traces.
 */
#include "kernel/ksyms.h"
#include "lib/string.h"

extern const uint64_t ksyms_count;
extern const uint64_t ksyms_addrs[];
extern const uint32_t ksyms_offsets[];
extern const char ksyms_names[];
extern const char _text_start[], _text_end[];

const char *ksym_lookup(uintptr_t addr, uintptr_t *offset)
{
	uint64_t n = ksyms_count;
	if (n == 0 || addr < ksyms_addrs[0] || addr >= (uintptr_t)_text_end)
		return NULL;
	/* Last symbol whose address is <= addr. */
	uint64_t lo = 0, hi = n;
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (ksyms_addrs[mid] <= addr)
			lo = mid;
		else
			hi = mid;
	}
	*offset = addr - ksyms_addrs[lo];
	return ksyms_names + ksyms_offsets[lo];
}

uintptr_t ksym_address(const char *name)
{
	for (uint64_t i = 0; i < ksyms_count; i++)
		if (strcmp(ksyms_names + ksyms_offsets[i], name) == 0)
			return ksyms_addrs[i];
	return 0;
}
