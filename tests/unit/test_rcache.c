/* Tests for the rendered-answer cache: exact-key hits, misses on any change of origin copy,
 * configuration generation or ranking, the size caps, LRU eviction within a set and under byte
 * pressure, and the references it holds on origin copies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "steerd/mcache.h"
#include "steerd/rcache.h"

static struct mcache_blob *
blob(const char *body)
{
    return mcache_blob_new(MCACHE_DASH, body, strlen(body), NULL, NULL, 0);
}

static struct rcache_key
key(struct mcache_blob *b, uint64_t gen, const uint32_t *rank, size_t n)
{
    return (struct rcache_key){.blob = b, .conf_gen = gen, .rank = rank, .nrank = n};
}

static void
test_rcache_hits_only_the_exact_key(void **state)
{
    (void)state;
    struct rcache *rc = rcache_new(64, 1 << 20, 1 << 16);
    struct mcache_blob *b1 = blob("<MPD/>"), *b2 = blob("<MPD/>");
    uint32_t ab[] = {0, 1}, ba[] = {1, 0}, a[] = {0};
    struct rcache_key k = key(b1, 7, ab, 2);
    struct rcache_hit hit;

    assert_false(rcache_get(rc, &k, &hit));
    assert_true(rcache_put(rc, &k, "answer-ab", 9, NULL, 0));
    assert_true(rcache_get(rc, &k, &hit));
    assert_int_equal(hit.len, 9);
    assert_memory_equal(hit.body, "answer-ab", 9);

    struct rcache_key other[] = {key(b2, 7, ab, 2), key(b1, 8, ab, 2), key(b1, 7, ba, 2),
                                 key(b1, 7, a, 1), key(NULL, 7, ab, 2)};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        assert_false(rcache_get(rc, &other[i], &hit));
    struct rcache_key variant = k;
    variant.variant = 1; /* e.g. another answer mode */
    assert_false(rcache_get(rc, &variant, &hit));

    /* Same key again: replaced, not duplicated. */
    assert_true(rcache_put(rc, &k, "answer-2", 8, NULL, 0));
    assert_true(rcache_get(rc, &k, &hit));
    assert_memory_equal(hit.body, "answer-2", 8);
    struct rcache_stats s;
    rcache_get_stats(rc, &s);
    assert_int_equal(s.entries, 1);
    assert_int_equal(s.bytes, 8);

    /* Cleared: nothing left, references given back. */
    rcache_clear(rc);
    assert_false(rcache_get(rc, &k, &hit));
    rcache_get_stats(rc, &s);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.bytes, 0);
    assert_int_equal(b1->refs, 1);

    rcache_free(rc);
    mcache_blob_unref(b1);
    mcache_blob_unref(b2);
}

static void
test_rcache_keeps_slots_and_counts_them(void **state)
{
    (void)state;
    struct rcache *rc = rcache_new(8, 1000, 100);
    struct mcache_blob *b = blob("<MPD/>");
    uint32_t r[] = {0};
    struct rcache_key k = key(b, 1, r, 1);
    uint32_t slots[] = {3, 40};
    struct rcache_hit hit;
    struct rcache_stats s;

    assert_true(rcache_put(rc, &k, "body with two slots", 19, slots, 2));
    assert_true(rcache_get(rc, &k, &hit));
    assert_int_equal(hit.nslots, 2);
    assert_int_equal(hit.slots[0], 3);
    assert_int_equal(hit.slots[1], 40);
    rcache_get_stats(rc, &s);
    assert_int_equal(s.bytes, 19 + 2 * 4);
    /* Slots count against the entry size: 92 + 3 x 4 > 100. */
    char body[92];
    memset(body, 'x', sizeof(body));
    uint32_t three[] = {1, 2, 3};
    assert_false(rcache_put(rc, &k, body, sizeof(body), three, 3));
    assert_true(rcache_put(rc, &k, body, sizeof(body), three, 2));
    rcache_free(rc);
    mcache_blob_unref(b);
}

static void
test_rcache_holds_a_reference_on_the_origin_copy(void **state)
{
    (void)state;
    struct rcache *rc = rcache_new(4, 1 << 20, 1 << 16);
    struct mcache_blob *b = blob("<MPD/>");
    uint32_t r[] = {3};
    struct rcache_key k = key(b, 1, r, 1);

    assert_int_equal(b->refs, 1);
    assert_true(rcache_put(rc, &k, "x", 1, NULL, 0));
    assert_int_equal(b->refs, 2);
    assert_true(rcache_put(rc, &k, "y", 1, NULL, 0));
    assert_int_equal(b->refs, 2);
    rcache_free(rc);
    assert_int_equal(b->refs, 1);
    mcache_blob_unref(b);
}

static void
test_rcache_refuses_oversized_answers(void **state)
{
    (void)state;
    struct rcache *rc = rcache_new(8, 1000, 100);
    struct mcache_blob *b = blob("<MPD/>");
    uint32_t r[] = {0};
    struct rcache_key k = key(b, 1, r, 1);
    char big[101];
    struct rcache_hit hit;

    memset(big, 'x', sizeof(big));
    assert_false(rcache_put(rc, &k, big, sizeof(big), NULL, 0));
    assert_false(rcache_get(rc, &k, &hit));
    assert_true(rcache_put(rc, &k, big, 100, NULL, 0));
    assert_true(rcache_get(rc, &k, &hit));

    uint32_t too_many[RCACHE_MAX_RANK + 1] = {0};
    struct rcache_key k2 = key(b, 1, too_many, RCACHE_MAX_RANK + 1);
    assert_false(rcache_put(rc, &k2, "x", 1, NULL, 0));
    assert_false(rcache_get(rc, &k2, &hit));
    rcache_free(rc);
    mcache_blob_unref(b);
}

static void
test_rcache_evicts_least_recently_used_in_a_set(void **state)
{
    (void)state;
    /* Two slots: one set of two ways, so a third key must evict. */
    struct rcache *rc = rcache_new(2, 1 << 20, 1 << 16);
    struct mcache_blob *b = blob("<MPD/>");
    uint32_t r0[] = {0}, r1[] = {1}, r2[] = {2};
    struct rcache_key k0 = key(b, 1, r0, 1), k1 = key(b, 1, r1, 1), k2 = key(b, 1, r2, 1);
    struct rcache_hit hit;
    struct rcache_stats s;

    assert_true(rcache_put(rc, &k0, "zero", 4, NULL, 0));
    assert_true(rcache_put(rc, &k1, "one", 3, NULL, 0));
    assert_true(rcache_get(rc, &k0, &hit)); /* k1 is now the least recently used */
    assert_true(rcache_put(rc, &k2, "two", 3, NULL, 0));
    assert_true(rcache_get(rc, &k0, &hit));
    assert_false(rcache_get(rc, &k1, &hit));
    assert_true(rcache_get(rc, &k2, &hit));
    rcache_get_stats(rc, &s);
    assert_int_equal(s.entries, 2);
    assert_int_equal(s.evictions, 1);
    rcache_free(rc);
    assert_int_equal(b->refs, 1);
    mcache_blob_unref(b);
}

static void
test_rcache_bounds_total_bytes(void **state)
{
    (void)state;
    struct rcache *rc = rcache_new(256, 1000, 300);
    struct mcache_blob *b = blob("<MPD/>");
    char body[300];
    struct rcache_stats s;
    struct rcache_hit hit;
    uint32_t r[1];

    memset(body, 'b', sizeof(body));
    for (uint32_t i = 0; i < 100; i++) {
        r[0] = i;
        struct rcache_key k = key(b, 1, r, 1);
        assert_true(rcache_put(rc, &k, body, sizeof(body), NULL, 0));
        rcache_get_stats(rc, &s);
        assert_true(s.bytes <= 1000);
        /* The newest answer is always there. */
        assert_true(rcache_get(rc, &k, &hit));
    }
    rcache_get_stats(rc, &s);
    assert_int_equal(s.entries, 3);
    assert_int_equal(s.bytes, 900);
    /* The oldest went first. */
    r[0] = 0;
    struct rcache_key k0 = key(b, 1, r, 1);
    assert_false(rcache_get(rc, &k0, &hit));
    rcache_free(rc);
    assert_int_equal(b->refs, 1);
    mcache_blob_unref(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rcache_hits_only_the_exact_key),
        cmocka_unit_test(test_rcache_holds_a_reference_on_the_origin_copy),
        cmocka_unit_test(test_rcache_keeps_slots_and_counts_them),
        cmocka_unit_test(test_rcache_refuses_oversized_answers),
        cmocka_unit_test(test_rcache_evicts_least_recently_used_in_a_set),
        cmocka_unit_test(test_rcache_bounds_total_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
