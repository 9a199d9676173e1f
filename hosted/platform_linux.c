/*
 * hosted/platform_linux.c - mm/platform.h on Linux: mmap for memory,
 * thread slots for CPUs, write(2) for logs.
 *
 * Memory: mm_sys_alloc maps anonymous memory, 8 KiB aligned: in the
 * heap's arena while it can ("The arena" below), else wherever mmap puts
 * it (mmap gives 4 KiB alignment: we map 8 KiB more and unmap the
 * misaligned head and the tail).
 * Every request is counted against an optional cap, so tests can simulate
 * running out of memory (mm_host_set_sys_limit).
 *
 * CPUs: see hosted/mm_platform.h. Exclusive slots are handed out from a
 * bitmap (compare-and-swap); a pthread key destructor drains the slot's
 * mcache when its thread exits and frees the slot. Threads beyond the
 * exclusive slots, and threads calling the heap after their own slot was
 * released at exit, share the last slots round robin, each behind a lock.
 *
 * Nothing here allocates: this code runs inside malloc when the library
 * is preloaded. Messages are formatted on the stack (hosted/format.c) and
 * written with write(2).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "mm/platform.h"
#include "mm/kmalloc.h"
#include "lib/spinlock.h"
#include "hosted/format.h"

__thread struct mm_host_thread mm_host_thread MM_HOST_TLS = { .local = MM_CPU_LOCAL_NONE };
int mm_host_forking;
int mm_host_have_popcnt;

__attribute__((constructor)) static void find_popcnt(void)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	mm_host_have_popcnt = __builtin_cpu_supports("popcnt");
#endif
}
spinlock_t mm_host_shared_lock[MM_HOST_SHARED_SLOTS];
/* This thread's exclusive slot was given back (it is exiting). */
static __thread unsigned char slot_released MM_HOST_TLS;

/* Bit i set: exclusive slot i is taken by a live thread. */
static uint64_t slot_used[(MM_HOST_EXCLUSIVE_SLOTS + 63) / 64];
/* slot_lock protects slot_thread[] (each exclusive slot's thread, whose
 * gate, local and depth a fork reaches through it), slot_local[] and
 * every thread's gate and local fields. Taken by a thread as it takes or
 * gives back an exclusive slot, by the heap setting the slots' pointers
 * (mm_host_cpu_local_set, outside any section), and by a fork from its
 * prepare to its parent or child handler, so a thread that exits
 * meanwhile waits before its thread-local data goes. */
static spinlock_t slot_lock = SPINLOCK_INIT("host_slots");
static struct mm_host_thread *slot_thread[MM_HOST_EXCLUSIVE_SLOTS];
/* Each slot's pointer from mm_cpu_local_set (its mcache),
 * MM_CPU_LOCAL_NONE until the heap sets it; copied into a thread's local
 * as its gate opens. */
static void *slot_local[MM_MAX_CPUS] = { [0 ... MM_MAX_CPUS - 1] = MM_CPU_LOCAL_NONE };
static pthread_key_t slot_key;
static pthread_once_t slot_key_once = PTHREAD_ONCE_INIT;
static unsigned shared_next;        /* round robin over the shared slots */

static size_t sys_limit;            /* 0: no cap */
static size_t sys_bytes;            /* handed out now */

/* ------------------------------------------------------------ slots -- */

static void slot_release(void *arg)
{
	(void)arg;
	struct mm_host_thread *t = &mm_host_thread;
	unsigned id = t->cpu;

	/* Give this thread's cached spans back before another thread can
	 * take the slot (and its mcache); the heap keeps what its policy
	 * retains, for the threads that live on. */
	kmem_release_this_cpu();
	spin_lock(&slot_lock);
	slot_released = 1;
	__atomic_store_n(&t->gate, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&t->local, MM_CPU_LOCAL_NONE, __ATOMIC_RELAXED);
	slot_thread[id] = NULL;
	t->slot = 0;
	spin_unlock(&slot_lock);
	__atomic_fetch_and(&slot_used[id / 64], ~(1ULL << (id % 64)),
			   __ATOMIC_RELEASE);
}

static void slot_key_create(void)
{
	if (pthread_key_create(&slot_key, slot_release) != 0)
		mm_panic("platform_linux: pthread_key_create failed");
}

static int take_exclusive_slot(void)
{
	for (unsigned w = 0; w < (MM_HOST_EXCLUSIVE_SLOTS + 63) / 64; w++) {
		uint64_t used = __atomic_load_n(&slot_used[w], __ATOMIC_RELAXED);
		while (~used) {
			unsigned bit = (unsigned)__builtin_ctzll(~used);
			unsigned id = w * 64 + bit;
			if (id >= MM_HOST_EXCLUSIVE_SLOTS)
				break;
			if (__atomic_compare_exchange_n(&slot_used[w], &used,
							used | (1ULL << bit), 0,
							__ATOMIC_ACQUIRE,
							__ATOMIC_RELAXED))
				return (int)id;
		}
	}
	return -1;
}

unsigned mm_host_slot_assign(void)
{
	struct mm_host_thread *t = &mm_host_thread;
	if (t->slot)
		return t->cpu;
	int id = slot_released ? -1 : take_exclusive_slot();
	if (id >= 0) {
		/* The slot is ours before pthread_setspecific runs: if that
		 * allocates (keys past the first 32 do), it finds the slot.
		 * A fork holds slot_lock throughout: the gate opens after. */
		t->cpu = (unsigned)id;
		t->slot = (unsigned)id + 1;
		spin_lock(&slot_lock);
		slot_thread[id] = t;
		__atomic_store_n(&t->gate, (unsigned)id + 1, __ATOMIC_RELAXED);
		__atomic_store_n(&t->local, slot_local[id], __ATOMIC_RELAXED);
		spin_unlock(&slot_lock);
		pthread_once(&slot_key_once, slot_key_create);
		pthread_setspecific(slot_key, (void *)(uintptr_t)(id + 1));
		return (unsigned)id;
	}
	unsigned k = __atomic_fetch_add(&shared_next, 1, __ATOMIC_RELAXED);
	t->cpu = MM_HOST_EXCLUSIVE_SLOTS + k % MM_HOST_SHARED_SLOTS;
	t->slot = (t->cpu + 1) | MM_HOST_SLOT_SHARED;
	return t->cpu;
}

unsigned long mm_host_irq_save_slow(void)
{
	struct mm_host_thread *t = &mm_host_thread;
	if (!t->slot)
		mm_host_slot_assign();
	if (t->slot & MM_HOST_SLOT_SHARED) {
		if (t->shared_depth++ == 0)
			spin_lock(&mm_host_shared_lock[t->cpu - MM_HOST_EXCLUSIVE_SLOTS]);
		return 1;
	}
#ifndef MM_HOST_FORK_SAFE
	return 0;   /* a new exclusive slot */
#else
	/* The fast way declined with its depth left as it was. Nested in
	 * a section (a fast path's too): go on (the fork waits for the
	 * outermost to end). */
	if (t->depth > 0 || __atomic_load_n(&t->fast, __ATOMIC_RELAXED)) {
		mm_host_depth_add(1);
		return 0;
	}
	/* Outermost, a fork waiting (or a new slot): the fast way's
	 * protocol once the fork is done (its gate is closed only while a
	 * fork runs, from before mm_host_forking is cleared). */
	for (;;) {
		while (__atomic_load_n(&mm_host_forking, __ATOMIC_ACQUIRE))
			sched_yield();
		mm_host_depth_add(1);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&t->gate, __ATOMIC_RELAXED))
			return 0;
		mm_host_depth_add(-1);
	}
#endif
}

unsigned mm_host_slots_in_use(void)
{
	unsigned n = 0;
	for (unsigned w = 0; w < (MM_HOST_EXCLUSIVE_SLOTS + 63) / 64; w++)
		n += (unsigned)__builtin_popcountll(__atomic_load_n(&slot_used[w],
								    __ATOMIC_RELAXED));
	return n;
}

/* ------------------------------------------------------------- fork -- */
/*
 * A thread of an exclusive slot changes its mcache and its spans without a
 * lock, so holding the heap's locks is not enough for a consistent copy in
 * the child: fork must also find no thread inside the heap. The forking
 * thread closes every thread's gate and resets its local pointer to
 * MM_CPU_LOCAL_NONE (under slot_lock, which it keeps until the fork is
 * done), then membarrier() makes every other thread of the process execute
 * a full barrier: afterwards, a thread that is in the heap has its depth
 * above 0 (or, in a fast path, its fast mark) visible to us, and one that
 * enters sees MM_CPU_LOCAL_NONE (the fast paths) or its gate closed
 * (mm_irq_save) and waits at the door (mm_host_irq_save_slow, while
 * mm_host_forking is set). We wait for every depth and every fast mark to
 * reach 0, take the shared slots' locks and every heap lock (the mheap and
 * mcentrals are also used outside mm_irq_save sections). This is the
 * asymmetric Dekker pattern: the fast path pays a plain store of its fast
 * mark and a load of its own thread's data, the rare fork pays the barrier.
 */

/* A full barrier on every thread of the process; false if the kernel has
 * no membarrier (then fork is only as safe as the locks make it). */
static int barrier_all_threads(void)
{
	static int registered;
	if (!registered && syscall(__NR_membarrier,
				   MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
		registered = 1;
	if (registered)
		return syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
	return syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0;
}

/* Open (or close: open false) every exclusive slot's gate, and give its
 * thread its local pointer (or MM_CPU_LOCAL_NONE); slot_lock held. */
static void set_gates(int open)
{
	for (unsigned i = 0; i < MM_HOST_EXCLUSIVE_SLOTS; i++)
		if (slot_thread[i]) {
			__atomic_store_n(&slot_thread[i]->gate, open ? i + 1 : 0,
					 __ATOMIC_RELAXED);
			__atomic_store_n(&slot_thread[i]->local, open ? slot_local[i] : MM_CPU_LOCAL_NONE,
					 __ATOMIC_RELAXED);
		}
}

void mm_host_cpu_local_set(unsigned cpu, void *p)
{
	spin_lock(&slot_lock);
	slot_local[cpu] = p;
	if (cpu < MM_HOST_EXCLUSIVE_SLOTS && slot_thread[cpu] &&
	    __atomic_load_n(&slot_thread[cpu]->gate, __ATOMIC_RELAXED))
		__atomic_store_n(&slot_thread[cpu]->local, p, __ATOMIC_RELAXED);
	spin_unlock(&slot_lock);
}

void mm_host_fork_prepare(void)
{
	/* This thread's slot first: no slot is taken while slot_lock is held
	 * here (the heap calls below would wait for the fork to end). */
	mm_host_slot_assign();
	spin_lock(&slot_lock);
	__atomic_store_n(&mm_host_forking, 1, __ATOMIC_SEQ_CST);
	set_gates(0);
	barrier_all_threads();
	for (unsigned i = 0; i < MM_HOST_EXCLUSIVE_SLOTS; i++)
		while (slot_thread[i] &&
		       (__atomic_load_n(&slot_thread[i]->depth, __ATOMIC_ACQUIRE) != 0 ||
			__atomic_load_n(&slot_thread[i]->fast, __ATOMIC_ACQUIRE) != 0))
			sched_yield();
	for (unsigned i = 0; i < MM_HOST_SHARED_SLOTS; i++)
		spin_lock(&mm_host_shared_lock[i]);
	kmem_lock_all();
}

void mm_host_fork_parent(void)
{
	kmem_unlock_all();
	for (unsigned i = MM_HOST_SHARED_SLOTS; i-- > 0;)
		spin_unlock(&mm_host_shared_lock[i]);
	set_gates(1);
	__atomic_store_n(&mm_host_forking, 0, __ATOMIC_RELEASE);
	spin_unlock(&slot_lock);
}

void mm_host_fork_child(void)
{
	kmem_unlock_all_in_child();
	for (unsigned i = 0; i < MM_HOST_SHARED_SLOTS; i++)
		spin_lock_init(&mm_host_shared_lock[i], "shared_slot");
	/* Only this thread lives on: every other exclusive slot is free, its
	 * mcache whole (a thread that takes one inherits its spans). */
	for (unsigned w = 0; w < (MM_HOST_EXCLUSIVE_SLOTS + 63) / 64; w++)
		slot_used[w] = 0;
	for (unsigned i = 0; i < MM_HOST_EXCLUSIVE_SLOTS; i++)
		slot_thread[i] = NULL;
	struct mm_host_thread *t = &mm_host_thread;
	if (t->slot && !(t->slot & MM_HOST_SLOT_SHARED)) {
		slot_used[t->cpu / 64] |= 1ULL << (t->cpu % 64);
		slot_thread[t->cpu] = t;
	}
	set_gates(1);   /* this thread's, if it has an exclusive slot */
	__atomic_store_n(&mm_host_forking, 0, __ATOMIC_RELEASE);
	spin_lock_init(&slot_lock, "host_slots");
}

/* ----------------------------------------------------------- memory -- */

void mm_host_set_sys_limit(size_t bytes)
{
	__atomic_store_n(&sys_limit, bytes, __ATOMIC_RELAXED);
}

size_t mm_host_sys_bytes(void)
{
	return __atomic_load_n(&sys_bytes, __ATOMIC_RELAXED);
}

/* Count bytes against the cap; false when the cap would be exceeded. */
static int sys_charge(size_t bytes)
{
	size_t cur = __atomic_load_n(&sys_bytes, __ATOMIC_RELAXED);
	for (;;) {
		size_t limit = __atomic_load_n(&sys_limit, __ATOMIC_RELAXED);
		if (limit && (cur > limit || bytes > limit - cur))
			return 0;
		if (__atomic_compare_exchange_n(&sys_bytes, &cur, cur + bytes, 0,
						__ATOMIC_RELAXED, __ATOMIC_RELAXED))
			return 1;
	}
}

/* Bytes no longer handed out (sys_charge's undo). */
static void sys_uncharge(size_t bytes)
{
	__atomic_fetch_sub(&sys_bytes, bytes, __ATOMIC_RELAXED);
}

/*
 * The arena (hosted/mm_platform.h, MM_HOST_ARENA_BASE..END): addresses
 * never mapped yet are handed out from arena_next up; a range given back
 * (munmap'd) is kept in arena_free, sorted by address and merged with its
 * neighbours, and the first that fits is used again, so a heap that maps
 * and unmaps chunks stays in the arena. A range given back when
 * arena_free is full is not used again (address space only). mm_sys_alloc
 * maps an arena range with MAP_FIXED_NOREPLACE, which fails if anything
 * is there already (another library's fixed mapping, a sanitizer's shadow
 * memory): the arena is closed then (arena_close), for good, and memory
 * comes from mmap wherever it likes, as it does once the arena is used
 * up. arena_lock protects the four (arena_free, arena_nfree, arena_next,
 * arena_closed); the heap calls mm_sys_alloc and mm_sys_free under one
 * of its mheap arenas' locks (several at once, then: this lock is what
 * serialises them), and tests call them directly. It is never held across a fork, which waits until no
 * thread is in the heap.
 */
#define ARENA_FREE_SLOTS 64
static struct { uintptr_t base, end; } arena_free[ARENA_FREE_SLOTS];
static unsigned arena_nfree;
static uintptr_t arena_next = MM_HOST_ARENA_BASE;
static bool arena_closed;
static spinlock_t arena_lock = SPINLOCK_INIT("arena");

/* Slot i of arena_free out, the rest moved down. Under arena_lock. */
static void arena_free_remove(unsigned i)
{
	for (unsigned j = i + 1; j < arena_nfree; j++)
		arena_free[j - 1] = arena_free[j];
	arena_nfree--;
}

/* An arena range of bytes for mm_sys_alloc to map, or 0 (none left, or
 * the arena closed). */
static uintptr_t arena_take(size_t bytes)
{
	uintptr_t a = 0;
	spin_lock(&arena_lock);
	for (unsigned i = 0; i < arena_nfree; i++) {
		if (arena_free[i].end - arena_free[i].base >= bytes) {
			a = arena_free[i].base;
			arena_free[i].base += bytes;
			if (arena_free[i].base == arena_free[i].end)
				arena_free_remove(i);
			break;
		}
	}
	if (!a && MM_HOST_ARENA_END - arena_next >= bytes) {
		a = arena_next;
		arena_next += bytes;
	}
	spin_unlock(&arena_lock);
	return a;
}

/* [base, base + bytes), unmapped, back to the arena: merged with the free
 * range before and after it, and with the untouched rest if it ends
 * there. */
static void arena_give(uintptr_t base, size_t bytes)
{
	uintptr_t end = base + bytes;
	spin_lock(&arena_lock);
	if (arena_closed) {
		spin_unlock(&arena_lock);
		return;
	}
	unsigned i = 0;
	while (i < arena_nfree && arena_free[i].end < base)
		i++;
	if (i < arena_nfree && arena_free[i].end == base) {
		arena_free[i].end = end;
		if (i + 1 < arena_nfree && arena_free[i + 1].base == end) {
			arena_free[i].end = arena_free[i + 1].end;
			arena_free_remove(i + 1);
		}
	} else if (i < arena_nfree && arena_free[i].base == end) {
		arena_free[i].base = base;
	} else if (arena_nfree < ARENA_FREE_SLOTS) {
		for (unsigned j = arena_nfree; j > i; j--)
			arena_free[j] = arena_free[j - 1];
		arena_free[i].base = base;
		arena_free[i].end = end;
		arena_nfree++;
	}
	if (arena_nfree && arena_free[arena_nfree - 1].end == arena_next) {
		arena_next = arena_free[arena_nfree - 1].base;
		arena_nfree--;
	}
	spin_unlock(&arena_lock);
}

/* Something else is in the arena: no more memory from it. */
static void arena_close(void)
{
	spin_lock(&arena_lock);
	arena_closed = true;
	arena_next = MM_HOST_ARENA_END;
	arena_nfree = 0;
	spin_unlock(&arena_lock);
}

void *mm_sys_alloc(size_t bytes)
{
	if (bytes == 0 || bytes % MM_SYS_ALIGN)
		mm_panic("mm_sys_alloc: bad size %zu", bytes);
	size_t align = MM_SYS_ALIGN;
	if (bytes > ((size_t)1 << 46) || !sys_charge(bytes))
		return NULL;

	/* In the arena while it lasts (8 KiB aligned, as every range it
	 * hands out); else anywhere, 8 KiB aligned by hand. */
	uintptr_t a = arena_take(bytes);
	if (a) {
		void *m = mmap((void *)a, bytes, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
		if (m == (void *)a)
			return m;
		if (m == MAP_FAILED && errno != EEXIST) {
			/* Out of memory or address space (RLIMIT_AS): not
			 * someone in the way. The range stays the arena's. */
			arena_give(a, bytes);
			sys_uncharge(bytes);
			return NULL;
		}
		/* Something is there (a kernel before 4.17 takes the flag
		 * for a hint and maps elsewhere). */
		if (m != MAP_FAILED)
			munmap(m, bytes);
		arena_close();
	}
	size_t maplen = bytes + align;
	char *m = mmap(NULL, maplen, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED) {
		sys_uncharge(bytes);
		return NULL;
	}
	uintptr_t start = ((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1);
	size_t head = start - (uintptr_t)m;
	size_t tail = maplen - head - bytes;
	if (head)
		munmap(m, head);
	if (tail)
		munmap((char *)start + bytes, tail);
	return (void *)start;
}

void mm_sys_free(void *p, size_t bytes)
{
	if (munmap(p, bytes) != 0)
		mm_panic("mm_sys_free: munmap(%p, %zu) failed: errno %d", p, bytes, errno);
	if ((uintptr_t)p >= MM_HOST_ARENA_BASE && (uintptr_t)p < MM_HOST_ARENA_END)
		arena_give((uintptr_t)p, bytes);
	sys_uncharge(bytes);
}

/* ---------------------------------------------------------- messages -- */

/* One line to stderr: formatted on the stack, one write(2). */
static void write_line(const char *prefix, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n = 0;
	while (*prefix && n < 64)
		buf[n++] = *prefix++;
	size_t room = sizeof buf - n - 1;   /* one byte kept for the newline */
	int len = spanheap_vsnprintf(buf + n, room, fmt, ap);
	if (len > 0)
		n += (size_t)len < room ? (size_t)len : room - 1;
	buf[n++] = '\n';
	for (size_t off = 0; off < n;) {
		ssize_t w = write(2, buf + off, n - off);
		if (w <= 0 && errno != EINTR)
			return;
		if (w > 0)
			off += (size_t)w;
	}
}

void mm_log(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	write_line("", fmt, ap);
	va_end(ap);
	errno = saved;
}

_Noreturn void mm_panic(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	write_line("spanheap panic: ", fmt, ap);
	va_end(ap);
	abort();
}
