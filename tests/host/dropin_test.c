/*
 * tests/host/dropin_test.c - libspanheap.so as a program's malloc.
 *
 * An ordinary program, built against the C library alone and run with
 * LD_PRELOAD=build/host/libspanheap.so (make host-dropin): it first proves
 * that the heap under it is spanheap (the library's spanheap_* extras are
 * found with dlsym and count its objects), then checks the C API at its
 * edges as glibc defines them (malloc(0), realloc(p, 0), errno, every
 * alignment the API accepts), and the things a real multithreaded program
 * needs: more threads than the heap has CPU slots, slots handed back when
 * threads exit, fork while other threads allocate (the child's heap passes
 * the verifier), bad frees reported and ignored, or fatal with
 * SPANHEAP_BAD_FREE=abort; and the heap's arena (hosted/mm_platform.h):
 * its memory is there, a range given back is used again, a mapping of
 * someone else's in its way sends the heap elsewhere. KTAP on stdout,
 * last line "N passed, N failed".
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include "mm/kmalloc.h"   /* struct kmem_stats */

static void (*sh_stats)(struct kmem_stats *);
static int (*sh_verify)(void);
static unsigned (*sh_threads)(void);

static int test_no, npassed, nfailed, cur_failed;

#define CHECK(cond, ...) do {                                             \
	if (!(cond)) {                                                    \
		printf("    # FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
		printf(__VA_ARGS__);                                      \
		printf("\n");                                             \
		cur_failed = 1;                                           \
	}                                                                 \
} while (0)

static void run(const char *name, void (*fn)(void))
{
	cur_failed = 0;
	fflush(stdout);
	fn();
	if (!cur_failed && sh_verify && sh_verify() != 0) {
		printf("    # FAIL: the heap verifier found a broken invariant after the test\n");
		cur_failed = 1;
	}
	printf("%s %d %s\n", cur_failed ? "not ok" : "ok", ++test_no, name);
	if (cur_failed)
		nfailed++;
	else
		npassed++;
	fflush(stdout);
}

/* Keep gcc from pairing a malloc with its free and dropping both. */
static void *opaque(void *p)
{
	__asm__ volatile("" : "+r"(p) : : "memory");
	return p;
}

static uint64_t live_objects(void)
{
	struct kmem_stats st;
	sh_stats(&st);
	return st.objects_inuse;
}

/* Wait for the child pid forked by a test, which must exit with 0;
 * what says what it was and what its other exit codes mean. */
static void check_child(pid_t pid, const char *what)
{
	int st = 0;
	CHECK(pid > 0 && waitpid(pid, &st, 0) == pid, "fork/wait failed");
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: status %#x", what, st);
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 7);
}

static int intact(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed + i * 7))
			return 0;
	return 1;
}

/* ------------------------------------------------------------ tests -- */

static void test_preloaded(void)
{
	CHECK(sh_stats && sh_verify && sh_threads,
	      "spanheap_stats/verify/threads not found: LD_PRELOAD the library");
	if (!sh_stats)
		return;
	uint64_t before = live_objects();
	void *p = opaque(malloc(100));
	CHECK(live_objects() == before + 1, "objects %llu -> %llu after malloc",
	      (unsigned long long)before, (unsigned long long)live_objects());
	free(p);
	CHECK(live_objects() == before, "objects %llu after free, expected %llu",
	      (unsigned long long)live_objects(), (unsigned long long)before);
}

static void test_zero_sizes(void)
{
	void *a = malloc(0), *b = malloc(0);
	CHECK(a && b && a != b, "malloc(0) gave %p and %p", a, b);
	free(a);
	free(b);
	uint64_t before = live_objects();
	void *p = opaque(malloc(40));
	errno = 0;
	void *q = realloc(p, 0);
	CHECK(q == NULL, "realloc(p, 0) returned %p, glibc returns NULL", q);
	CHECK(live_objects() == before, "realloc(p, 0) did not free p");
	q = realloc(NULL, 0);
	CHECK(q != NULL, "realloc(NULL, 0) returned NULL");
	free(q);
	CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu",
	      malloc_usable_size(NULL));
	free(NULL);
}

static void test_realloc_keeps_contents(void)
{
	static const size_t steps[] = { 10, 100, 5000, 40000, 3u << 20, 70000, 24, 1 };
	unsigned char *p = NULL;
	size_t have = 0;
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
		unsigned char *q = realloc(p, steps[i]);
		CHECK(q != NULL, "realloc to %zu failed", steps[i]);
		if (!q)
			break;
		size_t keep = have < steps[i] ? have : steps[i];
		CHECK(intact(q, keep, 3), "contents lost growing/shrinking to %zu", steps[i]);
		CHECK(malloc_usable_size(q) >= steps[i], "usable %zu < %zu",
		      malloc_usable_size(q), steps[i]);
		fill(q, steps[i], 3);
		p = q;
		have = steps[i];
	}
	free(p);
}

static void test_enomem(void)
{
	static const size_t huge[] = { SIZE_MAX, SIZE_MAX / 2, (size_t)1 << 63, (size_t)1 << 50 };
	for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
		errno = 0;
		void *p = malloc(huge[i]);
		CHECK(p == NULL && errno == ENOMEM, "malloc(%zu) = %p, errno %d", huge[i], p, errno);
	}
	errno = 0;
	void *p = calloc(SIZE_MAX / 2, 3);
	CHECK(p == NULL && errno == ENOMEM, "calloc overflow: %p, errno %d", p, errno);
	errno = 0;
	p = reallocarray(NULL, SIZE_MAX / 2, 3);
	CHECK(p == NULL && errno == ENOMEM, "reallocarray overflow: %p, errno %d", p, errno);
	unsigned char *keep = malloc(64);
	fill(keep, 64, 9);
	errno = 0;
	p = realloc(keep, SIZE_MAX - 4096);
	CHECK(p == NULL && errno == ENOMEM, "realloc(p, huge) = %p, errno %d", p, errno);
	CHECK(intact(keep, 64, 9), "a failed realloc changed the object");
	free(keep);
	void *out = (void *)1;
	CHECK(posix_memalign(&out, 64, SIZE_MAX - 4096) == ENOMEM, "posix_memalign huge");
	CHECK(out == (void *)1, "posix_memalign wrote %p on failure", out);
	errno = 0;
	p = aligned_alloc(4096, (size_t)1 << 62);
	CHECK(p == NULL && errno == ENOMEM, "aligned_alloc huge = %p, errno %d", p, errno);
}

/* The child's address space in bytes (the first field of statm). */
static size_t vm_bytes(void)
{
	unsigned long pages = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%lu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	return pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* Memory really exhausted (an address-space limit makes mmap fail), not
 * an impossible size: malloc, calloc and aligned_alloc of 64 MiB return
 * NULL with errno ENOMEM, and small objects still come. In a child, so
 * that the limit stays there; its exit status says which check failed. */
static int in_arena(const void *p);

static void test_enomem_when_exhausted(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct rlimit rl = { vm_bytes() + (16u << 20), RLIM_INFINITY };
		if (rl.rlim_cur == 16u << 20 || setrlimit(RLIMIT_AS, &rl) != 0)
			_exit(10);
		errno = 0;
		if (malloc(64u << 20) != NULL || errno != ENOMEM)
			_exit(11);
		errno = 0;
		if (calloc(1, 64u << 20) != NULL || errno != ENOMEM)
			_exit(12);
		errno = 0;
		if (aligned_alloc(1u << 20, 64u << 20) != NULL || errno != ENOMEM)
			_exit(13);
		void *small = malloc(100);
		if (!small)
			_exit(14);
		free(small);
		/* Running out of address space did not close the heap's
		 * arena (only someone else's mapping there does). */
		rl.rlim_cur = RLIM_INFINITY;
		void *big = setrlimit(RLIMIT_AS, &rl) == 0 ? malloc(64u << 20) : NULL;
		if (!big || !in_arena(big))
			_exit(16);
		free(big);
		_exit(sh_verify() == 0 ? 0 : 15);
	}
	check_child(pid, "child under a 16 MiB address-space margin (10 setrlimit, 11 malloc, "
			 "12 calloc, 13 aligned_alloc not NULL+ENOMEM, 14 no small object, "
			 "15 verifier, 16 no 64 MiB in the arena once the limit is lifted)");
}

static void test_bad_alignments(void)
{
	void *p = NULL;
	CHECK(posix_memalign(&p, 24, 8) == EINVAL, "posix_memalign align 24");
	CHECK(posix_memalign(&p, 4, 8) == EINVAL, "posix_memalign align 4 < sizeof(void *)");
	CHECK(posix_memalign(&p, 0, 8) == EINVAL, "posix_memalign align 0");
	errno = 0;
	p = memalign(SIZE_MAX, 8);
	CHECK(p == NULL && errno == EINVAL, "memalign(SIZE_MAX) = %p, errno %d", p, errno);
	/* glibc rounds an alignment that is not a power of two up. */
	p = memalign(24, 100);
	CHECK(p && (uintptr_t)p % 32 == 0, "memalign(24) = %p, not 32-aligned", p);
	free(p);
	p = aligned_alloc(48, 10);
	CHECK(p && (uintptr_t)p % 64 == 0, "aligned_alloc(48) = %p, not 64-aligned", p);
	free(p);
}

static void test_every_alignment(void)
{
	static const size_t sizes[] = { 1, 24, 100, 4096, 5000, 40000, 3u << 20 };
	for (size_t align = 8; align <= ((size_t)1 << 22); align <<= 1) {
		for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
			size_t n = sizes[s];
			void *ptrs[3] = { 0 };
			CHECK(posix_memalign(&ptrs[0], align, n) == 0, "posix_memalign(%zu, %zu)", align, n);
			ptrs[1] = aligned_alloc(align, n);
			ptrs[2] = memalign(align, n);
			for (int k = 0; k < 3; k++) {
				CHECK(ptrs[k] && (uintptr_t)ptrs[k] % align == 0,
				      "call %d (align %zu, size %zu) = %p", k, align, n, ptrs[k]);
				if (!ptrs[k])
					continue;
				CHECK(malloc_usable_size(ptrs[k]) >= n, "usable %zu < %zu",
				      malloc_usable_size(ptrs[k]), n);
				fill(ptrs[k], n, (unsigned)(align + s));
			}
			for (int k = 0; k < 3; k++) {
				if (ptrs[k])
					CHECK(intact(ptrs[k], n, (unsigned)(align + s)), "overwritten");
				free(ptrs[k]);
			}
		}
	}
	long pg = sysconf(_SC_PAGESIZE);
	void *v = valloc(100), *pv = pvalloc(1), *pv0 = pvalloc(0);
	CHECK(v && (uintptr_t)v % (size_t)pg == 0, "valloc = %p", v);
	CHECK(pv && (uintptr_t)pv % (size_t)pg == 0 && malloc_usable_size(pv) >= (size_t)pg,
	      "pvalloc(1) = %p, usable %zu", pv, pv ? malloc_usable_size(pv) : 0);
	CHECK(pv0 != NULL, "pvalloc(0) = NULL");
	free(v);
	free(pv);
	free(pv0);
}

static void test_malloc_alignment(void)
{
	void *ptrs[4097];
	for (size_t n = 1; n <= 4096; n++) {
		ptrs[n] = malloc(n);
		size_t want = n % 16 == 0 ? 16 : 8;
		CHECK(ptrs[n] && (uintptr_t)ptrs[n] % want == 0, "malloc(%zu) = %p", n, ptrs[n]);
		if (ptrs[n])
			memset(ptrs[n], 0xa5, n);
	}
	for (size_t n = 1; n <= 4096; n++)
		free(ptrs[n]);
}

static void test_calloc_zeroes_reused_memory(void)
{
	static const size_t sizes[] = { 8, 200, 3000, 40000, 1u << 20 };
	for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
		size_t n = sizes[s];
		unsigned char *p = malloc(n);
		memset(p, 0xff, n);
		free(p);
		unsigned char *q = calloc(1, n);
		size_t nonzero = 0;
		for (size_t i = 0; i < n; i++)
			nonzero += q[i] != 0;
		CHECK(nonzero == 0, "calloc(1, %zu): %zu bytes not zero", n, nonzero);
		free(q);
	}
}

static void test_sized_frees_and_trim(void)
{
	/* C23's; glibc 2.36 has neither, so they must be the library's. */
	void (*fs)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
	void (*fas)(void *, size_t, size_t) =
		(void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
	CHECK(fs && fas, "free_sized / free_aligned_sized not exported");
	if (!fs || !fas)
		return;
	uint64_t before = live_objects();
	void *p = malloc(300), *q = aligned_alloc(256, 1000);
	fs(p, 300);
	fas(q, 256, 1000);
	CHECK(live_objects() == before, "free_sized/free_aligned_sized did not free");
	CHECK(malloc_trim(0) == 1, "malloc_trim");
}

/* -------------------------------------------------------- threading -- */

enum { MANY_THREADS = 150, PER_THREAD = 400 };

struct many {
	pthread_barrier_t all_alive;
	void *handoff[MANY_THREADS][PER_THREAD / 2];
	int bad[MANY_THREADS];
};

static struct many *many;

static void *many_worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	void *mine[PER_THREAD];
	uint64_t rng = id * 0x9e3779b97f4a7c15ULL + 1;
	for (int i = 0; i < PER_THREAD; i++) {
		rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
		size_t n = 1 + rng % 3000;
		mine[i] = malloc(n);
		if (!mine[i]) {
			many->bad[id] = 1;
			continue;
		}
		memset(mine[i], (int)id, n < 16 ? n : 16);
	}
	for (int i = 0; i < PER_THREAD / 2; i++)
		many->handoff[id][i] = mine[i];
	/* Every thread is alive at once: more than the heap has slots. */
	pthread_barrier_wait(&many->all_alive);
	for (int i = PER_THREAD / 2; i < PER_THREAD; i++)
		free(mine[i]);
	pthread_barrier_wait(&many->all_alive);
	/* Free what the neighbour handed over (a cross-thread free). */
	unsigned from = (id + 1) % MANY_THREADS;
	for (int i = 0; i < PER_THREAD / 2; i++) {
		unsigned char *p = many->handoff[from][i];
		if (p && p[0] != (unsigned char)from)
			many->bad[id] = 1;
		free(p);
	}
	return NULL;
}

static void test_more_threads_than_slots(void)
{
	many = calloc(1, sizeof *many);
	pthread_barrier_init(&many->all_alive, NULL, MANY_THREADS);
	pthread_t t[MANY_THREADS];
	uint64_t before = live_objects();
	for (unsigned i = 0; i < MANY_THREADS; i++)
		CHECK(pthread_create(&t[i], NULL, many_worker, (void *)(uintptr_t)i) == 0,
		      "pthread_create %u", i);
	for (unsigned i = 0; i < MANY_THREADS; i++)
		pthread_join(t[i], NULL);
	for (unsigned i = 0; i < MANY_THREADS; i++)
		CHECK(!many->bad[i], "thread %u saw a NULL or a clobbered object", i);
	/* glibc keeps a few exited threads' stacks in a cache, each with its
	 * malloc'd TLS vector: a handful of objects, not hundreds. */
	CHECK(live_objects() <= before + 16, "objects %llu after all threads, before %llu",
	      (unsigned long long)live_objects(), (unsigned long long)before);
	pthread_barrier_destroy(&many->all_alive);
	free(many);
}

static void *short_worker(void *arg)
{
	(void)arg;
	void *p[64];
	for (int i = 0; i < 64; i++)
		p[i] = malloc(16 + (size_t)i * 40);
	for (int i = 0; i < 64; i++)
		free(p[i]);
	return NULL;
}

static void test_thread_exit_releases_slot(void)
{
	unsigned base = sh_threads();
	struct kmem_stats st0, st1;
	for (int i = 0; i < 20; i++) {
		pthread_t t;
		pthread_create(&t, NULL, short_worker, NULL);
		pthread_join(t, NULL);
	}
	sh_stats(&st0);
	for (int i = 0; i < 500; i++) {
		pthread_t t;
		pthread_create(&t, NULL, short_worker, NULL);
		pthread_join(t, NULL);
	}
	sh_stats(&st1);
	CHECK(sh_threads() == base, "threads holding a slot: %u, before %u", sh_threads(), base);
	CHECK(st1.span_bytes_inuse <= st0.span_bytes_inuse,
	      "spans in use grew from %llu to %llu over 500 exited threads",
	      (unsigned long long)st0.span_bytes_inuse,
	      (unsigned long long)st1.span_bytes_inuse);
}

static volatile int fork_stop;

static void *fork_churner(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	void *ring[256] = { 0 };
	unsigned i = 0;
	while (!fork_stop) {
		free(ring[i % 256]);
		ring[i % 256] = malloc(8 + (i * 37 + id) % 5000);
		if ((i & 1023) == 0) {
			void *big = malloc(100000);
			free(big);
		}
		i++;
	}
	for (i = 0; i < 256; i++)
		free(ring[i]);
	return NULL;
}

static void test_fork_while_threads_allocate(void)
{
	enum { WORKERS = 3, FORKS = 40 };
	pthread_t t[WORKERS];
	fork_stop = 0;
	for (unsigned i = 0; i < WORKERS; i++)
		pthread_create(&t[i], NULL, fork_churner, (void *)(uintptr_t)i);
	int bad_children = 0;
	for (int f = 0; f < FORKS; f++) {
		usleep(2000);
		pid_t pid = fork();
		if (pid == 0) {
			/* The child: one thread; its heap must be whole. */
			void *p[500];
			for (int i = 0; i < 500; i++)
				p[i] = malloc((size_t)(i * 53) % 9000 + 1);
			for (int i = 0; i < 500; i++)
				free(p[i]);
			pthread_t c;
			pthread_create(&c, NULL, short_worker, NULL);
			pthread_join(c, NULL);
			_exit(sh_verify() == 0 ? 0 : 3);
		}
		int status = 0;
		waitpid(pid, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			printf("    # child %d: status %#x\n", f, status);
			bad_children++;
		}
	}
	fork_stop = 1;
	for (unsigned i = 0; i < WORKERS; i++)
		pthread_join(t[i], NULL);
	CHECK(bad_children == 0, "%d of %d children failed", bad_children, FORKS);
}

/* ----------------------------------------------------------- arena -- */

/* hosted/mm_platform.h's MM_HOST_ARENA_BASE and MM_HOST_ARENA_END: this
 * program is built against the C library alone, not the heap's headers. */
#define ARENA_BASE (4ULL << 30)
#define ARENA_END (32ULL << 30)

static int in_arena(const void *p)
{
	return (uintptr_t)p >= ARENA_BASE && (uintptr_t)p < ARENA_END;
}

/* The mappings of this process that overlap [ARENA_BASE, ARENA_END), in
 * address order, from /proc/self/maps (read with read(2) into a static
 * buffer). Returns how many, at most max. */
static int arena_mappings(uintptr_t lo[], uintptr_t hi[], int max)
{
	static char buf[1 << 20];
	int fd = open("/proc/self/maps", O_RDONLY), n = 0;
	size_t len = 0;
	ssize_t r;
	if (fd < 0)
		return -1;
	while (len + 1 < sizeof(buf) && (r = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)r;
	close(fd);
	buf[len] = 0;
	for (char *line = buf; *line && n < max;) {
		unsigned long a, b;
		if (sscanf(line, "%lx-%lx", &a, &b) == 2 && b > ARENA_BASE && a < ARENA_END) {
			lo[n] = a;
			hi[n] = b;
			n++;
		}
		char *nl = strchr(line, '\n');
		if (!nl)
			break;
		line = nl + 1;
	}
	return n;
}

/* Is any byte of [p, p + n) mapped? */
static int any_mapped(const void *p, size_t n)
{
	uintptr_t lo[256], hi[256], a = (uintptr_t)p, b = a + n;
	int k = arena_mappings(lo, hi, 256);
	for (int i = 0; i < k; i++)
		if (lo[i] < b && hi[i] > a)
			return 1;
	return 0;
}

static void test_heap_in_its_arena(void)
{
	void *small = opaque(malloc(100)), *big = opaque(malloc(1u << 20));
	CHECK(small && in_arena(small), "a small object at %p, outside the arena", small);
	CHECK(big && in_arena(big), "a large object at %p, outside the arena", big);
	free(small);
	free(big);
}

/* A chunk given back (munmap'd) leaves its range to the arena, whose next
 * chunk of that size is mapped there or below, not above. */
static void test_arena_range_given_back_is_used_again(void)
{
	size_t big = (size_t)256 << 20, above = (size_t)128 << 20;
	char *p = opaque(malloc(big)), *q = opaque(malloc(above));
	CHECK(p && q && in_arena(p) && in_arena(q), "objects at %p and %p", (void *)p, (void *)q);
	if (!p || !q)
		return;
	p[0] = p[big - 1] = 1;
	free(p);
	malloc_trim(0);
	CHECK(!any_mapped(p, big), "the freed 256 MiB at %p still mapped after malloc_trim",
	      (void *)p);
	char *r = opaque(malloc(big));
	CHECK(r && in_arena(r) && r <= p,
	      "the next 256 MiB at %p, not in the range given back at %p or below", (void *)r,
	      (void *)p);
	free(r);
	free(q);
	malloc_trim(0);
}

/* In a child: a mapping of someone else's in every free part of the arena
 * (as a sanitizer's shadow memory would be). The heap's next chunk comes
 * from anywhere else, objects from before stay good, the verifier passes. */
static void test_arena_in_the_way(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		char *early = malloc(3000);
		if (!early || !in_arena(early))
			_exit(10);
		memset(early, 7, 3000);
		uintptr_t lo[256], hi[256], at = ARENA_BASE;
		int k = arena_mappings(lo, hi, 256);
		if (k < 0)
			_exit(11);
		for (int i = 0; i <= k; i++) {
			uintptr_t end = i < k ? lo[i] : ARENA_END;
			if (end > at && mmap((void *)at, end - at, PROT_NONE,
					     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
						     MAP_FIXED_NOREPLACE,
					     -1, 0) != (void *)at)
				_exit(12);
			if (i < k && hi[i] > at)
				at = hi[i];
		}
		size_t n = (size_t)300 << 20;
		char *big = malloc(n);
		if (!big || in_arena(big))
			_exit(13);
		big[0] = big[n - 1] = 1;
		void *small[2000];
		for (int i = 0; i < 2000; i++)
			if (!(small[i] = malloc((size_t)(i * 37) % 5000 + 1)))
				_exit(14);
		for (int i = 0; i < 2000; i++)
			free(small[i]);
		for (int i = 0; i < 3000; i++)
			if (early[i] != 7)
				_exit(15);
		free(early);
		free(big);
		_exit(sh_verify() == 0 ? 0 : 16);
	}
	check_child(pid, "child with the arena taken (10 first object not in the arena, "
			 "11 no /proc/self/maps, 12 could not map over the arena, 13 the big "
			 "object NULL or in the arena, 14 a small object NULL, 15 an old object "
			 "changed, 16 verifier)");
}

/* ------------------------------------------------------- bad frees -- */

/* Run fn in a child with stderr into a pipe; returns its stderr text. */
static void child_stderr(void (*fn)(void), char *buf, size_t size, int *status)
{
	int fds[2];
	if (pipe(fds) != 0) {
		buf[0] = 0;
		return;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		fn();
		_exit(sh_verify() == 0 ? 0 : 3);
	}
	close(fds[1]);
	size_t n = 0;
	ssize_t r;
	while (n + 1 < size && (r = read(fds[0], buf + n, size - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = 0;
	close(fds[0]);
	waitpid(pid, status, 0);
}

static void bad_frees(void)
{
	int on_stack;
	char *p = opaque(malloc(64));
	free(opaque(&on_stack));   /* never from the heap */
	free(p + 8);               /* interior */
	free(p);
	free(opaque(p));           /* double */
	char *q = opaque(malloc(100000));
	free(q);
	free(opaque(q));           /* double, large */
	struct kmem_stats st;
	sh_stats(&st);
	_exit(st.bad_frees == 4 && sh_verify() == 0 ? 0 : 4);
}

static void test_bad_frees_reported_and_ignored(void)
{
	char err[4096];
	int status = -1;
	child_stderr(bad_frees, err, sizeof err, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child status %#x (4: bad_frees count or verifier wrong)", status);
	CHECK(strstr(err, "not a heap pointer") != NULL, "no report of the stack pointer: %s", err);
	CHECK(strstr(err, "not the start of an object") != NULL, "no report of the interior pointer");
	CHECK(strstr(err, "double free") != NULL, "no report of the double free");
}

static void test_bad_free_abort_switch(void)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 2);
		setenv("SPANHEAP_BAD_FREE", "abort", 1);
		execl("/proc/self/exe", "dropin_test", "--double-free", (char *)NULL);
		_exit(5);
	}
	int status = 0;
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
	      "with SPANHEAP_BAD_FREE=abort a double free should abort; status %#x", status);
}

/* Run in child_stderr's child: this program again as `--stats-child`,
 * with SPANHEAP_STATS=stats_value. */
static const char *stats_value;

static void exec_stats_child(void)
{
	setenv("SPANHEAP_STATS", stats_value, 1);
	execl("/proc/self/exe", "dropin_test", "--stats-child", (char *)NULL);
	_exit(5);
}

static void stats_child(const char *value, char *buf, size_t size, int *status)
{
	stats_value = value;
	child_stderr(exec_stats_child, buf, size, status);
}

/* The stats child's second thread: a large object of 1 MiB kept live,
 * from the arena of the thread's own slot. */
static void *stats_child_big;
static void *stats_child_thread(void *arg)
{
	(void)arg;
	free(opaque(malloc(16)));   /* a slot of its own from here on */
	stats_child_big = opaque(malloc(1 << 20));
	return NULL;
}

/* The child: 1 000 objects of 200 bytes allocated, 37 kept live, and a
 * second thread's 1 MiB object, then a return from main (the table is
 * printed by the library's destructor). */
static int stats_child_main(void)
{
	static char *keep[37];
	pthread_t t;
	if (pthread_create(&t, NULL, stats_child_thread, NULL) || pthread_join(t, NULL) ||
	    !stats_child_big)
		return 7;
	for (int i = 0; i < 1000; i++) {
		char *p = opaque(malloc(200));
		p[0] = 1;
		if (i % 27 == 0 && i / 27 < 37)
			keep[i / 27] = p;
		else
			free(p);
	}
	return keep[36] ? 0 : 6;
}

static void test_stats_at_exit(void)
{
	static char err[65536];
	int status = -1;
	stats_child("1", err, sizeof err, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	CHECK(strstr(err, "slabinfo - spanheap") != NULL,
	      "SPANHEAP_STATS=1: no slabinfo table on stderr at exit; stderr: %.200s", err);
	/* kmalloc-208 (200 bytes' class): 37 live objects of the child's. */
	const char *line = strstr(err, "kmalloc-208 ");
	unsigned long live = 0;
	CHECK(line && sscanf(line, "kmalloc-208 %lu", &live) == 1 && live >= 37,
	      "expected the kmalloc-208 line with at least 37 active objects, saw %.80s",
	      line ? line : "(no line)");
	CHECK(strstr(err, "objects: ") != NULL && strstr(err, "metadata: ") != NULL,
	      "the totals (objects, metadata) missing");
	/* Arena 0 (the small spans) and the second thread's arena, which
	 * holds its 1 MiB object. */
	unsigned long kib = 0;
	const char *a1 = strstr(err, "arena 1: ");
	const char *large = a1 ? strstr(a1, "KiB small spans, ") : NULL;
	CHECK(strstr(err, "arena 0: ") != NULL && large &&
	      sscanf(large, "KiB small spans, %lu KiB large", &kib) == 1 && kib >= 1024,
	      "expected lines for arena 0 and arena 1 (with at least 1024 KiB large), saw %.300s",
	      a1 ? a1 : "(no arena 1 line)");
	stats_child("0", err, sizeof err, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	CHECK(strstr(err, "slabinfo") == NULL, "SPANHEAP_STATS=0 printed the table: %.200s", err);
}

/* glibc's statistics calls answer from the heap: mallinfo2's bytes in
 * use move by exactly what was allocated (1 000 objects of 200 bytes, at
 * their class's 208), fordblks + uordblks is arena, mallinfo agrees, and
 * mallopt accepts glibc's knobs. */
static void test_glibc_statistics_calls(void)
{
	static char *p[1000];
	struct mallinfo2 before = mallinfo2();
	for (int i = 0; i < 1000; i++)
		p[i] = opaque(malloc(200));
	struct mallinfo2 during = mallinfo2();
	for (int i = 0; i < 1000; i++)
		free(p[i]);
	struct mallinfo2 after = mallinfo2();
	CHECK(during.uordblks - before.uordblks == 1000 * 208,
	      "expected uordblks to grow by 208000, saw %zu -> %zu", before.uordblks,
	      during.uordblks);
	CHECK(after.uordblks == before.uordblks, "expected uordblks back at %zu, saw %zu",
	      before.uordblks, after.uordblks);
	CHECK(during.arena > 0 && during.uordblks + during.fordblks == during.arena,
	      "expected uordblks + fordblks == arena, saw %zu + %zu, %zu", during.uordblks,
	      during.fordblks, during.arena);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	struct mallinfo old = mallinfo();   /* deprecated, still called by programs */
#pragma GCC diagnostic pop
	struct mallinfo2 now = mallinfo2();
	CHECK((size_t)old.uordblks == now.uordblks && (size_t)old.arena == now.arena,
	      "mallinfo %d/%d against mallinfo2 %zu/%zu", old.uordblks, old.arena, now.uordblks,
	      now.arena);
	CHECK(mallopt(M_ARENA_MAX, 1) == 1, "mallopt(M_ARENA_MAX, 1) should be accepted");
}

/* glibc's own names for its allocator reach the heap too: objects from
 * __libc_malloc and friends are the heap's (counted, freed by free with
 * no report), and __libc_free frees what malloc gave. */
static void test_libc_names_reach_the_heap(void)
{
	void *(*lmalloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_malloc");
	void (*lfree)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "__libc_free");
	void *(*lcalloc)(size_t, size_t) =
		(void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_calloc");
	void *(*lrealloc)(void *, size_t) =
		(void *(*)(void *, size_t))dlsym(RTLD_DEFAULT, "__libc_realloc");
	void *(*lmemalign)(size_t, size_t) =
		(void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_memalign");
	CHECK(lmalloc && lfree && lcalloc && lrealloc && lmemalign, "a __libc_ name not found");
	if (!(lmalloc && lfree && lcalloc && lrealloc && lmemalign))
		return;
	CHECK(lmalloc == (void *(*)(size_t))malloc && lfree == (void (*)(void *))free,
	      "__libc_malloc/__libc_free should be malloc/free themselves");
	struct kmem_stats st0, st1, st2;
	sh_stats(&st0);
	char *a = opaque(lmalloc(100));
	char *b = opaque(lcalloc(10, 30));
	char *c = opaque(lmemalign(4096, 5000));
	char *d = opaque(malloc(40));
	memset(a, 7, 100);
	a = opaque(lrealloc(a, 3000));
	sh_stats(&st1);
	bool zero = b != NULL;
	for (int i = 0; zero && i < 300; i++)
		zero = b[i] == 0;
	CHECK(a && a[99] == 7, "__libc_realloc lost the contents");
	CHECK(zero, "__libc_calloc memory not zeroed");
	CHECK(c && ((uintptr_t)c & 4095) == 0, "__libc_memalign(4096) gave %p", (void *)c);
	CHECK(st1.objects_inuse - st0.objects_inuse == 4,
	      "expected 4 more heap objects, saw %llu -> %llu",
	      (unsigned long long)st0.objects_inuse, (unsigned long long)st1.objects_inuse);
	free(a);
	free(b);
	free(c);
	lfree(d);
	sh_stats(&st2);
	CHECK(st2.bad_frees == st0.bad_frees && st2.objects_inuse == st0.objects_inuse,
	      "frees across the two names: %llu bad frees, objects %llu -> %llu",
	      (unsigned long long)(st2.bad_frees - st0.bad_frees),
	      (unsigned long long)st0.objects_inuse, (unsigned long long)st2.objects_inuse);
}

/* malloc_info: glibc's XML, with the free slots of the 208-byte class
 * (200-byte requests) among its sizes; options other than 0 refused. */
static void test_malloc_info_xml(void)
{
	static char *p[40];
	for (int i = 0; i < 40; i++)
		p[i] = opaque(malloc(200));
	for (int i = 0; i < 10; i++)
		free(p[i]);
	char *xml = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&xml, &len);
	int r = f ? malloc_info(0, f) : -2;
	if (f)
		fclose(f);
	const char *line = xml ? strstr(xml, "<size from=\"208\" to=\"208\"") : NULL;
	unsigned long long total = 0, count = 0;
	CHECK(r == 0 && xml && strncmp(xml, "<malloc version=\"1\">", 20) == 0 &&
		      strstr(xml, "</malloc>") != NULL,
	      "malloc_info(0) returned %d and wrote %.120s", r, xml ? xml : "(nothing)");
	CHECK(line && sscanf(line, "<size from=\"208\" to=\"208\" total=\"%llu\" count=\"%llu\"",
			     &total, &count) == 2 && count >= 10 && total == count * 208,
	      "expected a 208-byte size with at least 10 free slots, saw %.80s",
	      line ? line : "(none)");
	free(xml);
	for (int i = 10; i < 40; i++)
		free(p[i]);
	errno = 0;
	CHECK(malloc_info(1, stderr) == -1 && errno == EINVAL,
	      "malloc_info(1) should fail with EINVAL (errno %d)", errno);
}

static void call_malloc_stats(void)
{
	char *p = opaque(malloc(200));
	malloc_stats();
	free(p);
}

static void test_malloc_stats_prints_the_table(void)
{
	static char err[65536];
	int status = -1;
	child_stderr(call_malloc_stats, err, sizeof err, &status);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	CHECK(strstr(err, "slabinfo - spanheap") != NULL && strstr(err, "kmalloc-208 ") != NULL,
	      "malloc_stats: no slabinfo table with kmalloc-208 on stderr: %.200s", err);
}

int main(int argc, char **argv)
{
	sh_stats = (void (*)(struct kmem_stats *))dlsym(RTLD_DEFAULT, "spanheap_stats");
	sh_verify = (int (*)(void))dlsym(RTLD_DEFAULT, "spanheap_verify");
	sh_threads = (unsigned (*)(void))dlsym(RTLD_DEFAULT, "spanheap_threads");
	if (argc > 1 && strcmp(argv[1], "--double-free") == 0) {
		char *p = opaque(malloc(32));
		free(p);
		free(opaque(p));
		return 0;   /* not reached with SPANHEAP_BAD_FREE=abort */
	}
	if (argc > 1 && strcmp(argv[1], "--stats-child") == 0)
		return stats_child_main();

	printf("KTAP version 1\n1..24\n");
	run("dropin.preloaded_heap_counts_objects", test_preloaded);
	if (!sh_stats) {
		printf("# spanheap is not the malloc of this process; stopping\n");
		printf("%d passed, %d failed\n", npassed, nfailed + 23);   /* the 23 not run */
		return 1;
	}
	run("dropin.zero_sizes_as_glibc", test_zero_sizes);
	run("dropin.realloc_keeps_contents", test_realloc_keeps_contents);
	run("dropin.enomem_on_impossible_sizes", test_enomem);
	run("dropin.enomem_when_memory_runs_out", test_enomem_when_exhausted);
	run("dropin.bad_alignments_refused_or_rounded", test_bad_alignments);
	run("dropin.every_alignment_up_to_4M", test_every_alignment);
	run("dropin.malloc_alignment_8_or_16", test_malloc_alignment);
	run("dropin.calloc_zeroes_reused_memory", test_calloc_zeroes_reused_memory);
	run("dropin.sized_frees_and_trim", test_sized_frees_and_trim);
	run("dropin.more_threads_than_slots", test_more_threads_than_slots);
	run("dropin.thread_exit_releases_slot", test_thread_exit_releases_slot);
	run("dropin.fork_while_threads_allocate", test_fork_while_threads_allocate);
	run("dropin.heap_memory_in_its_arena", test_heap_in_its_arena);
	run("dropin.arena_range_given_back_is_used_again", test_arena_range_given_back_is_used_again);
	run("dropin.arena_in_the_way", test_arena_in_the_way);
	run("dropin.bad_frees_reported_and_ignored", test_bad_frees_reported_and_ignored);
	run("dropin.bad_free_abort_switch", test_bad_free_abort_switch);
	run("dropin.stats_at_exit_switch", test_stats_at_exit);
	run("dropin.glibc_statistics_calls", test_glibc_statistics_calls);
	run("dropin.malloc_stats_prints_the_table", test_malloc_stats_prints_the_table);
	run("dropin.malloc_info_xml", test_malloc_info_xml);
	run("dropin.libc_names_reach_the_heap", test_libc_names_reach_the_heap);
	run("dropin.heap_verifies_at_the_end", test_preloaded);
	printf("%d passed, %d failed\n", npassed, nfailed);
	return nfailed != 0;
}
