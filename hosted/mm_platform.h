/*
 * hosted/mm_platform.h - the platform seam for the hosted build.
 *
 * In the hosted library (Linux, SPANHEAP_HOSTED) a "CPU" is a thread: each
 * thread that enters the heap gets a slot id from an atomic counter on first
 * use and keeps it in a thread-local variable; when the thread exits, a
 * destructor drains the slot's mcache and hands the slot back. There are no
 * interrupts, so mm_irq_save/restore do nothing; mm_sys_alloc/free are mmap
 * and munmap; mm_log/mm_panic write to stderr.
 *
 * Tests can make the platform run out of memory on purpose:
 * mm_host_set_sys_limit(bytes) caps the bytes mm_sys_alloc hands out at
 * once (0 = no cap), mm_host_sys_bytes() is what is handed out now.
 */
#ifndef TESTS_HOST_MM_PLATFORM_H
#define TESTS_HOST_MM_PLATFORM_H

#include <stddef.h>

/* Slot id + 1 of this thread, 0 until the thread first uses the heap. */
extern __thread unsigned mm_host_cpu_plus1;
unsigned mm_host_cpu_assign(void);

static inline unsigned mm_cpu_id(void)
{
	unsigned id = mm_host_cpu_plus1;
	if (__builtin_expect(id != 0, 1))
		return id - 1;
	return mm_host_cpu_assign();
}

static inline unsigned long mm_irq_save(void) { return 0; }
static inline void mm_irq_restore(unsigned long flags) { (void)flags; }

/* Cap the bytes mm_sys_alloc may have handed out at once (0: no cap). */
void mm_host_set_sys_limit(size_t bytes);
/* Bytes handed out by mm_sys_alloc and not yet given back. */
size_t mm_host_sys_bytes(void);
/* Number of thread slots ("CPUs") handed out so far (highest id + 1). */
unsigned mm_host_ncpus(void);

#endif
