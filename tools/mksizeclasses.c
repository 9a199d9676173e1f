/*
 * tools/mksizeclasses.c - generate the heap's size classes (host tool).
 *
 * The heap rounds every small request (<= 32 KiB) up to one of 67 object
 * sizes, its size classes, and carves each span (a run of 8 KiB heap pages)
 * into objects of one class. This program derives those classes from the
 * same rules Go's runtime/mksizeclasses.go applies, so the table is Go's:
 *
 *   - walk sizes from 8 bytes up in steps of an alignment that grows with
 *     the size: 8, then 16 from 32 bytes, size/8 from 128 bytes, 256 from
 *     2 KiB;
 *   - for each size pick the fewest pages whose leftover after cutting it
 *     into objects (the tail waste) is at most 1/8 of the span;
 *   - a size that gets the same page count and the same number of objects
 *     as the class before it replaces that class (bigger objects, no more
 *     memory);
 *   - finally grow every class to the largest 128-aligned size that still
 *     fits the same number of objects into its span.
 *
 * Then one rule of our own: a class whose span holds fewer than 64
 * objects gets a span a whole multiple as long (no more tail waste,
 * proportionally), the shortest that holds 64, but at most 8 pages
 * (64 KiB; with 16, a kernel heap of 17 MiB ran out of runs that long).
 * Go never frees explicitly; a heap that does sees spans of few objects
 * fill up and come free over and over (each a trip through the owned sets
 * and a sweep), and mimalloc's 64 KiB pages show the other way
 * (docs/HEAP.md, "Span sizes").
 *
 * Class 0 stands for "large" (its own span). For each class it also checks
 * that the multiply-shift divisor (2^32-1)/size + 1 turns every offset in a
 * span into the exact object index, then writes mm/sizeclasses.h (constants,
 * a commented table, lookup helpers) and mm/sizeclasses.c (the tables).
 *
 * Usage: mksizeclasses OUTDIR   (writes OUTDIR/sizeclasses.h and .c)
 * The build regenerates into build/gen/ and diffs against the committed
 * copies (make sizeclasses-check); `make sizeclasses` rewrites mm/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_SHIFT      13
#define PAGE_SIZE       (1 << PAGE_SHIFT)
#define MIN_HEAP_ALIGN  8
#define MAX_SMALL_SIZE  32768
#define SMALL_SIZE_DIV  8
#define SMALL_SIZE_MAX  1024
#define LARGE_SIZE_DIV  128
#define TINY_SIZE       16
#define EXPECTED_CLASSES 68
#define GROW_MIN_OBJS   64     /* spans of at least this many objects ... */
#define GROW_MAX_PAGES  8      /* ... but of at most this many pages */
#define MAX_CLASSES     128

struct size_class {
	int size;   /* bytes per object (0 for class 0) */
	int npages; /* 8 KiB pages per span */
	uint32_t divmagic;
};

static struct size_class classes[MAX_CLASSES];
static int nclasses;

static int is_power_of_two(int x)
{
	return x > 0 && (x & (x - 1)) == 0;
}

static void die(const char *msg, int a, int b)
{
	fprintf(stderr, "mksizeclasses: %s (%d, %d)\n", msg, a, b);
	exit(1);
}

/* The alignment step in force once the walk reaches `size`. */
static int next_align(int size, int align)
{
	if (!is_power_of_two(size))
		return align;
	if (size >= 2048)
		return 256;
	if (size >= 128)
		return size / 8;
	if (size >= 32)
		return 16;
	return align;
}

/* Fewest pages whose tail waste for objects of `size` is <= 1/8. */
static int pages_for(int size)
{
	int span = PAGE_SIZE;
	while (span % size > span / 8)
		span += PAGE_SIZE;
	return span / PAGE_SIZE;
}

static void add_or_merge(int size, int npages)
{
	struct size_class *prev = &classes[nclasses - 1];
	int span = npages * PAGE_SIZE;

	if (nclasses > 1 && prev->npages == npages &&
	    span / prev->size == span / size) {
		prev->size = size;
		return;
	}
	if (nclasses == MAX_CLASSES)
		die("too many classes", nclasses, size);
	classes[nclasses].size = size;
	classes[nclasses].npages = npages;
	nclasses++;
}

/* Largest 128-aligned object size with the same count per span. */
static void grow_to_fill_span(struct size_class *c)
{
	int span = c->npages * PAGE_SIZE;
	int grown = (span / (span / c->size)) & ~(LARGE_SIZE_DIV - 1);
	if (grown > c->size)
		c->size = grown;
}

/* Our rule on top of Go's (the file's header): lengthen the spans that
 * hold few objects by a whole factor. */
static void grow_spans(void)
{
	for (int i = 1; i < nclasses; i++) {
		struct size_class *c = &classes[i];
		int k = 1;
		while (k * c->npages * PAGE_SIZE / c->size < GROW_MIN_OBJS &&
		       (k + 1) * c->npages <= GROW_MAX_PAGES)
			k++;
		c->npages *= k;
	}
}

static void make_classes(void)
{
	int align = MIN_HEAP_ALIGN;

	nclasses = 1; /* class 0: large objects */
	for (int size = align; size <= MAX_SMALL_SIZE; size += align) {
		align = next_align(size, align);
		if (!is_power_of_two(align))
			die("alignment is not a power of two", size, align);
		add_or_merge(size, pages_for(size));
	}
	for (int i = 1; i < nclasses; i++)
		grow_to_fill_span(&classes[i]);
	if (nclasses != EXPECTED_CLASSES)
		die("number of size classes changed", nclasses, EXPECTED_CLASSES);
}

/* divmagic = ceil(2^32 / size), checked exhaustively over the span. */
static void compute_divmagic(struct size_class *c)
{
	uint32_t m;
	int span = c->npages * PAGE_SIZE;

	if (c->size == 0)
		return;
	m = UINT32_MAX / (uint32_t)c->size + 1;
	for (int n = 0; n <= span; n++) {
		uint64_t x = (uint64_t)n * m;
		if ((uint32_t)(x >> 32) != (uint32_t)(n / c->size))
			die("32-bit magic divisor fails", c->size, n);
		/* The low half tells an object start (Lemire's divisibility
		 * test): size_class_is_start. */
		if (((uint32_t)x < m) != (n % c->size == 0))
			die("32-bit magic start test fails", c->size, n);
	}
	c->divmagic = m;
}

/* Smallest class whose objects hold `size` bytes. */
static int class_for(int size)
{
	for (int i = 0; i < nclasses; i++)
		if (classes[i].size >= size)
			return i;
	die("no class fits", size, 0);
	return 0;
}

static int max_objs_per_span(void)
{
	int most = 0;
	for (int i = 1; i < nclasses; i++) {
		int n = classes[i].npages * PAGE_SIZE / classes[i].size;
		if (n > most)
			most = n;
	}
	return most;
}

static int max_npages(void)
{
	int most = 0;
	for (int i = 1; i < nclasses; i++)
		if (classes[i].npages > most)
			most = classes[i].npages;
	return most;
}

/* A power of two is aligned to itself: up to a page by the 8 KiB-aligned
 * span, above by the span aligned to the object size
 * (mcentral_cache_span). Any other size is aligned to its lowest set bit,
 * at most a page. */
static int min_align(int size)
{
	int a = size & -size;
	if (a == size)
		return size;
	return a > PAGE_SIZE ? PAGE_SIZE : a;
}

static void print_comment_table(FILE *f)
{
	int prev = 0;

	fprintf(f, " * %-5s  %-9s  %-10s  %-7s  %-10s  %-9s  %-9s\n", "class",
		"bytes/obj", "bytes/span", "objects", "tail waste", "max waste",
		"min align");
	for (int i = 1; i < nclasses; i++) {
		const struct size_class *c = &classes[i];
		int span = c->npages * PAGE_SIZE;
		int objects = span / c->size;
		int tail = span - objects * c->size;
		double max_waste = (double)((c->size - prev - 1) * objects + tail) / span;

		fprintf(f, " * %5d  %9d  %10d  %7d  %10d  %8.2f%%  %9d\n", i, c->size,
			span, objects, tail, 100 * max_waste, min_align(c->size));
		prev = c->size;
	}
}

static FILE *open_out(const char *dir, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	return f;
}

static void write_header(const char *dir)
{
	FILE *f = open_out(dir, "sizeclasses.h");

	fputs("/*\n"
	      " * mm/sizeclasses.h - Go's size classes for the small-object heap.\n"
	      " *\n"
	      " * GENERATED by tools/mksizeclasses.c; DO NOT EDIT (make sizeclasses).\n"
	      " *\n"
	      " * Every request of at most MAX_SMALL_SIZE bytes is rounded up to one of\n"
	      " * the object sizes below, its size class; a span of `bytes/span` (whole\n"
	      " * 8 KiB heap pages) is cut into `objects` objects of that size, leaving\n"
	      " * `tail waste` bytes unused at its end. `max waste` is the worst case for\n"
	      " * the class: every object holding one byte more than the class below it.\n"
	      " * The rules (Go's runtime/mksizeclasses.go) keep tail waste <= 12.5% and\n"
	      " * give Go's object sizes; the spans that would hold few objects are then\n"
	      " * lengthened by a whole factor (grow_spans; docs/HEAP.md, \"Span sizes\"),\n"
	      " * so `bytes/span` is not always Go's. `min align` is what every object of\n"
	      " * the class is aligned to. Class 0 means \"large\": an object > 32 KiB gets a\n"
	      " * span of its own. size_to_class() maps a size to its class with one\n"
	      " * table in 8-byte steps (Go has two: 128-byte steps above 1 KiB), and\n"
	      " * size_class_obj_index() turns an offset in a span into an object index\n"
	      " * with a multiply and a shift instead of a divide.\n"
	      " *\n", f);
	print_comment_table(f);
	fputs(" */\n"
	      "#ifndef MM_SIZECLASSES_H\n"
	      "#define MM_SIZECLASSES_H\n"
	      "\n"
	      "#include <stddef.h>\n"
	      "#include <stdint.h>\n"
	      "\n", f);
	fprintf(f, "#define MM_PAGE_SHIFT %d\n", PAGE_SHIFT);
	fputs("#define MM_PAGE_SIZE (1 << MM_PAGE_SHIFT)\n", f);
	fprintf(f, "#define NUM_SIZE_CLASSES %d\n", nclasses);
	fprintf(f, "#define MAX_SMALL_SIZE %d\n", MAX_SMALL_SIZE);
	fprintf(f, "#define SMALL_SIZE_DIV %d\n", SMALL_SIZE_DIV);
	fprintf(f, "#define SMALL_SIZE_MAX %d\n", SMALL_SIZE_MAX);
	fprintf(f, "#define LARGE_SIZE_DIV %d\n", LARGE_SIZE_DIV);
	fprintf(f, "#define TINY_SIZE %d\n", TINY_SIZE);
	fprintf(f, "#define TINY_SIZE_CLASS %d\n", class_for(TINY_SIZE));
	fprintf(f, "#define MIN_HEAP_ALIGN %d\n", MIN_HEAP_ALIGN);
	fprintf(f, "#define MAX_OBJS_PER_SPAN %d\n", max_objs_per_span());
	fprintf(f, "#define MAX_SIZE_CLASS_NPAGES %d\n", max_npages());
	fputs("\n"
	      "/* Per class: object size, pages per span, ceil(2^32 / size). */\n"
	      "extern const uint16_t class_to_size[NUM_SIZE_CLASSES];\n"
	      "extern const uint8_t class_to_npages[NUM_SIZE_CLASSES];\n"
	      "extern const uint32_t class_to_divmagic[NUM_SIZE_CLASSES];\n"
	      "/* Class of a size times 8, indexed by ceil(size / 8) for every small\n"
	      " * size: one table of 8 KiB, not Go's two (by 8 bytes up to 1 KiB, by 128\n"
	      " * above), so the lookup has no branch (kmalloc's fast path: 3\n"
	      " * instructions fewer); a program touches the lines of the sizes it asks\n"
	      " * for. Times 8: the class's scan span class times 4, which indexes\n"
	      " * 32-byte per-span-class records with a scaled index of 8 (kmalloc's\n"
	      " * fast path: mm/mcache.h, mcache_alloc_word_x4). */\n"
	      "extern const uint16_t size_to_class_x8[MAX_SMALL_SIZE / SMALL_SIZE_DIV + 1];\n"
	      "\n"
	      "/* Size class of a request times 8, 0 < size <= MAX_SMALL_SIZE:\n"
	      " * ceil(size / 8) written as (size - 1) / 8 + 1, which shares kmalloc's\n"
	      " * range test's size - 1 (the + 1 goes into the load's displacement). */\n"
	      "static inline unsigned size_to_class_times8(size_t size)\n"
	      "{\n"
	      "\treturn size_to_class_x8[(size - 1) / SMALL_SIZE_DIV + 1];\n"
	      "}\n"
	      "\n"
	      "/* Size class of a request, 0 < size <= MAX_SMALL_SIZE. */\n"
	      "static inline unsigned size_to_class(size_t size)\n"
	      "{\n"
	      "\treturn size_to_class_times8(size) >> 3;\n"
	      "}\n"
	      "\n"
	      "/* offset / class_to_size[cls] for 0 <= offset <= the class's span size,\n"
	      " * without a divide (exact over that range; checked by the generator). */\n"
	      "static inline uint32_t size_class_obj_index(unsigned cls, uint32_t offset)\n"
	      "{\n"
	      "\treturn (uint32_t)(((uint64_t)offset * class_to_divmagic[cls]) >> 32);\n"
	      "}\n"
	      "\n"
	      "/* offset % class_to_size[cls] == 0 over the same range, from the same\n"
	      " * product (x = offset * divmagic): its low half is below divmagic\n"
	      " * exactly then (Lemire, Kaser, Kurz: \"Faster remainder by direct\n"
	      " * computation\", 2019; checked by the generator at every offset). */\n"
	      "static inline int size_class_is_start(uint64_t x, uint32_t divmagic)\n"
	      "{\n"
	      "\treturn (uint32_t)x < divmagic;\n"
	      "}\n"
	      "\n"
	      "#endif\n", f);
	fclose(f);
}

static void write_row(FILE *f, const char *decl, const int *v, int n)
{
	fprintf(f, "%s = {", decl);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s%d,", i % 12 == 0 ? "\n\t" : " ", v[i]);
	fputs("\n};\n\n", f);
}

static void write_source(const char *dir)
{
	FILE *f = open_out(dir, "sizeclasses.c");
	int v[MAX_SMALL_SIZE / SMALL_SIZE_DIV + 1];
	int n;

	fputs("/*\n"
	      " * mm/sizeclasses.c - the size-class tables (see mm/sizeclasses.h).\n"
	      " *\n"
	      " * GENERATED by tools/mksizeclasses.c; DO NOT EDIT (make sizeclasses).\n"
	      " * Go's 68 size classes for 8 KiB pages: object size, pages per span and\n"
	      " * magic divisor per class, and the size-to-class lookup table.\n"
	      " */\n"
	      "#include \"mm/sizeclasses.h\"\n"
	      "\n", f);

	for (int i = 0; i < nclasses; i++)
		v[i] = classes[i].size;
	write_row(f, "const uint16_t class_to_size[NUM_SIZE_CLASSES]", v, nclasses);
	for (int i = 0; i < nclasses; i++)
		v[i] = classes[i].npages;
	write_row(f, "const uint8_t class_to_npages[NUM_SIZE_CLASSES]", v, nclasses);

	fputs("const uint32_t class_to_divmagic[NUM_SIZE_CLASSES] = {", f);
	for (int i = 0; i < nclasses; i++)
		fprintf(f, "%s%#xu,", i % 6 == 0 ? "\n\t" : " ", classes[i].divmagic);
	fputs("\n};\n\n", f);

	n = MAX_SMALL_SIZE / SMALL_SIZE_DIV + 1;
	for (int i = 0; i < n; i++)
		v[i] = class_for(i * SMALL_SIZE_DIV) * 8;
	write_row(f, "const uint16_t size_to_class_x8[MAX_SMALL_SIZE / SMALL_SIZE_DIV + 1]",
		  v, n);
	fclose(f);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
		return 2;
	}
	make_classes();
	grow_spans();
	for (int i = 0; i < nclasses; i++)
		compute_divmagic(&classes[i]);
	write_header(argv[1]);
	write_source(argv[1]);
	return 0;
}
