/*
 * hosted/platform_linux.c - mm/platform.h on Linux: mmap for memory,
 * thread slots for CPUs, write(2) for logs.
 *
 * Memory: mm_sys_alloc maps anonymous memory, 8 KiB aligned (mmap gives
 * 4 KiB: we map 8 KiB more and unmap the misaligned head and the tail).
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

__thread struct mm_host_thread mm_host_thread __attribute__((tls_model("initial-exec")));
struct mm_host_slot_state mm_host_slots[MM_HOST_EXCLUSIVE_SLOTS];
int mm_host_forking;
spinlock_t mm_host_shared_lock[MM_HOST_SHARED_SLOTS];
/* This thread's exclusive slot was given back (it is exiting). */
static __thread unsigned char slot_released __attribute__((tls_model("initial-exec")));

/* Bit i set: exclusive slot i is taken by a live thread. */
static uint64_t slot_used[(MM_HOST_EXCLUSIVE_SLOTS + 63) / 64];
static pthread_key_t slot_key;
static pthread_once_t slot_key_once = PTHREAD_ONCE_INIT;
static unsigned shared_next;        /* round robin over the shared slots */

static size_t sys_limit;            /* 0: no cap */
static size_t sys_bytes;            /* handed out now */

/* ------------------------------------------------------------ slots -- */

static void slot_release(void *arg)
{
	(void)arg;
	unsigned id = mm_host_slot_id(mm_host_thread.slot);

	/* Give this thread's cached spans back before another thread can
	 * take the slot (and its mcache); the heap keeps what its policy
	 * retains, for the threads that live on. */
	kmem_release_this_cpu();
	slot_released = 1;
	mm_host_thread.depth = NULL;
	mm_host_thread.slot = 0;
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
		return mm_host_slot_id(t->slot);
	int id = slot_released ? -1 : take_exclusive_slot();
	if (id >= 0) {
		/* The slot is ours before pthread_setspecific runs: if that
		 * allocates (keys past the first 32 do), it finds the slot. */
		t->slot = (unsigned)id + 1;
		t->depth = &mm_host_slots[id].depth;
		pthread_once(&slot_key_once, slot_key_create);
		pthread_setspecific(slot_key, (void *)(uintptr_t)(id + 1));
		return (unsigned)id;
	}
	unsigned k = __atomic_fetch_add(&shared_next, 1, __ATOMIC_RELAXED);
	t->slot = (MM_HOST_EXCLUSIVE_SLOTS + k % MM_HOST_SHARED_SLOTS + 1) | MM_HOST_SLOT_SHARED;
	return mm_host_slot_id(t->slot);
}

unsigned long mm_host_irq_save_slow(void)
{
	struct mm_host_thread *t = &mm_host_thread;
	if (!t->slot)
		mm_host_slot_assign();
	if (!t->depth) {
		if (t->shared_depth++ == 0)
			spin_lock(&mm_host_shared_lock[mm_host_slot_id(t->slot) -
						       MM_HOST_EXCLUSIVE_SLOTS]);
		return 1;
	}
#ifndef MM_HOST_FORK_SAFE
	return (unsigned long)t->depth;   /* a new exclusive slot */
#else
	/* The fast way declined with its depth left as it was. Nested in
	 * a section: go on (the fork waits for the outermost to end). */
	if (*t->depth > 0) {
		__atomic_store_n(t->depth, *t->depth + 1, __ATOMIC_RELAXED);
		return (unsigned long)t->depth;
	}
	/* Outermost, a fork waiting (or a new slot): the fast way's
	 * protocol once the fork is done. */
	for (;;) {
		while (__atomic_load_n(&mm_host_forking, __ATOMIC_ACQUIRE))
			sched_yield();
		__atomic_store_n(t->depth, 1, __ATOMIC_RELAXED);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&mm_host_forking, __ATOMIC_RELAXED))
			return (unsigned long)t->depth;
		__atomic_store_n(t->depth, 0, __ATOMIC_RELEASE);
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
 * A thread of an exclusive slot changes its mcache and its spans without
 * a lock, so holding the heap's locks is not enough for a consistent copy
 * in the child: fork must also find no thread inside the heap. The
 * forking thread sets mm_host_forking, then membarrier() makes every
 * other thread of the process execute a full barrier: afterwards, a
 * thread that is in the heap has its depth > 0 visible to us, and one that
 * enters sees the flag and waits at the door (mm_irq_save). We wait for
 * every depth to reach 0, take the shared slots' locks and every heap lock
 * (the mheap and mcentrals are also used outside mm_irq_save sections).
 * This is the asymmetric Dekker pattern: the fast path pays plain stores
 * and a load, the rare fork pays the barrier.
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

void mm_host_fork_prepare(void)
{
	__atomic_store_n(&mm_host_forking, 1, __ATOMIC_SEQ_CST);
	barrier_all_threads();
	for (unsigned i = 0; i < MM_HOST_EXCLUSIVE_SLOTS; i++)
		while (__atomic_load_n(&mm_host_slots[i].depth, __ATOMIC_ACQUIRE) != 0)
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
	__atomic_store_n(&mm_host_forking, 0, __ATOMIC_RELEASE);
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
	unsigned id = mm_host_slot_id(mm_host_thread.slot);
	if (mm_host_thread.depth)
		slot_used[id / 64] |= 1ULL << (id % 64);
	__atomic_store_n(&mm_host_forking, 0, __ATOMIC_RELEASE);
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

void *mm_sys_alloc(size_t bytes)
{
	if (bytes == 0 || bytes % MM_SYS_ALIGN)
		mm_panic("mm_sys_alloc: bad size %zu", bytes);
	size_t align = MM_SYS_ALIGN;
	if (bytes > ((size_t)1 << 46) || !sys_charge(bytes))
		return NULL;

	size_t maplen = bytes + align;
	char *m = mmap(NULL, maplen, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED) {
		__atomic_fetch_sub(&sys_bytes, bytes, __ATOMIC_RELAXED);
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
	__atomic_fetch_sub(&sys_bytes, bytes, __ATOMIC_RELAXED);
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
