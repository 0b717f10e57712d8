#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "steerd/cfg.h"
#include "steerd/health.h"

/* A hand-built config: only the fields health reads (ids, probe URL, rise, fall). */
struct fake_cfg {
    struct cfg cfg;
    struct cfg_cdn cdns[CFG_MAX_CDNS];
    char ids[CFG_MAX_CDNS][CFG_ID_MAX + 1];
};

static char probe_url[] = "http://127.0.0.1:1/health";

static void
fake_init(struct fake_cfg *f)
{
    memset(f, 0, sizeof(*f));
    f->cfg.cdns = f->cdns;
}

static void
fake_add(struct fake_cfg *f, const char *id, bool probed, uint32_t rise, uint32_t fall)
{
    size_t i = f->cfg.ncdns++;
    assert_true(i < CFG_MAX_CDNS);
    assert_true(strlen(id) <= CFG_ID_MAX);
    memcpy(f->ids[i], id, strlen(id) + 1);
    f->cdns[i].id = f->ids[i];
    f->cdns[i].probe.url = probed ? probe_url : NULL;
    f->cdns[i].probe.rise = rise;
    f->cdns[i].probe.fall = fall;
}

static const struct health_sample ok_sample = {
    .outcome = HEALTH_OK,
    .http_status = 200,
    .connect_ms = 1.5,
    .ttfb_ms = 2.5,
    .total_ms = 3.5,
    .body_bytes = 10,
};
static const struct health_sample fail_sample = {
    .outcome = HEALTH_FAIL,
    .http_status = 503,
    .connect_ms = 1,
    .ttfb_ms = 2,
    .total_ms = 3,
    .error = "http 503",
};
static const struct health_sample inconclusive_sample = {
    .outcome = HEALTH_INCONCLUSIVE,
    .connect_ms = -1,
    .ttfb_ms = -1,
    .error = "socket: Too many open files",
};

static const struct health_cdn *
by_id(const struct health *h, const char *id)
{
    for (size_t i = 0; i < health_count(h); i++)
        if (strcmp(health_at(h, i)->id, id) == 0)
            return health_at(h, i);
    return NULL;
}

static struct health *
one_cdn(uint32_t rise, uint32_t fall)
{
    struct fake_cfg f;
    fake_init(&f);
    fake_add(&f, "a", true, rise, fall);
    struct health *h = health_new();
    health_reconcile(h, &f.cfg);
    return h;
}

static void
test_health_starts_unknown(void **state)
{
    (void)state;
    struct health *h = one_cdn(2, 2);
    assert_int_equal(health_count(h), 1);
    const struct health_cdn *a = health_at(h, 0);
    assert_string_equal(a->id, "a");
    assert_true(a->probed);
    assert_int_equal(a->state, HEALTH_UNKNOWN);
    assert_null(health_at(h, 1));
    assert_string_equal(health_state_str(a->state), "unknown");
    health_free(h);
}

static void
test_health_first_result_sets_state(void **state)
{
    (void)state;
    struct health *h = one_cdn(3, 3);
    assert_true(health_record(h, "a", &fail_sample, 100));
    const struct health_cdn *a = health_at(h, 0);
    assert_int_equal(a->state, HEALTH_DOWN);
    assert_int_equal(a->transitions_total, 1);
    assert_int_equal(a->last_change_ms, 100);
    assert_int_equal(a->last_probe_ms, 100);
    assert_int_equal(a->last_status, 503);
    assert_string_equal(a->last_error, "http 503");
    health_free(h);

    h = one_cdn(3, 3);
    assert_true(health_record(h, "a", &ok_sample, 7));
    a = health_at(h, 0);
    assert_int_equal(a->state, HEALTH_UP);
    assert_int_equal(a->ok_total, 1);
    assert_int_equal(a->last_status, 200);
    assert_true(a->last_connect_ms == 1.5);
    assert_true(a->last_ttfb_ms == 2.5);
    assert_true(a->last_total_ms == 3.5);
    assert_string_equal(a->last_error, "");
    assert_string_equal(health_state_str(a->state), "up");
    health_free(h);
}

static void
test_health_rise_and_fall_counting(void **state)
{
    (void)state;
    struct health *h = one_cdn(3, 2);
    const struct health_cdn *a = health_at(h, 0);
    assert_true(health_record(h, "a", &ok_sample, 1)); /* UNKNOWN -> UP */

    /* fall = 2: one failure is not enough, the second takes it down. */
    assert_false(health_record(h, "a", &fail_sample, 2));
    assert_int_equal(a->state, HEALTH_UP);
    assert_int_equal(a->consecutive_fail, 1);
    assert_true(health_record(h, "a", &fail_sample, 3));
    assert_int_equal(a->state, HEALTH_DOWN);
    assert_int_equal(a->last_change_ms, 3);
    assert_false(health_record(h, "a", &fail_sample, 4));
    assert_int_equal(a->consecutive_fail, 3);

    /* rise = 3: an OK streak broken by a failure starts over. */
    assert_false(health_record(h, "a", &ok_sample, 5));
    assert_false(health_record(h, "a", &ok_sample, 6));
    assert_false(health_record(h, "a", &fail_sample, 7));
    assert_int_equal(a->consecutive_ok, 0);
    assert_false(health_record(h, "a", &ok_sample, 8));
    assert_false(health_record(h, "a", &ok_sample, 9));
    assert_int_equal(a->state, HEALTH_DOWN);
    assert_true(health_record(h, "a", &ok_sample, 10));
    assert_int_equal(a->state, HEALTH_UP);
    assert_int_equal(a->last_change_ms, 10);

    assert_int_equal(a->transitions_total, 3);
    assert_int_equal(a->ok_total, 6);
    assert_int_equal(a->fail_total, 4);
    health_free(h);
}

static void
test_health_inconclusive_changes_nothing(void **state)
{
    (void)state;
    struct health *h = one_cdn(2, 2);
    const struct health_cdn *a = health_at(h, 0);

    /* Before any conclusive outcome: stays UNKNOWN (and so counts as up). */
    for (int i = 0; i < 10; i++)
        assert_false(health_record(h, "a", &inconclusive_sample, 1));
    assert_int_equal(a->state, HEALTH_UNKNOWN);
    assert_int_equal(a->inconclusive_total, 10);
    assert_int_equal(a->transitions_total, 0);
    assert_string_equal(a->last_error, "socket: Too many open files");

    /* Does not break a failure streak, does not add to it, keeps the last measurements. */
    assert_true(health_record(h, "a", &ok_sample, 2));
    assert_false(health_record(h, "a", &fail_sample, 3));
    for (int i = 0; i < 5; i++)
        assert_false(health_record(h, "a", &inconclusive_sample, 4));
    assert_int_equal(a->state, HEALTH_UP);
    assert_int_equal(a->consecutive_fail, 1);
    assert_int_equal(a->last_status, 503);
    assert_int_equal(a->ok_total, 1);
    assert_int_equal(a->fail_total, 1);
    assert_true(health_record(h, "a", &fail_sample, 5));
    assert_int_equal(a->state, HEALTH_DOWN);
    health_free(h);
}

static void
test_health_flapping_never_transitions_after_first(void **state)
{
    (void)state;
    struct health *h = one_cdn(2, 2);
    const struct health_cdn *a = health_at(h, 0);
    assert_true(health_record(h, "a", &ok_sample, 0));
    for (uint64_t t = 1; t <= 200; t++)
        assert_false(health_record(h, "a", (t % 2) ? &fail_sample : &ok_sample, t));
    assert_int_equal(a->state, HEALTH_UP);
    assert_int_equal(a->transitions_total, 1);
    assert_int_equal(a->fail_total, 100);
    assert_int_equal(a->ok_total, 101);
    health_free(h);
}

static void
test_health_rise_fall_one_follows_every_result(void **state)
{
    (void)state;
    struct health *h = one_cdn(1, 1);
    assert_true(health_record(h, "a", &ok_sample, 0));
    assert_true(health_record(h, "a", &fail_sample, 1));
    assert_true(health_record(h, "a", &ok_sample, 2));
    assert_false(health_record(h, "a", &ok_sample, 3));
    assert_int_equal(health_at(h, 0)->transitions_total, 3);
    health_free(h);
}

static void
test_health_unknown_id_ignored(void **state)
{
    (void)state;
    struct health *h = one_cdn(1, 1);
    assert_false(health_record(h, "zz", &fail_sample, 1));
    assert_int_equal(health_at(h, 0)->fail_total, 0);
    health_free(h);
}

static void
test_health_reconcile_keeps_history_drops_removed(void **state)
{
    (void)state;
    struct fake_cfg f;
    fake_init(&f);
    fake_add(&f, "a", true, 2, 2);
    fake_add(&f, "b", true, 2, 2);
    fake_add(&f, "c", true, 2, 2);
    struct health *h = health_new();
    health_reconcile(h, &f.cfg);
    assert_true(health_record(h, "a", &fail_sample, 1));
    assert_true(health_record(h, "b", &ok_sample, 1));
    assert_false(health_record(h, "b", &fail_sample, 2));
    assert_true(health_record(h, "c", &fail_sample, 1));

    /* New order: c, d(new), b with b's fall raised to 3; a removed. */
    fake_init(&f);
    fake_add(&f, "c", true, 2, 2);
    fake_add(&f, "d", true, 2, 2);
    fake_add(&f, "b", true, 2, 3);
    health_reconcile(h, &f.cfg);
    assert_int_equal(health_count(h), 3);
    assert_string_equal(health_at(h, 0)->id, "c");
    assert_string_equal(health_at(h, 1)->id, "d");
    assert_string_equal(health_at(h, 2)->id, "b");
    assert_null(by_id(h, "a"));
    assert_false(health_record(h, "a", &ok_sample, 3));

    const struct health_cdn *c = by_id(h, "c");
    assert_int_equal(c->state, HEALTH_DOWN);
    assert_int_equal(c->fail_total, 1);
    assert_int_equal(c->transitions_total, 1);
    assert_int_equal(by_id(h, "d")->state, HEALTH_UNKNOWN);

    /* b keeps its failure streak (1) and uses the new fall = 3. */
    const struct health_cdn *b = by_id(h, "b");
    assert_int_equal(b->state, HEALTH_UP);
    assert_int_equal(b->consecutive_fail, 1);
    assert_int_equal(b->ok_total, 1);
    assert_false(health_record(h, "b", &fail_sample, 3));
    assert_int_equal(b->state, HEALTH_UP);
    assert_true(health_record(h, "b", &fail_sample, 4));
    assert_int_equal(b->state, HEALTH_DOWN);

    /* A re-added id starts from scratch. */
    fake_init(&f);
    fake_add(&f, "a", true, 2, 2);
    health_reconcile(h, &f.cfg);
    assert_int_equal(health_count(h), 1);
    assert_int_equal(health_at(h, 0)->state, HEALTH_UNKNOWN);
    assert_int_equal(health_at(h, 0)->fail_total, 0);
    health_free(h);
}

static void
test_health_fill_up_order_and_unprobed(void **state)
{
    (void)state;
    struct fake_cfg f;
    fake_init(&f);
    fake_add(&f, "up", true, 2, 2);
    fake_add(&f, "down", true, 2, 2);
    fake_add(&f, "unknown", true, 2, 2);
    fake_add(&f, "noprobe", false, 2, 2);
    struct health *h = health_new();
    health_reconcile(h, &f.cfg);
    health_record(h, "up", &ok_sample, 1);
    health_record(h, "down", &fail_sample, 1);
    /* Results for a CDN without a probe URL never take it down. */
    health_record(h, "noprobe", &fail_sample, 1);
    assert_false(health_at(h, 3)->probed);

    uint8_t up[4];
    memset(up, 0xAA, sizeof(up));
    health_fill_up(h, &f.cfg, up);
    assert_int_equal(up[0], 1);
    assert_int_equal(up[1], 0);
    assert_int_equal(up[2], 1);
    assert_int_equal(up[3], 1);

    /* A config in another order (and with an id health has not seen yet) maps by id. */
    struct fake_cfg g;
    fake_init(&g);
    fake_add(&g, "new", true, 2, 2);
    fake_add(&g, "down", true, 2, 2);
    fake_add(&g, "up", true, 2, 2);
    uint8_t up2[3];
    health_fill_up(h, &g.cfg, up2);
    assert_int_equal(up2[0], 1);
    assert_int_equal(up2[1], 0);
    assert_int_equal(up2[2], 1);

    /* The same CDN without its probe URL is up whatever its history says. */
    fake_init(&f);
    fake_add(&f, "down", false, 2, 2);
    health_reconcile(h, &f.cfg);
    uint8_t up3[1] = {0};
    health_fill_up(h, &f.cfg, up3);
    assert_int_equal(up3[0], 1);
    health_free(h);
}

static void
test_health_all_known(void **state)
{
    (void)state;
    struct fake_cfg f;
    fake_init(&f);
    fake_add(&f, "a", true, 2, 2);
    fake_add(&f, "b", true, 2, 2);
    fake_add(&f, "noprobe", false, 2, 2);
    struct health *h = health_new();
    assert_true(health_all_known(h)); /* nothing tracked yet */
    health_reconcile(h, &f.cfg);
    assert_false(health_all_known(h));
    health_record(h, "a", &ok_sample, 1);
    assert_false(health_all_known(h));
    health_record(h, "b", &inconclusive_sample, 1);
    assert_false(health_all_known(h));
    health_record(h, "b", &fail_sample, 2);
    assert_true(health_all_known(h));

    fake_add(&f, "c", true, 2, 2);
    health_reconcile(h, &f.cfg);
    assert_false(health_all_known(h));
    health_free(h);
}

static void
test_health_empty_config_and_free_null(void **state)
{
    (void)state;
    struct fake_cfg f;
    fake_init(&f);
    struct health *h = health_new();
    health_reconcile(h, &f.cfg);
    assert_int_equal(health_count(h), 0);
    assert_null(health_at(h, 0));
    health_fill_up(h, &f.cfg, NULL);
    health_free(h);
    health_free(NULL);
    assert_string_equal(health_state_str(HEALTH_DOWN), "down");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_starts_unknown),
        cmocka_unit_test(test_health_first_result_sets_state),
        cmocka_unit_test(test_health_rise_and_fall_counting),
        cmocka_unit_test(test_health_inconclusive_changes_nothing),
        cmocka_unit_test(test_health_flapping_never_transitions_after_first),
        cmocka_unit_test(test_health_rise_fall_one_follows_every_result),
        cmocka_unit_test(test_health_unknown_id_ignored),
        cmocka_unit_test(test_health_reconcile_keeps_history_drops_removed),
        cmocka_unit_test(test_health_fill_up_order_and_unprobed),
        cmocka_unit_test(test_health_all_known),
        cmocka_unit_test(test_health_empty_config_and_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
