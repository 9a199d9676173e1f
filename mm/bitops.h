/*
 * mm/bitops.h - bit counting for the heap's bitmaps.
 *
 * __builtin_popcountll compiles to one popcnt instruction only with
 * -mpopcnt; for plain x86-64 gcc emits a call to libgcc's __popcountdi2,
 * which a freestanding host kernel may not link and which costs a call per
 * bitmap word in every sweep. mm_popcount64 is the same count inline: the
 * builtin when the target has popcnt, else the usual SWAR sum (add
 * neighbouring bit pairs, then nibbles, then bytes by one multiply).
 */
#ifndef MM_BITOPS_H
#define MM_BITOPS_H

#include <stdint.h>

static inline unsigned mm_popcount64(uint64_t x)
{
#ifdef __POPCNT__
	return (unsigned)__builtin_popcountll(x);
#else
	x = x - ((x >> 1) & 0x5555555555555555ULL);
	x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (unsigned)((x * 0x0101010101010101ULL) >> 56);
#endif
}

#endif
