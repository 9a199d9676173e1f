/*
 * mm/mbug.h - the heap's checked invariants.
 *
 * MM_BUG_ON(cond) stops the machine through mm_panic, naming the condition,
 * file and line, when something the heap's design rules out happens
 * anyway (Go's throw, xv6's panic at the point of use). The check is one
 * compare and a branch that is predicted not taken, so it stays on in
 * release builds; MM_DEBUG_BUG_ON is for the dearer ones, on only in the
 * debug-lock build (MM_LOCK_DEBUG, `make DEBUG=1` in the kernel).
 */
#ifndef MM_MBUG_H
#define MM_MBUG_H

#include "mm/platform.h"

#define MM_BUG_ON(cond)                                                          \
	do {                                                                     \
		if (__builtin_expect(!!(cond), 0))                               \
			mm_panic("BUG: %s:%d: %s", __FILE__, __LINE__, #cond);   \
	} while (0)

#define MM_DEBUG_BUG_ON(cond)                    \
	do {                                     \
		if (MM_LOCK_DEBUG)               \
			MM_BUG_ON(cond);         \
	} while (0)

#endif
