/*
 * tests/bench/meta_sample.c - the heap's metadata at its peak, for any
 * program run over libspanheap.so (make bench-metadata).
 *
 * Preloaded after libspanheap.so, it starts a thread that reads
 * spanheap_stats() (kmem_get_stats) every 2 ms and keeps the last sample
 * with the largest heap_bytes; at exit it prints one line to stderr:
 *   META heap_kb=.. chunk_kb=.. spans=.. span_rec_kb=.. bitmap_kb=..
 *        chunkrec_kb=.. tiny_kb=.. pagemap_kb=.. fixalloc_meta_pct=X.XX
 * (fixalloc metadata: heap_bytes - chunk_bytes, the blocks of span
 * records, bitmaps, chunk records and tiny tables, as a percentage of
 * heap_bytes; page-map leaves and .bss are not in it). A sample every 2 ms
 * can miss a short peak; the figures are for comparing builds, not exact.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <time.h>
#include "mm/kmalloc.h"

static void (*stats)(struct kmem_stats *);
static struct kmem_stats peak;
static volatile int stop;

static void *sampler(void *arg)
{
	(void)arg;
	struct timespec ts = { 0, 2000000 };
	while (!stop) {
		struct kmem_stats st;
		stats(&st);
		if (st.heap_bytes >= peak.heap_bytes)
			peak = st;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

__attribute__((constructor)) static void start(void)
{
	pthread_t t;
	stats = (void (*)(struct kmem_stats *))dlsym(RTLD_DEFAULT, "spanheap_stats");
	if (stats && pthread_create(&t, NULL, sampler, NULL) == 0)
		pthread_detach(t);
}

__attribute__((destructor)) static void report(void)
{
	stop = 1;
	if (!stats) {
		fprintf(stderr, "META none: spanheap_stats not found (is libspanheap.so preloaded?)\n");
		return;
	}
	const struct kmem_stats *s = &peak;
	uint64_t fix = s->heap_bytes - s->chunk_bytes;
	fprintf(stderr, "META heap_kb=%lu chunk_kb=%lu spans=%lu span_rec_kb=%lu bitmap_kb=%lu "
		"chunkrec_kb=%lu tiny_kb=%lu pagemap_kb=%lu fixalloc_meta_pct=%.2f\n",
		(unsigned long)(s->heap_bytes >> 10), (unsigned long)(s->chunk_bytes >> 10),
		(unsigned long)s->spans, (unsigned long)(s->meta_span_bytes >> 10),
		(unsigned long)(s->meta_bitmap_bytes >> 10),
		(unsigned long)(s->meta_chunk_bytes >> 10), (unsigned long)(s->meta_tiny_bytes >> 10),
		(unsigned long)(s->meta_pagemap_bytes >> 10),
		s->heap_bytes ? 100.0 * (double)fix / (double)s->heap_bytes : 0.0);
}
