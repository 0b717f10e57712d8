/* Tests for score: the target allocation (commit fill, cost, spill, quality bar, exploration),
 * J, and the interval update (shift cap, hysteresis, floor, flap damping, health, beacon floods,
 * reconcile, weights). The clock is the now_ms argument. */
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
#include "steerd/cost.h"
#include "steerd/diag.h"
#include "steerd/obs.h"
#include "steerd/score.h"
#include "steerd/util.h"

#define MIN_MS 60000ull
#define MAR_2025 1740787200000ull
#define EPS 1e-9

/* ---- score_target --------------------------------------------------------------------------- */

static struct score_params
params(void)
{
    struct score_params p;
    score_params_default(&p);
    return p;
}

static struct score_cand
cand(double q, double free_share, double cap_share, double price)
{
    struct score_cand c = {q, true, free_share, cap_share, price, true};
    c.meets_bar = q >= 0.9;
    return c;
}

static double
sum(const double *x, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    return s;
}

static void
test_score_target_commit_then_cheapest_then_spill(void **state)
{
    (void)state;
    struct score_params p = params();
    p.cost_weight = 1;
    struct score_cand c[3] = {
        cand(1, 0.3, 0.6, 0.02),    /* a: commit room for 30% of the demand */
        cand(1, 0, 0.5, 0.01),      /* b: the cheapest, room for 50% */
        cand(1, 0, INFINITY, 0.03), /* c: expensive, unlimited */
    };
    double share[3], merit[3];
    enum score_rule rule[3];
    score_target(&p, c, 3, 0.02, share, rule, merit);
    assert_float_equal(sum(share, 3), 1, EPS);
    assert_float_equal(share[0], 0.02 + 0.28 + 0.18, EPS); /* its commit, then the rest */
    assert_float_equal(share[1], 0.5, EPS);                /* up to its capacity */
    assert_float_equal(share[2], 0.02, EPS);
    assert_int_equal(rule[0], SCORE_RULE_COMMIT_FILL);
    assert_int_equal(rule[1], SCORE_RULE_COST);
    assert_int_equal(rule[2], SCORE_RULE_EXPLORATION);
    assert_float_equal(merit[0], 1, EPS);
    assert_float_equal(merit[1], 1 - 0.01 / 0.03, EPS);
    assert_float_equal(merit[2], 0, EPS);

    /* b nearly full: a fills up to its capacity, c takes the spill. */
    c[1].cap_share = 0.2;
    score_target(&p, c, 3, 0.02, share, rule, NULL);
    assert_float_equal(share[0], 0.6, EPS);
    assert_float_equal(share[1], 0.2, EPS);
    assert_float_equal(share[2], 0.2, EPS);
    assert_int_equal(rule[1], SCORE_RULE_COST);
    assert_int_equal(rule[2], SCORE_RULE_SPILL);
    assert_float_equal(sum(share, 3), 1, EPS);
}

static void
test_score_target_quality_bar_and_cost_weight(void **state)
{
    (void)state;
    struct score_params p = params();
    double share[3];
    enum score_rule rule[3];

    /* a is cheap but below the bar: exploration share only. */
    struct score_cand c[3] = {cand(0.6, 0, INFINITY, 0.001), cand(0.95, 0, INFINITY, 0.02),
                              cand(0.99, 0, INFINITY, 0.04)};
    p.cost_weight = 1;
    score_target(&p, c, 3, 0.05, share, rule, NULL);
    assert_float_equal(share[0], 0.05, EPS);
    assert_int_equal(rule[0], SCORE_RULE_QUALITY);
    assert_float_equal(share[1], 0.9, EPS); /* cheapest meeting the bar */
    assert_int_equal(rule[1], SCORE_RULE_COST);
    assert_int_equal(rule[2], SCORE_RULE_EXPLORATION);

    /* cost_weight 0: the best quality. */
    p.cost_weight = 0;
    score_target(&p, c, 3, 0.05, share, rule, NULL);
    assert_float_equal(share[2], 0.9, EPS);
    assert_int_equal(rule[2], SCORE_RULE_QUALITY);

    /* In between, merit = (1 - w) Q + w (1 - price / max): 0.5: b 0.725, c 0.495. */
    p.cost_weight = 0.5;
    score_target(&p, c, 3, 0.05, share, rule, NULL);
    assert_float_equal(share[1], 0.9, EPS);

    /* Nobody meets the bar: the best quality takes the rest. */
    c[1].quality = 0.7;
    c[1].meets_bar = false;
    c[2].quality = 0.8;
    c[2].meets_bar = false;
    score_target(&p, c, 3, 0.05, share, rule, NULL);
    assert_float_equal(share[2], 0.9, EPS);
    assert_int_equal(rule[2], SCORE_RULE_QUALITY);
    assert_int_equal(rule[1], SCORE_RULE_QUALITY);

    /* ... within capacity first, then over it. */
    c[2].cap_share = 0.5;
    score_target(&p, c, 3, 0.05, share, rule, NULL);
    assert_float_equal(share[2], 0.5, EPS);
    assert_float_equal(share[1], 0.45, EPS);
    c[1].cap_share = 0.1;
    c[0].cap_share = 0.1;
    score_target(&p, c, 3, 0.05, share, rule, NULL);
    assert_float_equal(share[0], 0.1, EPS);
    assert_float_equal(share[1], 0.1, EPS);
    assert_float_equal(share[2], 0.8, EPS);
    assert_float_equal(sum(share, 3), 1, EPS);
}

static void
test_score_target_exploration_bounds(void **state)
{
    (void)state;
    struct score_params p = params();
    struct score_cand c[4] = {cand(1, 0, INFINITY, 0.01), cand(1, 0, INFINITY, 0.02),
                              cand(1, 0, INFINITY, 0.03), cand(1, 0, INFINITY, 0.04)};
    double share[4];
    /* e |C| > 1: everyone gets 1/|C|. */
    score_target(&p, c, 4, 0.4, share, NULL, NULL);
    for (int i = 0; i < 4; i++)
        assert_float_equal(share[i], 0.25, EPS);
    score_target(&p, c, 1, 0.02, share, NULL, NULL);
    assert_float_equal(share[0], 1, EPS);
    score_target(&p, c, 0, 0.02, share, NULL, NULL); /* nothing to do */
}

/* Random candidates: shares are >= e, sum to 1, and no better-merit segment is left unfilled
 * while a worse one got traffic. */
static void
test_score_target_random_invariants(void **state)
{
    (void)state;
    struct score_params p = params();
    uint64_t x = 99;
    for (int round = 0; round < 2000; round++) {
        struct score_cand c[8];
        double share[8];
        size_t n = 1 + round % 8;
        for (size_t i = 0; i < n; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            double u1 = (double)(x >> 11) * 0x1p-53;
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            double u2 = (double)(x >> 11) * 0x1p-53;
            c[i] = cand(0.7 + 0.3 * u1, u2 < 0.3 ? u2 : 0, u2 < 0.5 ? 0.1 + u2 : INFINITY,
                        0.001 + 0.05 * u1 * u2);
        }
        p.cost_weight = (double)(round % 5) / 4;
        double e = (double)(round % 3) * 0.03;
        bool all_meet = true;
        for (size_t i = 0; i < n; i++)
            all_meet &= c[i].meets_bar;
        score_target(&p, c, n, e, share, NULL, NULL);
        assert_float_equal(sum(share, n), 1, 1e-9);
        double ee = e * (double)n > 1 ? 1.0 / (double)n : e;
        for (size_t i = 0; i < n; i++)
            assert_true(share[i] >= ee - 1e-12);
        /* When every candidate meets the bar, the target maximises J among allocations that
         * give each at least e: it beats the equal split and any single move of share. */
        if (!all_meet)
            continue;
        double alt[8];
        for (size_t i = 0; i < n; i++)
            alt[i] = 1.0 / (double)n;
        double j = score_value(&p, c, n, share);
        assert_true(j >= score_value(&p, c, n, alt) - 1e-9);
        for (size_t from = 0; from < n; from++) {
            for (size_t to = 0; to < n; to++) {
                double d = share[from] - ee < 0.05 ? share[from] - ee : 0.05;
                if (from == to || d <= 0)
                    continue;
                memcpy(alt, share, n * sizeof(double));
                alt[from] -= d;
                alt[to] += d;
                assert_true(j >= score_value(&p, c, n, alt) - 1e-9);
            }
        }
    }
}

static void
test_score_value_segments(void **state)
{
    (void)state;
    struct score_params p = params();
    p.cost_weight = 1;
    struct score_cand c[2] = {cand(1, 0.2, 0.5, 0.02), cand(1, 0, INFINITY, 0.01)};
    /* max price 0.02: a's free part merit 1, paid part 0; b's merit 0.5. */
    double x[2] = {0.4, 0.6};
    assert_float_equal(score_value(&p, c, 2, x), 0.2 * 1 + 0.2 * 0 + 0.6 * 0.5, EPS);
    double y[2] = {0.8, 0.2}; /* beyond capacity counts nothing */
    assert_float_equal(score_value(&p, c, 2, y), 0.2 + 0.2 * 0.5, EPS);
}

static void
test_score_quality_terms(void **state)
{
    (void)state;
    struct score_params p = params();
    assert_float_equal(score_quality(&p, 1, 1, 1, 1), 1, EPS);
    assert_float_equal(score_quality(&p, 0.5, 0.9, 0.8, 1), (0.5 + 1.8 + 0.8 + 2) / 6, EPS);
    assert_float_equal(score_latency_term(&p, -1), 1, EPS);
    assert_float_equal(score_latency_term(&p, 20), 1, EPS);
    assert_float_equal(score_latency_term(&p, 525), 0.5, EPS);
    assert_float_equal(score_latency_term(&p, 5000), 0, EPS);
}

static void
test_score_params_check(void **state)
{
    (void)state;
    struct score_params p = params();
    struct diag d;
    diag_init(&d);
    assert_int_equal(score_params_check(&p, &d), 0);
    p.w_throughput = p.w_rebuffer = p.w_latency = p.w_availability = 0;
    p.cost_weight = 2;
    p.exploration = 0.6;
    p.max_shift = 0;
    p.latency_bad_ms = p.latency_good_ms;
    p.interval_ms = 0;
    p.flap_reuse = 3;
    assert_int_equal(score_params_check(&p, &d), -1);
    char *all = diag_join(&d);
    assert_non_null(strstr(all, "quality weights"));
    assert_non_null(strstr(all, "score.cost_weight"));
    assert_non_null(strstr(all, "score.exploration"));
    assert_non_null(strstr(all, "score.max_shift"));
    assert_non_null(strstr(all, "score.latency_bad_ms"));
    assert_non_null(strstr(all, "score.interval_ms"));
    assert_non_null(strstr(all, "score.flap_suppress"));
    free(all);
    diag_free(&d);
}

/* ---- the interval update --------------------------------------------------------------------- */

struct world {
    struct cfg *cfg;
    struct obs *obs;
    struct cost *cost;
    struct score *score;
    uint8_t up[8];
    double demand[4];
    uint64_t now;
};

/* CDNs "a".."", regions "r0".., every static weight 1. */
static struct cfg *
mk_cfg(size_t ncdns, size_t nregions)
{
    static const char *const ids[] = {"a", "b", "c", "d", "e"};
    struct cfg *c = xcalloc(1, sizeof(*c));
    c->ncdns = ncdns;
    c->cdns = xcalloc(ncdns, sizeof(*c->cdns));
    for (size_t i = 0; i < ncdns; i++)
        c->cdns[i].id = xstrdup(ids[i]);
    c->nregions = nregions;
    c->regions = xcalloc(nregions, sizeof(*c->regions));
    c->rules = xcalloc(nregions, sizeof(*c->rules));
    for (size_t r = 0; r < nregions; r++) {
        char name[32];
        snprintf(name, sizeof(name), "r%zu", r);
        c->regions[r].name = xstrdup(name);
        c->rules[r].weights = xcalloc(ncdns, sizeof(uint32_t));
        for (size_t i = 0; i < ncdns; i++)
            c->rules[r].weights[i] = 1;
    }
    return c;
}

static void
free_cfg(struct cfg *c)
{
    for (size_t i = 0; i < c->ncdns; i++)
        free(c->cdns[i].id);
    for (size_t r = 0; r < c->nregions; r++) {
        free(c->regions[r].name);
        free(c->rules[r].weights);
    }
    free(c->cdns);
    free(c->regions);
    free(c->rules);
    free(c);
}

static void
price(struct world *w, uint32_t cdn, double per_gb)
{
    struct cost_cdn_params cp = {.ntiers = 1, .tiers = {{0, per_gb}}};
    struct diag d;
    diag_init(&d);
    assert_int_equal(cost_configure(w->cost, cdn, &cp, &d), 0);
    diag_free(&d);
}

static void
world_init(struct world *w, size_t ncdns, size_t nregions, const struct score_params *p)
{
    memset(w, 0, sizeof(*w));
    w->cfg = mk_cfg(ncdns, nregions);
    struct obs_params op;
    obs_params_default(&op);
    w->obs = obs_new(&op);
    obs_reconcile(w->obs, w->cfg);
    w->cost = cost_new();
    cost_reconcile(w->cost, w->cfg);
    w->score = score_new(p);
    score_reconcile(w->score, w->cfg);
    memset(w->up, 1, sizeof(w->up));
    w->now = MAR_2025;
    for (uint32_t i = 0; i < ncdns; i++)
        price(w, i, 0.01 * (i + 1)); /* a is the cheapest */
}

static void
world_free(struct world *w)
{
    score_free(w->score);
    cost_free(w->cost);
    obs_free(w->obs);
    free_cfg(w->cfg);
}

static void
step(struct world *w)
{
    struct score_inputs in = {w->cfg, w->up, w->obs, w->cost, w->demand};
    assert_true(score_update(w->score, &in, w->now));
    w->now += MIN_MS;
}

static double
share_of(const struct world *w, uint32_t region, uint32_t cdn)
{
    return score_shares(w->score, region)[cdn];
}

static enum score_rule
rule_of(const struct world *w, uint32_t region, uint32_t cdn)
{
    return score_terms(w->score, region)[cdn].rule;
}

static void
test_score_update_moves_from_static_by_shift_cap(void **state)
{
    (void)state;
    struct score_params p = params();
    struct world w;
    world_init(&w, 2, 1, &p);
    uint32_t weights[2];
    score_weights(w.score, w.cfg, 0, weights); /* nothing computed yet: the static weights */
    assert_int_equal(weights[0], 1);
    assert_int_equal(weights[1], 1);

    step(&w);
    assert_float_equal(share_of(&w, 0, 0), 0.7, EPS);
    assert_float_equal(share_of(&w, 0, 1), 0.3, EPS);
    assert_int_equal(rule_of(&w, 0, 0), SCORE_RULE_SHIFT_CAP);
    assert_float_equal(score_terms(w.score, 0)[0].target, 0.98, EPS);
    step(&w);
    assert_float_equal(share_of(&w, 0, 0), 0.9, EPS);
    step(&w);
    assert_float_equal(share_of(&w, 0, 0), 0.98, EPS);
    assert_float_equal(share_of(&w, 0, 1), 0.02, EPS);
    assert_int_equal(rule_of(&w, 0, 0), SCORE_RULE_QUALITY); /* a is also the best quality */
    assert_int_equal(rule_of(&w, 0, 1), SCORE_RULE_EXPLORATION);
    score_weights(w.score, w.cfg, 0, weights);
    assert_int_equal(weights[0], 9800);
    assert_int_equal(weights[1], 200);

    /* Not yet an interval later: nothing recomputed. */
    struct score_inputs in = {w.cfg, w.up, w.obs, w.cost, NULL};
    assert_false(score_update(w.score, &in, w.now - MIN_MS + 1000));
    world_free(&w);
}

static void
test_score_hysteresis_holds_small_gains(void **state)
{
    (void)state;
    struct score_params p = params();
    p.cost_weight = 1;
    p.hysteresis = 0.1;
    struct world w;
    world_init(&w, 2, 1, &p);
    for (int i = 0; i < 4; i++)
        step(&w);
    assert_float_equal(share_of(&w, 0, 0), 0.98, EPS); /* a: 0.01, b: 0.02 */

    /* b becomes a bit cheaper than a: each share moved would gain 1 - 0.0095 / 0.01 < 0.1. */
    price(&w, 1, 0.0095);
    step(&w);
    assert_float_equal(share_of(&w, 0, 0), 0.98, EPS);
    assert_int_equal(rule_of(&w, 0, 0), SCORE_RULE_HYSTERESIS);
    assert_int_equal(rule_of(&w, 0, 1), SCORE_RULE_HYSTERESIS);
    assert_float_equal(score_terms(w.score, 0)[1].target, 0.98, EPS);

    /* Much cheaper: worth moving, 0.2 per interval. */
    price(&w, 1, 0.002);
    step(&w);
    assert_float_equal(share_of(&w, 0, 0), 0.78, EPS);
    assert_int_equal(rule_of(&w, 0, 0), SCORE_RULE_SHIFT_CAP);
    world_free(&w);
}

static void
test_score_down_cdn_leaves_at_once(void **state)
{
    (void)state;
    struct score_params p = params();
    struct world w;
    world_init(&w, 3, 1, &p);
    for (int i = 0; i < 5; i++)
        step(&w);
    assert_float_equal(share_of(&w, 0, 0), 0.96, EPS);
    w.up[0] = 0;
    step(&w);
    /* No shift cap for a CDN that is down: its sessions must move now. */
    assert_true(share_of(&w, 0, 0) == 0);
    assert_float_equal(share_of(&w, 0, 1) + share_of(&w, 0, 2), 1, EPS);
    assert_int_equal(rule_of(&w, 0, 0), SCORE_RULE_EXCLUDED);
    uint32_t weights[3];
    score_weights(w.score, w.cfg, 0, weights);
    assert_int_equal(weights[0], 1); /* allowed, down: kept for the fail-open choice */
    assert_true(weights[1] > 1 && weights[2] > 1);

    /* Everything down: the static weights (fail open as before). */
    w.up[1] = w.up[2] = 0;
    step(&w);
    score_weights(w.score, w.cfg, 0, weights);
    assert_int_equal(weights[0], 1);
    assert_int_equal(weights[1], 1);
    assert_int_equal(weights[2], 1);

    /* A CDN not allowed in the region never gets a share or a weight. */
    w.up[0] = w.up[1] = w.up[2] = 1;
    w.cfg->rules[0].weights[2] = 0;
    step(&w);
    assert_true(share_of(&w, 0, 2) == 0);
    score_weights(w.score, w.cfg, 0, weights);
    assert_int_equal(weights[2], 0);
    world_free(&w);
}

/* T13 at the score: bogus beacons blaming a healthy CDN move its quality at most the cap per
 * minute and never take it out of rotation. */
static void
test_score_beacon_flood_keeps_cdn_in_rotation(void **state)
{
    (void)state;
    struct score_params p = params();
    p.cost_weight = 0;
    struct world w;
    world_init(&w, 2, 1, &p);
    struct obs_probe ok = {true, 5, 40, -1};
    struct obs_beacon bogus = {0, 1, true, false, -1};
    double last_q = 1;
    for (int minute = 0; minute < 30; minute++) {
        for (int k = 0; k < 10000; k++)
            obs_record_beacon(w.obs, 0, 0, &bogus, w.now - MIN_MS + (uint64_t)k);
        obs_record_probe(w.obs, 0, OBS_GLOBAL, &ok, w.now);
        obs_record_probe(w.obs, 1, OBS_GLOBAL, &ok, w.now);
        step(&w);
        const struct score_terms *t = &score_terms(w.score, 0)[0];
        assert_true(t->candidate);
        assert_true(share_of(&w, 0, 0) >= p.exploration - EPS);
        /* T, R and A each move at most the obs step per window: Q no more. */
        assert_true(last_q - t->quality <= 0.2 + EPS);
        last_q = t->quality;
    }
    uint32_t weights[2];
    score_weights(w.score, w.cfg, 0, weights);
    assert_true(weights[0] >= 1);
    assert_float_equal(share_of(&w, 0, 0), p.exploration, EPS);
    world_free(&w);
}

static void
test_score_flapping_cdn_is_damped(void **state)
{
    (void)state;
    struct score_params p = params();
    p.cost_weight = 1;
    struct world w;
    world_init(&w, 2, 1, &p);
    for (int i = 0; i < 5; i++)
        step(&w);
    assert_float_equal(share_of(&w, 0, 0), 0.98, EPS);
    /* a goes down and up twice within a few minutes. */
    for (int flap = 0; flap < 2; flap++) {
        w.up[0] = 0;
        step(&w);
        w.up[0] = 1;
        step(&w);
    }
    const struct score_terms *t = &score_terms(w.score, 0)[0];
    assert_true(t->suppressed);
    assert_true(t->flap_penalty >= p.flap_suppress - 0.1);
    assert_false(t->meets_bar);
    for (int i = 0; i < 5; i++)
        step(&w);
    assert_float_equal(share_of(&w, 0, 0), p.exploration, EPS);
    assert_int_equal(rule_of(&w, 0, 0), SCORE_RULE_QUALITY);
    /* Quiet for long enough (penalty under 0.75 after two half-lives), it comes back. */
    uint64_t quiet_until = w.now + 2 * p.flap_half_life_ms;
    while (w.now < quiet_until)
        step(&w);
    assert_false(score_terms(w.score, 0)[0].suppressed);
    assert_float_equal(share_of(&w, 0, 0), 0.98, EPS);
    world_free(&w);
}

static void
test_score_capacity_and_commit_with_demand(void **state)
{
    (void)state;
    struct score_params p = params();
    p.cost_weight = 1;
    p.max_shift = 1; /* no smoothing: look at the targets */
    p.hysteresis = 0;
    struct world w;
    world_init(&w, 3, 1, &p);
    /* a: 95th-percentile commit of 4 Gbit/s, burst beyond, capacity 10 Gbit/s. */
    struct cost_cdn_params pa = {.commit = COST_COMMIT_P95_GBPS,
                                 .commit_amount = 4,
                                 .commit_fee = 1000,
                                 .burst_price = 3000,
                                 .capacity_gbps = 10};
    struct diag d;
    diag_init(&d);
    assert_int_equal(cost_configure(w.cost, 0, &pa, &d), 0);
    diag_free(&d);
    w.demand[0] = 20e9;
    cost_account(w.cost, 0, 0, w.now);
    step(&w);
    const struct score_terms *t = score_terms(w.score, 0);
    /* Free: 4 of 20 Gbit/s; capacity 0.9 x 10 of 20. a's burst costs about 0.009 per GB, more
     * than b (0.02)? No: 3000 / 334800 = 0.00896, cheaper than b and c. */
    assert_float_equal(t[0].free_share, 0.2, EPS);
    assert_float_equal(t[0].cap_share, 0.45, EPS);
    assert_float_equal(share_of(&w, 0, 0), 0.45, EPS);
    assert_int_equal(t[0].rule, SCORE_RULE_COMMIT_FILL);
    assert_float_equal(share_of(&w, 0, 1), 0.53, EPS); /* b, the next cheapest, unlimited */
    assert_int_equal(t[1].rule, SCORE_RULE_SPILL);
    assert_float_equal(share_of(&w, 0, 2), 0.02, EPS);

    /* Other regions' traffic on a leaves less room for this one. */
    cost_account(w.cost, 0, 0.45 * 20e9 + 3e9, w.now);
    step(&w);
    t = score_terms(w.score, 0);
    assert_float_equal(t[0].free_share, (4e9 - 3e9) / 20e9, EPS);
    assert_float_equal(t[0].cap_share, (9e9 - 3e9) / 20e9, EPS);
    assert_float_equal(share_of(&w, 0, 0), 0.3, EPS);
    world_free(&w);
}

static void
test_score_explain_terms_from_obs(void **state)
{
    (void)state;
    struct score_params p = params();
    struct world w;
    world_init(&w, 2, 2, &p);
    /* b: regional probes slow in r1 (ttfb 525 ms: latency 0.5), half failing; global fine. */
    struct obs_probe slow = {true, 20, 525, -1}, fail = {false, -1, -1, -1};
    struct obs_probe fast = {true, 5, 50, -1};
    obs_record_probe(w.obs, 1, 1, &slow, w.now);
    obs_record_probe(w.obs, 1, 1, &fail, w.now);
    obs_record_probe(w.obs, 1, OBS_GLOBAL, &fast, w.now);
    step(&w);
    const struct score_terms *t = &score_terms(w.score, 1)[1];
    assert_float_equal(t->latency, 0.5, EPS);
    assert_float_equal(t->availability, 0.5, EPS);
    assert_float_equal(t->throughput, 1, EPS);
    assert_float_equal(t->rebuffer, 1, EPS);
    assert_float_equal(t->quality, (1 + 2 + 0.5 + 1) / 6.0, EPS);
    assert_false(t->meets_bar);
    /* In r0 b has no regional probes: the global ones count. */
    t = &score_terms(w.score, 0)[1];
    assert_float_equal(t->latency, 1, EPS);
    assert_float_equal(t->availability, 1, EPS);
    assert_true(t->meets_bar);
    assert_string_equal(score_rule_str(SCORE_RULE_COMMIT_FILL), "commit_fill");
    assert_string_equal(score_rule_str(SCORE_RULE_SHIFT_CAP), "shift_cap");
    assert_null(score_shares(w.score, 2));
    assert_null(score_terms(w.score, 2));
    world_free(&w);
}

static void
test_score_reconcile_keeps_shares(void **state)
{
    (void)state;
    struct score_params p = params();
    struct world w;
    world_init(&w, 2, 1, &p);
    for (int i = 0; i < 4; i++)
        step(&w);
    assert_float_equal(share_of(&w, 0, 0), 0.98, EPS);

    /* A new CDN "c" (cheapest of all) is added in front. */
    struct cfg *c = mk_cfg(3, 1);
    free(c->cdns[0].id);
    c->cdns[0].id = xstrdup("c");
    free(c->cdns[2].id);
    c->cdns[2].id = xstrdup("a");
    free_cfg(w.cfg);
    w.cfg = c;
    obs_reconcile(w.obs, w.cfg);
    cost_reconcile(w.cost, w.cfg);
    score_reconcile(w.score, w.cfg);
    price(&w, 0, 0.001);
    step(&w);
    /* a (now index 2) moves on from 0.98, c starts from nothing: both within the shift cap. */
    assert_true(share_of(&w, 0, 2) >= 0.98 - 0.2 - EPS);
    assert_true(share_of(&w, 0, 0) <= 0.2 + EPS);
    assert_true(share_of(&w, 0, 0) >= p.exploration - EPS);
    world_free(&w);
}

/* Random health, prices and demand: the published shares always sum to 1 over the candidates,
 * hold the floor, and (when the candidates stay the same) move at most max_shift. */
static void
test_score_update_random_invariants(void **state)
{
    (void)state;
    struct score_params p = params();
    struct world w;
    world_init(&w, 5, 2, &p);
    uint64_t x = 7;
    uint8_t prev_up[5];
    double prev[2][5];
    for (int round = 0; round < 400; round++) {
        memcpy(prev_up, w.up, sizeof(prev_up));
        for (uint32_t r = 0; r < 2 && round > 0; r++)
            memcpy(prev[r], score_shares(w.score, r), sizeof(prev[r]));
        for (uint32_t i = 0; i < 5; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            if ((x >> 60) == 0)
                w.up[i] = !w.up[i];
            if ((x >> 56 & 0xf) == 1)
                price(&w, i, (double)(x >> 40 & 0xff) / 1000);
            cost_account(w.cost, i, (double)(x >> 20 & 0xfff) * 1e6, w.now);
        }
        w.demand[0] = (double)(x & 0xfff) * 1e7;
        w.demand[1] = 0;
        step(&w);
        for (uint32_t r = 0; r < 2; r++) {
            const double *s = score_shares(w.score, r);
            const struct score_terms *t = score_terms(w.score, r);
            size_t n = 0;
            double total = 0;
            for (uint32_t i = 0; i < 5; i++) {
                if (!t[i].candidate) {
                    assert_true(s[i] == 0);
                    continue;
                }
                n++;
                total += s[i];
            }
            if (n == 0)
                continue;
            assert_float_equal(total, 1, 1e-9);
            double e = p.exploration * (double)n > 1 ? 1.0 / (double)n : p.exploration;
            for (uint32_t i = 0; i < 5; i++)
                if (t[i].candidate)
                    assert_true(s[i] >= e - 1e-9);
            if (round > 0 && memcmp(prev_up, w.up, sizeof(prev_up)) == 0) {
                double prev_total = 0;
                for (uint32_t i = 0; i < 5; i++)
                    prev_total += prev[r][i];
                for (uint32_t i = 0; i < 5 && prev_total > 0; i++)
                    assert_true(fabs(s[i] - prev[r][i]) <= p.max_shift + 1e-9);
            }
        }
    }
    world_free(&w);
    score_free(NULL);
}

/* With probe_tp_target_bps, probe throughput caps the throughput term (regional probes first);
 * without it, probe throughput is not scored. */
static void
test_score_probe_throughput_term(void **state)
{
    (void)state;
    struct score_params p = params();
    struct world w;
    world_init(&w, 2, 2, &p);
    struct obs_probe slow = {true, 5, 40, 2e6}, fast = {true, 5, 40, 50e6};
    obs_record_probe(w.obs, 1, 1, &slow, w.now);
    obs_record_probe(w.obs, 1, OBS_GLOBAL, &fast, w.now);
    step(&w);
    assert_float_equal(score_terms(w.score, 1)[1].throughput, 1, EPS); /* off by default */

    p.probe_tp_target_bps = 8e6;
    score_set_params(w.score, &p);
    w.now += p.interval_ms;
    step(&w);
    assert_float_equal(score_terms(w.score, 1)[1].throughput, 0.25, EPS); /* 2 / 8 Mbit/s */
    assert_float_equal(score_terms(w.score, 0)[1].throughput, 1, EPS);    /* global: 50 */
    assert_float_equal(score_terms(w.score, 1)[0].throughput, 1, EPS);    /* unmeasured */
    world_free(&w);
}

/* Unpriced CDNs of equal quality and no demand estimate: nothing is better, so the static
 * split stays (the value of an allocation must be finite with infinite free room). */
static void
test_score_unpriced_equal_keeps_static_split(void **state)
{
    (void)state;
    struct score_params p = params();
    struct world w;
    world_init(&w, 2, 1, &p);
    cost_free(w.cost);
    w.cost = NULL; /* no pricing at all */
    struct score_cand c[2] = {{1, true, INFINITY, INFINITY, 0, false},
                              {1, true, INFINITY, INFINITY, 0, false}};
    const double x[2] = {0.5, 0.5};
    assert_true(isfinite(score_value(&p, c, 2, x)));
    for (int i = 0; i < 5; i++)
        step(&w);
    assert_float_equal(share_of(&w, 0, 0), 0.5, EPS);
    assert_float_equal(share_of(&w, 0, 1), 0.5, EPS);
    assert_int_equal(score_terms(w.score, 0)[0].rule, SCORE_RULE_HYSTERESIS);
    world_free(&w);
}

static void
test_score_expire_forces_an_update(void **state)
{
    (void)state;
    struct score_params p = params();
    struct world w;
    world_init(&w, 2, 1, &p);
    step(&w);
    struct score_inputs in = {w.cfg, w.up, w.obs, w.cost, w.demand};
    assert_false(score_update(w.score, &in, w.now - MIN_MS + 1)); /* within the interval */
    score_expire(w.score);
    assert_true(score_update(w.score, &in, w.now - MIN_MS + 1));
    world_free(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_score_target_commit_then_cheapest_then_spill),
        cmocka_unit_test(test_score_target_quality_bar_and_cost_weight),
        cmocka_unit_test(test_score_target_exploration_bounds),
        cmocka_unit_test(test_score_target_random_invariants),
        cmocka_unit_test(test_score_value_segments),
        cmocka_unit_test(test_score_quality_terms),
        cmocka_unit_test(test_score_params_check),
        cmocka_unit_test(test_score_update_moves_from_static_by_shift_cap),
        cmocka_unit_test(test_score_hysteresis_holds_small_gains),
        cmocka_unit_test(test_score_down_cdn_leaves_at_once),
        cmocka_unit_test(test_score_beacon_flood_keeps_cdn_in_rotation),
        cmocka_unit_test(test_score_flapping_cdn_is_damped),
        cmocka_unit_test(test_score_capacity_and_commit_with_demand),
        cmocka_unit_test(test_score_explain_terms_from_obs),
        cmocka_unit_test(test_score_probe_throughput_term),
        cmocka_unit_test(test_score_unpriced_equal_keeps_static_split),
        cmocka_unit_test(test_score_expire_forces_an_update),
        cmocka_unit_test(test_score_reconcile_keeps_shares),
        cmocka_unit_test(test_score_update_random_invariants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
