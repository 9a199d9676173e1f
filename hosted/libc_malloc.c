/*
 * hosted/libc_malloc.c - the C library's allocation API over the heap:
 * what makes build/host/libspanheap.so a drop-in malloc.
 *
 * Every function is a thin veneer over mm/kmalloc.h with glibc's
 * behaviour at the edges: malloc(0) is a unique pointer, realloc(p, 0)
 * frees p and returns NULL, a failure sets errno to ENOMEM (the heap does
 * that, through mm_alloc_failed in hosted/mm_platform.h; EINVAL for a
 * bad alignment is set here), memalign/aligned_alloc round an alignment
 * that is not a power of two up to the next one (as glibc 2.36 does),
 * posix_memalign wants a power of two that is a multiple of
 * sizeof(void *). Objects are
 * aligned as the heap aligns them (mm/kmalloc.h): 8 bytes at least,
 * 16 for every size class that is a multiple of 16. Nothing here
 * allocates behind the heap's back, so the library can sit under any
 * program with LD_PRELOAD: the heap initialises itself on first use with
 * mmap alone.
 *
 * A bad free (a pointer the heap never gave out, a double free) is
 * reported on stderr with the caller's address and ignored;
 * SPANHEAP_BAD_FREE=abort in the environment makes it abort instead, as
 * glibc's MALLOC_CHECK_=3 does. Threads are CPUs (hosted/mm_platform.h);
 * fork is safe: every heap lock is held across it (pthread_atfork).
 *
 * Only the functions below are exported from libspanheap.so (the version
 * script hosted/libspanheap.map); the heap's own symbols stay local.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "mm/kmalloc.h"
#include "mm/platform.h"

#define EXPORT __attribute__((visibility("default")))

static int is_pow2(size_t x)
{
	return x && !(x & (x - 1));
}

static void *enomem(void)
{
	errno = ENOMEM;
	return NULL;
}

/* malloc and free are not here: they are kmalloc_noflags and kfree
 * themselves (hosted/dropin_aliases.h). A failing allocation sets errno
 * in the heap (mm_alloc_failed, hosted/mm_platform.h); kfree's report
 * names free's caller. */

EXPORT void *calloc(size_t n, size_t size)
{
	return kcalloc(n, size, 0);
}

EXPORT void *realloc(void *p, size_t size)
{
	if (p && size == 0) {
		kfree(p);
		return NULL;
	}
	return krealloc(p, size, 0);
}

EXPORT void *reallocarray(void *p, size_t n, size_t size)
{
	size_t bytes;
	if (__builtin_mul_overflow(n, size, &bytes))
		return enomem();
	return realloc(p, bytes);
}

/* glibc's memalign: an alignment up to 8 is plain malloc's, one that is
 * not a power of two is rounded up to the next. */
EXPORT void *memalign(size_t align, size_t size)
{
	if (align <= 8)
		return malloc(size);
	if (align > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	if (!is_pow2(align))
		align = (size_t)1 << (64 - __builtin_clzll(align));
	return kmalloc_aligned(size, align, 0);
}

EXPORT void *aligned_alloc(size_t align, size_t size)
{
	return memalign(align, size);
}

EXPORT int posix_memalign(void **out, size_t align, size_t size)
{
	if (!is_pow2(align) || align % sizeof(void *))
		return EINVAL;
	void *p = align <= 8 ? kmalloc(size, 0) : kmalloc_aligned(size, align, 0);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

static size_t page_size(void)
{
	static size_t pg;
	if (!pg)
		pg = (size_t)sysconf(_SC_PAGESIZE);
	return pg;
}

EXPORT void *valloc(size_t size)
{
	return memalign(page_size(), size);
}

EXPORT void *pvalloc(size_t size)
{
	size_t pg = page_size();
	if (size > SIZE_MAX - pg)
		return enomem();
	size = size ? (size + pg - 1) & ~(pg - 1) : pg;
	return memalign(pg, size);
}

EXPORT size_t malloc_usable_size(void *p)
{
	return ksize(p);
}

/* C23's sized frees: the heap knows every object's size. */
EXPORT void free_sized(void *p, size_t size)
{
	(void)size;
	kfree(p);
}

EXPORT void free_aligned_sized(void *p, size_t align, size_t size)
{
	(void)align;
	(void)size;
	kfree(p);
}

/* glibc's: give cached memory back; 1 when something may have been. */
EXPORT int malloc_trim(size_t pad)
{
	(void)pad;
	kmem_release_request();   /* the other threads give theirs back soon */
	kmem_drain_this_cpu();
	return 1;
}

/* glibc's own names for its allocator (__libc_malloc and friends), which
 * some programs and libraries call to reach "the real malloc" behind a
 * hook: the heap here too, so that no pointer of glibc's arenas meets the
 * heap's free, nor the other way round (jemalloc and tcmalloc export them
 * for the same reason). __libc_malloc and __libc_free are malloc and free
 * themselves (--defsym, Makefile). */
EXPORT void *__libc_calloc(size_t n, size_t size)
{
	return calloc(n, size);
}

EXPORT void *__libc_realloc(void *p, size_t size)
{
	return realloc(p, size);
}

EXPORT void *__libc_memalign(size_t align, size_t size)
{
	return memalign(align, size);
}

EXPORT void *__libc_valloc(size_t size)
{
	return valloc(size);
}

EXPORT void *__libc_pvalloc(size_t size)
{
	return pvalloc(size);
}

/* glibc's statistics, from kmem_get_stats (exact when no other thread
 * is in the heap, approximate while others run). glibc's fields for its
 * own structures (fastbins, mmapped chunks, free-chunk counts) have no
 * counterpart here and are 0: large objects live in the heap's chunks,
 * not in mappings of their own.
 *   arena     the pages of the heap's chunks (objects, free runs, caches)
 *   uordblks  bytes in live objects (small ones at their class's size)
 *   fordblks  arena - uordblks: free slots, free runs, cached pages
 *   keepcost  retained bytes (free runs and page caches) malloc_trim or
 *             the scavenger may give back */
EXPORT struct mallinfo2 mallinfo2(void)
{
	struct kmem_stats st;
	struct mallinfo2 mi;
	kmem_get_stats(&st);
	memset(&mi, 0, sizeof mi);
	size_t used = st.object_bytes_inuse + st.large_bytes;
	mi.arena = st.chunk_bytes;
	mi.uordblks = used;
	mi.fordblks = st.chunk_bytes > used ? st.chunk_bytes - used : 0;
	mi.keepcost = st.retained_bytes;
	return mi;
}

static int saturated_int(size_t n)
{
	return n > INT_MAX ? INT_MAX : (int)n;
}

/* The same in ints (glibc's older call; saturated, where glibc wraps). */
EXPORT struct mallinfo mallinfo(void)
{
	struct mallinfo2 m2 = mallinfo2();
	struct mallinfo mi;
	memset(&mi, 0, sizeof mi);
	mi.arena = saturated_int(m2.arena);
	mi.uordblks = saturated_int(m2.uordblks);
	mi.fordblks = saturated_int(m2.fordblks);
	mi.keepcost = saturated_int(m2.keepcost);
	return mi;
}

/* glibc prints its arenas on stderr; this prints the heap's slabinfo
 * table and totals (kmem_dump), as SPANHEAP_STATS does at exit. */
EXPORT void malloc_stats(void)
{
	kmem_dump();
}

/* glibc's XML report, in glibc's elements: one heap, whose <sizes> are
 * the free slots of each small span class (from = to = the object size,
 * count = free slots, total = their bytes; glibc lists its free chunks
 * there), "rest" their sum plus the free runs and cached pages
 * (keepcost), "current" the bytes held from the system. options must be
 * 0 (glibc's rule): else -1 and EINVAL. */
EXPORT int malloc_info(int options, FILE *fp)
{
	if (options != 0) {
		errno = EINVAL;
		return -1;
	}
	/* The first write may allocate fp's buffer: before the figures. */
	fputs("<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n", fp);
	struct kmem_stats st;
	kmem_get_stats(&st);
	uint64_t count = 0, bytes = 0;
	struct kmem_class_stats all[KMEM_SPAN_CLASSES];   /* 10 KiB, on a thread's stack */
	kmem_get_all_class_stats(all);
	for (unsigned spc = 2; spc < KMEM_SPAN_CLASSES; spc++) {
		struct kmem_class_stats cs = all[spc];
		/* The tiny class (16-byte noscan blocks) counts tiny objects, not
		 * slots; malloc never uses it. */
		if (cs.noscan && cs.object_size == 16)
			continue;
		uint64_t slots = cs.spans * cs.objects_per_span;
		uint64_t free_slots = slots > cs.objects_inuse ? slots - cs.objects_inuse : 0;
		if (!free_slots)
			continue;
		fprintf(fp, "  <size from=\"%u\" to=\"%u\" total=\"%llu\" count=\"%llu\"/>\n",
			cs.object_size, cs.object_size,
			(unsigned long long)(free_slots * cs.object_size),
			(unsigned long long)free_slots);
		count += free_slots;
		bytes += free_slots * cs.object_size;
	}
	fprintf(fp, "</sizes>\n<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
		"<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>\n"
		"<system type=\"current\" size=\"%llu\"/>\n"
		"<aspace type=\"total\" size=\"%llu\"/>\n</heap>\n"
		"<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
		"<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>\n"
		"<total type=\"mmap\" count=\"0\" size=\"0\"/>\n"
		"<system type=\"current\" size=\"%llu\"/>\n"
		"<aspace type=\"total\" size=\"%llu\"/>\n</malloc>\n",
		(unsigned long long)count, (unsigned long long)(bytes + st.retained_bytes),
		(unsigned long long)st.heap_bytes, (unsigned long long)st.chunk_bytes,
		(unsigned long long)count, (unsigned long long)(bytes + st.retained_bytes),
		(unsigned long long)st.heap_bytes, (unsigned long long)st.chunk_bytes);
	return 0;
}

/* glibc's tuning knobs (M_ARENA_MAX, M_MMAP_THRESHOLD, ...) tune glibc's
 * own structures: accepted and ignored (1, success, as tcmalloc answers;
 * the heap's own bounds, and its number of arenas, MM_HEAP_ARENAS, are
 * build constants in hosted/mm_platform.h). */
EXPORT int mallopt(int param, int value)
{
	(void)param;
	(void)value;
	return 1;
}

/* ------------------------------------------- spanheap's own extras -- */

/* Heap statistics, the slabinfo table, the verifier and the number of
 * threads holding an exclusive slot (threads on a shared slot are not
 * counted): for tests and curious programs (dlsym them). */
EXPORT void spanheap_stats(struct kmem_stats *st)
{
	kmem_get_stats(st);
}

EXPORT void spanheap_dump(void)
{
	kmem_dump();
}

EXPORT int spanheap_verify(void)
{
	return mheap_verify();
}

EXPORT unsigned spanheap_threads(void)
{
	return mm_host_slots_in_use();
}

/* ----------------------------------------------------------- set-up -- */

/* SPANHEAP_STATS set (and not "0"): the slabinfo table and the heap's
 * totals (kmem_dump) on stderr when the program exits, as mimalloc's
 * MIMALLOC_SHOW_STATS and jemalloc's stats_print do. */
static bool show_stats_at_exit;

static void read_environment(void)
{
	const char *v = getenv("SPANHEAP_BAD_FREE");
	if (v && v[0] == 'a')   /* "abort" */
		kmem_set_panic_on_bad_free(1);
	v = getenv("SPANHEAP_STATS");
	show_stats_at_exit = v && v[0] && strcmp(v, "0") != 0;
}

/* At exit (exit() or a return from main; not _exit): threads still
 * running may move the counters while they are read (kmem_dump's
 * snapshot is exact only when the heap is quiet). */
__attribute__((destructor)) static void libspanheap_fini(void)
{
	if (show_stats_at_exit)
		kmem_dump();
}

/* Runs when the library is loaded (malloc may have run before: the heap
 * initialises itself on first use). */
__attribute__((constructor)) static void libspanheap_init(void)
{
	read_environment();
	kmalloc_init();
	pthread_atfork(mm_host_fork_prepare, mm_host_fork_parent, mm_host_fork_child);
}
