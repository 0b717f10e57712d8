/* Tests for beacon: per-worker rings (push, drain into an obs, drops when full, samples of a
 * replaced configuration dropped), attribution (the cdn key when configured, else the chosen
 * CDN), the per-source limit, per-CDN counts kept by id across configurations, the metrics
 * text, and one producer thread racing the drain. The clock is the now_ms argument. */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "steerd/beacon.h"
#include "steerd/cfg.h"
#include "steerd/cmcd.h"
#include "steerd/obs.h"
#include "steerd/util.h"

#include "names_cfg.h"

#define GEN 7

static const char *const CDNS[] = {"alpha", "beta", "gamma"};
static const char *const REGIONS[] = {"eu", "us"};

struct fx {
    struct cfg *cfg;
    struct obs *obs;
    struct beacon_hub *hub;
};

static struct fx *
fx_new(uint32_t nworkers, uint32_t queue, uint32_t max_sources, double rate, double burst)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    struct obs_params p;
    struct beacon_params bp = {
        .nworkers = nworkers,
        .queue_per_worker = queue,
        .max_sources = max_sources,
        .rate_per_s = rate,
        .burst = burst,
    };
    obs_params_default(&p);
    f->cfg = mk_cfg(CDNS, 3, REGIONS, 2);
    f->obs = obs_new(&p);
    obs_reconcile(f->obs, f->cfg);
    f->hub = beacon_hub_new(&bp);
    beacon_hub_set_conf(f->hub, f->cfg, GEN);
    return f;
}

static void
fx_free(struct fx *f)
{
    beacon_hub_free(f->hub);
    obs_free(f->obs);
    free_cfg(f->cfg);
    free(f);
}

static struct obs_beacon
sample(double tp_bps, int starved)
{
    struct obs_beacon b = {
        .tp_bps = tp_bps, .starved = starved, .error = false, .startup = false, .ttfb_ms = -1};
    return b;
}

static void
test_beacon_push_and_drain(void **state)
{
    (void)state;
    struct fx *f = fx_new(2, 64, 64, 1000, 1000);
    struct beacon_worker *w0 = beacon_hub_worker(f->hub, 0);
    struct beacon_worker *w1 = beacon_hub_worker(f->hub, 1);
    struct obs_beacon b = sample(2e6, 0);
    struct obs_cell cell;

    assert_non_null(w0);
    assert_non_null(w1);
    assert_null(beacon_hub_worker(f->hub, 2));
    for (int i = 0; i < 5; i++)
        assert_true(beacon_worker_push(w0, GEN, 1, 0, &b));
    for (int i = 0; i < 3; i++)
        assert_true(beacon_worker_push(w1, GEN, 2, 1, &b));

    /* Nothing reaches the obs before a drain. */
    assert_int_equal(obs_get(f->obs, 1, 0, 1000, &cell), 0);
    assert_int_equal(cell.beacon_samples, 0);

    assert_int_equal(beacon_drain(f->hub, f->obs, 1000), 8);
    assert_int_equal(obs_get(f->obs, 1, 0, 1000, &cell), 0);
    assert_int_equal(cell.beacon_samples, 5);
    assert_int_equal(obs_get(f->obs, 2, 1, 1000, &cell), 0);
    assert_int_equal(cell.beacon_samples, 3);
    assert_int_equal(obs_get(f->obs, 0, 0, 1000, &cell), 0);
    assert_int_equal(cell.beacon_samples, 0);

    /* A second drain finds nothing. */
    assert_int_equal(beacon_drain(f->hub, f->obs, 1100), 0);

    struct beacon_totals t;
    beacon_hub_totals(f->hub, &t);
    assert_int_equal(t.result[BEACON_ACCEPTED], 8);
    assert_int_equal(t.result[BEACON_DROPPED], 0);
    assert_int_equal(t.drained, 8);
    assert_int_equal(beacon_hub_cdn_samples(f->hub, 0), 0);
    assert_int_equal(beacon_hub_cdn_samples(f->hub, 1), 5);
    assert_int_equal(beacon_hub_cdn_samples(f->hub, 2), 3);
    assert_int_equal(beacon_hub_cdn_samples(f->hub, 3), 0);
    fx_free(f);
}

static void
test_beacon_full_ring_drops_and_recovers(void **state)
{
    (void)state;
    /* 100 slots round up to 128. */
    struct fx *f = fx_new(1, 100, 64, 1000, 1000);
    struct beacon_worker *w = beacon_hub_worker(f->hub, 0);
    struct obs_beacon b = sample(1e6, 0);
    int ok = 0, dropped = 0;

    for (int i = 0; i < 200; i++) {
        if (beacon_worker_push(w, GEN, 0, 0, &b))
            ok++;
        else
            dropped++;
    }
    assert_int_equal(ok, 128);
    assert_int_equal(dropped, 72);
    assert_int_equal(beacon_drain(f->hub, f->obs, 10), 128);
    /* Room again after the drain. */
    assert_true(beacon_worker_push(w, GEN, 0, 0, &b));
    assert_int_equal(beacon_drain(f->hub, f->obs, 20), 1);

    struct beacon_totals t;
    beacon_hub_totals(f->hub, &t);
    assert_int_equal(t.result[BEACON_ACCEPTED], 129);
    assert_int_equal(t.result[BEACON_DROPPED], 72);
    fx_free(f);
}

static void
test_beacon_other_generation_dropped(void **state)
{
    (void)state;
    struct fx *f = fx_new(1, 64, 64, 1000, 1000);
    struct beacon_worker *w = beacon_hub_worker(f->hub, 0);
    struct obs_beacon b = sample(1e6, 1);
    struct obs_cell cell;

    assert_true(beacon_worker_push(w, GEN - 1, 0, 0, &b)); /* queued under an older config */
    assert_true(beacon_worker_push(w, GEN, 0, 0, &b));
    assert_true(beacon_worker_push(w, GEN, 9, 0, &b)); /* index out of range */
    assert_int_equal(beacon_drain(f->hub, f->obs, 10), 1);
    assert_int_equal(obs_get(f->obs, 0, 0, 10, &cell), 0);
    assert_int_equal(cell.beacon_samples, 1);

    struct beacon_totals t;
    beacon_hub_totals(f->hub, &t);
    assert_int_equal(t.result[BEACON_ACCEPTED], 3);
    assert_int_equal(t.result[BEACON_DROPPED], 2);
    fx_free(f);
}

static void
test_beacon_set_conf_keeps_counts_by_id(void **state)
{
    (void)state;
    struct fx *f = fx_new(1, 64, 64, 1000, 1000);
    struct beacon_worker *w = beacon_hub_worker(f->hub, 0);
    struct obs_beacon b = sample(1e6, 0);

    for (int i = 0; i < 4; i++)
        beacon_worker_push(w, GEN, 1, 0, &b); /* beta */
    beacon_worker_push(w, GEN, 0, 0, &b);     /* alpha */
    beacon_drain(f->hub, f->obs, 10);

    /* The next configuration drops alpha and moves beta to index 0. */
    static const char *const next[] = {"beta", "delta"};
    struct cfg *c2 = mk_cfg(next, 2, REGIONS, 2);
    obs_reconcile(f->obs, c2);
    beacon_hub_set_conf(f->hub, c2, GEN + 1);
    assert_int_equal(beacon_hub_cdn_samples(f->hub, 0), 4);
    assert_int_equal(beacon_hub_cdn_samples(f->hub, 1), 0);

    /* A sample queued under the old generation is dropped, a new one counts. */
    beacon_worker_push(w, GEN, 1, 0, &b);
    beacon_worker_push(w, GEN + 1, 1, 0, &b);
    assert_int_equal(beacon_drain(f->hub, f->obs, 20), 1);
    assert_int_equal(beacon_hub_cdn_samples(f->hub, 1), 1);

    struct buf out;
    buf_init(&out, 0);
    beacon_hub_write_prometheus(f->hub, &out);
    assert_non_null(strstr(out.data, "steerd_beacon_samples_total{cdn=\"beta\"} 4\n"));
    assert_non_null(strstr(out.data, "steerd_beacon_samples_total{cdn=\"delta\"} 1\n"));
    assert_null(strstr(out.data, "cdn=\"alpha\""));
    assert_non_null(strstr(out.data, "steerd_beacons_total{result=\"accepted\"} 7\n"));
    assert_non_null(strstr(out.data, "steerd_beacons_total{result=\"dropped\"} 1\n"));
    assert_non_null(strstr(out.data, "steerd_beacons_total{result=\"bad\"} 0\n"));
    assert_non_null(strstr(out.data, "steerd_beacons_total{result=\"rate_limited\"} 0\n"));
    buf_free(&out);
    beacon_hub_set_conf(f->hub, f->cfg, GEN + 2); /* f->cfg is freed with the fixture */
    free_cfg(c2);
    fx_free(f);
}

static void
test_beacon_attribute(void **state)
{
    (void)state;
    struct cfg *c = mk_cfg(CDNS, 3, REGIONS, 2);
    struct cmcd_report r;

    cmcd_report_init(&r);
    assert_int_equal(beacon_attribute(c, &r, 1), 1); /* no cdn key: the chosen one */
    assert_int_equal(beacon_attribute(c, NULL, 2), 2);
    assert_int_equal(cmcd_parse("cdn=\"gamma\",mtp=1000", 20, &r), CMCD_OK);
    assert_int_equal(beacon_attribute(c, &r, 1), 2); /* a configured CDN: the key wins */
    assert_int_equal(cmcd_parse("cdn=\"omega\",mtp=1000", 20, &r), CMCD_OK);
    assert_int_equal(beacon_attribute(c, &r, 1), 1); /* unknown CDN: the chosen one */
    if (cmcd_parse("cdn=\"\",mtp=1000", 15, &r) == CMCD_OK)
        assert_int_equal(beacon_attribute(c, &r, 0), 0);
    free_cfg(c);
}

static void
test_beacon_rate_limit_per_source(void **state)
{
    (void)state;
    struct fx *f = fx_new(1, 64, 64, 2.0 /* per s */, 3.0);
    struct beacon_worker *w = beacon_hub_worker(f->hub, 0);
    uint32_t retry = 0;

    for (int i = 0; i < 3; i++)
        assert_true(beacon_worker_admit(w, 42, 1000, &retry));
    assert_false(beacon_worker_admit(w, 42, 1000, &retry));
    assert_true(retry > 0 && retry <= 500);
    /* Another source has its own bucket. */
    assert_true(beacon_worker_admit(w, 43, 1000, NULL));
    /* Half a second later one token is back. */
    assert_true(beacon_worker_admit(w, 42, 1500, NULL));
    assert_false(beacon_worker_admit(w, 42, 1500, NULL));

    struct beacon_totals t;
    beacon_hub_totals(f->hub, &t);
    assert_int_equal(t.result[BEACON_RATE_LIMITED], 2);
    beacon_worker_count_bad(w, 3);
    beacon_worker_count_bad(w, 0);
    beacon_hub_totals(f->hub, &t);
    assert_int_equal(t.result[BEACON_BAD], 3);
    fx_free(f);
}

static void
test_beacon_many_sources_bounded(void **state)
{
    (void)state;
    /* 100k distinct sources through a 64-source table: every first visit is allowed (a new
     * source starts with a full bucket), the table does not grow, evictions are counted. */
    struct fx *f = fx_new(1, 64, 64, 1.0, 1.0);
    struct beacon_worker *w = beacon_hub_worker(f->hub, 0);
    for (uint64_t k = 0; k < 100000; k++)
        assert_true(beacon_worker_admit(w, k * 0x9e3779b97f4a7c15ULL, 1000, NULL));
    struct buf out;
    buf_init(&out, 0);
    beacon_hub_write_prometheus(f->hub, &out);
    unsigned long long ev = 0;
    const char *p = strstr(out.data, "\nsteerd_beacon_limiter_evictions_total ");
    assert_non_null(p);
    assert_int_equal(sscanf(p + strlen("\nsteerd_beacon_limiter_evictions_total "), "%llu", &ev),
                     1);
    assert_true(ev >= 100000 - 64);
    buf_free(&out);
    fx_free(f);
}

struct producer {
    struct beacon_worker *w;
    uint32_t n;
    uint32_t pushed;
    _Atomic bool done;
};

static void *
produce(void *arg)
{
    struct producer *p = arg;
    struct obs_beacon b = sample(3e6, 0);
    for (uint32_t i = 0; i < p->n; i++) {
        if (beacon_worker_push(p->w, GEN, i % 3, i % 2, &b))
            p->pushed++;
    }
    atomic_store(&p->done, true);
    return NULL;
}

static void
test_beacon_concurrent_producer(void **state)
{
    (void)state;
    struct fx *f = fx_new(1, 256, 64, 1000, 1000);
    struct producer p = {.w = beacon_hub_worker(f->hub, 0), .n = 200000};
    pthread_t th;
    size_t drained = 0;

    assert_int_equal(pthread_create(&th, NULL, produce, &p), 0);
    while (!atomic_load(&p.done))
        drained += beacon_drain(f->hub, f->obs, 1000);
    pthread_join(th, NULL);
    drained += beacon_drain(f->hub, f->obs, 1000);

    struct beacon_totals t;
    beacon_hub_totals(f->hub, &t);
    assert_int_equal(drained, p.pushed);
    assert_int_equal(t.result[BEACON_ACCEPTED], p.pushed);
    assert_int_equal(t.result[BEACON_ACCEPTED] + t.result[BEACON_DROPPED], p.n);
    uint64_t per_cdn = 0;
    for (uint32_t k = 0; k < 3; k++)
        per_cdn += beacon_hub_cdn_samples(f->hub, k);
    assert_int_equal(per_cdn, drained);
    fx_free(f);
}

static void
test_beacon_result_str(void **state)
{
    (void)state;
    assert_string_equal(beacon_result_str(BEACON_ACCEPTED), "accepted");
    assert_string_equal(beacon_result_str(BEACON_BAD), "bad");
    assert_string_equal(beacon_result_str(BEACON_RATE_LIMITED), "rate_limited");
    assert_string_equal(beacon_result_str(BEACON_DROPPED), "dropped");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_beacon_push_and_drain),
        cmocka_unit_test(test_beacon_full_ring_drops_and_recovers),
        cmocka_unit_test(test_beacon_other_generation_dropped),
        cmocka_unit_test(test_beacon_set_conf_keeps_counts_by_id),
        cmocka_unit_test(test_beacon_attribute),
        cmocka_unit_test(test_beacon_rate_limit_per_source),
        cmocka_unit_test(test_beacon_many_sources_bounded),
        cmocka_unit_test(test_beacon_concurrent_producer),
        cmocka_unit_test(test_beacon_result_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
