/*
 * lib/mm_hooks_x86_64.h - the heap's optional one-instruction hooks on
 * x86-64 (mm/platform.h documents each), shared by the kernel's and the
 * hosted platform (kernel/mm_platform.h, hosted/mm_platform.h):
 * mm_platform_counter_inc (an unlocked add to memory),
 * mm_platform_bit_test_clear64 (btr, the old bit in the carry flag),
 * mm_platform_first_bit64 (bsf, its zero flag for x == 0),
 * mm_platform_prefetch_write (prefetchw) and
 * mm_platform_ptr_eq_relaxed (cmp with a memory operand: an aligned
 * 8-byte read is atomic here). Under ThreadSanitizer the counter and the
 * compare are left to mm/platform.h's defaults, atomics TSan sees.
 * Included by a platform header before mm/platform.h's defaults; nothing
 * on other architectures.
 */
#ifndef LIB_MM_HOOKS_X86_64_H
#define LIB_MM_HOOKS_X86_64_H

#if defined(__x86_64__)
#include <stdbool.h>
#include <stdint.h>

#if !defined(__SANITIZE_THREAD__)
#define MM_HAVE_COUNTER_INC 1
static inline void mm_platform_counter_inc(uint64_t *c)
{
	__asm__("addq $1, %0" : "+m"(*c));
}

#define MM_HAVE_PTR_EQ_RELAXED 1
static inline bool mm_platform_ptr_eq_relaxed(void *const *p, const void *v)
{
	bool eq;
	__asm__("cmpq %2, %1" : "=@ccz"(eq) : "m"(*p), "r"(v));
	return eq;
}
#endif

#define MM_HAVE_BIT_TEST_CLEAR64 1
static inline bool mm_platform_bit_test_clear64(uint64_t *w, uint64_t b)
{
	bool was;
	__asm__("btr %2, %0" : "+r"(*w), "=@ccc"(was) : "r"(b));
	return was;
}

#define MM_HAVE_PREFETCH_WRITE 1
static inline void mm_platform_prefetch_write(const void *p)
{
	__asm__("prefetchw %0" : : "m"(*(const char *)p));
}

#define MM_HAVE_FIRST_BIT64 1
static inline bool mm_platform_first_bit64(uint64_t x, uintptr_t *i)
{
	bool zero;
	__asm__("bsf %2, %0" : "=r"(*i), "=@ccz"(zero) : "rm"(x));
	return !zero;
}
#endif

#endif
