/*
 * tests/bench/wl_pair.c - "pair": a malloc+free pair of one size, back to
 * back, on every thread at once (mimalloc-bench's micro pair, per size
 * class).
 *
 * The same object is handed out and given back over and over: the fast
 * path of the allocator's per-thread (per-CPU) cache and nothing else.
 * Cases: pair-8 ... pair-32768 (a representative set of size classes,
 * a = the size) and "tiny": sizes 1..15 in turn, as noscan objects (in the
 * kernel KM_NOSCAN, the 16-byte tiny allocator; on Linux plain malloc).
 * One op = one pair; each thread does ops pairs.
 */
#include "tests/bench/workload.h"

#define PAIR_OPS 5000000u
#define PAIR(n) { "pair-" #n, PAIR_OPS, n, 0, 0 }

static const struct wl_case pair_cases[] = {
	PAIR(8), PAIR(16), PAIR(32), PAIR(48), PAIR(64), PAIR(128), PAIR(256),
	PAIR(512), PAIR(1024), PAIR(2048), PAIR(4096), PAIR(8192), PAIR(16384),
	PAIR(32768),
	{ "tiny", PAIR_OPS, 0, 0, 0 }, /* a = 0: sizes 1..15, noscan */
};

static void pair_thread(struct wl_thread *t)
{
	uint64_t n = wl_scaled(t, t->run->c->ops, 1);
	uint32_t size = (uint32_t)t->run->c->a;
	struct wl_obj o;

	wl_go(t);
	if (size) {
		for (uint64_t i = 0; i < n; i++) {
			wl_obj_alloc(t, &o, size);
			wl_obj_free(t, &o);
		}
	} else {
		uint32_t tiny = 1;
		for (uint64_t i = 0; i < n; i++) {
			wl_obj_alloc_noscan(t, &o, tiny);
			wl_obj_free(t, &o);
			tiny = tiny == 15 ? 1 : tiny + 1;
		}
	}
	t->ops = n;
	wl_stop(t);
}

const struct workload wl_pair = {
	.name = "pair",
	.cases = pair_cases,
	.ncases = sizeof(pair_cases) / sizeof(pair_cases[0]),
	.thread = pair_thread,
};
