/*
 * mm/bitops.h - bit counting for the heap's bitmaps.
 *
 * __builtin_popcountll compiles to one popcnt instruction only with
 * -mpopcnt; for plain x86-64 gcc emits a call to libgcc's __popcountdi2,
 * which a freestanding host kernel may not link and which costs a call per
 * bitmap word in every sweep. mm_popcount64 is the same count inline: the
 * platform's when it has one (MM_HAVE_POPCOUNT64, mm/platform.h: the
 * hosted build uses popcnt when the CPU has it, found at start-up), else
 * the builtin when the target has popcnt, else the usual SWAR sum (add
 * neighbouring bit pairs, then nibbles, then bytes by one multiply).
 */
#ifndef MM_BITOPS_H
#define MM_BITOPS_H

#include <stdint.h>
#include "mm/platform.h"

static inline unsigned mm_popcount64_swar(uint64_t x)
{
	x = x - ((x >> 1) & 0x5555555555555555ULL);
	x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (unsigned)((x * 0x0101010101010101ULL) >> 56);
}

static inline unsigned mm_popcount64(uint64_t x)
{
#if defined(MM_HAVE_POPCOUNT64)
	unsigned n;
	if (mm_platform_popcount64(x, &n))
		return n;
	return mm_popcount64_swar(x);
#elif defined(__POPCNT__)
	return (unsigned)__builtin_popcountll(x);
#else
	return mm_popcount64_swar(x);
#endif
}

#endif
