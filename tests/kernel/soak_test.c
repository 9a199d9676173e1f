/*
 * tests/kernel/soak_test.c - the heap soak: millions of mixed operations
 * on every CPU at once (kmalloc of every kind of size, kfree, krealloc,
 * kzalloc, kmalloc_aligned, and objects handed between CPUs so that a
 * third of the frees are remote), every object's contents checked before
 * it is freed, and the heap verifier between rounds (all CPUs quiet) and
 * at the end, when every frame must be back in the pmm.
 *
 * 200k operations in total by default (make test); the kernel argument
 * soak=long runs 10 million (make soak). Kernel only.
 */
#ifndef SPANHEAP_HOSTED
#include <stdint.h>
#include <stdbool.h>
#include "tests/kernel/ktest.h"
#include "mm/kmalloc.h"
#include "kernel/pmm.h"
#include "mm/pagemap.h"
#include "kernel/smp.h"
#include "kernel/percpu.h"
#include "kernel/kargs.h"
#include "lib/string.h"

#define SOAK_SHORT_OPS 200000ULL
#define SOAK_LONG_OPS 10000000ULL
#define SOAK_ROUNDS 10
#define SOAK_SLOTS 256
#define SOAK_XFER 1024

/* An object: its first 16 bytes (if it has them) hold its tag and size;
 * the rest is a pattern of the tag. Smaller objects are checked against
 * the slot's record only. */
struct soak_slot {
	uint8_t *p;
	size_t n;
	uint64_t tag;
};

struct soak_cpu {
	struct soak_slot slot[SOAK_SLOTS];
	struct ktest_rng rng;
	uint64_t ops, allocs, frees, reallocs, xfers, remote_frees;
	uint64_t corrupt, null;
} __attribute__((aligned(64)));

static struct soak_cpu soak[MAX_CPUS];
static uint8_t *xfer[SOAK_XFER];        /* objects in flight between CPUs */
static uint64_t soak_ops_per_round;

static inline uint8_t pat(uint64_t tag, size_t i)
{
	return (uint8_t)(tag * 0x9d + i * 13 + (tag >> 11));
}

/* Bytes checked: all of the first and last 64, every 37th in between. */
static inline size_t next_i(size_t i, size_t n)
{
	return (i < 64 || i + 64 >= n) ? i + 1 : i + 37;
}

static void fill(uint8_t *p, size_t n, uint64_t tag)
{
	size_t i = 0;
	if (n >= 16) {
		memcpy(p, &tag, 8);
		memcpy(p + 8, &n, 8);
		i = 16;
	}
	for (; i < n; i = next_i(i, n))
		p[i] = pat(tag, i);
}

/* Contents intact? For a self-describing object (n >= 16) tag and n may
 * be taken from it (expect_n == 0). */
static bool intact(const uint8_t *p, size_t n, uint64_t tag)
{
	size_t i = 0;
	if (n >= 16) {
		uint64_t t, m;
		memcpy(&t, p, 8);
		memcpy(&m, p + 8, 8);
		if (t != tag || m != n)
			return false;
		i = 16;
	}
	for (; i < n; i = next_i(i, n))
		if (p[i] != pat(tag, i))
			return false;
	return true;
}

static size_t soak_size(struct ktest_rng *r, unsigned *flags)
{
	uint64_t k = ktest_rng_below(r, 1000);
	*flags = 0;
	if (k < 200) {
		*flags = KM_NOSCAN;
		return 1 + ktest_rng_below(r, 15);            /* tiny */
	}
	if (k < 700)
		return 1 + ktest_rng_below(r, 256);
	if (k < 950)
		return 257 + ktest_rng_below(r, 4096);
	if (k < 995)
		return 4353 + ktest_rng_below(r, 32768 - 4353);
	return 32769 + ktest_rng_below(r, 96 * 1024);     /* large */
}

static void soak_free(struct soak_cpu *c, struct soak_slot *s)
{
	if (!intact(s->p, s->n, s->tag))
		c->corrupt++;
	kfree(s->p);
	s->p = NULL;
	c->frees++;
}

static void soak_op(struct soak_cpu *c, unsigned cpu)
{
	struct ktest_rng *r = &c->rng;
	struct soak_slot *s = &c->slot[ktest_rng_below(r, SOAK_SLOTS)];
	uint64_t k = ktest_rng_below(r, 100);
	c->ops++;

	if (!s->p) {
		unsigned flags;
		s->n = soak_size(r, &flags);
		s->tag = ((uint64_t)cpu << 48) ^ c->ops;
		if (k < 5) {
			s->p = kmalloc_aligned(s->n, (size_t)1 << ktest_rng_below(r, 13), flags);
		} else if (k < 15) {
			s->p = kzalloc(s->n, flags);
			if (s->p && (s->p[0] || s->p[s->n - 1]))
				c->corrupt++;
		} else {
			s->p = kmalloc(s->n, flags);
		}
		if (!s->p) {
			c->null++;
			return;
		}
		c->allocs++;
		fill(s->p, s->n, s->tag);
		return;
	}
	if (k < 60) {
		soak_free(c, s);
	} else if (k < 75) {
		/* Resize; the kept prefix must survive. */
		unsigned flags;
		size_t n = soak_size(r, &flags);
		if (!intact(s->p, s->n, s->tag))
			c->corrupt++;
		uint8_t *q = krealloc(s->p, n, s->n < 16 ? KM_NOSCAN : 0);
		if (!q) {
			c->null++;
			return;
		}
		size_t keep = n < s->n ? n : s->n;
		for (size_t i = 16; i < keep; i = next_i(i, s->n))
			if (q[i] != pat(s->tag, i))
				c->corrupt++;
		s->p = q;
		s->n = n;
		fill(q, n, s->tag);
		c->reallocs++;
	} else if (s->n >= 16) {
		/* Hand it to whichever CPU looks at this xfer slot next and
		 * take what was there (freed here: a remote free). */
		uint8_t *old = __atomic_exchange_n(&xfer[ktest_rng_below(r, SOAK_XFER)],
						   s->p, __ATOMIC_ACQ_REL);
		s->p = NULL;
		c->xfers++;
		if (old) {
			uint64_t tag;
			size_t n;
			memcpy(&tag, old, 8);
			memcpy(&n, old + 8, 8);
			if (n < 16 || n > 256 * 1024 || !intact(old, n, tag))
				c->corrupt++;
			kfree(old);
			c->remote_frees++;
		}
	}
}

static void soak_round(void *arg)
{
	(void)arg;
	unsigned cpu = this_cpu_id();
	struct soak_cpu *c = &soak[cpu];
	uint64_t per_cpu = soak_ops_per_round / ncpus_online;
	for (uint64_t i = 0; i < per_cpu; i++)
		soak_op(c, cpu);
}

static void soak_finish(void *arg)
{
	(void)arg;
	struct soak_cpu *c = &soak[this_cpu_id()];
	for (unsigned i = 0; i < SOAK_SLOTS; i++)
		if (c->slot[i].p)
			soak_free(c, &c->slot[i]);
	kmem_drain_this_cpu();
}

static void soak_drain(void *arg)
{
	(void)arg;
	kmem_drain_this_cpu();
}

static uint64_t free_frames(void)
{
	struct pmm_stats st;
	pmm_stats(&st);
	return st.free_frames;
}

KTEST(soak, mixed_ops_every_cpu)
{
	char mode[16] = "";
	kernel_arg("soak", mode, sizeof(mode));
	uint64_t total = strcmp(mode, "long") == 0 ? SOAK_LONG_OPS : SOAK_SHORT_OPS;
	/* Start from an empty heap: every CPU's cache (and in debug mode
	 * the quarantine) given back. */
	smp_call_all(soak_drain, NULL);
	uint64_t frames_before = free_frames();
	uint64_t leaves_before = pagemap_sys_bytes();

	memset(soak, 0, sizeof(soak));
	memset(xfer, 0, sizeof(xfer));
	for (unsigned c = 0; c < ncpus_online; c++)
		ktest_rng_seed(&soak[c].rng, 0x50a4000 + c);
	soak_ops_per_round = total / SOAK_ROUNDS;
	unsigned verify_failed = 0;
	for (unsigned round = 0; round < SOAK_ROUNDS; round++) {
		smp_call_all(soak_round, NULL);
		/* Every CPU is out of the heap: the whole heap must verify,
		 * live objects, caches and pending remote frees included. */
		if (mheap_verify() != 0)
			verify_failed++;
	}
	unsigned leftover = 0;
	for (unsigned i = 0; i < SOAK_XFER; i++) {
		uint8_t *p = xfer[i];
		if (!p)
			continue;
		uint64_t tag;
		size_t n;
		memcpy(&tag, p, 8);
		memcpy(&n, p + 8, 8);
		if (n < 16 || n > 256 * 1024 || !intact(p, n, tag))
			soak[0].corrupt++;
		kfree(p);
		xfer[i] = NULL;
		leftover++;
	}
	smp_call_all(soak_finish, NULL);

	uint64_t ops = 0, allocs = 0, frees = 0, reallocs = 0, xfers = 0, remote = 0;
	for (unsigned c = 0; c < ncpus_online; c++) {
		struct soak_cpu *s = &soak[c];
		KEXPECT_EQ(s->corrupt, 0);
		KEXPECT_EQ(s->null, 0);
		ops += s->ops, allocs += s->allocs, frees += s->frees;
		reallocs += s->reallocs, xfers += s->xfers, remote += s->remote_frees;
	}
	ktest_log("%lu operations on %u CPUs: %lu allocs, %lu frees (%lu of objects from "
		  "another slot/CPU), %lu reallocs, %lu hand-overs, %u left in flight",
		  (unsigned long)ops, ncpus_online, (unsigned long)allocs,
		  (unsigned long)(frees + remote + leftover), (unsigned long)remote,
		  (unsigned long)reallocs, (unsigned long)xfers, leftover);
	KEXPECT_GE(ops, total - total / 100);   /* rounding per CPU only */
	KEXPECT_EQ(allocs, frees + remote + leftover);
	KEXPECT_EQ(verify_failed, 0);
	KEXPECT_EQ(mheap_verify(), 0);
	/* Every frame back, but for page-map leaves the heap keeps (as Go
	 * keeps its arena index) for address ranges it touched first here. */
	uint64_t leaf_frames = (pagemap_sys_bytes() - leaves_before) / PAGE_SIZE;
	KEXPECT_EQ(free_frames() + leaf_frames, frames_before);
}
#endif
