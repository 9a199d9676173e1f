/*
 * kernel/pmm.c - buddy allocator over 4 KiB physical frames.
 *
 * Physical memory is handed out in blocks of 2^order frames whose first
 * frame number is a multiple of 2^order. A free block of order k has a
 * "buddy": the other half of the order k+1 block containing it
 * (pfn ^ 2^k). Allocation takes the smallest free block that fits and
 * splits it, putting the unused upper halves on the lower-order free lists;
 * freeing merges a block with its buddy for as long as the buddy is free
 * and whole, so with everything free the lists return to the same maximal
 * blocks they started with. Every frame has a descriptor (struct pmm_frame)
 * saying whether it is the head or a tail of a free or an allocated block,
 * or not ours at all (hole, reserved, the descriptor array itself). That
 * exact record is what lets free reject a double free, a partly free block,
 * an interior pointer, a wrong order or an address that was never RAM
 * without touching anything. The descriptor array covers the frames from the
 * lowest to the highest usable one and is carved out of usable RAM at init.
 */
#include "kernel/pmm.h"
#include "kernel/printk.h"
#include "lib/string.h"

#define PMM_NIL 0xffffffffu

enum {
	PMM_FRAME_NONE = 0,   /* not managed: hole, reserved, metadata */
	PMM_FRAME_FREE_HEAD,  /* first frame of a free block (order valid) */
	PMM_FRAME_FREE_TAIL,  /* other frames of a free block */
	PMM_FRAME_ALLOC_HEAD, /* first frame of an allocated block */
	PMM_FRAME_ALLOC_TAIL, /* other frames of an allocated block */
};

static const char *const bad_free_reason[] = {
	[PMM_BAD_MISALIGNED] = "address not page-aligned",
	[PMM_BAD_NOT_RAM] = "not RAM managed by the pmm (hole or reserved)",
	[PMM_BAD_FREE] = "block is already free",
	[PMM_BAD_INTERIOR] = "inside an allocated block, not its start",
	[PMM_BAD_ORDER] = "wrong order for this block",
	[PMM_BAD_PARTLY_FREE] = "part of this range is already free",
};

/* ------------------------------------------------------------ ranges -- */

static uint64_t round_down(uint64_t x) { return x & ~(uint64_t)(PAGE_SIZE - 1); }

static uint64_t round_up(uint64_t x)
{
	uint64_t r = round_down(x + PAGE_SIZE - 1);
	return r < x ? round_down(UINT64_MAX) : r; /* clamp on overflow */
}

/* Insert [s, e) into the sorted array a[0..*n), merging every range it
 * overlaps or touches. -1 when the array is full. */
static int range_insert(struct pmm_range *a, size_t *n, uint64_t s, uint64_t e)
{
	size_t i = 0, j;

	while (i < *n && a[i].end < s)
		i++;
	for (j = i; j < *n && a[j].start <= e; j++) {
		if (a[j].start < s)
			s = a[j].start;
		if (a[j].end > e)
			e = a[j].end;
	}
	if (j == i) {
		if (*n == PMM_MAX_RANGES)
			return -1;
		memmove(&a[i + 1], &a[i], (*n - i) * sizeof(*a));
		(*n)++;
	} else {
		memmove(&a[i + 1], &a[j], (*n - j) * sizeof(*a));
		*n -= j - i - 1;
	}
	a[i].start = s;
	a[i].end = e;
	return 0;
}

static bool range_find(const struct pmm_range *a, size_t n, uint64_t x)
{
	for (size_t i = 0; i < n; i++)
		if (a[i].start <= x && x < a[i].end)
			return true;
	return false;
}

/* Call fn on every maximal run of usable, unreserved frames, in order. */
static void for_each_free_run(const struct pmm *p,
			      void (*fn)(void *arg, uint64_t s, uint64_t e),
			      void *arg)
{
	for (size_t u = 0; u < p->nusable; u++) {
		uint64_t x = p->usable[u].start, e = p->usable[u].end;
		for (size_t r = 0; r < p->nreserved && x < e; r++) {
			const struct pmm_range *res = &p->reserved[r];
			if (res->end <= x)
				continue;
			if (res->start >= e)
				break;
			if (res->start > x)
				fn(arg, x, res->start);
			x = res->end;
		}
		if (x < e)
			fn(arg, x, e);
	}
}

/* -------------------------------------------------------- free lists -- */

static struct pmm_frame *frame(struct pmm *p, uint64_t pfn)
{
	return &p->frames[pfn - p->base_pfn];
}

static void list_push(struct pmm *p, uint64_t pfn, unsigned order)
{
	uint32_t idx = (uint32_t)(pfn - p->base_pfn);
	struct pmm_frame *f = &p->frames[idx];

	f->state = PMM_FRAME_FREE_HEAD;
	f->order = (uint8_t)order;
	f->prev = PMM_NIL;
	f->next = p->free_head[order];
	if (f->next != PMM_NIL)
		p->frames[f->next].prev = idx;
	p->free_head[order] = idx;
	p->st.free_blocks[order]++;
	p->st.free_frames += 1ULL << order;
}

static void list_remove(struct pmm *p, uint64_t pfn, unsigned order)
{
	struct pmm_frame *f = frame(p, pfn);

	if (f->prev != PMM_NIL)
		p->frames[f->prev].next = f->next;
	else
		p->free_head[order] = f->next;
	if (f->next != PMM_NIL)
		p->frames[f->next].prev = f->prev;
	f->next = f->prev = PMM_NIL;
	p->st.free_blocks[order]--;
	p->st.free_frames -= 1ULL << order;
}

/* Set the state of every frame of a block: head then tails. */
static void mark_block(struct pmm *p, uint64_t pfn, unsigned order,
		       uint8_t head, uint8_t tail)
{
	struct pmm_frame *f = frame(p, pfn);

	f->state = head;
	f->order = (uint8_t)order;
	for (uint64_t i = 1; i < (1ULL << order); i++) {
		f[i].state = tail;
		f[i].order = 0;
	}
}

/* Free a block whose frames are all marked FREE_TAIL, merging buddies. */
static void free_block_locked(struct pmm *p, uint64_t pfn, unsigned order)
{
	while (order < PMM_MAX_ORDER) {
		uint64_t buddy = pfn ^ (1ULL << order);
		if (buddy < p->base_pfn || buddy >= p->end_pfn)
			break;
		struct pmm_frame *b = frame(p, buddy);
		if (b->state != PMM_FRAME_FREE_HEAD || b->order != order)
			break;
		list_remove(p, buddy, order);
		b->state = PMM_FRAME_FREE_TAIL; /* whichever half is upper */
		frame(p, pfn)->state = PMM_FRAME_FREE_TAIL;
		frame(p, pfn)->order = 0;
		b->order = 0;
		if (buddy < pfn)
			pfn = buddy;
		order++;
	}
	list_push(p, pfn, order);
}

/* ------------------------------------------------------------- init -- */

struct bounds { uint64_t lo, hi; };

static void run_bounds(void *arg, uint64_t s, uint64_t e)
{
	struct bounds *b = arg;
	if (s < b->lo)
		b->lo = s;
	if (e > b->hi)
		b->hi = e;
}

struct fit { uint64_t need, at; bool found; };

static void run_fit(void *arg, uint64_t s, uint64_t e)
{
	struct fit *f = arg;
	if (!f->found && e - s >= f->need) {
		f->at = s;
		f->found = true;
	}
}

/* Greedy split of a run into the largest aligned blocks: no two of them
 * are free buddies, so the result is already fully coalesced. */
static void run_release(void *arg, uint64_t s, uint64_t e)
{
	struct pmm *p = arg;
	uint64_t pfn = s >> PAGE_SHIFT, end = e >> PAGE_SHIFT;

	while (pfn < end) {
		unsigned order = PMM_MAX_ORDER;
		while (order > 0 &&
		       ((pfn & ((1ULL << order) - 1)) || pfn + (1ULL << order) > end))
			order--;
		mark_block(p, pfn, order, PMM_FRAME_FREE_HEAD, PMM_FRAME_FREE_TAIL);
		list_push(p, pfn, order);
		pfn += 1ULL << order;
	}
}

static int init_ranges(struct pmm *p, const struct pmm_range *ram, size_t nram,
		       const struct pmm_range *reserved, size_t nreserved,
		       const struct pmm_range *extra)
{
	if (extra && range_insert(p->reserved, &p->nreserved,
				  round_down(extra->start), round_up(extra->end)))
		return -1;
	/* Usable: merge as given, then round inwards, so a frame covered by
	 * two touching ranges still counts. */
	for (size_t i = 0; i < nram; i++) {
		if (ram[i].end <= ram[i].start)
			continue;
		if (range_insert(p->usable, &p->nusable, ram[i].start, ram[i].end)) {
			printk("pmm: more than %d RAM ranges, ignoring [%#llx-%#llx)\n",
			       PMM_MAX_RANGES, (unsigned long long)ram[i].start,
			       (unsigned long long)ram[i].end);
		}
	}
	size_t n = 0;
	for (size_t i = 0; i < p->nusable; i++) {
		uint64_t s = round_up(p->usable[i].start);
		uint64_t e = round_down(p->usable[i].end);
		if (s < e) {
			p->usable[n].start = s;
			p->usable[n].end = e;
			n++;
		}
	}
	p->nusable = n;

	/* Reserved: round outwards; losing one would be unsafe. */
	for (size_t i = 0; i < nreserved; i++) {
		if (reserved[i].end <= reserved[i].start)
			continue;
		if (range_insert(p->reserved, &p->nreserved,
				 round_down(reserved[i].start),
				 round_up(reserved[i].end))) {
			printk("pmm: more than %d reserved ranges\n", PMM_MAX_RANGES);
			return -1;
		}
	}
	return 0;
}

/* Build the allocator; extra is one more reserved range (or NULL). */
static int pmm_setup(struct pmm *p, const struct pmm_range *ram, size_t nram,
		     const struct pmm_range *reserved, size_t nreserved,
		     const struct pmm_range *extra, uintptr_t direct_map_offset)
{
	memset(p, 0, sizeof(*p));
	spin_lock_init(&p->lock, "pmm");
	p->direct_map_offset = direct_map_offset;
	for (unsigned k = 0; k < PMM_NR_ORDERS; k++)
		p->free_head[k] = PMM_NIL;
	if (init_ranges(p, ram, nram, reserved, nreserved, extra))
		return -1;

	struct bounds b = { UINT64_MAX, 0 };
	for_each_free_run(p, run_bounds, &b);
	if (b.hi == 0) {
		printk("pmm: no usable RAM outside the reserved ranges\n");
		return -1;
	}
	p->base_pfn = b.lo >> PAGE_SHIFT;
	p->end_pfn = b.hi >> PAGE_SHIFT;
	if (p->end_pfn - p->base_pfn >= PMM_NIL) {
		printk("pmm: RAM span of %llu frames is too large\n",
		       (unsigned long long)(p->end_pfn - p->base_pfn));
		return -1;
	}

	/* The descriptor array, in the lowest free run that holds it. */
	uint64_t bytes = (p->end_pfn - p->base_pfn) * sizeof(struct pmm_frame);
	struct fit fit = { round_up(bytes), 0, false };
	for_each_free_run(p, run_fit, &fit);
	if (!fit.found) {
		printk("pmm: no run of %llu bytes for the frame descriptors\n",
		       (unsigned long long)fit.need);
		return -1;
	}
	if (range_insert(p->reserved, &p->nreserved, fit.at, fit.at + fit.need)) {
		printk("pmm: more than %d reserved ranges\n", PMM_MAX_RANGES);
		return -1;
	}
	p->st.meta_phys = fit.at;
	p->st.meta_frames = fit.need >> PAGE_SHIFT;
	p->frames = (struct pmm_frame *)(uintptr_t)(fit.at + direct_map_offset);
	memset(p->frames, 0, bytes); /* every frame PMM_FRAME_NONE */

	for_each_free_run(p, run_release, p);
	p->st.total_frames = p->st.free_frames;
	p->st.base_pfn = p->base_pfn;
	p->st.end_pfn = p->end_pfn;
	p->ready = true;
	return 0;
}

int pmm_init_instance(struct pmm *p, const struct pmm_range *ram, size_t nram,
		      const struct pmm_range *reserved, size_t nreserved,
		      uintptr_t direct_map_offset)
{
	return pmm_setup(p, ram, nram, reserved, nreserved, NULL,
			 direct_map_offset);
}

/* ------------------------------------------------------ alloc / free -- */

void *pmm_alloc(struct pmm *p, unsigned order, unsigned flags)
{
	if (!p->ready || order > PMM_MAX_ORDER) {
		unsigned long irq = spin_lock_irqsave(&p->lock);
		p->st.alloc_failures++;
		spin_unlock_irqrestore(&p->lock, irq);
		return NULL;
	}

	unsigned long irq = spin_lock_irqsave(&p->lock);
	unsigned k = order;
	while (k <= PMM_MAX_ORDER && p->free_head[k] == PMM_NIL)
		k++;
	if (k > PMM_MAX_ORDER) {
		p->st.alloc_failures++;
		spin_unlock_irqrestore(&p->lock, irq);
		return NULL;
	}
	uint64_t pfn = p->base_pfn + p->free_head[k];
	list_remove(p, pfn, k);
	while (k > order) { /* give back the upper halves */
		k--;
		list_push(p, pfn + (1ULL << k), k);
	}
	mark_block(p, pfn, order, PMM_FRAME_ALLOC_HEAD, PMM_FRAME_ALLOC_TAIL);
	p->st.nalloc++;
	spin_unlock_irqrestore(&p->lock, irq);

	void *v = (void *)(uintptr_t)((pfn << PAGE_SHIFT) + p->direct_map_offset);
	if (flags & GFP_ZERO)
		memset(v, 0, PAGE_SIZE << order);
	return v;
}

/* Why freeing (pfn, order) would be wrong, or 0. Called with the lock. */
static int check_free(struct pmm *p, uint64_t phys, unsigned order)
{
	if (phys & (PAGE_SIZE - 1))
		return PMM_BAD_MISALIGNED;
	uint64_t pfn = phys >> PAGE_SHIFT;
	if (!p->ready || pfn < p->base_pfn || pfn >= p->end_pfn)
		return PMM_BAD_NOT_RAM;
	const struct pmm_frame *f = frame(p, pfn);
	switch (f->state) {
	case PMM_FRAME_NONE:
		return PMM_BAD_NOT_RAM;
	case PMM_FRAME_FREE_HEAD:
	case PMM_FRAME_FREE_TAIL:
		return PMM_BAD_FREE;
	case PMM_FRAME_ALLOC_TAIL:
		return PMM_BAD_INTERIOR;
	default:
		break;
	}
	if (f->order == order)
		return 0;
	/* A larger order than allocated: say so if the range covers free
	 * frames (a double free of a neighbour in disguise). */
	if (order > f->order && order <= PMM_MAX_ORDER &&
	    !(pfn & ((1ULL << order) - 1)) && pfn + (1ULL << order) <= p->end_pfn)
		for (uint64_t i = 1; i < (1ULL << order); i++)
			if (f[i].state == PMM_FRAME_FREE_HEAD ||
			    f[i].state == PMM_FRAME_FREE_TAIL)
				return PMM_BAD_PARTLY_FREE;
	return PMM_BAD_ORDER;
}

int pmm_free(struct pmm *p, void *addr, unsigned order)
{
	if (!addr)
		return 0;
	uint64_t phys = (uint64_t)((uintptr_t)addr - p->direct_map_offset);

	unsigned long irq = spin_lock_irqsave(&p->lock);
	int bad = check_free(p, phys, order);
	if (bad) {
		p->st.bad_frees++;
	} else {
		uint64_t pfn = phys >> PAGE_SHIFT;
		mark_block(p, pfn, order, PMM_FRAME_FREE_TAIL, PMM_FRAME_FREE_TAIL);
		free_block_locked(p, pfn, order);
		p->st.nfree++;
	}
	spin_unlock_irqrestore(&p->lock, irq);

	if (bad) {
		printk("pmm: bad free_pages(%p, order %u), phys %#llx: %s; ignored\n",
		       addr, order, (unsigned long long)phys, bad_free_reason[bad]);
		return -bad;
	}
	return 0;
}

/* ------------------------------------------------------ inspection -- */

void pmm_get_stats(struct pmm *p, struct pmm_stats *st)
{
	unsigned long irq = spin_lock_irqsave(&p->lock);
	*st = p->st;
	spin_unlock_irqrestore(&p->lock, irq);
}

bool pmm_instance_is_reserved(const struct pmm *p, uint64_t phys)
{
	return range_find(p->reserved, p->nreserved, phys);
}

bool pmm_instance_is_usable(const struct pmm *p, uint64_t phys)
{
	return range_find(p->usable, p->nusable, phys);
}

uint64_t pmm_state_digest(struct pmm *p)
{
	unsigned long irq = spin_lock_irqsave(&p->lock);
	uint64_t h = 0xcbf29ce484222325ULL;
	for (uint64_t i = 0; p->ready && i < p->end_pfn - p->base_pfn; i++) {
		h ^= p->frames[i].state | (uint64_t)p->frames[i].order << 8;
		h *= 0x100000001b3ULL;
	}
	for (unsigned k = 0; k < PMM_NR_ORDERS; k++) {
		h ^= p->st.free_blocks[k] + ((uint64_t)k << 56);
		h *= 0x100000001b3ULL;
	}
	h ^= p->st.free_frames;
	spin_unlock_irqrestore(&p->lock, irq);
	return h;
}

/* The checks of pmm_verify; returns a description of the first failure. */
static const char *verify_locked(struct pmm *p, uint64_t *where)
{
	uint64_t n = p->end_pfn - p->base_pfn, free_frames = 0, heads = 0;

	/* Every block head is followed by exactly its tails. */
	for (uint64_t i = 0; i < n;) {
		const struct pmm_frame *f = &p->frames[i];
		*where = p->base_pfn + i;
		if (f->state == PMM_FRAME_NONE) {
			i++;
			continue;
		}
		if (f->state != PMM_FRAME_FREE_HEAD && f->state != PMM_FRAME_ALLOC_HEAD)
			return "tail frame without a head";
		if (f->order > PMM_MAX_ORDER)
			return "block head with impossible order";
		uint64_t len = 1ULL << f->order;
		if (((p->base_pfn + i) & (len - 1)) || i + len > n)
			return "block head misaligned or past the end";
		uint8_t tail = f->state == PMM_FRAME_FREE_HEAD ?
			PMM_FRAME_FREE_TAIL : PMM_FRAME_ALLOC_TAIL;
		for (uint64_t j = 1; j < len; j++)
			if (f[j].state != tail)
				return "block tail in the wrong state";
		if (f->state == PMM_FRAME_FREE_HEAD) {
			free_frames += len;
			heads++;
			uint64_t buddy = (p->base_pfn + i) ^ len;
			if (f->order < PMM_MAX_ORDER && buddy >= p->base_pfn &&
			    buddy < p->end_pfn &&
			    frame(p, buddy)->state == PMM_FRAME_FREE_HEAD &&
			    frame(p, buddy)->order == f->order)
				return "free buddies not coalesced";
		}
		i += len;
	}
	*where = 0;
	if (free_frames != p->st.free_frames)
		return "free frames in descriptors differ from the counter";

	/* The lists hold exactly the free heads, each on its order's list. */
	uint64_t listed = 0;
	for (unsigned k = 0; k < PMM_NR_ORDERS; k++) {
		uint64_t count = 0;
		uint32_t prev = PMM_NIL;
		for (uint32_t i = p->free_head[k]; i != PMM_NIL; i = p->frames[i].next) {
			*where = p->base_pfn + i;
			if (i >= n)
				return "free list link out of range";
			if (p->frames[i].state != PMM_FRAME_FREE_HEAD ||
			    p->frames[i].order != k)
				return "free list holds a block of another kind";
			if (p->frames[i].prev != prev)
				return "free list back link broken";
			prev = i;
			if (++count > heads)
				return "free list longer than the free blocks (cycle?)";
		}
		if (count != p->st.free_blocks[k])
			return "free list length differs from its counter";
		listed += count;
	}
	*where = 0;
	if (listed != heads)
		return "free blocks missing from the lists";
	return NULL;
}

int pmm_verify(struct pmm *p)
{
	if (!p->ready)
		return 0;
	uint64_t where = 0;
	unsigned long irq = spin_lock_irqsave(&p->lock);
	const char *why = verify_locked(p, &where);
	spin_unlock_irqrestore(&p->lock, irq);
	if (why)
		printk("pmm: verify failed at pfn %#llx: %s\n",
		       (unsigned long long)where, why);
	return why ? -1 : 0;
}

void pmm_dump_instance(struct pmm *p)
{
	struct pmm_stats st;
	pmm_get_stats(p, &st);
	printk("pmm: %llu frames (%llu MiB) managed, %llu free (%llu MiB), "
	       "pfn [%#llx-%#llx), descriptors %llu KiB at %#llx\n",
	       (unsigned long long)st.total_frames,
	       (unsigned long long)(st.total_frames >> 8),
	       (unsigned long long)st.free_frames,
	       (unsigned long long)(st.free_frames >> 8),
	       (unsigned long long)st.base_pfn, (unsigned long long)st.end_pfn,
	       (unsigned long long)(st.meta_frames * 4),
	       (unsigned long long)st.meta_phys);
	printk("pmm: free blocks by order:"
	       " %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu\n",
	       (unsigned long long)st.free_blocks[0], (unsigned long long)st.free_blocks[1],
	       (unsigned long long)st.free_blocks[2], (unsigned long long)st.free_blocks[3],
	       (unsigned long long)st.free_blocks[4], (unsigned long long)st.free_blocks[5],
	       (unsigned long long)st.free_blocks[6], (unsigned long long)st.free_blocks[7],
	       (unsigned long long)st.free_blocks[8], (unsigned long long)st.free_blocks[9],
	       (unsigned long long)st.free_blocks[10]);
	printk("pmm: %llu allocs, %llu frees, %llu failed allocs, %llu bad frees\n",
	       (unsigned long long)st.nalloc, (unsigned long long)st.nfree,
	       (unsigned long long)st.alloc_failures,
	       (unsigned long long)st.bad_frees);
	for (size_t i = 0; i < p->nreserved; i++)
		printk("pmm: reserved [mem 0x%016llx-0x%016llx]\n",
		       (unsigned long long)p->reserved[i].start,
		       (unsigned long long)p->reserved[i].end - 1);
}

/* ---------------------------------------------------- kernel instance -- */

static struct pmm kernel_pmm;
uintptr_t pmm_direct_map_offset;

int pmm_init(const struct pmm_range *ram, size_t nram,
	     const struct pmm_range *reserved, size_t nreserved,
	     uintptr_t direct_map_offset)
{
	/* The first MiB stays free for the AP trampoline (and the BIOS data
	 * it holds), whether or not the caller listed it. */
	static const struct pmm_range low_mib = { 0, 0x100000 };

	pmm_direct_map_offset = direct_map_offset;
	return pmm_setup(&kernel_pmm, ram, nram, reserved, nreserved, &low_mib,
			 direct_map_offset);
}

struct pmm *pmm_global(void) { return &kernel_pmm; }

void *alloc_pages(unsigned order, unsigned flags)
{
	return pmm_alloc(&kernel_pmm, order, flags);
}

void free_pages(void *addr, unsigned order)
{
	pmm_free(&kernel_pmm, addr, order);
}

bool pmm_is_reserved(uint64_t phys) { return pmm_instance_is_reserved(&kernel_pmm, phys); }
bool pmm_is_usable(uint64_t phys) { return pmm_instance_is_usable(&kernel_pmm, phys); }
void pmm_stats(struct pmm_stats *st) { pmm_get_stats(&kernel_pmm, st); }
void pmm_dump(void) { pmm_dump_instance(&kernel_pmm); }
