/*
 * tests/kernel/ktest.h - the self-test harness.
 *
 * KTEST(suite, name) { ... } defines a test and registers it in the
 * "ktests" linker section; the runner (tests/kernel/ktest.c) runs them in
 * source order (by file, then line), suite by suite, and prints KTAP
 * version 1:
 *
 *   KTAP version 1
 *   1..N
 *   ok 1 suite.name
 *   not ok 2 suite.other # expected a == b; a = 3, b = 4 at file.c:12
 *   ok 3 suite.big # SKIP needs 18 MiB, have 15 MiB
 *
 * The same test files build into the kernel and into the hosted test
 * binary (tests/host/), so a test that does not need hardware runs in both.
 * A test that only makes sense in the kernel guards itself with
 * #ifndef SPANHEAP_HOSTED.
 *
 * KEXPECT_* record a failure and go on; KASSERT_* record it and return from
 * the test. Every message says what was expected and what was seen, with
 * file and line: each side once (a literal side not repeated), in decimal
 * and, when large, in hex too. A test that needs more memory than the
 * machine has skips itself (KTEST_REQUIRE_FREE_BYTES), which counts as
 * neither passed nor failed. A test that faults or panics is reported
 * `not ok` with the fault, and the run stops there with a failure exit
 * code.
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

/* Skip the running test: KTAP "ok N suite.name # SKIP reason". Only for
 * lack of something the test genuinely needs (memory), with the numbers in
 * the reason; a test that recorded a failure before still fails. */
void ktest_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define KTEST_SKIP(...)                                                       \
	do {                                                                 \
		ktest_skip(__VA_ARGS__);                                     \
		return;                                                      \
	} while (0)

/* Memory a test can still get: the heap's caches are given back first,
 * then it is the kernel's free frames (hosted: the machine's available
 * memory) plus what the heap holds unused. */
uint64_t ktest_free_bytes(void);
/* True when at least `bytes` are free (ktest_free_bytes); otherwise the
 * running test is skipped "needs X MiB, have Y MiB". The macro returns
 * from the test. */
int ktest_require_free_bytes(uint64_t bytes);
#define KTEST_REQUIRE_FREE_BYTES(bytes)                                       \
	do {                                                                 \
		if (!ktest_require_free_bytes(bytes))                        \
			return;                                              \
	} while (0)

/* How a failed comparison shows its two values: a pointer as NULL or hex,
 * a signed type's negative value as such (the comparison itself is done on
 * the values converted to uint64_t). */
#define KTEST_SHOW_SIGNED 1u
#define KTEST_SHOW_POINTER 2u
#define KTEST_SHOW_(x)                                                        \
	(__builtin_classify_type(x) == 5 /* pointer */                       \
		 ? KTEST_SHOW_POINTER                                        \
		 : _Generic((x), signed char: KTEST_SHOW_SIGNED,             \
			    short: KTEST_SHOW_SIGNED, int: KTEST_SHOW_SIGNED, \
			    long: KTEST_SHOW_SIGNED,                          \
			    long long: KTEST_SHOW_SIGNED, default: 0u))
/* Record "expected A op B; A = 3, B = 4": each side once, a side that is
 * a literal (0, 4096, NULL) not repeated. */
void ktest_fail_cmp(const char *file, int line, const char *a_text,
		    const char *op, const char *b_text, uint64_t a, uint64_t b,
		    unsigned a_show, unsigned b_show);

#define KTEST_CMP_(a, op, b, a_text, b_text, ret)                             \
	do {                                                                 \
		uint64_t ktest_a_ = (uint64_t)(a), ktest_b_ = (uint64_t)(b); \
		if (!(ktest_a_ op ktest_b_)) {                               \
			ktest_fail_cmp(__FILE__, __LINE__, a_text, #op,      \
				       b_text, ktest_a_, ktest_b_,           \
				       KTEST_SHOW_(a), KTEST_SHOW_(b));      \
			ret;                                                 \
		}                                                            \
	} while (0)

#define KTEST_TRUE_(c, want, text, ret)                                       \
	do {                                                                 \
		if (!(c) != !(want)) {                                       \
			ktest_fail(__FILE__, __LINE__,                       \
				   (want) ? "expected %s; it is false"        \
					  : "expected !(%s); it is true",     \
				   text);                                     \
			ret;                                                 \
		}                                                            \
	} while (0)

/* The texts are taken here, before NULL or SIZE_MAX would be expanded. */
#define KEXPECT_TRUE(c) KTEST_TRUE_(c, 1, #c, (void)0)
#define KEXPECT_FALSE(c) KTEST_TRUE_(c, 0, #c, (void)0)
#define KEXPECT_EQ(a, b) KTEST_CMP_(a, ==, b, #a, #b, (void)0)
#define KEXPECT_NE(a, b) KTEST_CMP_(a, !=, b, #a, #b, (void)0)
#define KEXPECT_LT(a, b) KTEST_CMP_(a, <, b, #a, #b, (void)0)
#define KEXPECT_LE(a, b) KTEST_CMP_(a, <=, b, #a, #b, (void)0)
#define KEXPECT_GT(a, b) KTEST_CMP_(a, >, b, #a, #b, (void)0)
#define KEXPECT_GE(a, b) KTEST_CMP_(a, >=, b, #a, #b, (void)0)
#define KEXPECT_NULL(p) KTEST_CMP_(p, ==, 0, #p, "NULL", (void)0)
#define KEXPECT_NOT_NULL(p) KTEST_CMP_(p, !=, 0, #p, "NULL", (void)0)

/* A heap broken on purpose: the rule mheap_verify() finds broken now
 * (the format of its report, mheap_verify_broken_rule), or NULL when the
 * heap passes. */
const char *ktest_verify_rule(void);
/* rule (from ktest_verify_rule) is the one whose report contains want:
 * the check meant to see the breakage saw it, not another one first. */
void ktest_expect_rule(const char *file, int line, const char *rule, const char *want);
#define KEXPECT_RULE(rule, want) ktest_expect_rule(__FILE__, __LINE__, rule, want)
#define KEXPECT_VERIFY_BREAKS(want) KEXPECT_RULE(ktest_verify_rule(), want)

#define KASSERT_TRUE(c) KTEST_TRUE_(c, 1, #c, return)
#define KASSERT_FALSE(c) KTEST_TRUE_(c, 0, #c, return)
#define KASSERT_EQ(a, b) KTEST_CMP_(a, ==, b, #a, #b, return)
#define KASSERT_NE(a, b) KTEST_CMP_(a, !=, b, #a, #b, return)
#define KASSERT_LT(a, b) KTEST_CMP_(a, <, b, #a, #b, return)
#define KASSERT_LE(a, b) KTEST_CMP_(a, <=, b, #a, #b, return)
#define KASSERT_GT(a, b) KTEST_CMP_(a, >, b, #a, #b, return)
#define KASSERT_GE(a, b) KTEST_CMP_(a, >=, b, #a, #b, return)
#define KASSERT_NULL(p) KTEST_CMP_(p, ==, 0, #p, "NULL", return)
#define KASSERT_NOT_NULL(p) KTEST_CMP_(p, !=, 0, #p, "NULL", return)

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
