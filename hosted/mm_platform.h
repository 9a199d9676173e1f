/*
 * hosted/mm_platform.h - the platform seam for the hosted build (Linux).
 *
 * In the hosted library (SPANHEAP_HOSTED) a "CPU" is a slot a thread
 * holds. A thread takes a slot on its first heap call (hosted/
 * platform_linux.c) and keeps its id + 1 in the thread-local mm_host_thread.
 * Slots below MM_HOST_EXCLUSIVE_SLOTS are exclusive: one live thread
 * each, so its mcache needs no lock, as a CPU's with interrupts off; a
 * pthread key destructor drains the slot's mcache and frees the slot when
 * the thread exits. When every exclusive slot is taken (or a thread calls
 * the heap again after its slot was released at exit), the thread shares
 * one of the MM_HOST_SHARED_SLOTS last slots with other threads: for those,
 * mm_irq_save() takes the slot's lock (counted, so nesting is fine) where
 * the kernel would turn interrupts off, and mm_irq_restore() drops it. An
 * exclusive thread's fast paths pay one thread-local load, of its slot's
 * mcache pointer (MM_CPU_LOCAL_NONE: not this way); in libspanheap.so
 * (built with MM_HOST_FORK_SAFE) also a thread-local mark set and cleared:
 * with the pointer (and the gate of mm_irq_save's sections), which a fork
 * resets,
 * what lets fork find the heap quiet (see fork in platform_linux.c). The
 * static libspanheap.a registers no fork handlers and skips them.
 *
 * There are no interrupts; mm_sys_alloc/free are mmap and munmap; mm_log
 * and mm_panic write(2) to stderr (never stdio, which may allocate);
 * memset and memcpy are the C library's. The shared slots' own locks are
 * lib/spinlock.h's (the heap's locks are mm/mlock.h's).
 *
 * Tests can make the platform run out of memory on purpose:
 * mm_host_set_sys_limit(bytes) caps the bytes mm_sys_alloc hands out at
 * once (0 = no cap), mm_host_sys_bytes() is what is handed out now.
 */
#ifndef HOSTED_MM_PLATFORM_H
#define HOSTED_MM_PLATFORM_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sched.h>

#ifndef MM_MAX_CPUS
#define MM_MAX_CPUS 64
#endif
/* Free chunks kept mapped for reuse (at least; more while the heap is
 * large, mm/mscavenge.c). A large object has a chunk of its own
 * size, so reuse needs a retained chunk at least as big: with 8 MiB, the
 * malloc-large workload (8 live objects of 64 KiB..8 MiB) mapped and
 * unmapped a chunk every 6 operations and faulted every page in again
 * (1 700 ns/op untouched, 190 us touched); from 64 MiB on it maps almost
 * never (32 MiB: 560 ns, 41 us; 64 MiB: 363 ns, 38 us; 256 MiB: no
 * better). Idle, at most twice this stays mapped until kmem_scavenge,
 * malloc_trim or kmem_drain_* gives it back (a thread's exit trims it to
 * the target, mm/mscavenge.c). */
#ifndef MM_RETAIN_MIN_BYTES
#define MM_RETAIN_MIN_BYTES (64UL << 20)
#endif
/* Each thread slot's page cache (mm/mpagecache.c): room for a few of
 * malloc-large's objects, so that a thread's large frees and allocations
 * meet without an arena lock; a thread's exit gives it back. */
#ifndef MM_PCACHE_MAX_BYTES
#define MM_PCACHE_MAX_BYTES (16UL << 20)
#endif
/* ... kept across the large allocations that miss it: malloc-large on
 * two threads 660 -> 340 ns an operation (given back at every miss:
 * barely faster than no cache). */
#define MM_PCACHE_KEEP_ON_MISS 1
/* An mheap arena per 8 thread slots' worth of CPUs (mm/mheap.h): each
 * thread slot's large objects come from arena slot % 8, so two threads'
 * large allocations and frees share no lock. */
#ifndef MM_HEAP_ARENAS
#define MM_HEAP_ARENAS 8
#endif
/* Large objects in multiples of 64 KiB (mm/platform.h): malloc-large
 * `notouch`, which writes the first byte of each new object of 64 KiB to
 * 8 MiB, 1 003 -> 487 ns an operation and 2 113 -> 1 103 page faults on a
 * machine where a fault costs microseconds (mimalloc: 581 ns, 793): the
 * objects' starts no longer wander over every page of the retained
 * chunks. Untouched pages cost no memory here. */
#define MM_LARGE_GRAIN_PAGES 8
/* The heap grows in chunks of at least 8 MiB (mm/platform.h): malloc-large
 * `touch` (objects of 64 KiB to 8 MiB, every page written) 204 -> 121 us
 * an operation and 15 200 -> 10 500 page faults, peak RSS 62 -> 43 MiB
 * (tcmalloc: 137 us, 12 064 faults), where with 1 MiB chunks each object
 * above 1 MiB had a chunk of its own size and a freed one served only
 * objects no bigger. `notouch` pays for it: 440 -> 600 ns (mimalloc 800
 * in the same interleaved runs), 800 -> 1 100 faults, as objects now
 * start at pages of shared chunks never touched before. 16 MiB: `touch`
 * 160 us, `notouch` no better; 4 MiB: `touch` 214 us. */
#define MM_CHUNK_MIN_BYTES (8UL << 20)
/* Each thread slot keeps up to 8 MiB of partially used spans of its own
 * (mm/platform.h; 4 MiB by default): glibc-simple lifo-100000 (half of
 * 13 MiB freed and allocated again, by turns) 11.5 -> 8.6 ns an operation
 * on 2 threads and 12.1 -> 10.5 on 1, alloc-test on 2 threads 8.5 -> 7.6,
 * shbench sh6 on 2 threads 7.1 -> 5.8 (interleaved medians of 5); the mem
 * workload's peak RSS unchanged (232 and 235 MiB); 16 MiB did no better. */
#define MM_OWNED_MAX_BYTES (8UL << 20)
/* mm_sys_alloc is a fresh anonymous mmap, which reads as zeros: the page
 * map's leaves (1 MiB each) are not cleared again, so their untouched
 * pages cost no memory (a program's first allocation: about 1 MiB of
 * peak RSS less). */
#define MM_SYS_ALLOC_ZEROED 1
/* The page map's window (mm/pagemap.h): the lower half of the address
 * space, where Linux's mmap puts user memory (above 2^47 only when asked
 * with such a hint, which mm_sys_alloc never gives). A window at 0 takes
 * kfree's lookup no subtraction: 2 instructions fewer than the 48-bit
 * default, and half its root (1 MiB of .bss). */
#define MM_PAGEMAP_BASE 0UL
#define MM_PAGEMAP_BITS 47
/* The heap's arena: mm_sys_alloc places what it maps at addresses of its
 * own choosing in [MM_HOST_ARENA_BASE, MM_HOST_ARENA_END) (4 to 32 GiB:
 * above the 2 GiB of MAP_32BIT and a non-PIE program's brk, below where
 * Linux puts PIE programs, libraries and mmap), while nothing else is
 * there (hosted/platform_linux.c), so that the page map's flat part
 * (mm/pagemap.h) can cover it: the window's first 32 GiB, 32 leaves of
 * 1 MiB in one mapping, touched as the heap grows (4 KiB of leaf per 4
 * MiB of heap). kfree then finds a span with one compare and one load
 * instead of the root's shift, mask and two loads: 6 instructions fewer
 * a free (measured: docs/HEAP.md, "A kfree, back up"). A heap bigger
 * than the arena, or one whose arena is in someone's way
 * (AddressSanitizer's shadow lies on it: the hosted self-tests), maps the
 * rest wherever mmap puts it, which the root covers as before. */
#define MM_HOST_ARENA_BASE (4UL << 30)
#define MM_HOST_ARENA_END (32UL << 30)
#define MM_HAVE_PAGEMAP_FLAT 1
static inline uint64_t mm_pagemap_flat_pages(void)
{
	return MM_HOST_ARENA_END >> 13;   /* MM_PAGE_SHIFT (mm/sizeclasses.h) */
}
/* The last MM_HOST_SHARED_SLOTS slots are shared by the threads that find
 * no exclusive slot free. */
#define MM_HOST_SHARED_SLOTS 8
#define MM_HOST_EXCLUSIVE_SLOTS (MM_MAX_CPUS - MM_HOST_SHARED_SLOTS)

#include "lib/spinlock.h"

/* Everything below is the library's own: no GOT indirection in the .so. */
#define MM_HOST_HIDDEN __attribute__((visibility("hidden")))

/* Thread-local data of the library: %fs-relative loads. Initial-exec in
 * libspanheap.so (the offset from the GOT: one load more), local-exec in
 * the static library's objects, built for executables (PIE or not): the
 * offset a constant of the instruction, one load fewer on each fast path.
 * (Linking libspanheap.a into a shared object fails at link time.) */
#if defined(__PIC__) && !defined(__PIE__)
#define MM_HOST_TLS __attribute__((tls_model("initial-exec")))
#else
#define MM_HOST_TLS __attribute__((tls_model("local-exec")))
#endif

/* This thread's view of its slot. */
struct mm_host_thread {
	/* How deep the thread is in mm_irq_save sections (written only by
	 * the thread; a fork reads it: hosted/platform_linux.c, "fork"). */
	unsigned depth;
	/* 1 while the thread is in a fast path's section (mm_irq_save_local
	 * to mm_irq_restore_local), which never nests in another: set and
	 * cleared with plain stores, not counted in depth, so that the fast
	 * paths' marks form no chain of read-modify-writes on one word from
	 * call to call (a fork reads it with depth). */
	unsigned char fast;
	/* Slot id + 1 while the fast paths may run (an exclusive slot, no
	 * fork waiting), else 0: one load both admits them and, with the
	 * depth before it, keeps a fork out. Written under the slot lock
	 * (platform_linux.c): by the thread as it takes or gives back its
	 * slot, by a fork for every thread. */
	unsigned gate;
	/* Slot id + 1, or'ed with MM_HOST_SLOT_SHARED for a shared slot; 0
	 * until the first heap call. So one load tells the static library's
	 * fast paths both whether they may run (an exclusive slot: slot - 1
	 * below MM_HOST_EXCLUSIVE_SLOTS) and which mcache is theirs. */
	unsigned slot;
	unsigned shared_depth;   /* levels held on a shared slot's lock */
	unsigned cpu;            /* the slot's id (mm_cpu_id), once it has one */
	/* The slot's pointer from mm_cpu_local_set (its mcache) while the
	 * gate is open and the heap has set it, else MM_CPU_LOCAL_NONE: all the fast
	 * paths load (mm_irq_save_local). Written with the gate, under the
	 * slot lock. */
	void *local;
};
extern __thread struct mm_host_thread mm_host_thread MM_HOST_TLS MM_HOST_HIDDEN;

/* Set while a fork waits for the heap to be quiet. */
extern int mm_host_forking MM_HOST_HIDDEN;
/* mm_host_shared_lock[i] serialises the threads of slot
 * MM_HOST_EXCLUSIVE_SLOTS + i, from their outermost mm_irq_save to the
 * matching mm_irq_restore (where a CPU has interrupts off). The outermost
 * of the heap's locks (a fork takes slot_lock, platform_linux.c, outside
 * them). */
extern spinlock_t mm_host_shared_lock[MM_HOST_SHARED_SLOTS] MM_HOST_HIDDEN;

/* Give this thread a slot (exclusive if one is free); returns its id. */
unsigned mm_host_slot_assign(void) MM_HOST_HIDDEN;
/* mm_irq_save's slow half, after mm_host_irq_save_fast declined: no slot yet,
 * a shared slot, or a fork waiting. */
unsigned long mm_host_irq_save_slow(void) MM_HOST_HIDDEN;

#define MM_HOST_SLOT_SHARED 0x10000u

/* The slot id a thread's slot field holds. */
static inline unsigned mm_host_slot_id(unsigned slot)
{
	return (slot & (MM_HOST_SLOT_SHARED - 1)) - 1;
}

/* This thread's slot. The heap calls it only inside an mm_irq_save
 * section, which has given the thread a slot. */
static inline unsigned mm_cpu_id(void)
{
#ifndef MM_HOST_FORK_SAFE
	/* From the load the fast path's test made. */
	return mm_host_slot_id(mm_host_thread.slot);
#else
	return mm_host_thread.cpu;
#endif
}

/* A hosted "CPU" is a thread the OS may preempt while it holds a heap
 * lock (in the kernel, interrupts are off instead), so a waiter gives its
 * core to the holder rather than spin: with more threads than cores, plain
 * spinning (worse under ThreadSanitizer) can stall for minutes. */
static inline void mm_cpu_relax(void)
{
	__builtin_ia32_pause();
	sched_yield();
}
/* For the same reason the heap's locks are test-and-set locks here
 * (mm/mlock.h): with more threads than cores a FIFO ticket lock waits for
 * a descheduled thread whose turn it is. */
#define MM_SPINLOCK_PREEMPTIBLE 1

/* Add d to this thread's depth, as a release store (the heap's writes
 * of the section before it). Only its thread writes it; a fork reads it.
 * On x86-64 one memory add on the %fs-relative variable itself (a store
 * is a release there, and the "memory" clobber keeps the compiler's
 * order); elsewhere, and under TSan, a load and a release store. */
static inline void mm_host_depth_add(int d)
{
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
	__asm__ volatile("addl %1, %0" : "+m"(mm_host_thread.depth) : "ri"(d) : "memory");
#else
	__atomic_store_n(&mm_host_thread.depth, mm_host_thread.depth + (unsigned)d,
			 __ATOMIC_RELEASE);
#endif
}

/* Mark this thread in (1) or out of (0) a fast path's section: a plain
 * store of its own byte, a release on the way out (the section's writes
 * before it). On x86-64 one %fs-relative store; under TSan an atomic
 * store. */
static inline void mm_host_fast_mark(unsigned char in)
{
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
	__asm__ volatile("movb %1, %0" : "=m"(mm_host_thread.fast) : "i"(in) : "memory");
#else
	__atomic_store_n(&mm_host_thread.fast, in, __ATOMIC_RELEASE);
#endif
}

/*
 * The fast paths' section and this slot's pointer (mm/platform.h): one
 * thread-local load of mm_host_thread.local, unless the build is
 * fork-safe (MM_HOST_FORK_SAFE: libspanheap.so, whose fork handlers need
 * it): then its fast mark set first and cleared at the end, plain stores
 * (a fork closes every gate, resets every local, then pairs the mark
 * with membarrier). The mark, not depth + 1 and - 1 as before: the 16 B
 * pair through libspanheap.so 9.17 -> 8.84 ns (interleaved medians of 9;
 * tcmalloc 7.43), with the same instructions: each add loaded the word
 * the add before it stored, a chain from call to call.
 * MM_CPU_LOCAL_NONE with no slot yet, a shared slot, a fork waiting, or
 * before the heap set the pointers. The fast paths contain no call this
 * way.
 */
#define MM_HAVE_CPU_LOCAL 1
static inline void *mm_irq_save_local(unsigned long *flags)
{
	*flags = 0;
#ifdef MM_HOST_FORK_SAFE
	mm_host_fast_mark(1);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
#endif
#ifdef __SANITIZE_THREAD__
	return __atomic_load_n(&mm_host_thread.local, __ATOMIC_RELAXED);
#else
	/* A relaxed load all the same (an aligned word: never torn), which
	 * GCC makes %fs-relative only as a plain or volatile one. */
	return *(void *volatile *)&mm_host_thread.local;
#endif
}

static inline void mm_irq_restore_local(unsigned long flags)
{
	(void)flags;
#ifdef MM_HOST_FORK_SAFE
	mm_host_fast_mark(0);
#endif
}

/* Record p as slot cpu's pointer, and give it to the slot's thread if its
 * gate is open (under the slot lock: the heap calls it outside any
 * section). */
void mm_host_cpu_local_set(unsigned cpu, void *p) MM_HOST_HIDDEN;
static inline void mm_cpu_local_set(unsigned cpu, void *p)
{
	mm_host_cpu_local_set(cpu, p);
}

/* mm_irq_save's own fast way: an exclusive slot (the slot's one load),
 * or, fork-safe, depth + 1 and an open gate. Declines (0) with no slot
 * yet, a shared slot, or a fork waiting. */
static inline int mm_host_irq_save_fast(void)
{
#ifndef MM_HOST_FORK_SAFE
	return __builtin_expect(mm_host_thread.slot - 1u < MM_HOST_EXCLUSIVE_SLOTS, 1);
#else
	mm_host_depth_add(1);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (__builtin_expect(__atomic_load_n(&mm_host_thread.gate, __ATOMIC_RELAXED) == 0, 0)) {
		mm_host_depth_add(-1);
		return 0;
	}
	return 1;
#endif
}

/* The fast way, else the slow half (a new slot, a shared slot's lock, a
 * fork to wait out). Returns 1 when a shared slot's lock was taken, else
 * 0. */
static inline unsigned long mm_irq_save(void)
{
	if (__builtin_expect(mm_host_irq_save_fast(), 1))
		return 0;
	return mm_host_irq_save_slow();
}

static inline void mm_irq_restore(unsigned long flags)
{
	if (__builtin_expect(flags == 1, 0)) {
		if (--mm_host_thread.shared_depth == 0)
			spin_unlock(&mm_host_shared_lock[mm_host_thread.cpu -
							 MM_HOST_EXCLUSIVE_SLOTS]);
		return;
	}
#ifdef MM_HOST_FORK_SAFE
	mm_host_depth_add(-1);
#endif
}

/* Count bits with popcnt when the CPU has it (found by a constructor in
 * platform_linux.c; 0 before it ran, or under TSan): sweeps and cache-word
 * loads, a dozen SWAR instructions fewer per word. */
extern int mm_host_have_popcnt MM_HOST_HIDDEN;
#define MM_HAVE_POPCOUNT64 1
static inline int mm_platform_popcount64(uint64_t x, unsigned *n)
{
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
	if (__builtin_expect(mm_host_have_popcnt, 1)) {
		uint64_t r;
		__asm__ volatile("popcnt %1, %0" : "=r"(r) : "rm"(x));   /* volatile: never run before the test */
		*n = (unsigned)r;
		return 1;
	}
#endif
	(void)x;
	(void)n;
	return 0;
}

/* The one-instruction hooks: an unlocked add for the counters, btr, bsf,
 * a cmp with a memory operand (the counter and the compare not under
 * TSan, which must see atomics). */
#include "lib/mm_hooks_x86_64.h"

/* An allocation is about to return NULL for want of memory (or a size
 * beyond any): what malloc must tell its caller, set here so that malloc
 * is kmalloc itself (mm/platform.h). */
#define MM_HAVE_ALLOC_FAILED 1
static inline void mm_alloc_failed(void)
{
	errno = ENOMEM;
}

/* Cap the bytes mm_sys_alloc may have handed out at once (0: no cap). */
void mm_host_set_sys_limit(size_t bytes);
/* Bytes handed out by mm_sys_alloc and not yet given back. */
size_t mm_host_sys_bytes(void);
/* Exclusive slots held by live threads now. */
unsigned mm_host_slots_in_use(void);

/* Around fork(): wait until no thread is inside the heap and hold every
 * slot and heap lock, release them after; in the child also free every
 * slot but the caller's (the other threads do not exist there).
 * libspanheap.so registers these with pthread_atfork. */
void mm_host_fork_prepare(void);
void mm_host_fork_parent(void);
void mm_host_fork_child(void);

#endif
