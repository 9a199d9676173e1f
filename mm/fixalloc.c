/*
 * mm/fixalloc.c - fixed-size metadata allocator (Go's fixalloc).
 *
 * The heap needs small records (struct mspan and friends) before and
 * beside the objects it manages, and must not take them from itself. A
 * fixalloc carves one record size out of 8 KiB blocks from mm_sys_alloc
 * (one heap page: small heaps hold little metadata). A block is 8 KiB
 * aligned, as everything mm_sys_alloc returns, so the block of any record
 * is its address rounded down: freeing a record is O(1). A block whose
 * records are all free goes back to the platform, but for one kept as a
 * spare while the fixalloc has records in use (so that a record freed and
 * taken again at a block's edge does not map and unmap a block each
 * time); the last record freed gives the spare back too, so an empty heap
 * holds no metadata. Each block belongs to a CPU; its blocks with free
 * records sit on its doubly linked list. A CPU with none takes the spare
 * (empty, so it can change hands), else a new block, and only when the
 * platform has no memory for one a block of another CPU.
 */
#include "mm/fixalloc.h"
#include "mm/mbug.h"
#include "mm/platform.h"

struct fixalloc_block {
	const struct fixalloc *owner;        /* the fixalloc it belongs to */
	struct fixalloc_block *next, *prev;  /* on fixalloc.partial */
	void *free;                          /* free records, linked through their first word */
	uint32_t inuse;                      /* records handed out */
	uint32_t carved;                     /* records ever carved from the tail */
	uint32_t capacity;
	uint16_t on_partial;
	uint16_t cpu;                        /* whose records it holds */
};

#define FIXALLOC_HDR 64
_Static_assert(MM_MAX_CPUS <= 65536, "a block's CPU fits its 16 bits");
_Static_assert(sizeof(struct fixalloc_block) <= FIXALLOC_HDR, "block header fits");

void fixalloc_init(struct fixalloc *f, size_t size)
{
	f->size = (size + 63) & ~(size_t)63;
	MM_BUG_ON(f->size > FIXALLOC_BLOCK_SIZE - FIXALLOC_HDR);   /* one record per block at least */
	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++)
		f->partial[cpu] = NULL;
	f->inuse = 0;
	f->sys_bytes = 0;
	f->spare = NULL;
}

static void partial_push(struct fixalloc *f, struct fixalloc_block *b)
{
	struct fixalloc_block **head = &f->partial[b->cpu];
	b->prev = NULL;
	b->next = *head;
	if (*head)
		(*head)->prev = b;
	*head = b;
	b->on_partial = 1;
}

static void partial_remove(struct fixalloc *f, struct fixalloc_block *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		f->partial[b->cpu] = b->next;
	if (b->next)
		b->next->prev = b->prev;
	b->next = b->prev = NULL;
	b->on_partial = 0;
}

static void block_release(struct fixalloc *f, struct fixalloc_block *b)
{
	if (b->on_partial)
		partial_remove(f, b);
	f->sys_bytes -= FIXALLOC_BLOCK_SIZE;
	mm_sys_free(b, FIXALLOC_BLOCK_SIZE);
}

static struct fixalloc_block *block_new(struct fixalloc *f, unsigned cpu)
{
	struct fixalloc_block *b = mm_sys_alloc(FIXALLOC_BLOCK_SIZE);
	if (!b)
		return NULL;
	b->owner = f;
	b->cpu = (uint16_t)cpu;
	b->free = NULL;
	b->inuse = 0;
	b->carved = 0;
	b->capacity = (uint32_t)((FIXALLOC_BLOCK_SIZE - FIXALLOC_HDR) / f->size);
	f->sys_bytes += FIXALLOC_BLOCK_SIZE;
	partial_push(f, b);
	return b;
}

/* The spare (empty, on its CPU's list) becomes cpu's; NULL without one. */
static struct fixalloc_block *spare_take(struct fixalloc *f, unsigned cpu)
{
	struct fixalloc_block *b = f->spare;
	if (b && b->cpu != cpu) {
		partial_remove(f, b);
		b->cpu = (uint16_t)cpu;
		partial_push(f, b);
	}
	return b;
}

/* Out of memory for a block of cpu's own: any CPU's block with room. */
static struct fixalloc_block *any_partial(struct fixalloc *f)
{
	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++)
		if (f->partial[cpu])
			return f->partial[cpu];
	return NULL;
}

void *fixalloc_alloc(struct fixalloc *f, unsigned cpu)
{
	MM_BUG_ON(cpu >= MM_MAX_CPUS);
	struct fixalloc_block *b = f->partial[cpu];
	if (!b && !(b = spare_take(f, cpu)) && !(b = block_new(f, cpu)) && !(b = any_partial(f)))
		return NULL;
	if (b == f->spare)
		f->spare = NULL;   /* in use again */
	void *p;
	if (b->free) {
		p = b->free;
		b->free = *(void **)p;
	} else {
		p = (char *)b + FIXALLOC_HDR + (size_t)b->carved * f->size;
		b->carved++;
	}
	b->inuse++;
	f->inuse++;
	if (!b->free && b->carved == b->capacity)
		partial_remove(f, b);
	memset(p, 0, f->size);
	return p;
}

void fixalloc_free(struct fixalloc *f, void *p)
{
	struct fixalloc_block *b =
		(void *)((uintptr_t)p & ~(uintptr_t)(FIXALLOC_BLOCK_SIZE - 1));
	MM_BUG_ON(b->inuse == 0);
	*(void **)p = b->free;
	b->free = p;
	b->inuse--;
	f->inuse--;
	if (!b->on_partial)
		partial_push(f, b);
	if (b->inuse == 0) {
		if (f->inuse > 0 && !f->spare)
			f->spare = b;
		else
			block_release(f, b);
	}
	if (f->inuse == 0 && f->spare) {
		block_release(f, f->spare);
		f->spare = NULL;
	}
}

bool fixalloc_owns(const struct fixalloc *f, const void *p)
{
	const struct fixalloc_block *b =
		(const void *)((uintptr_t)p & ~(uintptr_t)(FIXALLOC_BLOCK_SIZE - 1));
	uintptr_t off = (uintptr_t)p - (uintptr_t)b;
	return p && b->owner == f && off >= FIXALLOC_HDR && (off - FIXALLOC_HDR) % f->size == 0 &&
	       (off - FIXALLOC_HDR) / f->size < b->carved;
}

const char *fixalloc_verify(const struct fixalloc *f)
{
	bool spare_listed = f->spare == NULL;
	for (unsigned cpu = 0; cpu < MM_MAX_CPUS; cpu++) {
		const struct fixalloc_block *prev = NULL;
		for (const struct fixalloc_block *b = f->partial[cpu]; b; prev = b, b = b->next) {
			if (b->owner != f)
				return "a block on its lists belongs to another fixalloc";
			if (b->cpu != cpu)
				return "a block is on another CPU's list than its own";
			if (!b->on_partial || b->prev != prev)
				return "a CPU's list of blocks is broken";
			if (!b->free && b->carved == b->capacity)
				return "a full block is on a CPU's list";
			if (b->inuse > b->carved || b->carved > b->capacity)
				return "a block counts more records than it has";
			spare_listed |= b == f->spare;
		}
	}
	if (!spare_listed)
		return "the spare block is on no CPU's list";
	if (f->spare && f->spare->inuse != 0)
		return "the spare block has records in use";
	return NULL;
}
