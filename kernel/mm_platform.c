/*
 * kernel/mm_platform.c - the kernel's implementation of the heap's platform
 * seam: memory comes from the buddy pmm through the direct map; logging is
 * printk; panic is panic; the debug-lock build's holder id is the per-CPU
 * id once the per-CPU area is up.
 */
#include <stdarg.h>
#include "mm/platform.h"
#include "kernel/pmm.h"
#include "kernel/printk.h"
#include "kernel/panic.h"
#include "kernel/ksyms.h"
#include "kernel/percpu.h"
#include "kernel/x86.h"
#include "lib/printf.h"

static unsigned order_for(size_t bytes)
{
	unsigned order = 0;
	while ((PAGE_SIZE << order) < bytes)
		order++;
	return order;
}

int mm_kernel_have_popcnt;

void mm_platform_detect_cpu(void)
{
	uint32_t a, b, c, d;
	cpuid(1, 0, &a, &b, &c, &d);
	mm_kernel_have_popcnt = (c >> 23) & 1;
}

void *mm_sys_alloc(size_t bytes)
{
	unsigned order = order_for(bytes);
	if (order > PMM_MAX_ORDER)
		return NULL;
	return alloc_pages(order, 0);
}

uint64_t mm_kernel_ram_pages(void)
{
	/* Heap chunks are direct-map addresses of the pmm's frames, and
	 * the direct map starts at MM_PAGEMAP_BASE (phys 0). */
	uint64_t end = pmm_global()->end_pfn * PAGE_SIZE;
	return (end + 8191) >> 13;   /* the heap's 8 KiB pages */
}

void mm_sys_free(void *p, size_t bytes)
{
	free_pages(p, order_for(bytes));
}

void mm_log(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	printk("%s\n", buf);
}

void mm_panic(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	panic("mm: %s", buf);
}

/* Optional seam hook used by the heap's debug reports (mm/mdebug.c):
 * the function containing a code address, and the offset into it. */
const char *mm_symbolize(const void *addr, unsigned long *offset)
{
	uintptr_t off = 0;
	const char *name = ksym_lookup((uintptr_t)addr, &off);
	*offset = off;
	return name;
}

#if MM_LOCK_DEBUG
int mm_lock_debug_cpu(void)
{
	return percpu_ready ? (int)this_cpu_id() : 0;
}
#endif
