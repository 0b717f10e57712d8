#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "steerd/cfg.h"
#include "steerd/diag.h"
#include "steerd/policy.h"
#include "steerd/util.h"

#define NSESSIONS 100000u
#define MAX_TEST_CDNS (2 * CFG_MAX_CDNS + 7)

/* A hand-built config: CDN ids "cdn-0".., regions "region-0".., every weight 0, no failover. */
static struct cfg *
mk_cfg(size_t ncdns, size_t nregions)
{
    struct cfg *c = xcalloc(1, sizeof(*c));
    c->ncdns = ncdns;
    c->cdns = xcalloc(ncdns, sizeof(*c->cdns));
    for (size_t i = 0; i < ncdns; i++) {
        char id[CFG_ID_MAX + 1];
        snprintf(id, sizeof(id), "cdn-%zu", i);
        c->cdns[i].id = xstrdup(id);
    }
    c->nregions = nregions;
    c->regions = xcalloc(nregions, sizeof(*c->regions));
    c->rules = xcalloc(nregions, sizeof(*c->rules));
    for (size_t r = 0; r < nregions; r++) {
        char name[32];
        snprintf(name, sizeof(name), "region-%zu", r);
        c->regions[r].name = xstrdup(name);
        c->rules[r].weights = xcalloc(ncdns, sizeof(uint32_t));
    }
    return c;
}

static void
free_cfg(struct cfg *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->ncdns; i++)
        free(c->cdns[i].id);
    for (size_t r = 0; r < c->nregions; r++) {
        free(c->regions[r].name);
        free(c->rules[r].weights);
        free(c->rules[r].failover);
    }
    free(c->cdns);
    free(c->regions);
    free(c->rules);
    free(c);
}

static void
set_weights(struct cfg *c, size_t region, const uint32_t *w)
{
    memcpy(c->rules[region].weights, w, c->ncdns * sizeof(*w));
}

static void
set_failover(struct cfg *c, size_t region, const uint32_t *list, size_t n)
{
    free(c->rules[region].failover);
    c->rules[region].failover = xcalloc(n, sizeof(*list));
    memcpy(c->rules[region].failover, list, n * sizeof(*list));
    c->rules[region].nfailover = n;
}

static void
set_id(struct cfg *c, size_t i, const char *id)
{
    free(c->cdns[i].id);
    c->cdns[i].id = xstrdup(id);
}

/* splitmix64: a stream of well-spread session hashes independent of util_hash64. */
static uint64_t
mix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void
assert_share(unsigned count, unsigned total, double expect, double tol)
{
    double share = (double)count / (double)total;
    if (fabs(share - expect) > tol)
        fail_msg("share %.4f, expected %.4f +- %.4f", share, expect, tol);
}

static void
test_policy_choose_is_sticky(void **state)
{
    (void)state;
    struct cfg *c = mk_cfg(5, 1);
    set_weights(c, 0, (const uint32_t[]){1, 2, 3, 4, 5});
    uint8_t up[5] = {1, 1, 1, 1, 1};
    uint64_t seed = 1;
    unsigned seen[5] = {0};

    for (unsigned i = 0; i < 2000; i++) {
        uint64_t s = mix(&seed);
        struct policy_decision first = policy_choose(c, up, 0, s);
        assert_int_equal(first.reason, POLICY_WEIGHTED);
        assert_true(first.cdn < 5);
        seen[first.cdn]++;
        for (int k = 0; k < 3; k++) {
            struct policy_decision again = policy_choose(c, up, 0, s);
            assert_int_equal(again.cdn, first.cdn);
            assert_int_equal(again.reason, first.reason);
        }
    }
    /* Sticky does not mean constant: different sessions spread over every CDN. */
    for (int i = 0; i < 5; i++)
        assert_true(seen[i] > 0);
    free_cfg(c);
}

static void
test_policy_choose_follows_weights_3_to_1(void **state)
{
    (void)state;
    struct cfg *c = mk_cfg(2, 1);
    set_weights(c, 0, (const uint32_t[]){3, 1});
    uint8_t up[2] = {1, 1};
    uint64_t seed = 42;
    unsigned count[2] = {0};

    for (unsigned i = 0; i < NSESSIONS; i++)
        count[policy_choose(c, up, 0, mix(&seed)).cdn]++;
    assert_int_equal(count[0] + count[1], NSESSIONS);
    assert_share(count[0], NSESSIONS, 0.75, 0.015);
    assert_share(count[1], NSESSIONS, 0.25, 0.015);
    free_cfg(c);
}

static void
test_policy_choose_equal_weights_split_evenly(void **state)
{
    (void)state;
    struct cfg *c = mk_cfg(4, 1);
    set_weights(c, 0, (const uint32_t[]){7, 7, 7, 7});
    uint8_t up[4] = {1, 1, 1, 1};
    uint64_t seed = 7;
    unsigned count[4] = {0};

    for (unsigned i = 0; i < NSESSIONS; i++)
        count[policy_choose(c, up, 0, mix(&seed)).cdn]++;
    for (int i = 0; i < 4; i++)
        assert_share(count[i], NSESSIONS, 0.25, 0.015);
    free_cfg(c);
}

static void
test_policy_choose_uneven_weights_over_many_cdns(void **state)
{
    (void)state;
    /* 1+2+...+8 = 36: the share of CDN i is (i+1)/36. */
    struct cfg *c = mk_cfg(8, 1);
    set_weights(c, 0, (const uint32_t[]){1, 2, 3, 4, 5, 6, 7, 8});
    uint8_t up[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    uint64_t seed = 99;
    unsigned count[8] = {0};

    for (unsigned i = 0; i < NSESSIONS; i++)
        count[policy_choose(c, up, 0, mix(&seed)).cdn]++;
    for (int i = 0; i < 8; i++)
        assert_share(count[i], NSESSIONS, (i + 1) / 36.0, 0.01);
    free_cfg(c);
}

static void
test_policy_choose_adding_a_cdn_moves_only_its_share(void **state)
{
    (void)state;
    struct cfg *three = mk_cfg(3, 1);
    struct cfg *four = mk_cfg(4, 1);
    set_weights(three, 0, (const uint32_t[]){1, 1, 1});
    set_weights(four, 0, (const uint32_t[]){1, 1, 1, 1});
    uint8_t up[4] = {1, 1, 1, 1};
    uint64_t seed = 3;
    unsigned moved = 0;

    for (unsigned i = 0; i < NSESSIONS; i++) {
        uint64_t s = mix(&seed);
        uint32_t before = policy_choose(three, up, 0, s).cdn;
        uint32_t after = policy_choose(four, up, 0, s).cdn;
        if (before != after) {
            assert_int_equal(after, 3); /* a moved session only ever goes to the new CDN */
            moved++;
        }
    }
    assert_share(moved, NSESSIONS, 0.25, 0.015);
    free_cfg(three);
    free_cfg(four);
}

static void
test_policy_choose_reweighting_moves_only_toward_the_heavier_cdn(void **state)
{
    (void)state;
    struct cfg *c = mk_cfg(3, 2);
    set_weights(c, 0, (const uint32_t[]){1, 1, 1});
    set_weights(c, 1, (const uint32_t[]){2, 1, 1});
    uint8_t up[3] = {1, 1, 1};
    uint64_t seed = 11;
    unsigned moved = 0;

    for (unsigned i = 0; i < NSESSIONS; i++) {
        uint64_t s = mix(&seed);
        uint32_t before = policy_choose(c, up, 0, s).cdn;
        uint32_t after = policy_choose(c, up, 1, s).cdn;
        if (before != after) {
            assert_int_equal(after, 0);
            moved++;
        }
    }
    /* CDN 0 goes from 1/3 to 1/2 of the sessions: 1/6 move. */
    assert_share(moved, NSESSIONS, 1.0 / 6.0, 0.015);
    free_cfg(c);
}

static void
test_policy_choose_down_cdn_moves_only_its_sessions(void **state)
{
    (void)state;
    struct cfg *c = mk_cfg(4, 1);
    set_weights(c, 0, (const uint32_t[]){1, 2, 1, 1});
    uint8_t all_up[4] = {1, 1, 1, 1};
    uint8_t one_down[4] = {1, 0, 1, 1};
    uint64_t seed = 5;
    unsigned on_down = 0;

    for (unsigned i = 0; i < NSESSIONS; i++) {
        uint64_t s = mix(&seed);
        struct policy_decision before = policy_choose(c, all_up, 0, s);
        struct policy_decision after = policy_choose(c, one_down, 0, s);
        assert_int_equal(after.reason, POLICY_WEIGHTED);
        assert_int_not_equal(after.cdn, 1);
        if (before.cdn == 1)
            on_down++;
        else
            assert_int_equal(after.cdn, before.cdn);
    }
    assert_share(on_down, NSESSIONS, 0.4, 0.015);
    free_cfg(c);
}

static void
test_policy_choose_regions_use_their_own_rules(void **state)
{
    (void)state;
    struct cfg *c = mk_cfg(4, 2);
    set_weights(c, 0, (const uint32_t[]){1, 1, 0, 0});
    set_weights(c, 1, (const uint32_t[]){0, 0, 1, 1});
    c->default_region = 1;
    uint8_t up[4] = {1, 1, 1, 1};
    uint64_t seed = 8;
    unsigned count[2][4] = {{0}};

    for (unsigned i = 0; i < 10000; i++) {
        uint64_t s = mix(&seed);
        struct policy_decision a = policy_choose(c, up, 0, s);
        struct policy_decision b = policy_choose(c, up, 1, s);
        assert_int_equal(a.reason, POLICY_WEIGHTED);
        assert_int_equal(b.reason, POLICY_WEIGHTED);
        assert_true(a.cdn == 0 || a.cdn == 1);
        assert_true(b.cdn == 2 || b.cdn == 3);
        count[0][a.cdn]++;
        count[1][b.cdn]++;
        /* A region index past the end falls back to the default region. */
        assert_int_equal(policy_choose(c, up, 2, s).cdn, b.cdn);
        assert_int_equal(policy_choose(c, up, UINT32_MAX, s).cdn, b.cdn);
    }
    assert_true(count[0][0] > 0 && count[0][1] > 0);
    assert_true(count[1][2] > 0 && count[1][3] > 0);
    free_cfg(c);
}

static void
test_policy_choose_weight_zero_never_weighted(void **state)
{
    (void)state;
    struct cfg *c = mk_cfg(4, 1);
    set_weights(c, 0, (const uint32_t[]){0, 1, 0, 5});
    uint8_t up[4] = {1, 1, 1, 1};
    uint8_t down[4] = {0, 0, 0, 0};
    uint64_t seed = 13;

    for (unsigned i = 0; i < 20000; i++) {
        uint64_t s = mix(&seed);
        struct policy_decision d = policy_choose(c, up, 0, s);
        assert_int_equal(d.reason, POLICY_WEIGHTED);
        assert_true(d.cdn == 1 || d.cdn == 3);
        d = policy_choose(c, down, 0, s);
        assert_int_equal(d.reason, POLICY_FAIL_OPEN);
        assert_true(d.cdn == 1 || d.cdn == 3);
    }
    free_cfg(c);
}

static void
test_policy_choose_failover_in_order_skipping_down(void **state)
{
    (void)state;
    struct cfg *c = mk_cfg(5, 1);
    set_weights(c, 0, (const uint32_t[]){1, 1, 0, 0, 0});
    set_failover(c, 0, (const uint32_t[]){3, 0, 2, 4}, 4);
    uint64_t seed = 21;

    for (unsigned i = 0; i < 1000; i++) {
        uint64_t s = mix(&seed);
        struct policy_decision d;

        /* Weighted CDNs both down: the first failover entry that is up. */
        d = policy_choose(c, (const uint8_t[]){0, 0, 1, 1, 1}, 0, s);
        assert_int_equal(d.reason, POLICY_FAILOVER);
        assert_int_equal(d.cdn, 3);

        /* 3 down; 0 is in the list but down too; 2 is next. */
        d = policy_choose(c, (const uint8_t[]){0, 0, 1, 0, 1}, 0, s);
        assert_int_equal(d.reason, POLICY_FAILOVER);
        assert_int_equal(d.cdn, 2);

        d = policy_choose(c, (const uint8_t[]){0, 0, 0, 0, 1}, 0, s);
        assert_int_equal(d.reason, POLICY_FAILOVER);
        assert_int_equal(d.cdn, 4);

        /* A weighted CDN up wins over the failover list. */
        d = policy_choose(c, (const uint8_t[]){0, 1, 1, 1, 1}, 0, s);
        assert_int_equal(d.reason, POLICY_WEIGHTED);
        assert_int_equal(d.cdn, 1);
    }
    free_cfg(c);
}

static void
test_policy_choose_fails_open_when_all_down(void **state)
{
    (void)state;
    struct cfg *c = mk_cfg(4, 1);
    set_weights(c, 0, (const uint32_t[]){1, 2, 0, 1});
    set_failover(c, 0, (const uint32_t[]){2}, 1);
    uint8_t up[4] = {1, 1, 1, 1};
    uint8_t down[4] = {0, 0, 0, 0};
    uint64_t seed = 34;
    unsigned count[4] = {0};

    for (unsigned i = 0; i < 20000; i++) {
        uint64_t s = mix(&seed);
        struct policy_decision d = policy_choose(c, down, 0, s);
        assert_int_equal(d.reason, POLICY_FAIL_OPEN);
        assert_true(d.cdn == 0 || d.cdn == 1 || d.cdn == 3);
        /* Sticky, and the same answer as when everything is up. */
        assert_int_equal(policy_choose(c, down, 0, s).cdn, d.cdn);
        assert_int_equal(policy_choose(c, up, 0, s).cdn, d.cdn);
        count[d.cdn]++;
    }
    assert_true(count[0] > 0 && count[1] > 0 && count[3] > 0);
    free_cfg(c);
}

static void
test_policy_choose_fails_open_to_failover_without_weights(void **state)
{
    (void)state;
    struct cfg *c = mk_cfg(3, 2);
    set_failover(c, 0, (const uint32_t[]){2, 1}, 2); /* region 0: no weights, a failover list */
    uint8_t down[3] = {0, 0, 0};
    uint64_t seed = 55;

    for (unsigned i = 0; i < 100; i++) {
        uint64_t s = mix(&seed);
        struct policy_decision d = policy_choose(c, down, 0, s);
        assert_int_equal(d.reason, POLICY_FAIL_OPEN);
        assert_int_equal(d.cdn, 2);

        d = policy_choose(c, (const uint8_t[]){1, 1, 0}, 0, s);
        assert_int_equal(d.reason, POLICY_FAILOVER);
        assert_int_equal(d.cdn, 1);

        /* Region 1 allows nothing and has no list: still an answer, never an error. */
        d = policy_choose(c, down, 1, s);
        assert_int_equal(d.reason, POLICY_FAIL_OPEN);
        assert_int_equal(d.cdn, 0);
    }
    free_cfg(c);
}

static void
test_policy_choose_tie_goes_to_lower_index(void **state)
{
    (void)state;
    /* Same id and weight give the same score for every session. */
    struct cfg *c = mk_cfg(3, 1);
    set_id(c, 1, "same");
    set_id(c, 2, "same");
    set_weights(c, 0, (const uint32_t[]){0, 4, 4});
    uint8_t up[3] = {1, 1, 1};
    uint64_t seed = 77;

    struct policy_candidate out[3];

    for (unsigned i = 0; i < 1000; i++) {
        uint64_t s = mix(&seed);
        assert_int_equal(policy_choose(c, up, 0, s).cdn, 1);
        assert_int_equal(policy_explain(c, up, 0, s, out).cdn, 1);
        assert_true(out[1].score > 0.0);
        assert_true(out[1].score == out[2].score);
    }
    free_cfg(c);

    /* The same across batches of CDNs (more than the config allows, to reach a second one). */
    c = mk_cfg(MAX_TEST_CDNS, 1);
    set_id(c, 3, "same");
    set_id(c, MAX_TEST_CDNS - 2, "same");
    c->rules[0].weights[3] = 9;
    c->rules[0].weights[MAX_TEST_CDNS - 2] = 9;
    uint8_t all_up[MAX_TEST_CDNS];
    memset(all_up, 1, sizeof(all_up));
    for (unsigned i = 0; i < 1000; i++)
        assert_int_equal(policy_choose(c, all_up, 0, mix(&seed)).cdn, 3);
    free_cfg(c);
}

static void
test_policy_explain_reports_rendezvous_scores(void **state)
{
    (void)state;
    struct cfg *c = mk_cfg(3, 1);
    set_weights(c, 0, (const uint32_t[]){1, 3, 0});
    set_failover(c, 0, (const uint32_t[]){2, 1}, 2);
    uint8_t up[3] = {1, 1, 1};
    struct policy_candidate out[3];
    uint64_t seed = 89;

    for (unsigned i = 0; i < 1000; i++) {
        uint64_t s = mix(&seed);
        struct policy_decision d = policy_explain(c, up, 0, s, out);
        assert_int_equal(d.reason, POLICY_WEIGHTED);
        for (uint32_t k = 0; k < 3; k++) {
            assert_int_equal(out[k].cdn, k);
            assert_true(out[k].up);
        }
        assert_int_equal(out[0].weight, 1);
        assert_int_equal(out[1].weight, 3);
        assert_int_equal(out[2].weight, 0);
        assert_true(out[0].eligible);
        assert_true(out[1].eligible);
        assert_false(out[2].eligible);
        assert_int_equal(out[0].failover_rank, -1);
        assert_int_equal(out[1].failover_rank, 1);
        assert_int_equal(out[2].failover_rank, 0);
        assert_true(out[2].score == 0.0);
        /* score = weight / -ln(u), u = ((h >> 11) + 0.5) / 2^53, h = hash(id) keyed by session. */
        for (uint32_t k = 0; k < 2; k++) {
            uint64_t h = util_hash64(c->cdns[k].id, strlen(c->cdns[k].id), s);
            double u = ((double)(h >> 11) + 0.5) / 9007199254740992.0;
            double want = out[k].weight / -log(u);
            assert_true(fabs(out[k].score - want) <= 1e-12 * want);
        }
        assert_true(out[d.cdn].score >= out[1 - d.cdn].score);
    }
    free_cfg(c);
}

static void
test_policy_explain_failover_and_fail_open_terms(void **state)
{
    (void)state;
    struct cfg *c = mk_cfg(4, 1);
    set_weights(c, 0, (const uint32_t[]){2, 1, 0, 0});
    set_failover(c, 0, (const uint32_t[]){3, 2}, 2);
    struct policy_candidate out[4];
    uint64_t s = 0x0123456789abcdefULL;

    /* Failover: nothing is eligible, no scores, ranks from the list. */
    struct policy_decision d = policy_explain(c, (const uint8_t[]){0, 0, 1, 0}, 0, s, out);
    assert_int_equal(d.reason, POLICY_FAILOVER);
    assert_int_equal(d.cdn, 2);
    for (int k = 0; k < 4; k++) {
        assert_false(out[k].eligible);
        assert_true(out[k].score == 0.0);
    }
    assert_false(out[0].up);
    assert_true(out[2].up);
    assert_int_equal(out[3].failover_rank, 0);
    assert_int_equal(out[2].failover_rank, 1);
    assert_int_equal(out[0].failover_rank, -1);

    /* Fail open: every CDN allowed by weight is scored, ignoring health. */
    d = policy_explain(c, (const uint8_t[]){0, 0, 0, 0}, 0, s, out);
    assert_int_equal(d.reason, POLICY_FAIL_OPEN);
    assert_true(d.cdn == 0 || d.cdn == 1);
    assert_true(out[0].score > 0.0);
    assert_true(out[1].score > 0.0);
    assert_true(out[2].score == 0.0);
    assert_true(out[3].score == 0.0);
    assert_true(out[d.cdn].score >= out[1 - d.cdn].score);
    for (int k = 0; k < 4; k++) {
        assert_false(out[k].eligible);
        assert_false(out[k].up);
    }
    free_cfg(c);
}

/* Checks one explain output against the rules in policy.h, independently of the code. */
static void
check_explain(const struct cfg *c, const uint8_t *up, uint32_t region,
              const struct policy_candidate *out, struct policy_decision d)
{
    const struct cfg_rule *rule = &c->rules[region];
    bool any_eligible = false, any_allowed = false;

    for (size_t k = 0; k < c->ncdns; k++) {
        long rank = -1;
        for (size_t j = 0; j < rule->nfailover; j++) {
            if (rule->failover[j] == k) {
                rank = (long)j;
                break;
            }
        }
        assert_int_equal(out[k].cdn, k);
        assert_int_equal(out[k].weight, rule->weights[k]);
        assert_int_equal(out[k].up, up[k] != 0);
        assert_int_equal(out[k].eligible, rule->weights[k] > 0 && up[k] != 0);
        assert_int_equal(out[k].failover_rank, rank);
        any_eligible |= out[k].eligible;
        any_allowed |= rule->weights[k] > 0;

        bool scored = (d.reason == POLICY_WEIGHTED && out[k].eligible) ||
                      (d.reason == POLICY_FAIL_OPEN && rule->weights[k] > 0);
        if (scored) {
            assert_true(out[k].score > 0.0 && isfinite(out[k].score));
            /* The winner has the highest score; ties go to the lower index. */
            if (k < d.cdn)
                assert_true(out[k].score < out[d.cdn].score);
            else
                assert_true(out[k].score <= out[d.cdn].score);
        } else {
            assert_true(out[k].score == 0.0);
        }
    }

    assert_true(d.cdn < c->ncdns);
    switch (d.reason) {
    case POLICY_WEIGHTED:
        assert_true(out[d.cdn].eligible);
        break;
    case POLICY_FAILOVER: {
        assert_false(any_eligible);
        assert_true(up[d.cdn]);
        long rank = out[d.cdn].failover_rank;
        assert_true(rank >= 0);
        for (long j = 0; j < rank; j++)
            assert_false(up[rule->failover[j]]);
        break;
    }
    case POLICY_FAIL_OPEN:
        assert_false(any_eligible);
        for (size_t j = 0; j < rule->nfailover; j++)
            assert_false(up[rule->failover[j]]);
        if (any_allowed)
            assert_true(out[d.cdn].weight > 0);
        else if (rule->nfailover > 0)
            assert_int_equal(d.cdn, rule->failover[0]);
        else
            assert_int_equal(d.cdn, 0);
        break;
    default:
        fail_msg("unknown reason %d", (int)d.reason);
    }
}

static void
test_policy_explain_agrees_with_choose(void **state)
{
    (void)state;
    uint64_t rng = 2024;
    unsigned reasons[3] = {0};

    for (unsigned round = 0; round < 300; round++) {
        size_t ncdns = 1 + mix(&rng) % CFG_MAX_CDNS;
        if (round % 10 == 0)
            ncdns = CFG_MAX_CDNS;
        if (round % 10 == 5)
            ncdns = MAX_TEST_CDNS; /* past the config limit: CDNs are compared in batches */
        struct cfg *c = mk_cfg(ncdns, 3);
        uint32_t *list = xcalloc(ncdns, sizeof(*list));
        for (size_t r = 0; r < 3; r++) {
            /* Sparse weights in some rounds, so failover and fail open happen too. */
            unsigned zero_pct = (unsigned)(mix(&rng) % 101);
            for (size_t k = 0; k < ncdns; k++)
                c->rules[r].weights[k] =
                    mix(&rng) % 100 < zero_pct ? 0 : 1 + (uint32_t)(mix(&rng) % 1000);
            size_t n = mix(&rng) % (ncdns + 1);
            for (size_t j = 0; j < n; j++)
                list[j] = (uint32_t)(mix(&rng) % ncdns);
            set_failover(c, r, list, n);
        }
        uint8_t up[MAX_TEST_CDNS];
        struct policy_candidate out[MAX_TEST_CDNS];
        for (unsigned q = 0; q < 50; q++) {
            unsigned up_pct = (unsigned)(mix(&rng) % 101);
            for (size_t k = 0; k < ncdns; k++)
                up[k] = mix(&rng) % 100 < up_pct;
            uint32_t region = (uint32_t)(mix(&rng) % 3);
            uint64_t s = mix(&rng);
            struct policy_decision a = policy_choose(c, up, region, s);
            memset(out, 0xa5, sizeof(out));
            struct policy_decision b = policy_explain(c, up, region, s, out);
            assert_int_equal(a.cdn, b.cdn);
            assert_int_equal(a.reason, b.reason);
            check_explain(c, up, region, out, b);
            reasons[b.reason]++;
        }
        free(list);
        free_cfg(c);
    }
    /* The random inputs reached every branch. */
    for (int i = 0; i < 3; i++)
        assert_true(reasons[i] > 100);
}

static const char loaded_json[] =
    "{\"allow_targets\": [\"127.0.0.0/8\"], \"cdns\": ["
    " {\"id\": \"alpha\", \"base_url\": \"http://127.0.0.1:9001\"},"
    " {\"id\": \"beta\", \"base_url\": \"http://127.0.0.1:9002\"},"
    " {\"id\": \"gamma\", \"base_url\": \"http://127.0.0.1:9003\"}],"
    " \"regions\": [{\"name\": \"eu\", \"countries\": [\"DE\"]}],"
    " \"policy\": {"
    "  \"default\": {\"cdns\": {\"alpha\": 3, \"beta\": 1}, \"failover\": [\"gamma\"]},"
    "  \"regions\": {\"eu\": {\"cdns\": {\"gamma\": 1}, \"failover\": [\"beta\", \"alpha\"]}}}}";

static void
test_policy_choose_with_loaded_config(void **state)
{
    (void)state;
    struct diag d;
    diag_init(&d);
    struct cfg *c = cfg_load_string(loaded_json, strlen(loaded_json), "<test>", &d);
    if (c == NULL) {
        char *all = diag_join(&d);
        print_message("config rejected:\n%s\n", all);
        free(all);
    }
    assert_non_null(c);
    diag_free(&d);
    long alpha = cfg_cdn_index(c, "alpha"), beta = cfg_cdn_index(c, "beta");
    long gamma = cfg_cdn_index(c, "gamma"), eu = cfg_region_index(c, "eu");
    assert_true(alpha >= 0 && beta >= 0 && gamma >= 0 && eu >= 0);
    assert_true((uint32_t)eu != c->default_region);
    uint32_t def = c->default_region;
    uint8_t up[3] = {1, 1, 1};
    uint64_t seed = 101;
    unsigned count[3] = {0};

    for (unsigned i = 0; i < NSESSIONS; i++) {
        uint64_t s = mix(&seed);
        struct policy_decision r = policy_choose(c, up, def, s);
        assert_int_equal(r.reason, POLICY_WEIGHTED);
        count[r.cdn]++;
        r = policy_choose(c, up, (uint32_t)eu, s);
        assert_int_equal(r.reason, POLICY_WEIGHTED);
        assert_int_equal(r.cdn, gamma);
    }
    assert_int_equal(count[gamma], 0);
    assert_share(count[alpha], NSESSIONS, 0.75, 0.015);

    up[gamma] = 0;
    struct policy_decision r = policy_choose(c, up, (uint32_t)eu, 1);
    assert_int_equal(r.reason, POLICY_FAILOVER);
    assert_int_equal(r.cdn, beta);
    up[beta] = 0;
    r = policy_choose(c, up, (uint32_t)eu, 1);
    assert_int_equal(r.reason, POLICY_FAILOVER);
    assert_int_equal(r.cdn, alpha);
    up[alpha] = 0;
    r = policy_choose(c, up, (uint32_t)eu, 1);
    assert_int_equal(r.reason, POLICY_FAIL_OPEN);
    assert_int_equal(r.cdn, gamma);
    up[gamma] = 1;
    r = policy_choose(c, up, def, 1);
    assert_int_equal(r.reason, POLICY_FAILOVER);
    assert_int_equal(r.cdn, gamma);
    cfg_free(c);
}

static void
test_policy_rank_orders_candidates(void **state)
{
    (void)state;
    struct cfg *c = mk_cfg(5, 1);
    set_weights(c, 0, (const uint32_t[]){1, 2, 3, 0, 0});
    set_failover(c, 0, (const uint32_t[]){4, 0, 3}, 3);
    uint64_t seed = 77;
    uint32_t out[5];

    for (unsigned i = 0; i < 2000; i++) {
        uint64_t s = mix(&seed);
        const uint8_t all_up[] = {1, 1, 1, 1, 1};
        struct policy_decision d = policy_choose(c, all_up, 0, s);
        struct policy_candidate cand[5];
        policy_explain(c, all_up, 0, s, cand);

        size_t n = policy_rank(c, all_up, 0, s, out);
        /* The decision, the other weighted CDNs by score, then failover entries not yet listed:
         * 4 then 3 (0 is weighted and already listed). */
        assert_int_equal(n, 5);
        assert_int_equal(out[0], d.cdn);
        assert_true(cand[out[1]].score >= cand[out[2]].score);
        assert_true(out[1] <= 2 && out[2] <= 2 && out[1] != out[2] && out[1] != out[0]);
        assert_int_equal(out[3], 4);
        assert_int_equal(out[4], 3);

        /* A down CDN is left out; the decision still comes first. */
        const uint8_t two_down[] = {1, 0, 1, 0, 1};
        d = policy_choose(c, two_down, 0, s);
        n = policy_rank(c, two_down, 0, s, out);
        assert_int_equal(n, 3);
        assert_int_equal(out[0], d.cdn);
        assert_int_equal(out[2], 4);

        /* Nothing up: the fail-open order, every allowed CDN, still led by the decision. */
        const uint8_t none[] = {0, 0, 0, 0, 0};
        d = policy_choose(c, none, 0, s);
        assert_int_equal(d.reason, POLICY_FAIL_OPEN);
        n = policy_rank(c, none, 0, s, out);
        assert_int_equal(n, 5);
        assert_int_equal(out[0], d.cdn);
    }
    free_cfg(c);
}

static void
test_policy_reason_str_names(void **state)
{
    (void)state;
    assert_string_equal(policy_reason_str(POLICY_WEIGHTED), "weighted");
    assert_string_equal(policy_reason_str(POLICY_FAILOVER), "failover");
    assert_string_equal(policy_reason_str(POLICY_FAIL_OPEN), "fail_open");
    assert_string_equal(policy_reason_str((enum policy_reason)99), "unknown");
}

/* ---- the scoring engine's weights ---- */

static void
test_policy_choose_w_uses_engine_weights(void **state)
{
    (void)state;
    struct cfg *c = mk_cfg(3, 2);
    const uint32_t stat[] = {1, 1, 1};
    set_weights(c, 0, stat);
    set_weights(c, 1, stat);
    const uint8_t up[] = {1, 1, 1};
    /* the engine gives CDN 2 everything but a 1/10000 sliver each */
    const uint32_t w[] = {1, 1, 9998};
    size_t n2 = 0, same = 0;
    for (uint64_t sess = 0; sess < NSESSIONS; sess++) {
        struct policy_decision d = policy_choose_w(c, w, up, 0, sess);
        assert_int_equal(d.reason, POLICY_WEIGHTED);
        n2 += d.cdn == 2;
        /* NULL weights are exactly the static choice */
        struct policy_decision s0 = policy_choose_w(c, NULL, up, 0, sess);
        struct policy_decision s1 = policy_choose(c, up, 0, sess);
        same += s0.cdn == s1.cdn;
        /* sessions that the engine leaves on a CDN with more weight stay there (stickiness):
         * a session on CDN 2 under the static weights stays on CDN 2 */
        if (s1.cdn == 2)
            assert_int_equal(d.cdn, 2);
    }
    assert_int_equal(same, NSESSIONS);
    assert_true(n2 > NSESSIONS * 99 / 100);
    free_cfg(c);
}

static void
test_policy_choose_w_falls_back_to_static_weights(void **state)
{
    (void)state;
    struct cfg *c = mk_cfg(3, 1);
    const uint32_t stat[] = {1, 1, 0};
    set_weights(c, 0, stat);
    const uint32_t fo[] = {2};
    set_failover(c, 0, fo, 1);
    /* the engine weighs only CDN 0, which is down: the static weights pick CDN 1 before the
     * failover list is tried */
    const uint32_t w[] = {10000, 0, 0};
    const uint8_t up[] = {0, 1, 1};
    for (uint64_t sess = 0; sess < 1000; sess++) {
        struct policy_decision d = policy_choose_w(c, w, up, 0, sess);
        assert_int_equal(d.cdn, 1);
        assert_int_equal(d.reason, POLICY_WEIGHTED);
        struct policy_candidate cand[3];
        struct policy_decision e = policy_explain_w(c, w, up, 0, sess, cand);
        assert_int_equal(e.cdn, 1);
        assert_int_equal(cand[1].weight, 1); /* explained with the weights that decided */
        uint32_t rank[3];
        size_t n = policy_rank_w(c, w, up, 0, sess, rank);
        assert_true(n >= 2);
        assert_int_equal(rank[0], 1);
        assert_int_equal(rank[1], 2);
    }
    /* and when CDN 1 is down too, the failover list */
    const uint8_t up2[] = {0, 0, 1};
    assert_int_equal(policy_choose_w(c, w, up2, 0, 7).reason, POLICY_FAILOVER);
    assert_int_equal(policy_choose_w(c, w, up2, 0, 7).cdn, 2);
    free_cfg(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_choose_is_sticky),
        cmocka_unit_test(test_policy_choose_follows_weights_3_to_1),
        cmocka_unit_test(test_policy_choose_equal_weights_split_evenly),
        cmocka_unit_test(test_policy_choose_uneven_weights_over_many_cdns),
        cmocka_unit_test(test_policy_choose_adding_a_cdn_moves_only_its_share),
        cmocka_unit_test(test_policy_choose_reweighting_moves_only_toward_the_heavier_cdn),
        cmocka_unit_test(test_policy_choose_down_cdn_moves_only_its_sessions),
        cmocka_unit_test(test_policy_choose_regions_use_their_own_rules),
        cmocka_unit_test(test_policy_choose_weight_zero_never_weighted),
        cmocka_unit_test(test_policy_choose_failover_in_order_skipping_down),
        cmocka_unit_test(test_policy_choose_fails_open_when_all_down),
        cmocka_unit_test(test_policy_choose_fails_open_to_failover_without_weights),
        cmocka_unit_test(test_policy_choose_tie_goes_to_lower_index),
        cmocka_unit_test(test_policy_explain_reports_rendezvous_scores),
        cmocka_unit_test(test_policy_explain_failover_and_fail_open_terms),
        cmocka_unit_test(test_policy_explain_agrees_with_choose),
        cmocka_unit_test(test_policy_choose_with_loaded_config),
        cmocka_unit_test(test_policy_rank_orders_candidates),
        cmocka_unit_test(test_policy_reason_str_names),
        cmocka_unit_test(test_policy_choose_w_uses_engine_weights),
        cmocka_unit_test(test_policy_choose_w_falls_back_to_static_weights),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
