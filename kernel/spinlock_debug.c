/*
 * kernel/spinlock_debug.c - the kernel's side of SPINLOCK_DEBUG (see
 * lib/spinlock.h): who is spinning, and what to do about a lock held too
 * long (panic, naming both CPUs).
 */
#ifdef SPINLOCK_DEBUG
#include "lib/spinlock.h"
#include "kernel/percpu.h"
#include "kernel/panic.h"

int spinlock_debug_cpu(void)
{
	return percpu_ready ? (int)this_cpu_id() : 0;
}

void spinlock_debug_stuck(spinlock_t *l, unsigned long long spins)
{
	panic("spinlock '%s' held too long: owner CPU %d, CPU %d waited %llu spins",
	      l->name ? l->name : "?", l->owner_cpu, spinlock_debug_cpu(), spins);
}
#endif
