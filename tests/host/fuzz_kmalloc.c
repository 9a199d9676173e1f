/*
 * tests/host/fuzz_kmalloc.c - libFuzzer harness for the heap's public API.
 *
 * Each input is a little program: every operation is one byte of opcode
 * followed by the bytes it needs (missing bytes read as zero). Operations
 * allocate into one of 64 slots (kmalloc, kzalloc, kcalloc, kmalloc_aligned;
 * tiny, small, medium and large sizes, with or without KM_ZERO/KM_NOSCAN),
 * free, krealloc, ask ksize, cap the platform's memory with
 * mm_host_set_sys_limit() to provoke out-of-memory, drain the caches and run
 * mheap_verify(). A shadow model knows what every live object must hold (a
 * pattern derived from its id), its size and alignment; every new object
 * is checked against every live one for overlap. At the end of the input
 * everything is freed, the cap is lifted, the heap is verified,
 * and no bad free may have been counted (the harness never passes a bad
 * pointer). Any broken expectation aborts, which libFuzzer reports as a
 * crash with the input that caused it.
 *
 * Built with clang -fsanitize=fuzzer,address,undefined (tests/host/host.mk:
 * make fuzz, make host-fuzz-short).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mm/kmalloc.h"
#include "mm/sizeclasses.h"
#include "tests/kernel/heap_align.h"   /* the promised alignment */
#include "mm/platform.h" /* mm_host_set_sys_limit, mm_host_sys_bytes */

#define NSLOTS 64
#define FULL_CHECK 4096

struct slot {
	uint8_t *p;
	size_t size;
	uint64_t id;
	bool live;
};

static struct slot slots[NSLOTS];
static uint64_t next_id;
static bool capped;

struct input {
	const uint8_t *d;
	size_t n, at;
};

static uint64_t get(struct input *in, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++) {
		uint64_t b = in->at < in->n ? in->d[in->at] : 0;
		in->at++;
		v |= b << (8 * i);
	}
	return v;
}

#define FAIL(...)                                                             \
	do {                                                                  \
		fprintf(stderr, "fuzz_kmalloc: " __VA_ARGS__);                \
		fprintf(stderr, "\n");                                        \
		abort();                                                      \
	} while (0)

/* ---------------------------------------------------------------- pattern */

static uint8_t pattern(uint64_t id, size_t i)
{
	uint64_t x = (id << 20 ^ (i >> 3)) * 0x9e3779b97f4a7c15ULL;
	x ^= x >> 31;
	return (uint8_t)(x >> ((i & 7) * 8));
}

/* Objects above FULL_CHECK bytes: the first and last KiB. */
static bool region(size_t size, int k, size_t *from, size_t *to)
{
	if (size <= FULL_CHECK) {
		*from = 0, *to = size;
		return k == 0;
	}
	if (k == 0)
		*from = 0, *to = 1024;
	else if (k == 1)
		*from = size - 1024, *to = size;
	else
		return false;
	return true;
}

static void fill(uint8_t *p, uint64_t id, size_t size)
{
	size_t from, to;
	for (int k = 0; region(size, k, &from, &to); k++)
		for (size_t i = from; i < to; i++)
			p[i] = pattern(id, i);
}

/* Check the pattern of an object of `size` bytes in its first `limit`. */
static void check(const uint8_t *p, uint64_t id, size_t size, size_t limit,
		  const char *when)
{
	size_t from, to;
	for (int k = 0; region(size, k, &from, &to); k++)
		for (size_t i = from; i < to && i < limit; i++)
			if (p[i] != pattern(id, i))
				FAIL("%s: object %p (id %llu, %zu bytes): byte %zu "
				     "is %#x, expected %#x", when, (void *)p,
				     (unsigned long long)id, size, i, p[i],
				     pattern(id, i));
}

static void check_zero(const uint8_t *p, size_t size)
{
	size_t from, to;
	for (int k = 0; region(size, k, &from, &to); k++)
		for (size_t i = from; i < to; i++)
			if (p[i])
				FAIL("zeroed object %p of %zu bytes: byte %zu is %#x",
				     (void *)p, size, i, p[i]);
}

/* ------------------------------------------------------------ the model */

/* A new object: alignment, ksize, no overlap with any live object. A
 * krealloc'ed object (resized) only promises the base alignment: it may
 * have stayed where it was, in a bigger class. */
static void take(struct slot *s, uint8_t *p, size_t size, unsigned flags,
		 size_t align, bool zeroed, bool resized)
{
	size_t want = resized ? (size >= 16 ? heap_expected_align(p, size, 0) : 1)
			      : heap_promised_align(p, size, flags, align);
	if ((uintptr_t)p % want)
		FAIL("object %p of %zu bytes (flags %#x, align %zu) not "
		     "%zu-aligned", (void *)p, size, flags, align, want);
	if (ksize(p) < size)
		FAIL("ksize(%p) = %zu < %zu", (void *)p, ksize(p), size);
	uintptr_t a0 = (uintptr_t)p, a1 = a0 + (size ? size : 1);
	for (int i = 0; i < NSLOTS; i++) {
		struct slot *o = &slots[i];
		if (!o->live || o == s)
			continue;
		uintptr_t b0 = (uintptr_t)o->p, b1 = b0 + (o->size ? o->size : 1);
		if (a0 < b1 && b0 < a1)
			FAIL("new object %p+%zu overlaps live %p+%zu", (void *)p,
			     size, (void *)o->p, o->size);
	}
	if (zeroed)
		check_zero(p, size);
	s->p = p;
	s->size = size;
	s->id = ++next_id;
	s->live = true;
	fill(p, s->id, size);
}

static void drop(struct slot *s)
{
	if (!s->live)
		return;
	check(s->p, s->id, s->size, s->size, "before kfree");
	kfree(s->p);
	s->live = false;
	s->p = NULL;
}

static size_t pick_size(struct input *in, uint8_t kind)
{
	switch (kind & 3) {
	case 0: return 1 + get(in, 1) % (TINY_SIZE - 1);
	case 1: return get(in, 2) % (SMALL_SIZE_MAX + 1);
	case 2: return get(in, 2) % (MAX_SMALL_SIZE + 1);
	default:
		if (kind & 4)
			return MAX_SMALL_SIZE + 1 + get(in, 3) % (2u << 20);
		return MAX_SMALL_SIZE + 1 + get(in, 2) * 16;
	}
}

static void op_alloc(struct input *in)
{
	struct slot *s = &slots[get(in, 1) % NSLOTS];
	uint8_t b = (uint8_t)get(in, 1);
	size_t size = pick_size(in, b);
	unsigned flags = ((b >> 3) & 1 ? KM_NOSCAN : 0) | ((b >> 4) & 1 ? KM_ZERO : 0);
	if ((b & 3) == 0)
		flags |= KM_NOSCAN; /* the tiny path */
	size_t align = 0;
	bool zeroed = flags & KM_ZERO;
	uint8_t *p;

	drop(s);
	switch ((b >> 5) & 3) {
	case 0:
		p = kmalloc(size, flags);
		break;
	case 1:
		p = kzalloc(size, flags);
		zeroed = true;
		break;
	case 2: {
		size_t elem = 1 + get(in, 1) % 16;
		size = size / elem * elem;
		p = kcalloc(size / elem, elem, flags);
		zeroed = true;
		break;
	}
	default:
		align = (size_t)1 << (get(in, 1) % 13);
		p = kmalloc_aligned(size, align, flags);
		break;
	}
	if (!p) {
		if (!capped)
			FAIL("allocation of %zu bytes (flags %#x, align %zu) "
			     "returned NULL with no memory cap", size, flags, align);
		return;
	}
	take(s, p, size, flags, align, zeroed, false);
}

static void op_realloc(struct input *in)
{
	struct slot *s = &slots[get(in, 1) % NSLOTS];
	uint8_t b = (uint8_t)get(in, 1);
	size_t size = pick_size(in, b);
	unsigned flags = (b & 3) == 0 ? KM_NOSCAN : 0;

	if (!s->live) {
		uint8_t *p = krealloc(NULL, size, flags);
		if (!p) {
			if (!capped)
				FAIL("krealloc(NULL, %zu) returned NULL", size);
			return;
		}
		take(s, p, size, flags, 0, false, false);
		return;
	}
	check(s->p, s->id, s->size, s->size, "before krealloc");
	uint8_t *q = krealloc(s->p, size, flags);
	if (!q) {
		if (!capped)
			FAIL("krealloc(%p, %zu) returned NULL", (void *)s->p, size);
		/* Failed: the old object is untouched. */
		check(s->p, s->id, s->size, s->size, "after failed krealloc");
		return;
	}
	size_t keep = size < s->size ? size : s->size;
	check(q, s->id, s->size, keep, "after krealloc");
	s->live = false; /* q replaces it; take() re-checks overlap */
	take(s, q, size, flags, 0, false, true);
}

static void op_ksize(struct input *in)
{
	struct slot *s = &slots[get(in, 1) % NSLOTS];
	if (s->live && ksize(s->p) < s->size)
		FAIL("ksize(%p) = %zu < %zu", (void *)s->p, ksize(s->p), s->size);
}

static void op_cap(struct input *in)
{
	uint64_t v = get(in, 2);
	if (v & 1) {
		mm_host_set_sys_limit(0);
		capped = false;
	} else {
		/* Up to 32 MiB above what the heap holds now, often nearly 0. */
		mm_host_set_sys_limit(mm_host_sys_bytes() + (v >> 1) * 1024);
		capped = true;
	}
}

/* objects_inuse when this input began: the model's live objects add to it. */
static uint64_t base_inuse;

static void op_verify(void)
{
	if (mheap_verify() != 0)
		FAIL("mheap_verify() failed");
	uint64_t live = 0;
	for (int i = 0; i < NSLOTS; i++)
		live += slots[i].live;
	struct kmem_stats st;
	kmem_get_stats(&st);
	if (st.objects_inuse != base_inuse + live)
		FAIL("objects_inuse is %llu, expected %llu + %llu live",
		     (unsigned long long)st.objects_inuse,
		     (unsigned long long)base_inuse, (unsigned long long)live);
}

static void op_free_some(struct input *in)
{
	uint64_t mask = get(in, 8);
	for (int i = 0; i < NSLOTS; i++)
		if (mask >> i & 1)
			drop(&slots[i]);
	kmem_drain_this_cpu();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size, 0 };
	struct kmem_stats st0, st1;
	kmem_get_stats(&st0);
	base_inuse = st0.objects_inuse;
	capped = false;

	for (int ops = 0; in.at < in.n && ops < 4096; ops++) {
		switch (get(&in, 1) % 12) {
		case 0: case 1: case 2: case 3:
			op_alloc(&in);
			break;
		case 4: case 5:
			drop(&slots[get(&in, 1) % NSLOTS]);
			break;
		case 6: case 7:
			op_realloc(&in);
			break;
		case 8:
			op_ksize(&in);
			break;
		case 9:
			op_cap(&in);
			break;
		case 10:
			op_free_some(&in);
			break;
		default:
			op_verify();
			break;
		}
		if (ops % 64 == 63)
			op_verify();
	}
	for (int i = 0; i < NSLOTS; i++)
		drop(&slots[i]);
	mm_host_set_sys_limit(0);
	capped = false;
	/* No drain here (op_free_some drains): unmapping and mapping the
	 * heap again for every input would be most of the fuzzer's time. */
	op_verify();
	kmem_get_stats(&st1);
	if (st1.bad_frees != st0.bad_frees)
		FAIL("%llu bad frees counted, but no bad pointer was passed",
		     (unsigned long long)(st1.bad_frees - st0.bad_frees));
	if (st1.objects_inuse != st0.objects_inuse)
		FAIL("objects in use %llu after freeing everything, %llu before",
		     (unsigned long long)st1.objects_inuse,
		     (unsigned long long)st0.objects_inuse);
	if (st1.large_bytes != st0.large_bytes)
		FAIL("large bytes %llu after freeing everything, %llu before",
		     (unsigned long long)st1.large_bytes,
		     (unsigned long long)st0.large_bytes);
	return 0;
}
