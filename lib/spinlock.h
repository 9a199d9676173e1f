/*
 * lib/spinlock.h - ticket spinlock, FIFO-fair, usable in the kernel and in
 * the hosted build.
 *
 * spin_lock()/spin_unlock() leave the interrupt flag alone: use them only
 * where interrupts are already off or no interrupt handler takes the lock.
 * spin_lock_irqsave()/spin_unlock_irqrestore() disable interrupts on this
 * CPU for as long as the lock is held, which is what any lock that an
 * interrupt handler may also take needs (the heap's locks all are).
 *
 * `owner_cpu` records who holds the lock, for lock-held-too-long reports.
 */
#ifndef LIB_SPINLOCK_H
#define LIB_SPINLOCK_H

#include <stdint.h>
#include "lib/irqflags.h"

typedef struct spinlock {
	uint32_t next;      /* next ticket to hand out */
	uint32_t serving;   /* ticket now allowed in */
	int32_t owner_cpu;  /* debug: holder's CPU id, -1 when free */
	const char *name;
} spinlock_t;

#define SPINLOCK_INIT(n) { 0, 0, -1, (n) }

static inline void spin_lock_init(spinlock_t *l, const char *name)
{
	l->next = 0;
	l->serving = 0;
	l->owner_cpu = -1;
	l->name = name;
}

static inline void spin_lock(spinlock_t *l)
{
	uint32_t me = __atomic_fetch_add(&l->next, 1, __ATOMIC_RELAXED);
	while (__atomic_load_n(&l->serving, __ATOMIC_ACQUIRE) != me)
		cpu_relax();
}

static inline int spin_trylock(spinlock_t *l)
{
	uint32_t serving = __atomic_load_n(&l->serving, __ATOMIC_RELAXED);
	uint32_t expect = serving;
	return __atomic_compare_exchange_n(&l->next, &expect, serving + 1, 0,
					   __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

static inline void spin_unlock(spinlock_t *l)
{
	l->owner_cpu = -1;
	__atomic_store_n(&l->serving, l->serving + 1, __ATOMIC_RELEASE);
}

static inline int spin_is_locked(spinlock_t *l)
{
	return __atomic_load_n(&l->serving, __ATOMIC_RELAXED) !=
	       __atomic_load_n(&l->next, __ATOMIC_RELAXED);
}

static inline unsigned long spin_lock_irqsave(spinlock_t *l)
{
	unsigned long flags = arch_irq_save();
	spin_lock(l);
	return flags;
}

static inline void spin_unlock_irqrestore(spinlock_t *l, unsigned long flags)
{
	spin_unlock(l);
	arch_irq_restore(flags);
}

#endif
