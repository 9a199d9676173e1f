/*
 * hosted/platform_linux.c - mm/platform.h on Linux: mmap for memory,
 * threads for CPUs, stderr for logs.
 *
 * Memory: mm_sys_alloc maps anonymous memory. A power-of-two request comes
 * back naturally aligned (as the kernel's buddy pmm gives it): we map twice
 * the size and unmap the misaligned head and the tail. Every request is
 * counted against an optional cap, so tests can simulate running out of
 * memory (mm_host_set_sys_limit).
 *
 * CPUs: a thread gets a slot id on its first heap call, from a bitmap of
 * free slots (atomic compare-and-swap); a pthread key destructor drains the
 * slot's mcache when the thread exits and frees the slot for reuse. More
 * than MM_MAX_CPUS live threads using the heap is a clear panic.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include "mm/platform.h"
#include "mm/kmalloc.h"

__thread unsigned mm_host_cpu_plus1;

/* Bit i set: slot i is taken by a live thread. */
static uint64_t slot_used[(MM_MAX_CPUS + 63) / 64];
static unsigned slot_high;          /* highest slot id ever used + 1 */
static pthread_key_t slot_key;
static pthread_once_t slot_key_once = PTHREAD_ONCE_INIT;

static size_t sys_limit;            /* 0: no cap */
static size_t sys_bytes;            /* handed out now */

static void slot_release(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg - 1;

	/* Give this thread's cached spans back before another thread can
	 * take the slot (and its mcache). */
	kmem_drain_this_cpu();
	mm_host_cpu_plus1 = 0;
	__atomic_fetch_and(&slot_used[id / 64], ~(1ULL << (id % 64)),
			   __ATOMIC_RELEASE);
}

static void slot_key_create(void)
{
	if (pthread_key_create(&slot_key, slot_release) != 0)
		mm_panic("platform_host: pthread_key_create failed");
}

unsigned mm_host_cpu_assign(void)
{
	pthread_once(&slot_key_once, slot_key_create);
	for (unsigned w = 0; w < (MM_MAX_CPUS + 63) / 64; w++) {
		uint64_t used = __atomic_load_n(&slot_used[w], __ATOMIC_RELAXED);
		while (~used) {
			unsigned bit = (unsigned)__builtin_ctzll(~used);
			unsigned id = w * 64 + bit;
			if (id >= MM_MAX_CPUS)
				break;
			if (__atomic_compare_exchange_n(&slot_used[w], &used,
							used | (1ULL << bit), 0,
							__ATOMIC_ACQUIRE,
							__ATOMIC_RELAXED)) {
				unsigned high = __atomic_load_n(&slot_high, __ATOMIC_RELAXED);
				while (high < id + 1 &&
				       !__atomic_compare_exchange_n(&slot_high, &high, id + 1, 0,
								    __ATOMIC_RELAXED,
								    __ATOMIC_RELAXED))
					;
				mm_host_cpu_plus1 = id + 1;
				pthread_setspecific(slot_key, (void *)(uintptr_t)(id + 1));
				return id;
			}
		}
	}
	mm_panic("platform_host: more than MM_MAX_CPUS (%d) threads use the heap at once",
		 MM_MAX_CPUS);
}

unsigned mm_host_ncpus(void)
{
	return __atomic_load_n(&slot_high, __ATOMIC_RELAXED);
}

void mm_host_set_sys_limit(size_t bytes)
{
	__atomic_store_n(&sys_limit, bytes, __ATOMIC_RELAXED);
}

size_t mm_host_sys_bytes(void)
{
	return __atomic_load_n(&sys_bytes, __ATOMIC_RELAXED);
}

/* Count bytes against the cap; false when the cap would be exceeded. */
static int sys_charge(size_t bytes)
{
	size_t cur = __atomic_load_n(&sys_bytes, __ATOMIC_RELAXED);
	for (;;) {
		size_t limit = __atomic_load_n(&sys_limit, __ATOMIC_RELAXED);
		if (limit && (cur > limit || bytes > limit - cur))
			return 0;
		if (__atomic_compare_exchange_n(&sys_bytes, &cur, cur + bytes, 0,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return 1;
	}
}

void *mm_sys_alloc(size_t bytes)
{
	if (bytes == 0 || bytes % MM_SYS_ALIGN)
		mm_panic("mm_sys_alloc: bad size %zu", bytes);
	size_t align = (bytes & (bytes - 1)) == 0 ? bytes : MM_SYS_ALIGN;
	if (bytes > ((size_t)1 << 46) || !sys_charge(bytes))
		return NULL;

	size_t maplen = bytes + align;
	char *m = mmap(NULL, maplen, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED) {
		__atomic_fetch_sub(&sys_bytes, bytes, __ATOMIC_RELAXED);
		return NULL;
	}
	uintptr_t start = ((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1);
	size_t head = start - (uintptr_t)m;
	size_t tail = maplen - head - bytes;
	if (head)
		munmap(m, head);
	if (tail)
		munmap((char *)start + bytes, tail);
	return (void *)start;
}

void mm_sys_free(void *p, size_t bytes)
{
	if (munmap(p, bytes) != 0)
		mm_panic("mm_sys_free: munmap(%p, %zu) failed: errno %d", p, bytes, errno);
	__atomic_fetch_sub(&sys_bytes, bytes, __ATOMIC_RELAXED);
}

void mm_log(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

_Noreturn void mm_panic(const char *fmt, ...)
{
	va_list ap;
	fputs("spanheap panic: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}
