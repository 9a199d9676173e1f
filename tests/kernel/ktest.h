/*
 * tests/kernel/ktest.h - the self-test harness.
 *
 * KTEST(suite, name) { ... } defines a test and registers it in the
 * "ktests" linker section; the runner (tests/kernel/ktest.c) runs every
 * suite in link order, one after another, and prints KTAP version 1:
 *
 *   KTAP version 1
 *   1..N
 *   ok 1 suite.name
 *   not ok 2 suite.other # expected a == b, saw a=3 (0x3), b=4 (0x4) at file.c:12
 *
 * The same test files build into the kernel and into the hosted test
 * binary (tests/host/), so a test that does not need hardware runs in both.
 * A test that only makes sense in the kernel guards itself with
 * #ifndef SPANHEAP_HOSTED.
 *
 * KEXPECT_* record a failure and go on; KASSERT_* record it and return from
 * the test. Every message says what was expected and what was seen, with
 * file and line. A test that faults or panics is reported `not ok` with the
 * fault, and the run stops there with a failure exit code.
 */
#ifndef TESTS_KTEST_H
#define TESTS_KTEST_H

#include <stdint.h>
#include <stddef.h>

struct ktest {
	const char *suite;
	const char *name;
	void (*fn)(void);
	const char *file;
	int line;
};

#define KTEST(suite, name)                                                   \
	static void ktest_fn_##suite##_##name(void);                         \
	static const struct ktest ktest_desc_##suite##_##name                \
		__attribute__((used, section("ktests"), aligned(8))) = {     \
			#suite, #name, ktest_fn_##suite##_##name, __FILE__,  \
			__LINE__ };                                          \
	static void ktest_fn_##suite##_##name(void)

/* Record a failure of the running test (the first message is the one shown
 * on the KTAP line; later ones are printed as diagnostics). */
void ktest_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* KTAP diagnostic line ("# ...") in the test output. */
void ktest_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Number of failures recorded so far in the running test. */
int ktest_failures(void);

#define KTEST_CMP_(a, op, b, ret)                                             \
	do {                                                                 \
		uint64_t ktest_a_ = (uint64_t)(a), ktest_b_ = (uint64_t)(b); \
		if (!(ktest_a_ op ktest_b_)) {                               \
			ktest_fail(__FILE__, __LINE__,                       \
				   "expected %s %s %s, saw %s=%lld (%#llx), " \
				   "%s=%lld (%#llx)",                         \
				   #a, #op, #b, #a, (long long)ktest_a_,      \
				   (unsigned long long)ktest_a_, #b,          \
				   (long long)ktest_b_,                       \
				   (unsigned long long)ktest_b_);             \
			ret;                                                 \
		}                                                            \
	} while (0)

#define KTEST_TRUE_(c, ret)                                                   \
	do {                                                                 \
		if (!(c)) {                                                  \
			ktest_fail(__FILE__, __LINE__,                       \
				   "expected %s, saw false", #c);             \
			ret;                                                 \
		}                                                            \
	} while (0)

#define KEXPECT_TRUE(c) KTEST_TRUE_(c, (void)0)
#define KEXPECT_FALSE(c) KTEST_TRUE_(!(c), (void)0)
#define KEXPECT_EQ(a, b) KTEST_CMP_(a, ==, b, (void)0)
#define KEXPECT_NE(a, b) KTEST_CMP_(a, !=, b, (void)0)
#define KEXPECT_LT(a, b) KTEST_CMP_(a, <, b, (void)0)
#define KEXPECT_LE(a, b) KTEST_CMP_(a, <=, b, (void)0)
#define KEXPECT_GT(a, b) KTEST_CMP_(a, >, b, (void)0)
#define KEXPECT_GE(a, b) KTEST_CMP_(a, >=, b, (void)0)
#define KEXPECT_NULL(p) KTEST_CMP_(p, ==, 0, (void)0)
#define KEXPECT_NOT_NULL(p) KTEST_CMP_(p, !=, 0, (void)0)

#define KASSERT_TRUE(c) KTEST_TRUE_(c, return)
#define KASSERT_FALSE(c) KTEST_TRUE_(!(c), return)
#define KASSERT_EQ(a, b) KTEST_CMP_(a, ==, b, return)
#define KASSERT_NE(a, b) KTEST_CMP_(a, !=, b, return)
#define KASSERT_LT(a, b) KTEST_CMP_(a, <, b, return)
#define KASSERT_LE(a, b) KTEST_CMP_(a, <=, b, return)
#define KASSERT_GT(a, b) KTEST_CMP_(a, >, b, return)
#define KASSERT_GE(a, b) KTEST_CMP_(a, >=, b, return)
#define KASSERT_NULL(p) KTEST_CMP_(p, ==, 0, return)
#define KASSERT_NOT_NULL(p) KTEST_CMP_(p, !=, 0, return)

/* Deterministic xorshift64* generator for randomized tests: the same seed
 * gives the same sequence in the kernel and hosted. */
struct ktest_rng { uint64_t s; };
static inline void ktest_rng_seed(struct ktest_rng *r, uint64_t seed)
{
	r->s = seed ? seed : 0x9e3779b97f4a7c15ULL;
}
static inline uint64_t ktest_rng_next(struct ktest_rng *r)
{
	uint64_t x = r->s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->s = x;
	return x * 0x2545f4914f6cdd1dULL;
}
/* Uniform-ish value in [0, n), n > 0. */
static inline uint64_t ktest_rng_below(struct ktest_rng *r, uint64_t n)
{
	return ktest_rng_next(r) % n;
}

#endif
