/* Tests for obs: decayed probe and beacon aggregates, the beacon movement cap (a flood moves a
 * cell at most beacon_max_step per window), reconcile by name, and the per-source limiter. The
 * clock is the now_ms argument. */
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
#include "steerd/cmcd.h"
#include "steerd/obs.h"
#include "steerd/util.h"

#include "names_cfg.h"

#define MIN_MS 60000u

static struct obs *
mk_obs(const struct obs_params *p)
{
    static const char *const cdns[] = {"a", "b"};
    static const char *const regions[] = {"eu", "us"};
    struct cfg *c = mk_cfg(cdns, 2, regions, 2);
    struct obs *o = obs_new(p);
    obs_reconcile(o, c);
    free_cfg(c);
    return o;
}

static double
get_rebuffer(const struct obs *o, uint32_t cdn, uint32_t region, uint64_t now)
{
    struct obs_cell cell;
    assert_int_equal(obs_get(o, cdn, region, now, &cell), 0);
    return cell.rebuffer_term;
}

static const struct obs_beacon good_beacon = {10e6, 0, false, false, -1};
static const struct obs_beacon bad_beacon = {0, 1, true, false, -1};

static void
test_obs_probe_means_and_decay(void **state)
{
    (void)state;
    struct obs_params p;
    obs_params_default(&p);
    struct obs *o = mk_obs(&p);
    struct obs_cell cell;

    assert_int_equal(obs_get(o, 0, 0, 0, &cell), 0);
    assert_true(cell.probe_ok == 1.0);
    assert_true(cell.connect_ms < 0 && cell.ttfb_ms < 0 && cell.tp_bps < 0);

    struct obs_probe ok = {true, 10, 40, 8e6};
    struct obs_probe fail = {false, -1, -1, -1};
    obs_record_probe(o, 0, 0, &ok, 1000);
    obs_record_probe(o, 0, 0, &ok, 1000);
    obs_record_probe(o, 0, 0, &fail, 1000);
    obs_record_probe(o, 0, 0, &(struct obs_probe){true, 20, 100, 2e6}, 1000);
    assert_int_equal(obs_get(o, 0, 0, 1000, &cell), 0);
    assert_int_equal(cell.probe_samples, 4);
    assert_int_equal(cell.probe_failures, 1);
    assert_float_equal(cell.probe_ok, 0.75, 1e-9);
    assert_float_equal(cell.connect_ms, 40.0 / 3, 1e-9);
    assert_float_equal(cell.ttfb_ms, 60, 1e-9);
    assert_float_equal(cell.tp_bps, 6e6, 1e-3);
    assert_float_equal(cell.probe_weight, 4, 1e-9);

    /* One half-life later the weight has halved and the means are unchanged. */
    assert_int_equal(obs_get(o, 0, 0, 1000 + p.probe_half_life_ms, &cell), 0);
    assert_float_equal(cell.probe_weight, 2, 1e-9);
    assert_float_equal(cell.probe_ok, 0.75, 1e-9);

    /* So a new sample then counts as much as a third of the whole. */
    obs_record_probe(o, 0, 0, &fail, 1000 + p.probe_half_life_ms);
    assert_int_equal(obs_get(o, 0, 0, 1000 + p.probe_half_life_ms, &cell), 0);
    assert_float_equal(cell.probe_ok, 0.5, 1e-9);

    /* The other cells, and the global row, saw nothing. */
    assert_int_equal(obs_get(o, 0, 1, 1000, &cell), 0);
    assert_int_equal(cell.probe_samples, 0);
    assert_int_equal(obs_get(o, 0, OBS_GLOBAL, 1000, &cell), 0);
    assert_int_equal(cell.probe_samples, 0);
    obs_record_probe(o, 0, OBS_GLOBAL, &fail, 2000);
    assert_int_equal(obs_get(o, 0, OBS_GLOBAL, 2000, &cell), 0);
    assert_int_equal(cell.probe_samples, 1);
    assert_true(cell.probe_ok == 0.0);
    obs_free(o);
}

static void
test_obs_beacon_aggregates(void **state)
{
    (void)state;
    struct obs_params p;
    obs_params_default(&p);
    p.beacon_window_ms = 0; /* no cap: plain decayed means */
    struct obs *o = mk_obs(&p);
    struct obs_cell cell;

    assert_int_equal(obs_get(o, 1, 1, 0, &cell), 0);
    assert_true(cell.tp_norm == 1.0 && cell.starvation == 0.0 && cell.error_rate == 0.0);
    assert_true(cell.rebuffer_term == 1.0 && cell.error_term == 1.0);

    struct obs_beacon b1 = {2.5e6, 1, false, true, 120};
    struct obs_beacon b2 = {20e6, 0, true, false, -1};
    assert_true(obs_record_beacon(o, 1, 1, &b1, 5000));
    assert_true(obs_record_beacon(o, 1, 1, &b2, 5000));
    assert_true(obs_record_beacon(o, 1, 1, &(struct obs_beacon){-1, -1, false, false, -1}, 5000));
    assert_int_equal(obs_get(o, 1, 1, 5000, &cell), 0);
    assert_int_equal(cell.beacon_samples, 3);
    assert_int_equal(cell.beacon_errors, 1);
    assert_int_equal(cell.beacon_startups, 1);
    assert_int_equal(cell.beacon_clamped, 0);
    assert_float_equal(cell.beacon_weight, 3, 1e-9);
    assert_float_equal(cell.tp_norm, (0.5 + 1.0) / 2, 1e-9); /* 20 Mbit/s counts as 1 */
    assert_float_equal(cell.starvation, 0.5, 1e-9);          /* the unknown one is left out */
    assert_float_equal(cell.error_rate, 1.0 / 3, 1e-9);
    assert_true(cell.rebuffer_term == 0.0); /* 0.5 is far beyond starvation_bad */
    assert_true(cell.error_term == 0.0);
    assert_float_equal(cell.beacon_tp_bps, 11.25e6, 1e-3);
    assert_float_equal(cell.beacon_ttfb_ms, 120, 1e-9);

    /* Rates below starvation_bad give a partial term. */
    obs_record_beacon(o, 0, 1, &(struct obs_beacon){-1, 0, false, false, -1}, 5000);
    obs_record_beacon(o, 0, 1, &(struct obs_beacon){-1, 0, false, false, -1}, 5000);
    obs_record_beacon(o, 0, 1, &(struct obs_beacon){-1, 0, false, false, -1}, 5000);
    obs_record_beacon(o, 0, 1, &(struct obs_beacon){-1, 1, false, false, -1}, 5000);
    assert_int_equal(obs_get(o, 0, 1, 5000, &cell), 0);
    assert_float_equal(cell.starvation, 0.25, 1e-9);
    assert_float_equal(get_rebuffer(o, 0, 1, 5000), 0.0, 1e-9);
    struct obs_params sharp = p;
    sharp.starvation_bad = 0.5;
    struct obs *o2 = mk_obs(&sharp);
    for (int i = 0; i < 4; i++)
        obs_record_beacon(o2, 0, 1, &(struct obs_beacon){-1, i == 0, false, false, -1}, 5000);
    assert_float_equal(get_rebuffer(o2, 0, 1, 5000), 1 - 0.25 / 0.5, 1e-9);
    obs_free(o2);

    /* Beacons are regional: the global row takes none. */
    assert_false(obs_record_beacon(o, 1, OBS_GLOBAL, &b1, 5000));
    obs_free(o);
}

/* T13: a flood of bogus beacons moves a cell at most beacon_max_step within any window. */
static void
test_obs_beacon_flood_is_capped_per_window(void **state)
{
    (void)state;
    struct obs_params p;
    obs_params_default(&p);
    struct obs *o = mk_obs(&p);
    const double step = p.beacon_max_step;

    /* An hour of honest reports: good throughput, no starvation. */
    uint64_t t = 0;
    for (; t < 60 * MIN_MS; t += 1000)
        obs_record_beacon(o, 0, 0, &good_beacon, t);
    struct obs_cell cell;
    assert_int_equal(obs_get(o, 0, 0, t, &cell), 0);
    assert_true(cell.starvation < 1e-9);
    assert_true(cell.rebuffer_term > 1 - 1e-9);
    assert_true(cell.tp_norm > 1 - 1e-9);

    /* Then ten minutes of 1000 bogus beacons a second blaming the CDN; sample the aggregates
     * every second and check every span of one window. */
    enum { SECONDS = 600 };
    double starve[SECONDS + 1], tp[SECONDS + 1], err[SECONDS + 1];
    uint64_t t0 = t;
    for (int s = 0; s <= SECONDS; s++) {
        assert_int_equal(obs_get(o, 0, 0, t0 + (uint64_t)s * 1000, &cell), 0);
        starve[s] = cell.rebuffer_term;
        tp[s] = cell.tp_norm;
        err[s] = cell.error_term;
        for (int k = 0; k < 1000 && s < SECONDS; k++)
            obs_record_beacon(o, 0, 0, &bad_beacon, t0 + (uint64_t)s * 1000 + (uint64_t)k);
    }
    int window_s = (int)(p.beacon_window_ms / 1000);
    for (int s = 0; s + window_s <= SECONDS; s++) {
        assert_true(fabs(starve[s + window_s] - starve[s]) <= step + 1e-9);
        assert_true(fabs(tp[s + window_s] - tp[s]) <= step + 1e-9);
        assert_true(fabs(err[s + window_s] - err[s]) <= step + 1e-9);
    }
    /* The first minute moved each term by at most one step; the cap is a rate, not a wall. */
    assert_true(1 - starve[60] <= step + 1e-9);
    assert_true(1 - starve[60] > step / 2);
    assert_true(1 - tp[60] <= step + 1e-9);
    assert_true(starve[SECONDS] == 0.0);
    assert_true(tp[SECONDS] < 0.05);
    assert_int_equal(obs_get(o, 0, 0, t0 + SECONDS * 1000, &cell), 0);
    /* Every bogus beacon was clamped until the terms reached 0 (at 3/4 step a minute, after
     * about 6.7 minutes); beyond "bad" the rates move freely. */
    assert_true(cell.beacon_clamped > 6 * 60 * 1000);
    assert_true(cell.starvation > 0.5);

    /* The other region of the same CDN is untouched. */
    assert_true(get_rebuffer(o, 0, 1, t0 + SECONDS * 1000) == 1.0);
    obs_free(o);
}

/* Honest reports of a real degradation get through at the capped rate. */
static void
test_obs_beacon_honest_change_converges(void **state)
{
    (void)state;
    struct obs_params p;
    obs_params_default(&p);
    p.beacon_half_life_ms = MIN_MS;
    struct obs *o = mk_obs(&p);
    struct obs_beacon slow = {1.5e6, 0, false, false, -1}; /* tp_norm 0.3 */
    uint64_t t = 0;
    for (; t < 30 * MIN_MS; t += 2000)
        obs_record_beacon(o, 1, 0, &good_beacon, t);
    uint64_t t0 = t;
    struct obs_cell cell;
    for (; t < t0 + MIN_MS; t += 2000)
        obs_record_beacon(o, 1, 0, &slow, t);
    /* The decayed mean alone would be at 0.65 after one half-life: the cap holds it back. */
    assert_int_equal(obs_get(o, 1, 0, t, &cell), 0);
    assert_true(cell.tp_norm >= 1.0 - p.beacon_max_step - 1e-9);
    for (; t < t0 + 10 * MIN_MS; t += 2000)
        obs_record_beacon(o, 1, 0, &slow, t);
    assert_int_equal(obs_get(o, 1, 0, t, &cell), 0);
    assert_float_equal(cell.tp_norm, 0.3, 0.01);
    obs_free(o);
}

static void
test_obs_out_of_range_is_ignored(void **state)
{
    (void)state;
    struct obs_params p;
    obs_params_default(&p);
    struct obs *o = mk_obs(&p);
    struct obs_cell cell;
    struct obs_probe ok = {true, 1, 1, 1};
    obs_record_probe(o, 2, 0, &ok, 0);
    obs_record_probe(o, 0, 2, &ok, 0);
    assert_false(obs_record_beacon(o, 0, 2, &good_beacon, 0));
    assert_false(obs_record_beacon(o, 7, 0, &good_beacon, 0));
    assert_int_equal(obs_get(o, 2, 0, 0, &cell), -1);
    assert_int_equal(cell.probe_samples, 0);
    assert_int_equal(obs_get(o, 0, 5, 0, &cell), -1);
    assert_int_equal(obs_ncdns(o), 2);
    assert_int_equal(obs_nregions(o), 2);
    obs_free(o);
    obs_free(NULL);
}

static void
test_obs_reconcile_keeps_surviving_cells(void **state)
{
    (void)state;
    struct obs_params p;
    obs_params_default(&p);
    p.beacon_window_ms = 0;
    struct obs *o = mk_obs(&p); /* a b x eu us */
    struct obs_probe fail = {false, -1, -1, -1};
    obs_record_probe(o, 1, 1, &fail, 10);          /* b/us */
    obs_record_probe(o, 1, OBS_GLOBAL, &fail, 10); /* b/global */
    obs_record_probe(o, 0, 1, &fail, 10);          /* a/us */
    obs_record_beacon(o, 1, 0, &bad_beacon, 10);   /* b/eu */

    static const char *const cdns[] = {"c", "b"};
    static const char *const regions[] = {"us", "apac"};
    struct cfg *c = mk_cfg(cdns, 2, regions, 2);
    obs_reconcile(o, c);
    free_cfg(c);
    assert_int_equal(obs_ncdns(o), 2);
    assert_int_equal(obs_nregions(o), 2);

    struct obs_cell cell;
    assert_int_equal(obs_get(o, 1, 0, 10, &cell), 0); /* b/us survived */
    assert_int_equal(cell.probe_samples, 1);
    assert_true(cell.probe_ok == 0.0);
    assert_int_equal(obs_get(o, 1, OBS_GLOBAL, 10, &cell), 0);
    assert_int_equal(cell.probe_samples, 1);
    assert_int_equal(obs_get(o, 1, 1, 10, &cell), 0); /* b/apac is new */
    assert_int_equal(cell.probe_samples, 0);
    assert_int_equal(cell.beacon_samples, 0);
    for (uint32_t r = 0; r < 2; r++) { /* c is new everywhere */
        assert_int_equal(obs_get(o, 0, r, 10, &cell), 0);
        assert_int_equal(cell.probe_samples + cell.beacon_samples, 0);
    }
    /* Reconciling to nothing and back works too. */
    c = mk_cfg(NULL, 0, NULL, 0);
    obs_reconcile(o, c);
    free_cfg(c);
    assert_int_equal(obs_ncdns(o), 0);
    assert_int_equal(obs_get(o, 0, 0, 10, &cell), -1);
    obs_free(o);
}

static void
test_obs_beacon_from_cmcd(void **state)
{
    (void)state;
    struct cmcd_report r;
    struct obs_beacon b;
    const char *s = "bl=12000,mtp=25400,su";
    assert_int_equal(cmcd_parse(s, strlen(s), &r), CMCD_OK);
    obs_beacon_from_cmcd(&r, &b);
    assert_float_equal(b.tp_bps, 25.4e6, 1e-6);
    assert_int_equal(b.starved, 0);
    assert_false(b.error);
    assert_true(b.startup);
    assert_true(b.ttfb_ms < 0);

    s = "bs,sid=\"x\"";
    assert_int_equal(cmcd_parse(s, strlen(s), &r), CMCD_OK);
    obs_beacon_from_cmcd(&r, &b);
    assert_true(b.tp_bps < 0);
    assert_int_equal(b.starved, 1);

    s = "bsd=(0 1200),ec=(\"E1\"),ttfb=85";
    assert_int_equal(cmcd_parse(s, strlen(s), &r), CMCD_OK);
    obs_beacon_from_cmcd(&r, &b);
    assert_int_equal(b.starved, 1);
    assert_true(b.error);
    assert_float_equal(b.ttfb_ms, 85, 1e-9);

    s = "ot=m,sid=\"x\"";
    assert_int_equal(cmcd_parse(s, strlen(s), &r), CMCD_OK);
    obs_beacon_from_cmcd(&r, &b);
    assert_int_equal(b.starved, -1);
    assert_false(b.startup);

    s = "sta=f";
    assert_int_equal(cmcd_parse(s, strlen(s), &r), CMCD_OK);
    obs_beacon_from_cmcd(&r, &b);
    assert_true(b.error);
}

static void
test_obs_limiter_burst_and_refill(void **state)
{
    (void)state;
    struct obs_limiter *l = obs_limiter_new(64, 10.0, 5.0);
    uint32_t retry = 0;
    for (int i = 0; i < 5; i++)
        assert_true(obs_limiter_take(l, 42, 1000, &retry));
    assert_false(obs_limiter_take(l, 42, 1000, &retry));
    assert_int_equal(retry, 100);
    assert_false(obs_limiter_take(l, 42, 1050, &retry));
    assert_int_equal(retry, 50);
    assert_true(obs_limiter_take(l, 42, 1100, NULL));
    assert_false(obs_limiter_take(l, 42, 1100, NULL));
    /* Other sources have their own buckets. */
    assert_true(obs_limiter_take(l, 43, 1100, NULL));
    /* A long pause refills to burst, not beyond. */
    int allowed = 0;
    for (int i = 0; i < 20; i++)
        allowed += obs_limiter_take(l, 42, 600000, NULL);
    assert_int_equal(allowed, 5);
    assert_int_equal(obs_limiter_evictions(l), 0);
    obs_limiter_free(l);
    obs_limiter_free(NULL);
}

static void
test_obs_limiter_bounded_table(void **state)
{
    (void)state;
    struct obs_limiter *l = obs_limiter_new(64, 1.0, 2.0);
    const uint64_t n = 100000;
    for (uint64_t k = 0; k < n; k++)
        assert_true(obs_limiter_take(l, util_hash64(&k, sizeof(k), 1), 1000 + k, NULL));
    /* At most 64 sources are ever tracked: everyone else was evicted. */
    assert_true(obs_limiter_evictions(l) >= n - 64);
    obs_limiter_free(l);
}

static void
test_obs_limiter_evicts_idle_first(void **state)
{
    (void)state;
    /* One set of 8 slots. */
    struct obs_limiter *l = obs_limiter_new(8, 1.0, 2.0);
    assert_true(obs_limiter_take(l, 1, 0, NULL));
    assert_true(obs_limiter_take(l, 1, 0, NULL));
    assert_false(obs_limiter_take(l, 1, 0, NULL)); /* source 1 is out of tokens */
    for (uint64_t k = 2; k <= 8; k++)
        assert_true(obs_limiter_take(l, k, 1, NULL));
    /* At 1001 ms the others are full again (idle); source 1 is not. A new source evicts an
     * idle one, not the least recently seen source 1. */
    assert_true(obs_limiter_take(l, 9, 1001, NULL));
    assert_int_equal(obs_limiter_evictions(l), 1);
    assert_true(obs_limiter_take(l, 1, 1001, NULL));  /* one token earned since 0 */
    assert_false(obs_limiter_take(l, 1, 1001, NULL)); /* still tracked: no fresh bucket */
    obs_limiter_free(l);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_obs_probe_means_and_decay),
        cmocka_unit_test(test_obs_beacon_aggregates),
        cmocka_unit_test(test_obs_beacon_flood_is_capped_per_window),
        cmocka_unit_test(test_obs_beacon_honest_change_converges),
        cmocka_unit_test(test_obs_out_of_range_is_ignored),
        cmocka_unit_test(test_obs_reconcile_keeps_surviving_cells),
        cmocka_unit_test(test_obs_beacon_from_cmcd),
        cmocka_unit_test(test_obs_limiter_burst_and_refill),
        cmocka_unit_test(test_obs_limiter_bounded_table),
        cmocka_unit_test(test_obs_limiter_evicts_idle_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
