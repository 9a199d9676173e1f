/*
 * lib/spinlock.h - ticket spinlock, FIFO-fair: the kernel's own locks
 * (printk, smp, the pmm, page tables) and the hosted platform's own locks
 * (the shared slots', slot_lock, arena_lock). The heap in mm/ has its own,
 * built on its platform seam (mm/mlock.h), so that it needs nothing from
 * lib/.
 *
 * spin_lock()/spin_unlock() leave the interrupt flag alone: use them only
 * where interrupts are already off or no interrupt handler takes the lock.
 * spin_lock_irqsave()/spin_unlock_irqrestore() disable interrupts on this
 * CPU for as long as the lock is held, which is what any lock that an
 * interrupt handler may also take needs.
 *
 * Debug builds (SPINLOCK_DEBUG, `make DEBUG=1`) record the holder's CPU in
 * `owner_cpu`, and a CPU that waits more than SPINLOCK_DEBUG_TICKS TSC
 * ticks (about 5 s at 3 GHz) for the lock calls spinlock_debug_stuck(), which in the kernel panics
 * naming the lock, its owner CPU and the waiter: a deadlock becomes a
 * report instead of a hang. The platform provides spinlock_debug_cpu() and
 * spinlock_debug_stuck() (kernel/spinlock_debug.c).
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

#ifdef SPINLOCK_DEBUG
#ifndef SPINLOCK_DEBUG_TICKS
#define SPINLOCK_DEBUG_TICKS (1ULL << 34)
#endif
int spinlock_debug_cpu(void);
void spinlock_debug_stuck(struct spinlock *l, unsigned long long spins);
#endif

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
#ifdef SPINLOCK_DEBUG
	unsigned long long spins = 0, start = __builtin_ia32_rdtsc();
	while (__atomic_load_n(&l->serving, __ATOMIC_ACQUIRE) != me) {
		cpu_relax();
		if ((++spins & 1023) == 0 &&
		    __builtin_ia32_rdtsc() - start > SPINLOCK_DEBUG_TICKS)
			spinlock_debug_stuck(l, spins);
	}
	l->owner_cpu = spinlock_debug_cpu();
#else
	while (__atomic_load_n(&l->serving, __ATOMIC_ACQUIRE) != me)
		cpu_relax();
#endif
}

static inline void spin_unlock(spinlock_t *l)
{
#ifdef SPINLOCK_DEBUG
	l->owner_cpu = -1;
#endif
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
