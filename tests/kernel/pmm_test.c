/*
 * tests/kernel/pmm_test.c - the buddy page allocator.
 *
 * Portable tests run a private struct pmm over 4 MiB of fake "RAM" (hosted:
 * a static buffer; in the kernel: a block from the real pmm) given fake
 * physical addresses that straddle 4 GiB, with odd, overlapping, unsorted
 * ranges and reserved holes; what the pmm must hand out is recomputed here
 * frame by frame from the raw ranges. Kernel-only tests sweep the real
 * allocator: every free frame taken and given back, and bad frees refused.
 */
#include "tests/kernel/ktest.h"
#include "kernel/pmm.h"
#include "lib/string.h"

#define FAKE_ORDER  PMM_MAX_ORDER
#define FAKE_BYTES  (PAGE_SIZE << FAKE_ORDER)
#define FAKE_FRAMES (FAKE_BYTES / PAGE_SIZE)
/* Fake physical base: 4 GiB - 2 MiB, so the fake RAM crosses 4 GiB. */
#define FAKE_PHYS   (0x100000000ULL - 0x200000ULL)

#ifdef SPANHEAP_HOSTED
static uint8_t fake_ram[FAKE_BYTES] __attribute__((aligned(4096)));
static void *fake_ram_get(void) { return fake_ram; }
static void fake_ram_put(void *p) { (void)p; }
#else
static void *fake_ram_get(void) { return alloc_pages(FAKE_ORDER, 0); }
static void fake_ram_put(void *p) { free_pages(p, FAKE_ORDER); }
#endif

#define R(s, e) { FAKE_PHYS + (s), FAKE_PHYS + (e) }

/* Unsorted, overlapping, touching at an unaligned address, unaligned ends,
 * a sub-page range, an inverted one and a duplicate. */
static const struct pmm_range odd_ram[] = {
	R(0x300123, 0x3fffff),
	R(0x000800, 0x100000),
	R(0x0f0000, 0x1c0000),
	R(0x1c0000, 0x200800),
	R(0x200800, 0x280400),
	R(0x2a0010, 0x2a0fff),
	R(0x2c0ffe, 0x2c2002),
	R(0x250000, 0x240000),
	R(0x300123, 0x3fffff),
};
/* Unaligned, overlapping each other, reaching outside RAM. */
static const struct pmm_range odd_reserved[] = {
	R(0x100010, 0x100020),
	R(0x180fff, 0x183001),
	R(0x3fe000, 0x500000),
	{ FAKE_PHYS - 0x1000, FAKE_PHYS + 0x2000 },
	R(0x2c1500, 0x2c1600),
	R(0x181000, 0x182000),
	R(0x340000, 0x340001),
};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Does the union of ranges cover every byte of [s, e)? */
static bool covered(const struct pmm_range *r, size_t n, uint64_t s, uint64_t e)
{
	bool moved = true;
	while (s < e && moved) {
		moved = false;
		for (size_t i = 0; i < n; i++)
			if (r[i].start <= s && s < r[i].end) {
				s = r[i].end;
				moved = true;
			}
	}
	return s >= e;
}

static bool touches(const struct pmm_range *r, size_t n, uint64_t s, uint64_t e)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].start < e && s < r[i].end && r[i].start < r[i].end)
			return true;
	return false;
}

/* What the pmm may hand out, decided from the raw ranges alone. */
static bool frame_allowed(const struct pmm_stats *st, uint64_t phys)
{
	uint64_t meta_end = st->meta_phys + st->meta_frames * PAGE_SIZE;
	return covered(odd_ram, NELEM(odd_ram), phys, phys + PAGE_SIZE) &&
	       !touches(odd_reserved, NELEM(odd_reserved), phys, phys + PAGE_SIZE) &&
	       !(phys >= st->meta_phys && phys < meta_end);
}

static struct pmm fake_pmm;

/* Private allocator over the fake RAM with the odd ranges. */
static void *setup_odd(void)
{
	void *ram = fake_ram_get();
	if (!ram)
		return NULL;
	uintptr_t offset = (uintptr_t)ram - (uintptr_t)FAKE_PHYS;
	if (pmm_init_instance(&fake_pmm, odd_ram, NELEM(odd_ram), odd_reserved,
			      NELEM(odd_reserved), offset) != 0) {
		fake_ram_put(ram);
		return NULL;
	}
	return ram;
}

static uint64_t fake_phys(const void *v)
{
	return (uint64_t)((uintptr_t)v - fake_pmm.direct_map_offset);
}

KTEST(pmm, odd_ranges_are_normalized)
{
	void *ram = setup_odd();
	KASSERT_NOT_NULL(ram);
	struct pmm_stats st;
	pmm_get_stats(&fake_pmm, &st);

	uint64_t expect = 0;
	for (uint64_t f = 0; f < FAKE_FRAMES; f++)
		expect += frame_allowed(&st, FAKE_PHYS + f * PAGE_SIZE);
	KEXPECT_EQ(st.total_frames, expect);
	KEXPECT_EQ(st.free_frames, expect);
	KEXPECT_GT(st.meta_frames, 0);
	/* The descriptors live in usable RAM and are reserved from then on. */
	KEXPECT_TRUE(covered(odd_ram, NELEM(odd_ram), st.meta_phys,
			     st.meta_phys + st.meta_frames * PAGE_SIZE));
	KEXPECT_TRUE(pmm_instance_is_reserved(&fake_pmm, st.meta_phys));
	/* Reserved ranges were rounded outwards, usable ones inwards. */
	KEXPECT_TRUE(pmm_instance_is_reserved(&fake_pmm, FAKE_PHYS + 0x100000));
	KEXPECT_TRUE(pmm_instance_is_reserved(&fake_pmm, FAKE_PHYS + 0x100fff));
	KEXPECT_FALSE(pmm_instance_is_reserved(&fake_pmm, FAKE_PHYS + 0x101000));
	KEXPECT_TRUE(pmm_instance_is_reserved(&fake_pmm, FAKE_PHYS + 0x183fff));
	KEXPECT_FALSE(pmm_instance_is_reserved(&fake_pmm, FAKE_PHYS + 0x184000));
	KEXPECT_TRUE(pmm_instance_is_reserved(&fake_pmm, FAKE_PHYS + 0x340fff));
	KEXPECT_FALSE(pmm_instance_is_usable(&fake_pmm, FAKE_PHYS + 0x800));
	KEXPECT_TRUE(pmm_instance_is_usable(&fake_pmm, FAKE_PHYS + 0x1000));
	KEXPECT_TRUE(pmm_instance_is_usable(&fake_pmm, FAKE_PHYS + 0x200000));
	KEXPECT_FALSE(pmm_instance_is_usable(&fake_pmm, FAKE_PHYS + 0x280000));
	KEXPECT_FALSE(pmm_instance_is_usable(&fake_pmm, FAKE_PHYS + 0x2a0000));
	KEXPECT_TRUE(pmm_instance_is_usable(&fake_pmm, FAKE_PHYS + 0x2c1000));
	KEXPECT_FALSE(pmm_instance_is_usable(&fake_pmm, FAKE_PHYS + 0x2c2000));
	KEXPECT_FALSE(pmm_instance_is_usable(&fake_pmm, FAKE_PHYS + 0x3ff000));
	KEXPECT_EQ(pmm_verify(&fake_pmm), 0);
	fake_ram_put(ram);
}

KTEST(pmm, every_frame_once_then_all_back)
{
	static uint8_t seen[FAKE_FRAMES];
	static void *blocks[FAKE_FRAMES];
	void *ram = setup_odd();
	KASSERT_NOT_NULL(ram);
	struct pmm_stats st0, st;
	pmm_get_stats(&fake_pmm, &st0);
	uint64_t digest0 = pmm_state_digest(&fake_pmm);
	memset(seen, 0, sizeof(seen));

	size_t n = 0;
	void *v;
	while ((v = pmm_alloc(&fake_pmm, 0, 0)) != NULL) {
		KASSERT_LT(n, FAKE_FRAMES);
		uint64_t phys = fake_phys(v);
		KASSERT_EQ(phys % PAGE_SIZE, 0);
		KASSERT_GE(phys, FAKE_PHYS);
		KASSERT_LT(phys, FAKE_PHYS + FAKE_BYTES);
		uint64_t f = (phys - FAKE_PHYS) / PAGE_SIZE;
		KEXPECT_EQ(seen[f], 0); /* no frame given twice */
		KEXPECT_TRUE(frame_allowed(&st0, phys));
		KEXPECT_FALSE(pmm_instance_is_reserved(&fake_pmm, phys));
		seen[f] = 1;
		memset(v, 0x5a, PAGE_SIZE); /* the frame is really ours */
		blocks[n++] = v;
	}
	KEXPECT_EQ(n, st0.free_frames);
	pmm_get_stats(&fake_pmm, &st);
	KEXPECT_EQ(st.free_frames, 0);
	KEXPECT_EQ(st.alloc_failures, st0.alloc_failures + 1);
	KEXPECT_EQ(pmm_verify(&fake_pmm), 0);

	/* Free in an order unlike the allocation order: odd slots, then even. */
	for (size_t i = 1; i < n; i += 2)
		KEXPECT_EQ(pmm_free(&fake_pmm, blocks[i], 0), 0);
	KEXPECT_EQ(pmm_verify(&fake_pmm), 0);
	for (size_t i = 0; i < n; i += 2)
		KEXPECT_EQ(pmm_free(&fake_pmm, blocks[i], 0), 0);
	pmm_get_stats(&fake_pmm, &st);
	KEXPECT_EQ(st.free_frames, st0.free_frames);
	for (unsigned k = 0; k < PMM_NR_ORDERS; k++)
		KEXPECT_EQ(st.free_blocks[k], st0.free_blocks[k]);
	KEXPECT_EQ(st.bad_frees, 0);
	KEXPECT_EQ(pmm_state_digest(&fake_pmm), digest0);
	KEXPECT_EQ(pmm_verify(&fake_pmm), 0);
	fake_ram_put(ram);
}

KTEST(pmm, largest_blocks_are_aligned)
{
	void *ram = setup_odd();
	KASSERT_NOT_NULL(ram);
	/* The odd map's largest whole aligned blocks are the two of 512 KiB
	 * (order 7) at +0x80000 and +0x200000; nothing of order 8 fits. */
	KEXPECT_NULL(pmm_alloc(&fake_pmm, 8, 0));
	KEXPECT_NULL(pmm_alloc(&fake_pmm, PMM_MAX_ORDER, 0));
	KEXPECT_NULL(pmm_alloc(&fake_pmm, PMM_MAX_ORDER + 1, 0));
	KEXPECT_EQ(fake_pmm.st.free_blocks[7], 2);
	for (unsigned k = 0; k <= 7; k++) {
		void *v = pmm_alloc(&fake_pmm, k, 0);
		KASSERT_NOT_NULL(v);
		uint64_t phys = fake_phys(v);
		KEXPECT_EQ(phys % (PAGE_SIZE << k), 0);
		KEXPECT_TRUE(frame_allowed(&fake_pmm.st, phys));
		KEXPECT_TRUE(frame_allowed(&fake_pmm.st, phys + (PAGE_SIZE << k) - PAGE_SIZE));
		KEXPECT_EQ(pmm_free(&fake_pmm, v, k), 0);
	}
	KEXPECT_EQ(pmm_verify(&fake_pmm), 0);
	fake_ram_put(ram);
}

KTEST(pmm, gfp_zero_zeroes)
{
	void *ram = setup_odd();
	KASSERT_NOT_NULL(ram);
	for (unsigned k = 0; k <= 3; k++) {
		uint8_t *v = pmm_alloc(&fake_pmm, k, 0);
		KASSERT_NOT_NULL(v);
		memset(v, 0xa5, PAGE_SIZE << k);
		KEXPECT_EQ(pmm_free(&fake_pmm, v, k), 0);
		v = pmm_alloc(&fake_pmm, k, GFP_ZERO);
		KASSERT_NOT_NULL(v);
		size_t nonzero = 0;
		for (size_t i = 0; i < (PAGE_SIZE << k); i++)
			nonzero += v[i] != 0;
		KEXPECT_EQ(nonzero, 0);
		KEXPECT_EQ(pmm_free(&fake_pmm, v, k), 0);
	}
	fake_ram_put(ram);
}

/* Random mixed-order churn against a shadow record of live blocks. */
struct live_block {
	uint64_t phys;
	unsigned order;
	uint64_t tag;
};

static bool overlaps_live(const struct live_block *live, size_t n, uint64_t s,
			  uint64_t e)
{
	for (size_t i = 0; i < n; i++)
		if (live[i].phys < e && s < live[i].phys + (PAGE_SIZE << live[i].order))
			return true;
	return false;
}

static bool block_tag_intact(const struct live_block *b)
{
	const uint64_t *v = (const uint64_t *)(uintptr_t)(b->phys + fake_pmm.direct_map_offset);
	size_t words = (PAGE_SIZE << b->order) / 8;
	return v[0] == b->tag && v[words - 1] == ~b->tag && v[words / 2] == b->tag;
}

static void block_write_tag(const struct live_block *b)
{
	uint64_t *v = (uint64_t *)(uintptr_t)(b->phys + fake_pmm.direct_map_offset);
	size_t words = (PAGE_SIZE << b->order) / 8;
	v[0] = b->tag;
	v[words / 2] = b->tag;
	v[words - 1] = ~b->tag;
}

KTEST(pmm, random_churn_coalesces_fully)
{
	enum { MAX_LIVE = 160, OPS = 30000 };
	static struct live_block live[MAX_LIVE];
	size_t nlive = 0;
	struct ktest_rng rng;
	void *ram = setup_odd();
	KASSERT_NOT_NULL(ram);
	struct pmm_stats st0, st;
	pmm_get_stats(&fake_pmm, &st0);
	uint64_t digest0 = pmm_state_digest(&fake_pmm);
	uint64_t allocs = 0, fails = 0, max_live_frames = 0, live_frames = 0;

	ktest_rng_seed(&rng, 0x706d6d);
	for (int op = 0; op < OPS; op++) {
		bool do_alloc = nlive == 0 ||
			(nlive < MAX_LIVE && ktest_rng_below(&rng, 100) < 55);
		if (do_alloc) {
			/* Mostly small orders, sometimes large ones. */
			unsigned order = (unsigned)ktest_rng_below(&rng, 4);
			if (ktest_rng_below(&rng, 8) == 0)
				order = (unsigned)ktest_rng_below(&rng, PMM_MAX_ORDER + 1);
			void *v = pmm_alloc(&fake_pmm, order, 0);
			if (!v) {
				fails++;
				continue;
			}
			struct live_block b = { fake_phys(v), order, ktest_rng_next(&rng) };
			uint64_t len = PAGE_SIZE << order;
			KASSERT_EQ(b.phys % len, 0);
			KASSERT_FALSE(overlaps_live(live, nlive, b.phys, b.phys + len));
			for (uint64_t a = b.phys; a < b.phys + len; a += PAGE_SIZE)
				KASSERT_TRUE(frame_allowed(&st0, a));
			block_write_tag(&b);
			live[nlive++] = b;
			allocs++;
			live_frames += 1ULL << order;
			if (live_frames > max_live_frames)
				max_live_frames = live_frames;
		} else {
			size_t i = (size_t)ktest_rng_below(&rng, nlive);
			KASSERT_TRUE(block_tag_intact(&live[i]));
			void *v = (void *)(uintptr_t)(live[i].phys + fake_pmm.direct_map_offset);
			KASSERT_EQ(pmm_free(&fake_pmm, v, live[i].order), 0);
			live_frames -= 1ULL << live[i].order;
			live[i] = live[--nlive];
		}
		pmm_get_stats(&fake_pmm, &st);
		KASSERT_EQ(st.free_frames + live_frames, st0.free_frames);
		if (op % 2000 == 0)
			KASSERT_EQ(pmm_verify(&fake_pmm), 0);
	}
	while (nlive) {
		nlive--;
		KEXPECT_TRUE(block_tag_intact(&live[nlive]));
		void *v = (void *)(uintptr_t)(live[nlive].phys + fake_pmm.direct_map_offset);
		KEXPECT_EQ(pmm_free(&fake_pmm, v, live[nlive].order), 0);
	}
	ktest_log("churn: %llu allocs, %llu failed, peak %llu of %llu frames live",
		  (unsigned long long)allocs, (unsigned long long)fails,
		  (unsigned long long)max_live_frames,
		  (unsigned long long)st0.free_frames);
	KEXPECT_GT(fails, 0); /* the churn did reach exhaustion for some order */
	pmm_get_stats(&fake_pmm, &st);
	KEXPECT_EQ(st.free_frames, st0.free_frames);
	for (unsigned k = 0; k < PMM_NR_ORDERS; k++)
		KEXPECT_EQ(st.free_blocks[k], st0.free_blocks[k]);
	KEXPECT_EQ(pmm_state_digest(&fake_pmm), digest0);
	KEXPECT_EQ(pmm_verify(&fake_pmm), 0);
	fake_ram_put(ram);
}

/* A refused free: reported with the right reason, counted, nothing else
 * changes. */
static void expect_refused(struct pmm *p, void *addr, unsigned order, int why,
			   int line)
{
	struct pmm_stats before, after;
	pmm_get_stats(p, &before);
	uint64_t digest = pmm_state_digest(p);
	int r = pmm_free(p, addr, order);
	pmm_get_stats(p, &after);
	if (r != -why)
		ktest_fail(__FILE__, line, "expected pmm_free(%p, %u) == %d, saw %d",
			   addr, order, -why, r);
	if (after.bad_frees != before.bad_frees + 1)
		ktest_fail(__FILE__, line, "expected bad_frees %llu, saw %llu",
			   (unsigned long long)before.bad_frees + 1,
			   (unsigned long long)after.bad_frees);
	after.bad_frees = before.bad_frees;
	if (memcmp(&before, &after, sizeof(before)) != 0)
		ktest_fail(__FILE__, line, "expected counters unchanged after a bad free");
	if (pmm_state_digest(p) != digest)
		ktest_fail(__FILE__, line, "expected free lists unchanged after a bad free");
}

#define EXPECT_REFUSED(p, a, o, why) expect_refused(p, a, o, why, __LINE__)

static void *fake_virt(uint64_t phys)
{
	return (void *)(uintptr_t)(phys + fake_pmm.direct_map_offset);
}

KTEST(pmm, bad_frees_change_nothing)
{
	void *ram = setup_odd();
	KASSERT_NOT_NULL(ram);
	uint8_t *a = pmm_alloc(&fake_pmm, 2, 0);
	uint8_t *b = pmm_alloc(&fake_pmm, 0, 0);
	uint8_t *c = pmm_alloc(&fake_pmm, 0, 0);
	KASSERT_NOT_NULL(a);
	KASSERT_NOT_NULL(b);
	KASSERT_NOT_NULL(c);
	KASSERT_EQ(pmm_free(&fake_pmm, c, 0), 0); /* c is free again */

	EXPECT_REFUSED(&fake_pmm, a + 1, 2, PMM_BAD_MISALIGNED);
	EXPECT_REFUSED(&fake_pmm, a + 2048, 0, PMM_BAD_MISALIGNED);
	EXPECT_REFUSED(&fake_pmm, a, 1, PMM_BAD_ORDER);
	EXPECT_REFUSED(&fake_pmm, a, 3, PMM_BAD_ORDER);
	EXPECT_REFUSED(&fake_pmm, a, 200, PMM_BAD_ORDER);
	EXPECT_REFUSED(&fake_pmm, a + PAGE_SIZE, 0, PMM_BAD_INTERIOR);
	EXPECT_REFUSED(&fake_pmm, a + 3 * PAGE_SIZE, 0, PMM_BAD_INTERIOR);
	KEXPECT_NE(fake_phys(b) % (4 * PAGE_SIZE), 0); /* so order 2 is wrong */
	EXPECT_REFUSED(&fake_pmm, b, 2, PMM_BAD_ORDER);
	EXPECT_REFUSED(&fake_pmm, c, 0, PMM_BAD_FREE);   /* double free */
	/* Never RAM: a reserved hole, the descriptor array, below and above
	 * the RAM, and far away. */
	EXPECT_REFUSED(&fake_pmm, fake_virt(FAKE_PHYS + 0x100000), 0, PMM_BAD_NOT_RAM);
	EXPECT_REFUSED(&fake_pmm, fake_virt(FAKE_PHYS + 0x181000), 0, PMM_BAD_NOT_RAM);
	EXPECT_REFUSED(&fake_pmm, fake_virt(FAKE_PHYS + 0x290000), 0, PMM_BAD_NOT_RAM);
	EXPECT_REFUSED(&fake_pmm, fake_virt(fake_pmm.st.meta_phys), 0, PMM_BAD_NOT_RAM);
	EXPECT_REFUSED(&fake_pmm, fake_virt(FAKE_PHYS - PAGE_SIZE), 0, PMM_BAD_NOT_RAM);
	EXPECT_REFUSED(&fake_pmm, fake_virt(FAKE_PHYS + FAKE_BYTES), 0, PMM_BAD_NOT_RAM);
	EXPECT_REFUSED(&fake_pmm, fake_virt(0x12345000ULL << 20), 0, PMM_BAD_NOT_RAM);

	KEXPECT_EQ(pmm_free(&fake_pmm, a, 2), 0);
	KEXPECT_EQ(pmm_free(&fake_pmm, b, 0), 0);
	/* After coalescing, the old pieces are inside free blocks. */
	EXPECT_REFUSED(&fake_pmm, a, 2, PMM_BAD_FREE);
	EXPECT_REFUSED(&fake_pmm, a + PAGE_SIZE, 0, PMM_BAD_FREE);
	EXPECT_REFUSED(&fake_pmm, b, 0, PMM_BAD_FREE);

	struct pmm_stats st;
	pmm_get_stats(&fake_pmm, &st);
	KEXPECT_EQ(st.bad_frees, 19);
	KEXPECT_EQ(st.free_frames, st.total_frames);
	KEXPECT_EQ(pmm_verify(&fake_pmm), 0);
	KEXPECT_EQ(pmm_free(&fake_pmm, NULL, 0), 0); /* like free_pages(0) */
	fake_ram_put(ram);
}

/* Freeing with too large an order a block whose buddy is free. The map is
 * four aligned frames; the descriptors take the first (lowest fit), the
 * others are an order-0 block and an order-1 block. */
KTEST(pmm, partly_free_range_is_refused)
{
	void *ram = fake_ram_get();
	KASSERT_NOT_NULL(ram);
	uintptr_t offset = (uintptr_t)ram - (uintptr_t)FAKE_PHYS;
	static const struct pmm_range four[] = { R(0, 4 * PAGE_SIZE) };
	KASSERT_EQ(pmm_init_instance(&fake_pmm, four, 1, NULL, 0, offset), 0);
	KEXPECT_EQ(fake_pmm.st.meta_phys, FAKE_PHYS);
	KEXPECT_EQ(fake_pmm.st.total_frames, 3);
	KEXPECT_EQ(fake_pmm.st.free_blocks[0], 1);
	KEXPECT_EQ(fake_pmm.st.free_blocks[1], 1);

	uint8_t *x = pmm_alloc(&fake_pmm, 0, 0); /* the order-0 block */
	uint8_t *y = pmm_alloc(&fake_pmm, 0, 0); /* half of the order-1 */
	KASSERT_NOT_NULL(x);
	KASSERT_NOT_NULL(y);
	KEXPECT_EQ(fake_phys(x), FAKE_PHYS + PAGE_SIZE);
	KEXPECT_EQ(fake_phys(y), FAKE_PHYS + 2 * PAGE_SIZE);
	EXPECT_REFUSED(&fake_pmm, y, 1, PMM_BAD_PARTLY_FREE);
	EXPECT_REFUSED(&fake_pmm, x, 1, PMM_BAD_ORDER); /* misaligned for 1 */
	EXPECT_REFUSED(&fake_pmm, y + PAGE_SIZE, 0, PMM_BAD_FREE);
	KEXPECT_EQ(pmm_free(&fake_pmm, y, 0), 0);
	KEXPECT_EQ(pmm_free(&fake_pmm, x, 0), 0);
	KEXPECT_EQ(fake_pmm.st.free_blocks[1], 1);
	KEXPECT_EQ(pmm_verify(&fake_pmm), 0);
	fake_ram_put(ram);
}

/* No usable RAM, or nothing left once reserved, is an error, not a crash. */
KTEST(pmm, init_rejects_empty_maps)
{
	static const struct pmm_range tiny[] = { { 0x1001, 0x1fff } };
	static const struct pmm_range ram[] = { { 0x100000, 0x200000 } };
	static const struct pmm_range all[] = { { 0, 0x300000 } };
	struct pmm_stats st;
	KEXPECT_EQ(pmm_init_instance(&fake_pmm, tiny, 1, NULL, 0, 0), -1);
	KEXPECT_EQ(pmm_init_instance(&fake_pmm, ram, 1, all, 1, 0), -1);
	KEXPECT_EQ(pmm_init_instance(&fake_pmm, NULL, 0, NULL, 0, 0), -1);
	KEXPECT_NULL(pmm_alloc(&fake_pmm, 0, 0));
	pmm_get_stats(&fake_pmm, &st);
	KEXPECT_EQ(st.total_frames, 0);
	KEXPECT_EQ(pmm_free(&fake_pmm, (void *)0x100000, 0), -PMM_BAD_NOT_RAM);
}

#ifndef SPANHEAP_HOSTED
/* ------------------------------------------- the kernel's allocator -- */

static bool bit_test_and_set(uint8_t *bits, uint64_t i)
{
	bool was = bits[i / 8] & (1u << (i % 8));
	bits[i / 8] |= (uint8_t)(1u << (i % 8));
	return was;
}

/* Blocks taken by the sweep are chained through their own first bytes. */
struct swept {
	struct swept *next;
	unsigned order;
};

KTEST(pmm, kernel_every_free_frame_once)
{
	struct pmm *p = pmm_global();
	struct pmm_stats st0, st;
	pmm_get_stats(p, &st0);
	KASSERT_GT(st0.free_frames, 0);
	KASSERT_EQ(pmm_verify(p), 0);
	uint64_t digest0 = pmm_state_digest(p);

	/* One bit per frame the descriptors cover, from the pmm itself. */
	uint64_t nbits = st0.end_pfn - st0.base_pfn;
	unsigned border = 0;
	while ((PAGE_SIZE << border) * 8 < nbits)
		border++;
	KASSERT_LE(border, PMM_MAX_ORDER);
	uint8_t *bits = alloc_pages(border, GFP_ZERO);
	KASSERT_NOT_NULL(bits);
	uint64_t bits_pfn = virt_to_phys(bits) >> PAGE_SHIFT;
	for (uint64_t i = 0; i < (1ULL << border); i++)
		bit_test_and_set(bits, bits_pfn + i - st0.base_pfn);

	uint64_t taken = 1ULL << border, dups = 0, bad = 0, blocks = 0;
	struct swept *list = NULL;
	for (int order = PMM_MAX_ORDER; order >= 0; order--) {
		void *v;
		while ((v = alloc_pages((unsigned)order, 0)) != NULL) {
			uint64_t phys = virt_to_phys(v);
			uint64_t pfn = phys >> PAGE_SHIFT;
			if (phys % (PAGE_SIZE << order) != 0 || pfn < st0.base_pfn ||
			    pfn + (1ULL << order) > st0.end_pfn) {
				ktest_fail(__FILE__, __LINE__,
					   "expected an aligned block inside the pfn span, "
					   "saw phys %#llx order %d",
					   (unsigned long long)phys, order);
				return;
			}
			for (uint64_t i = 0; i < (1ULL << order); i++) {
				uint64_t a = phys + i * PAGE_SIZE;
				if (bit_test_and_set(bits, pfn + i - st0.base_pfn))
					dups++;
				if (pmm_is_reserved(a) || !pmm_is_usable(a)) {
					if (!bad++)
						ktest_log("frame %#llx is reserved or not RAM",
							  (unsigned long long)a);
				}
			}
			struct swept *s = v; /* a write through the direct map */
			s->next = list;
			s->order = (unsigned)order;
			list = s;
			taken += 1ULL << order;
			blocks++;
		}
	}
	pmm_get_stats(p, &st);
	ktest_log("swept %llu frames in %llu blocks", (unsigned long long)taken,
		  (unsigned long long)blocks);
	KEXPECT_EQ(st.free_frames, 0);
	KEXPECT_EQ(taken, st0.free_frames);
	KEXPECT_EQ(dups, 0);
	KEXPECT_EQ(bad, 0);
	KEXPECT_NULL(alloc_pages(0, 0));

	while (list) {
		struct swept *s = list;
		list = s->next;
		free_pages(s, s->order);
	}
	free_pages(bits, border);
	pmm_get_stats(p, &st);
	KEXPECT_EQ(st.free_frames, st0.free_frames);
	for (unsigned k = 0; k < PMM_NR_ORDERS; k++)
		KEXPECT_EQ(st.free_blocks[k], st0.free_blocks[k]);
	KEXPECT_EQ(st.bad_frees, st0.bad_frees);
	KEXPECT_EQ(pmm_state_digest(p), digest0);
	KEXPECT_EQ(pmm_verify(p), 0);
}

KTEST(pmm, kernel_bad_frees_are_refused)
{
	struct pmm *p = pmm_global();
	uint8_t *a = alloc_pages(1, 0);
	uint8_t *b = alloc_pages(0, 0);
	KASSERT_NOT_NULL(a);
	KASSERT_NOT_NULL(b);
	free_pages(b, 0);

	EXPECT_REFUSED(p, b, 0, PMM_BAD_FREE); /* double free */
	EXPECT_REFUSED(p, a + 8, 1, PMM_BAD_MISALIGNED);
	EXPECT_REFUSED(p, a, 0, PMM_BAD_ORDER);
	EXPECT_REFUSED(p, a + PAGE_SIZE, 0, PMM_BAD_INTERIOR);
	/* Every reserved range: kernel image, boot information, page tables,
	 * the first MiB, the descriptors. */
	for (size_t i = 0; i < p->nreserved; i++)
		EXPECT_REFUSED(p, phys_to_virt(p->reserved[i].start), 0,
			       PMM_BAD_NOT_RAM);
	/* Past the end of RAM. */
	EXPECT_REFUSED(p, phys_to_virt(p->end_pfn << PAGE_SHIFT), 0, PMM_BAD_NOT_RAM);
	free_pages(a, 1);
	EXPECT_REFUSED(p, a, 1, PMM_BAD_FREE);
	KEXPECT_EQ(pmm_verify(p), 0);
}

KTEST(pmm, kernel_first_mib_is_reserved)
{
	/* The AP trampoline lives below 1 MiB: never handed out. */
	for (uint64_t a = 0; a < 0x100000; a += PAGE_SIZE)
		KEXPECT_FALSE(pmm_is_usable(a) && !pmm_is_reserved(a));
	KEXPECT_EQ(pmm_verify(pmm_global()), 0);
}
#endif
