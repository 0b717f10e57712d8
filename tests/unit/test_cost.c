/* Tests for cost: calendar months, traffic accounting into volume and 5-minute samples, the
 * exact 95th percentile, bills and marginal prices for each pricing model, reconcile by id. */
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
#include "steerd/util.h"

#define DAY_MS 86400000ull
#define HOUR_MS 3600000ull
/* 2025-03-01T00:00:00Z and 2024-02-01T00:00:00Z */
#define MAR_2025 1740787200000ull
#define FEB_2024 1706745600000ull

static struct cfg *
mk_cfg(const char *const *ids, size_t n)
{
    struct cfg *c = xcalloc(1, sizeof(*c));
    c->ncdns = n;
    c->cdns = xcalloc(n, sizeof(*c->cdns));
    for (size_t i = 0; i < n; i++)
        c->cdns[i].id = xstrdup(ids[i]);
    return c;
}

static void
free_cfg(struct cfg *c)
{
    for (size_t i = 0; i < c->ncdns; i++)
        free(c->cdns[i].id);
    free(c->cdns);
    free(c);
}

static struct cost *
mk_cost(size_t n)
{
    static const char *const ids[] = {"a", "b", "c", "d"};
    struct cfg *cfg = mk_cfg(ids, n);
    struct cost *c = cost_new();
    cost_reconcile(c, cfg);
    free_cfg(cfg);
    return c;
}

static void
configure(struct cost *c, uint32_t cdn, const struct cost_cdn_params *p)
{
    struct diag d;
    diag_init(&d);
    if (cost_configure(c, cdn, p, &d) != 0) {
        char *msg = diag_join(&d);
        fail_msg("configure: %s", msg);
    }
    diag_free(&d);
}

static void
test_cost_calendar_months(void **state)
{
    (void)state;
    assert_true(cost_month_start_ms(MAR_2025 + 13 * DAY_MS + 5) == MAR_2025);
    assert_int_equal(cost_month_days(MAR_2025), 31);
    assert_true(cost_month_start_ms(FEB_2024 + 28 * DAY_MS + HOUR_MS) == FEB_2024);
    assert_int_equal(cost_month_days(FEB_2024), 29); /* leap year */
    assert_int_equal(cost_month_days(FEB_2024 + 366 * DAY_MS), 28);
    assert_true(cost_month_start_ms(MAR_2025 - 1) == MAR_2025 - 28 * DAY_MS);
    assert_true(cost_month_start_ms(0) == 0);
    assert_int_equal(cost_month_days(0), 31);
    /* 2023-12-31T23:59:59Z is December; 2024-01-01T00:00Z begins January. */
    assert_true(cost_month_start_ms(1704067200000ull - 1000) == 1701388800000ull);
    assert_true(cost_month_start_ms(1704067200000ull) == 1704067200000ull);
}

static void
test_cost_accounts_volume_and_samples(void **state)
{
    (void)state;
    struct cost *c = mk_cost(2);
    uint64_t t = MAR_2025 + 2 * DAY_MS;
    cost_account(c, 0, 8e9, t); /* starts the clock */
    cost_account(c, 0, 8e9, t + HOUR_MS);
    assert_float_equal(cost_month_gb(c, 0), 3600, 1e-6); /* 1 GB/s for an hour */
    assert_int_equal(cost_nsamples(c, 0), 12);
    assert_float_equal(cost_p95_bps(c, 0), 8e9, 1e-3);
    /* Half a bucket at 8 Gbit/s then half at 0: the sample is the bucket's average. */
    cost_account(c, 0, 0, t + HOUR_MS + 150000);
    cost_advance(c, t + HOUR_MS + 300000);
    assert_int_equal(cost_nsamples(c, 0), 13);
    assert_float_equal(cost_month_gb(c, 0), 3750, 1e-6);
    /* Time going backwards changes nothing. */
    cost_account(c, 0, 1e9, t);
    assert_float_equal(cost_month_gb(c, 0), 3750, 1e-6);
    /* The other CDN saw nothing; out-of-range ones are ignored. */
    assert_true(cost_month_gb(c, 1) == 0);
    cost_account(c, 9, 1e9, t);
    assert_true(cost_month_gb(c, 9) == 0);
    assert_int_equal(cost_nsamples(c, 9), 0);
    cost_free(c);
    cost_free(NULL);
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A whole month of 5-minute samples: the 95th percentile is exact, and the month rolls over. */
static void
test_cost_p95_exact_over_a_month(void **state)
{
    (void)state;
    struct cost *c = mk_cost(1);
    const size_t n = COST_MONTH_SAMPLES; /* March has 31 days */
    double *rates = xcalloc(n, sizeof(double));
    uint64_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        rates[i] = (double)(x >> 40); /* up to 16.7 Mbit/s, many distinct values */
    }
    uint64_t t = MAR_2025;
    for (size_t i = 0; i < n; i++)
        cost_account(c, 0, rates[i], t + i * COST_SAMPLE_MS);
    /* Every bucket but the last is closed. */
    cost_advance(c, t + (n - 1) * COST_SAMPLE_MS + 1000);
    assert_int_equal(cost_nsamples(c, 0), n - 1);
    double *sorted = xcalloc(n, sizeof(double));
    memcpy(sorted, rates, (n - 1) * sizeof(double));
    qsort(sorted, n - 1, sizeof(double), cmp_double);
    size_t rank = (size_t)ceil(0.95 * (double)(n - 1));
    assert_float_equal(cost_p95_bps(c, 0), sorted[rank - 1], 1e-6);

    double gb = 0;
    for (size_t i = 0; i < n - 1; i++)
        gb += rates[i] * 300 / 8e9;
    gb += rates[n - 1] * 1 / 8e9;
    assert_float_equal(cost_month_gb(c, 0), gb, 1e-6);

    /* At midnight on April 1st the month starts over. */
    cost_advance(c, t + 31 * DAY_MS);
    assert_int_equal(cost_nsamples(c, 0), 0);
    assert_true(cost_month_gb(c, 0) == 0);
    cost_advance(c, t + 31 * DAY_MS + COST_SAMPLE_MS);
    assert_int_equal(cost_nsamples(c, 0), 1);

    /* A gap of more than a month is not integrated. */
    cost_advance(c, t + 80 * DAY_MS);
    assert_int_equal(cost_nsamples(c, 0), 0);
    assert_true(cost_month_gb(c, 0) == 0);
    free(sorted);
    free(rates);
    cost_free(c);
}

static void
test_cost_tiers(void **state)
{
    (void)state;
    struct cost *c = mk_cost(1);
    struct cost_cdn_params p = {
        .ntiers = 2, .tiers = {{10000, 0.02}, {0, 0.01}}, .commit = COST_COMMIT_NONE};
    configure(c, 0, &p);
    uint64_t t = MAR_2025;
    struct cost_quote q;
    cost_account(c, 0, 8e9, t);
    cost_quote(c, 0, &q);
    assert_int_equal(q.basis, COST_BASIS_TIER);
    assert_true(q.free_bps == 0);
    assert_float_equal(q.price_per_gb, 0.02, 1e-12);
    assert_float_equal(cost_marginal(c, 0, 0), 0.02, 1e-12);
    cost_advance(c, t + 15000 * 1000); /* 15000 GB */
    assert_float_equal(cost_month_gb(c, 0), 15000, 1e-6);
    assert_float_equal(cost_bill(c, 0), 10000 * 0.02 + 5000 * 0.01, 1e-6);
    assert_float_equal(cost_marginal(c, 0, 1e9), 0.01, 1e-12);
    assert_true(isinf(q.capacity_bps));
    cost_free(c);
}

static void
test_cost_gb_commit_runs_out(void **state)
{
    (void)state;
    struct cost *c = mk_cost(1);
    struct cost_cdn_params p = {.commit = COST_COMMIT_GB,
                                .commit_amount = 1000,
                                .commit_fee = 50,
                                .burst_price = 0.03,
                                .capacity_gbps = 20};
    configure(c, 0, &p);
    uint64_t t = MAR_2025 + DAY_MS;
    struct cost_quote q;
    cost_account(c, 0, 8e9, t);
    cost_advance(c, t + 500 * 1000); /* 500 GB */
    cost_quote(c, 0, &q);
    assert_int_equal(q.basis, COST_BASIS_COMMIT);
    assert_true(isinf(q.free_bps));
    assert_float_equal(q.price_per_gb, 0.03, 1e-12);
    assert_true(cost_marginal(c, 0, 1e9) == 0);
    assert_true(isinf(cost_marginal(c, 0, 13e9))); /* 8 + 13 > 20 Gbit/s */
    assert_float_equal(cost_bill(c, 0), 50, 1e-9);

    cost_advance(c, t + 1500 * 1000); /* 1500 GB: the commit is used up */
    assert_float_equal(cost_month_gb(c, 0), 1500, 1e-6);
    cost_quote(c, 0, &q);
    assert_int_equal(q.basis, COST_BASIS_BURST);
    assert_true(q.free_bps == 0 && q.commit_bps == 0);
    assert_float_equal(cost_marginal(c, 0, 0), 0.03, 1e-12);
    assert_float_equal(cost_bill(c, 0), 50 + 500 * 0.03, 1e-6);

    /* Usage restored from elsewhere (say, after a restart) counts from then on. */
    cost_set_month_gb(c, 0, 900, t + 1500 * 1000);
    cost_quote(c, 0, &q);
    assert_int_equal(q.basis, COST_BASIS_COMMIT);
    cost_advance(c, t + 1600 * 1000);
    assert_float_equal(cost_month_gb(c, 0), 1000, 1e-6);
    cost_set_month_gb(c, 0, 1500, t + 1600 * 1000);
    cost_set_month_gb(c, 7, 1500, t + 1600 * 1000); /* out of range: ignored */

    /* Without a burst price, the overage goes through the tiers. */
    p.burst_price = -1;
    p.ntiers = 1;
    p.tiers[0] = (struct cost_tier){0, 0.05};
    configure(c, 0, &p);
    assert_float_equal(cost_marginal(c, 0, 0), 0.05, 1e-12);
    assert_float_equal(cost_bill(c, 0), 50 + 500 * 0.05, 1e-6);
    cost_free(c);
}

static void
test_cost_p95_commit(void **state)
{
    (void)state;
    struct cost *c = mk_cost(1);
    struct cost_cdn_params p = {.commit = COST_COMMIT_P95_GBPS,
                                .commit_amount = 10,
                                .commit_fee = 1000,
                                .burst_price = 200,
                                .capacity_gbps = 20};
    configure(c, 0, &p);
    uint64_t t = MAR_2025;
    struct cost_quote q;
    cost_account(c, 0, 6e9, t);
    cost_quote(c, 0, &q);
    assert_int_equal(q.basis, COST_BASIS_COMMIT);
    assert_float_equal(q.free_bps, 4e9, 1e-3);
    assert_float_equal(q.commit_bps, 10e9, 1e-3);
    assert_float_equal(q.capacity_bps, 20e9, 1e-3);
    double per_gb = 200 / (31 * 86400 / 8.0); /* a Gbps for all of March is 334800 GB */
    assert_float_equal(q.price_per_gb, per_gb, 1e-15);
    assert_true(cost_marginal(c, 0, 3e9) == 0);
    assert_float_equal(cost_marginal(c, 0, 5e9), per_gb, 1e-15);
    assert_true(isinf(cost_marginal(c, 0, 15e9)));

    /* 95% of the time at 6, 5% at 12 Gbit/s: the 95th percentile stays at 6. */
    for (int i = 0; i < 100; i++)
        cost_account(c, 0, i < 95 ? 6e9 : 12e9, t + (uint64_t)i * COST_SAMPLE_MS);
    cost_advance(c, t + 100 * COST_SAMPLE_MS);
    assert_int_equal(cost_nsamples(c, 0), 100);
    assert_float_equal(cost_p95_bps(c, 0), 6e9, 1e-3);
    assert_float_equal(cost_bill(c, 0), 1000, 1e-9);
    /* One more sample at 12: now 6 of 101 are above, the 96th (ceil 95.95) is 12. */
    cost_account(c, 0, 12e9, t + 100 * COST_SAMPLE_MS);
    cost_advance(c, t + 101 * COST_SAMPLE_MS);
    assert_float_equal(cost_p95_bps(c, 0), 12e9, 1e-3);
    assert_float_equal(cost_bill(c, 0), 1000 + 2 * 200, 1e-6);
    cost_quote(c, 0, &q);
    assert_int_equal(q.basis, COST_BASIS_BURST);
    assert_true(q.free_bps == 0);
    cost_free(c);
}

static void
test_cost_unpriced_is_free(void **state)
{
    (void)state;
    struct cost *c = mk_cost(1);
    struct cost_quote q;
    cost_account(c, 0, 1e9, MAR_2025);
    cost_advance(c, MAR_2025 + HOUR_MS);
    cost_quote(c, 0, &q);
    assert_int_equal(q.basis, COST_BASIS_UNPRICED);
    assert_true(isinf(q.free_bps) && isinf(q.capacity_bps));
    assert_true(cost_marginal(c, 0, 1e12) == 0);
    assert_true(cost_bill(c, 0) == 0);
    cost_quote(c, 5, &q);
    assert_true(q.rate_bps == 0 && q.basis == COST_BASIS_UNPRICED);
    cost_free(c);
}

static void
test_cost_configure_rejects_bad_params(void **state)
{
    (void)state;
    struct cost *c = mk_cost(1);
    struct cost_cdn_params good = {.ntiers = 1, .tiers = {{0, 0.01}}};
    configure(c, 0, &good);
    struct cost_cdn_params bad = {.ntiers = 3,
                                  .tiers = {{100, -1}, {50, 0.01}, {0, 0.01}},
                                  .commit = COST_COMMIT_P95_GBPS,
                                  .commit_amount = 0,
                                  .commit_fee = -5,
                                  .burst_price = -1,
                                  .capacity_gbps = -1};
    struct diag d;
    diag_init(&d);
    assert_int_equal(cost_configure(c, 0, &bad, &d), -1);
    char *all = diag_join(&d);
    assert_non_null(strstr(all, "cost.a.tiers[0].price_per_gb"));
    assert_non_null(strstr(all, "cost.a.tiers[1].up_to_gb"));
    assert_non_null(strstr(all, "cost.a.commit_amount"));
    assert_non_null(strstr(all, "cost.a.commit_fee"));
    assert_non_null(strstr(all, "cost.a.burst_price"));
    assert_non_null(strstr(all, "cost.a.capacity_gbps"));
    assert_int_equal(d.count, 6);
    free(all);
    assert_int_equal(cost_configure(c, 3, &good, &d), -1);
    diag_free(&d);
    /* The old pricing stays. */
    cost_account(c, 0, 1e9, MAR_2025);
    assert_float_equal(cost_marginal(c, 0, 0), 0.01, 1e-12);
    cost_free(c);
}

static void
test_cost_reconcile_keeps_by_id(void **state)
{
    (void)state;
    struct cost *c = mk_cost(2); /* a b */
    struct cost_cdn_params p = {.ntiers = 1, .tiers = {{0, 0.02}}};
    configure(c, 1, &p);
    cost_account(c, 1, 8e9, MAR_2025);
    cost_advance(c, MAR_2025 + 100 * 1000);
    static const char *const ids[] = {"c", "b"};
    struct cfg *cfg = mk_cfg(ids, 2);
    cost_reconcile(c, cfg);
    free_cfg(cfg);
    assert_int_equal(cost_ncdns(c), 2);
    assert_float_equal(cost_month_gb(c, 1), 100, 1e-9);
    assert_float_equal(cost_marginal(c, 1, 0), 0.02, 1e-12);
    assert_true(cost_month_gb(c, 0) == 0);
    assert_true(cost_marginal(c, 0, 1e9) == 0); /* new: unpriced */
    assert_string_equal(cost_basis_str(COST_BASIS_BURST), "burst");
    cost_free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cost_calendar_months),
        cmocka_unit_test(test_cost_accounts_volume_and_samples),
        cmocka_unit_test(test_cost_p95_exact_over_a_month),
        cmocka_unit_test(test_cost_tiers),
        cmocka_unit_test(test_cost_gb_commit_runs_out),
        cmocka_unit_test(test_cost_p95_commit),
        cmocka_unit_test(test_cost_unpriced_is_free),
        cmocka_unit_test(test_cost_configure_rejects_bad_params),
        cmocka_unit_test(test_cost_reconcile_keeps_by_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
