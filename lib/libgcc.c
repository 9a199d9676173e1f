/*
 * lib/libgcc.c - the few libgcc helpers GCC may call from freestanding code
 * built without SSE4.2/POPCNT (e.g. for __builtin_popcountll). Our own,
 * so the kernel never links a libgcc built for user space (red zone).
 */
#include <stdint.h>

int __popcountdi2(uint64_t x);

int __popcountdi2(uint64_t x)
{
	x = x - ((x >> 1) & 0x5555555555555555ULL);
	x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (int)((x * 0x0101010101010101ULL) >> 56);
}
