/*
 * mm/platform.h - the seam between the heap and whatever runs it.
 *
 * Every file of mm/ reaches its host through this header and through
 * nothing else: no file of mm/ includes a header of the kernel, of lib/ or
 * of the tests, and none contains inline assembly or a build switch for a
 * particular host (tools/check-layers.sh checks both). The kernel provides
 * the seam in kernel/mm_platform.h + kernel/mm_platform.c, the hosted
 * build (Linux, mmap + pthreads) in hosted/mm_platform.h +
 * hosted/platform_linux.c. A hobby OS that lifts mm/ writes its own
 * mm_platform.h (found through its include path), which must provide:
 *
 *   static inline unsigned mm_cpu_id(void);
 *       Index of the running CPU, 0 <= id < MM_MAX_CPUS. Must be cheap: the
 *       kmalloc fast path calls it once. Only meaningful inside an
 *       mm_irq_save section (the caller cannot migrate).
 *   static inline unsigned long mm_irq_save(void);
 *   static inline void mm_irq_restore(unsigned long flags);
 *       Disable interrupts on this CPU and return the previous state /
 *       restore it; sections nest. The heap's fast paths run inside one,
 *       and so does every heap lock taken irqsave (mm/mlock.h). The hosted
 *       build counts a per-thread depth instead (a fork waits for 0).
 *   static inline void mm_cpu_relax(void);
 *       What a CPU does while it spins on a heap lock (x86: pause).
 *   static inline void *mm_irq_save_local(unsigned long *flags);  (optional)
 *   static inline void mm_irq_restore_local(unsigned long flags);
 *   static inline void mm_cpu_local_set(unsigned cpu, void *p);
 *       The kmalloc/kfree fast paths' section and their way to this CPU's
 *       state: one pointer per CPU that the heap sets with
 *       mm_cpu_local_set (this CPU's mcache, for every id at kmalloc_init,
 *       from the CPU that runs it). mm_irq_save_local opens a section like
 *       mm_irq_save and returns the running CPU's pointer, or
 *       MM_CPU_LOCAL_NONE where the fast paths may not run (never set yet;
 *       the hosted build: no thread slot yet, a shared slot, a fork
 *       waiting): the caller then closes the section
 *       (mm_irq_restore_local) and takes its slow path, which uses
 *       mm_irq_save. MM_CPU_LOCAL_NONE is the heap's empty mcache (Go's
 *       emptymspan): its every cache word reads 0, so the fast paths miss
 *       on it with the test they make anyway, and test no pointer for
 *       NULL; the platform starts every CPU's pointer with it. Define
 *       MM_HAVE_CPU_LOCAL with them; by default mm_irq_save / mm_irq_restore
 *       and a table the heap keeps, indexed by mm_cpu_id(): a multiply and
 *       an add more on kmalloc's fast path than a per-CPU load (the
 *       kernel's %gs, the hosted build's thread-local pointer, which is
 *       also its fork gate).
 *   static inline void *mm_fast_enter(unsigned long *flags);  (optional)
 *   static inline void mm_fast_exit(unsigned long flags);
 *   MM_FAST_TEXT
 *       The section of the fast paths proper (kmalloc's, kfree's, the
 *       tiny allocator's), for a platform that can keep interrupt
 *       handlers out of a range of code without an instruction in it:
 *       the heap puts MM_FAST_TEXT (an attribute, such as a section
 *       name) on every function that holds such a section, and the
 *       platform guarantees that no interrupt handler runs on a CPU
 *       while it executes code of those functions (the kernel defers
 *       one that arrives there until the CPU leaves the range:
 *       kernel/trap.c, "heap fast text"). mm_fast_enter then only
 *       returns the CPU's pointer (as mm_irq_save_local), mm_fast_exit
 *       does nothing. The heap's part of the bargain: between the two it
 *       calls nothing, and no function out of the range continues the
 *       section (kfree's miss opens an mm_irq_save_local section before
 *       it leaves the range, and that one goes on: a handler held back
 *       in the range must then wait for that section's end too), and a
 *       path that a fast path hands over to without such a section
 *       looks again at what the fast path found (a handler held back
 *       runs at the jump, and may have allocated: kmalloc's refill
 *       tries the cache word again, the tiny slow path the block). Define
 *       MM_HAVE_FAST_TEXT with the three; by default they are
 *       mm_irq_save_local and mm_irq_restore_local, and MM_FAST_TEXT is
 *       empty.
 *   static inline uint64_t mm_pagemap_flat_pages(void);  (optional)
 *       How many 8 KiB pages from MM_PAGEMAP_BASE on the heap's memory
 *       is likely to come from (the kernel: its RAM's; the hosted build:
 *       up to the end of its arena, hosted/mm_platform.h). At start-up the
 *       heap makes their page-map leaves in one block (mm/pagemap.h,
 *       "flat part": 8 bytes a page, about 0.1 % of them, rounded up to
 *       a power of two of leaves; fewer if mm_sys_alloc has no block that
 *       big), and kfree's fast path finds a span there with one compare
 *       and one load instead of the root's shift, mask and two loads.
 *       Define MM_HAVE_PAGEMAP_FLAT with it; by default the two levels
 *       everywhere.
 *   static inline void mm_alloc_failed(void);  (optional)
 *       Called as an allocation (kmalloc and the rest of mm/kmalloc.h's
 *       allocating calls) is about to return NULL because the request
 *       cannot be met: out of memory, or a size above KMALLOC_MAX_SIZE;
 *       not for an invalid argument (a bad alignment, a bad pointer to
 *       krealloc). The hosted build sets errno to ENOMEM there, so that
 *       malloc is kmalloc_noflags itself (hosted/dropin_aliases.h). Define
 *       MM_HAVE_ALLOC_FAILED with it; by default it does nothing.
 *   static inline int mm_platform_popcount64(uint64_t x, unsigned *n);
 *       (optional) Count the bits set in x into *n and return 1, or
 *       return 0 (the heap then counts them itself), for sweeps and
 *       cache-word loads (mm/bitops.h), kmalloc's fast path among them:
 *       inline, calling nothing. Define MM_HAVE_POPCOUNT64 with it;
 *       by default the compiler's popcnt when the target has it
 *       (-mpopcnt), else a SWAR sum of a dozen instructions. The hosted
 *       build and the kernel use popcnt when the CPU has it (the asm must
 *       be volatile, or the compiler may run it before the test).
 *   static inline void mm_platform_counter_inc(uint64_t *c);  (optional)
 *       Add 1 to a counter that only this CPU writes and other CPUs read
 *       (relaxed loads): the tiny and large frees' counts, among others
 *       (small frees are counted from the bitmaps, mm/mstats.c). Define
 *       MM_HAVE_COUNTER_INC with it; by default a relaxed load and store.
 *       On x86-64 one add to memory, not locked (an aligned 8-byte store
 *       is seen whole): two instructions fewer on kfree's fast path (the
 *       hosted build and the kernel; not under ThreadSanitizer, which must
 *       see the accesses as atomics).
 *   static inline bool mm_platform_bit_test_clear64(uint64_t *w, uint64_t b);
 *       (optional) Clear bit b % 64 of *w and return whether it was set
 *       (kfree's fast path, mm/bitops.h). Define MM_HAVE_BIT_TEST_CLEAR64
 *       with it; by default the C form, where the compiler masks b, tests
 *       and clears apart. On x86-64 one btr, which takes b modulo 64 and
 *       leaves the old bit in the carry flag: three instructions fewer
 *       (the hosted build and the kernel).
 *   static inline bool mm_platform_first_bit64(uint64_t x, uintptr_t *i);
 *       (optional) If x is not 0, the number of its lowest set bit into
 *       *i and true; else false (*i undefined): kmalloc's fast path on
 *       the cache word (mm/bitops.h). Define MM_HAVE_FIRST_BIT64 with it;
 *       by default a test of x and the compiler's ctz. On x86-64 one bsf,
 *       whose zero flag is the test (the same on every x86-64 CPU, where
 *       tzcnt's carry flag is not: it runs as bsf without BMI1) and whose
 *       result is already 64 bits (the compiler's ctz is an int, widened
 *       again): two instructions fewer.
 *   static inline bool mm_platform_ptr_eq_relaxed(void *const *p, const void *v);
 *       (optional) Whether the pointer at p, read as a relaxed atomic
 *       load, equals v: kfree's fast path on the span's local_cache.
 *       Define MM_HAVE_PTR_EQ_RELAXED with it; by default
 *       __atomic_load_n and ==, which gcc keeps as a load and a compare.
 *       On x86-64 one cmp with a memory operand (an aligned 8-byte read
 *       is atomic there): one instruction fewer.
 *   static inline void mm_platform_prefetch_write(const void *p);  (optional)
 *       A hint: bring p's line into this CPU's cache to be written. A
 *       remote free gives it the remote word before it reads the pair,
 *       so that the line comes over once, already writable for the
 *       atomic OR, instead of shared and then upgraded (mm/mcentral.c).
 *       Define MM_HAVE_PREFETCH_WRITE with it; by default the compiler's
 *       __builtin_prefetch(p, 1, 3) (a plain prefetch on x86-64 unless
 *       the target has PRFCHW). On x86-64 prefetchw, which CPUs older
 *       than PRFCHW run as a no-op.
 *   MM_MAX_CPUS (optional)
 *       How many CPUs (mcaches) there are; 64 when not defined.
 *   MM_RETAIN_MIN_BYTES (optional)
 *       The scavenger's floor: free chunks the heap keeps (retains) for
 *       reuse instead of giving them back with mm_sys_free, whatever the
 *       heap's size (mm/mscavenge.c); 8 MiB when not defined.
 *   MM_PCACHE_MAX_BYTES (optional)
 *       Free large-object pages each CPU keeps in its page cache, at
 *       most (mm/mpagecache.c); a multiple of the 8 KiB page, at least
 *       40 KiB; 1 MiB when not defined.
 *   MM_SPINLOCK_PREEMPTIBLE (optional)
 *       1 where a CPU may be preempted while it holds or waits for a heap
 *       lock (threads of a hosted build): the heap's locks are then
 *       test-and-set locks, which a running waiter takes, instead of FIFO
 *       ticket locks, which wait for the next in line to run (mm/mlock.h);
 *       0 when not defined.
 *   MM_PCACHE_KEEP_ON_MISS (optional)
 *       1: a CPU's page cache survives its large allocations that miss
 *       it (faster with several CPUs, but the heap fragments more: for
 *       big address spaces); 0 when not defined: a miss gives it back.
 *       Retained chunks are given back with the same mm_sys_free (whole
 *       chunks): no other seam function is needed.
 *   MM_HEAP_ARENAS (optional)
 *       How many instances (arenas) of the mheap there are; 1 when not
 *       defined. Arena 0 makes the small spans; each CPU's large objects
 *       come from arena cpu % MM_HEAP_ARENAS, so CPUs of different
 *       arenas allocate and free large objects under different locks
 *       (mm/mheap.h). More arenas: less contention, but free pages of one
 *       arena serve no other (for big address spaces).
 *   MM_OWNED_MAX_BYTES (optional)
 *       The most each CPU keeps in the partial sets of spans it owns but
 *       does not allocate from (mm/mcache.c): 4 MiB when not defined. A
 *       live set that breathes by more than this sends spans through
 *       the mcentrals and the mheap (locks, bitmap units, page-map
 *       entries) and back; the hosted build uses 8 MiB. A multiple of
 *       8 KiB.
 *   MM_CHUNK_MIN_BYTES (optional)
 *       The least the heap asks mm_sys_alloc for when it grows (a large
 *       object bigger than this gets a chunk of its own size): 1 MiB when
 *       not defined. Free runs never coalesce across chunks, so bigger
 *       chunks let freed large objects' pages serve the next ones, of
 *       other sizes, instead of new chunks (fresh pages, first-touch
 *       faults); the hosted build uses 8 MiB, where untouched pages cost
 *       no memory. A multiple of 8 KiB.
 *   MM_LARGE_GRAIN_PAGES (optional)
 *       Large objects (above 32 KiB) take a multiple of this many 8 KiB
 *       pages: 1 (whole pages) when not defined. A coarser grain wastes
 *       up to grain - 1 pages an object but makes objects start on fewer
 *       distinct pages, so a program that writes the start of its buffers
 *       touches (faults in) fewer pages; the hosted build uses 8 (64 KiB,
 *       mimalloc's slice), where untouched pages cost no memory.
 *   MM_SYS_ALLOC_ZEROED (optional, 0 or 1)
 *       1: every region mm_sys_alloc returns reads as zeros (a fresh
 *       anonymous mapping), so the heap does not clear what it needs
 *       zeroed (the page map's leaves, 1 MiB each: not writing them also
 *       keeps their untouched pages out of the process's memory); 0 when
 *       not defined. The hosted build sets 1.
 *   MM_PAGEMAP_BASE, MM_PAGEMAP_BITS (optional, both or neither)
 *       The page map's window (mm/pagemap.h): every chunk mm_sys_alloc
 *       returns must lie in [MM_PAGEMAP_BASE, MM_PAGEMAP_BASE +
 *       2^MM_PAGEMAP_BITS); one that does not is given back and the
 *       allocation fails as out of memory (mm_log says so once). BASE is an
 *       integer constant, a multiple of 8 KiB; BITS is 24..57. The page
 *       map's static part (its root, per-leaf counts and the empty leaf)
 *       shrinks with the window (docs/INTEGRATING.md has the table).
 *       Default: the 48-bit x86-64 canonical space (base
 *       0xffff800000000000, 48 bits), 3.5 MiB of .bss.
 *   MM_LOCK_DEBUG (optional, 0 or 1)
 *       1 turns on the heap locks' debug checks (mm/mlock.h): each lock
 *       records its holder, MM_HELD() checks the holder is this CPU, and a
 *       CPU that waits more than MM_LOCK_DEBUG_TICKS ticks for a lock
 *       panics naming the lock and its holder. The platform then also
 *       provides:
 *         int mm_lock_debug_cpu(void);      (holder id, callable any time)
 *         unsigned long long mm_lock_debug_clock(void);   (a cheap clock)
 *       (functions or static inline functions).
 *
 * and implements these functions:
 *
 *   void *mm_sys_alloc(size_t bytes);
 *       Hand the heap `bytes` of memory (a multiple of MM_SYS_ALIGN, 8 KiB),
 *       mapped read-write, need not be zeroed, or NULL when out of memory.
 *       Rule: the result MUST be MM_SYS_ALIGN aligned (fixalloc.c finds a
 *       block's header by masking an address to 8 KiB); no more alignment
 *       is needed. The sizes requested: 8 KiB (fixalloc blocks), a
 *       page-map leaf (PAGEMAP_LEAF_BYTES, 8 KiB to 1 MiB by the window:
 *       mm/pagemap.h), MM_CHUNK_MIN_BYTES (the least chunk, 1 MiB by
 *       default) and halves of it down to 1 MiB when it is refused, any
 *       multiple of 8 KiB above 1 MiB (a large object's chunk) and, when
 *       the least chunk is refused, a power of two from 64 KiB up (a large
 *       object's chunk of its own size), and with MM_HAVE_PAGEMAP_FLAT
 *       once the flat part's leaves in one block. A chunk must lie inside
 *       the page map's window (above). Called with heap locks held and
 *       interrupts off: must not call the heap. With MM_HEAP_ARENAS > 1,
 *       CPUs of different arenas may call it (and mm_sys_free) at the same
 *       time: it must be safe for that; with one arena the heap's lock
 *       serialises the calls.
 *   void mm_sys_free(void *p, size_t bytes);
 *       Give back a region exactly as obtained from mm_sys_alloc (same
 *       pointer and size). Same context as mm_sys_alloc.
 *   void mm_log(const char *fmt, ...);
 *       One diagnostic line; the hook adds the newline (formats have none).
 *       May run with heap locks held: must not allocate from the heap.
 *   _Noreturn void mm_panic(const char *fmt, ...);
 *       Report and stop (heap corruption; a bad free when built with
 *       SPANHEAP_PANIC_ON_BAD_FREE).
 *   void *memset(void *, int, size_t), void *memcpy(void *, const void *, size_t);
 *       The C library's (the kernel's lib/string.c).
 *   const char *mm_symbolize(const void *addr, unsigned long *offset);
 *       Optional (a weak symbol), referenced only with DEBUG_HEAP=1: the
 *       name of the function containing addr, for debug-mode reports
 *       (mm/mdebug.c); NULL if unknown.
 *
 * A no-op mm_irq_save (one CPU, no interrupts masked) is correct only if
 * no interrupt or signal handler ever calls the heap. docs/INTEGRATING.md states all of this as
 * the rules a new platform follows, with the memory the heap takes;
 * examples/minimal/ is the smallest platform, and tools/check-boundary.sh
 * checks that `nm -u` of mm/ alone is exactly the list above.
 *
 * Formats passed to mm_log / mm_panic use only: %d %u %x %s %c %p with the
 * l / ll / z length modifiers, '#', '-', '0' and a width.
 */
#ifndef MM_PLATFORM_H
#define MM_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What mm_irq_save_local returns where the fast paths may not run
 * (above): an mcache that is nobody's, its cache words 0 and no tiny
 * block (mm/mcache.c). */
struct mcache;
extern struct mcache mm_cpu_local_none;
#define MM_CPU_LOCAL_NONE ((void *)&mm_cpu_local_none)

#include "mm_platform.h"

#ifndef MM_MAX_CPUS
#define MM_MAX_CPUS 64
#endif

#ifndef MM_HAVE_CPU_LOCAL
/* The heap's table of per-CPU pointers (mm/malloc.c). */
extern void *mm_cpu_local_table[MM_MAX_CPUS];

static inline void *mm_irq_save_local(unsigned long *flags)
{
	*flags = mm_irq_save();
	return __atomic_load_n(&mm_cpu_local_table[mm_cpu_id()], __ATOMIC_RELAXED);
}

static inline void mm_irq_restore_local(unsigned long flags)
{
	mm_irq_restore(flags);
}

static inline void mm_cpu_local_set(unsigned cpu, void *p)
{
	__atomic_store_n(&mm_cpu_local_table[cpu], p, __ATOMIC_RELAXED);
}
#endif

#ifndef MM_HAVE_FAST_TEXT
#define MM_FAST_TEXT
static inline void *mm_fast_enter(unsigned long *flags)
{
	return mm_irq_save_local(flags);
}

static inline void mm_fast_exit(unsigned long flags)
{
	mm_irq_restore_local(flags);
}
#endif

#ifndef MM_HAVE_ALLOC_FAILED
static inline void mm_alloc_failed(void)
{
}
#endif

#ifndef MM_HAVE_COUNTER_INC
static inline void mm_platform_counter_inc(uint64_t *c)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}
#endif

#ifndef MM_HAVE_BIT_TEST_CLEAR64
static inline bool mm_platform_bit_test_clear64(uint64_t *w, uint64_t b)
{
	uint64_t m = 1ULL << (b & 63);
	bool was = (*w & m) != 0;
	*w &= ~m;
	return was;
}
#endif

#ifndef MM_HAVE_FIRST_BIT64
static inline bool mm_platform_first_bit64(uint64_t x, uintptr_t *i)
{
	if (x == 0)
		return false;
	*i = (uintptr_t)__builtin_ctzll(x);
	return true;
}
#endif

#ifndef MM_HAVE_PTR_EQ_RELAXED
static inline bool mm_platform_ptr_eq_relaxed(void *const *p, const void *v)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED) == v;
}
#endif

#ifndef MM_HAVE_PREFETCH_WRITE
static inline void mm_platform_prefetch_write(const void *p)
{
	__builtin_prefetch(p, 1, 3);
}
#endif

#ifndef MM_LOCK_DEBUG
#define MM_LOCK_DEBUG 0
#endif

#ifndef MM_RETAIN_MIN_BYTES
#define MM_RETAIN_MIN_BYTES (8UL << 20)
#endif

#ifndef MM_SYS_ALLOC_ZEROED
#define MM_SYS_ALLOC_ZEROED 0
#endif

#ifndef MM_PCACHE_MAX_BYTES
#define MM_PCACHE_MAX_BYTES (1UL << 20)
#endif

#ifndef MM_LARGE_GRAIN_PAGES
#define MM_LARGE_GRAIN_PAGES 1
#endif

#ifndef MM_OWNED_MAX_BYTES
#define MM_OWNED_MAX_BYTES (4UL << 20)
#endif

#ifndef MM_CHUNK_MIN_BYTES
#define MM_CHUNK_MIN_BYTES (1UL << 20)
#endif

#ifndef MM_PCACHE_KEEP_ON_MISS
#define MM_PCACHE_KEEP_ON_MISS 0
#endif

#ifndef MM_SPINLOCK_PREEMPTIBLE
#define MM_SPINLOCK_PREEMPTIBLE 0
#endif

#ifndef MM_HEAP_ARENAS
#define MM_HEAP_ARENAS 1
#endif

/* The heap's debug mode (mm/mdebug.c), a build switch: -DDEBUG_HEAP=1. */
#ifndef DEBUG_HEAP
#define DEBUG_HEAP 0
#endif

/* Granule and minimum alignment of mm_sys_alloc: one 8 KiB heap page. */
#define MM_SYS_ALIGN (8UL * 1024)

void *mm_sys_alloc(size_t bytes);
void mm_sys_free(void *p, size_t bytes);
void mm_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void mm_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void *memset(void *dst, int c, size_t n);
void *memcpy(void *restrict dst, const void *restrict src, size_t n);

#endif
