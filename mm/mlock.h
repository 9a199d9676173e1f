/*
 * mm/mlock.h - the heap's spinlock: a FIFO ticket lock built only on the
 * compiler's __atomic builtins and the platform seam (mm/platform.h).
 *
 * mm_spin_lock()/mm_spin_unlock() leave interrupts alone: a caller that
 * runs with interrupts off already, or a host stopping the heap from
 * outside it (kmem_lock_all around a fork), uses them.
 * mm_spin_lock_irqsave()/mm_spin_unlock_irqrestore() open an mm_irq_save
 * section for as long as the lock is held, which every heap lock needs in
 * normal operation (an interrupt handler may call kmalloc and take it).
 * A waiter calls mm_cpu_relax() between looks.
 *
 * Every lock counts its acquisitions and the contended ones (the ticket
 * drawn was not being served at the first look), written by the holder
 * (so plain, under the lock) and read with relaxed loads by the
 * statistics (kmem_get_stats: the mcentral and mheap locks).
 *
 * MM_HELD(lock) is what a function documented "under lock X" checks at its
 * entry, in the debug-lock build (MM_LOCK_DEBUG, `make DEBUG=1` in the
 * kernel): that this CPU holds the lock. That build also records the
 * holder in `owner`, checks that the holder is the one unlocking, and
 * panics, naming the lock and both CPUs, when a CPU waits more than
 * MM_LOCK_DEBUG_TICKS ticks of mm_lock_debug_clock(): a deadlock becomes a
 * report instead of a hang.
 */
#ifndef MM_MLOCK_H
#define MM_MLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include "mm/platform.h"
#include "mm/mbug.h"

typedef struct mm_spinlock {
	uint32_t next;      /* next ticket to hand out */
	uint32_t serving;   /* ticket now allowed in */
	int32_t owner;      /* debug-lock build: holder's CPU, -1 when free */
	const char *name;
	uint64_t nacquire;    /* acquisitions, ever */
	uint64_t ncontended;  /* of those, that had to wait */
} mm_spinlock_t;

#define MM_SPINLOCK_INIT(n) { 0, 0, -1, (n), 0, 0 }

#ifndef MM_LOCK_DEBUG_TICKS
#define MM_LOCK_DEBUG_TICKS (1ULL << 34)
#endif

static inline void mm_spin_lock_init(mm_spinlock_t *l, const char *name)
{
	l->next = 0;
	l->serving = 0;
	l->owner = -1;
	l->name = name;
	l->nacquire = 0;
	l->ncontended = 0;
}

/* Count one acquisition by the new holder (contended: it had to wait). */
static inline void mm_spin_count(mm_spinlock_t *l, bool contended)
{
	__atomic_store_n(&l->nacquire, l->nacquire + 1, __ATOMIC_RELAXED);
	if (contended)
		__atomic_store_n(&l->ncontended, l->ncontended + 1, __ATOMIC_RELAXED);
}

#if MM_LOCK_DEBUG
__attribute__((noinline, cold)) static void mm_spin_stuck(mm_spinlock_t *l,
							 unsigned long long spins)
{
	mm_panic("lock '%s' held too long: owner CPU %d, CPU %d waited %llu spins",
		 l->name ? l->name : "?", __atomic_load_n(&l->owner, __ATOMIC_RELAXED),
		 mm_lock_debug_cpu(), spins);
}
#endif

static inline void mm_spin_lock(mm_spinlock_t *l)
{
	uint32_t me = __atomic_fetch_add(&l->next, 1, __ATOMIC_RELAXED);
	bool contended = __atomic_load_n(&l->serving, __ATOMIC_ACQUIRE) != me;
#if MM_LOCK_DEBUG
	unsigned long long spins = 0, start = mm_lock_debug_clock();
	while (contended && __atomic_load_n(&l->serving, __ATOMIC_ACQUIRE) != me) {
		mm_cpu_relax();
		if ((++spins & 1023) == 0 &&
		    mm_lock_debug_clock() - start > MM_LOCK_DEBUG_TICKS)
			mm_spin_stuck(l, spins);
	}
	__atomic_store_n(&l->owner, mm_lock_debug_cpu(), __ATOMIC_RELAXED);
#else
	if (contended)
		while (__atomic_load_n(&l->serving, __ATOMIC_ACQUIRE) != me)
			mm_cpu_relax();
#endif
	mm_spin_count(l, contended);
}

static inline void mm_spin_unlock(mm_spinlock_t *l)
{
#if MM_LOCK_DEBUG
	MM_BUG_ON(__atomic_load_n(&l->owner, __ATOMIC_RELAXED) != mm_lock_debug_cpu());
	__atomic_store_n(&l->owner, -1, __ATOMIC_RELAXED);
#endif
	__atomic_store_n(&l->serving, l->serving + 1, __ATOMIC_RELEASE);
}

static inline unsigned long mm_spin_lock_irqsave(mm_spinlock_t *l)
{
	unsigned long flags = mm_irq_save();
	mm_spin_lock(l);
	return flags;
}

static inline void mm_spin_unlock_irqrestore(mm_spinlock_t *l, unsigned long flags)
{
	mm_spin_unlock(l);
	mm_irq_restore(flags);
}

/* Is the lock held (by this CPU, in the debug-lock build)? */
static inline bool mm_spin_held(mm_spinlock_t *l)
{
	bool locked = __atomic_load_n(&l->serving, __ATOMIC_RELAXED) !=
		      __atomic_load_n(&l->next, __ATOMIC_RELAXED);
#if MM_LOCK_DEBUG
	return locked && __atomic_load_n(&l->owner, __ATOMIC_RELAXED) == mm_lock_debug_cpu();
#else
	return locked;
#endif
}

/* At the entry of a function documented "under lock X": checked in the
 * debug-lock build. */
#define MM_HELD(l) MM_DEBUG_BUG_ON(!mm_spin_held(l))

#endif
