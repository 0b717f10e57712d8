/* Tests for overload: the level each signal asks for (lag steps, connection shares, the cap),
 * two-sample lag confirmation, immediate rise, one-step fall after the recovery time, and no
 * flapping around a threshold. The clock is the now_ms argument. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "steerd/cfg.h"
#include "steerd/overload.h"

static struct overload_params
params(void)
{
    return (struct overload_params){
        .lag_ms = 50, .conn_percent = 80, .max_conns = 1000, .recover_ms = 2000};
}

static void
test_overload_signal_levels(void **state)
{
    (void)state;
    struct overload_params p = params();

    assert_int_equal(overload_signal_level(&p, 0, 0), 0);
    assert_int_equal(overload_signal_level(&p, 49, 0), 0);
    assert_int_equal(overload_signal_level(&p, 50, 0), 1);
    assert_int_equal(overload_signal_level(&p, 99, 0), 1);
    assert_int_equal(overload_signal_level(&p, 100, 0), 2);
    assert_int_equal(overload_signal_level(&p, 199, 0), 2);
    assert_int_equal(overload_signal_level(&p, 200, 0), 3);
    assert_int_equal(overload_signal_level(&p, UINT32_MAX, 0), 3);
    /* connections: level 1 at 60 % (3/4 of 80 %), 2 at 80 %; the cap is the connection code's */
    assert_int_equal(overload_signal_level(&p, 0, 599), 0);
    assert_int_equal(overload_signal_level(&p, 0, 600), 1);
    assert_int_equal(overload_signal_level(&p, 0, 799), 1);
    assert_int_equal(overload_signal_level(&p, 0, 800), 2);
    assert_int_equal(overload_signal_level(&p, 0, 999), 2);
    assert_int_equal(overload_signal_level(&p, 0, 1000), 2);
    assert_int_equal(overload_signal_level(&p, 0, 5000), 2);
    /* the higher signal wins */
    assert_int_equal(overload_signal_level(&p, 60, 850), 2);
    assert_int_equal(overload_signal_level(&p, 250, 10), 3);

    /* small caps round towards shedding earlier, never divide by zero */
    p.max_conns = 10;
    p.conn_percent = 20;
    assert_int_equal(overload_signal_level(&p, 0, 1), 0);
    assert_int_equal(overload_signal_level(&p, 0, 2), 2);
    p.max_conns = 0;
    p.lag_ms = 0;
    assert_int_equal(overload_signal_level(&p, 0, 0), 0);
    assert_int_equal(overload_signal_level(&p, 1, 0), 1);
}

static void
test_overload_lag_needs_two_samples(void **state)
{
    (void)state;
    struct overload_params p = params();
    struct overload_state st;
    memset(&st, 0, sizeof(st));

    /* one stall alone does not shed */
    assert_int_equal(overload_update(&st, &p, 0, 0, 0), 0);
    assert_int_equal(overload_update(&st, &p, 100, 500, 0), 0);
    assert_int_equal(overload_update(&st, &p, 200, 0, 0), 0);
    /* two late ticks in a row do; the smaller of the two decides */
    assert_int_equal(overload_update(&st, &p, 300, 500, 0), 0);
    assert_int_equal(overload_update(&st, &p, 400, 120, 0), 2);
    assert_int_equal(overload_update(&st, &p, 500, 300, 0), 2);
    assert_int_equal(overload_update(&st, &p, 600, 300, 0), 3);
    /* connections act at once */
    memset(&st, 0, sizeof(st));
    assert_int_equal(overload_update(&st, &p, 0, 0, 1000), 2);
}

static void
test_overload_falls_one_step_after_recovery(void **state)
{
    (void)state;
    struct overload_params p = params();
    struct overload_state st;
    memset(&st, 0, sizeof(st));

    assert_int_equal(overload_update(&st, &p, 900, 400, 0), 0);
    assert_int_equal(overload_update(&st, &p, 1000, 400, 0), 3);
    /* calm from 1100 on: 3 until 1100 + recover, then one step per recovery period */
    assert_int_equal(overload_update(&st, &p, 1100, 0, 0), 3);
    assert_int_equal(overload_update(&st, &p, 3099, 0, 0), 3);
    assert_int_equal(overload_update(&st, &p, 3100, 0, 0), 2);
    assert_int_equal(overload_update(&st, &p, 4000, 0, 0), 2);
    assert_int_equal(overload_update(&st, &p, 5100, 0, 0), 1);
    assert_int_equal(overload_update(&st, &p, 7099, 0, 0), 1);
    assert_int_equal(overload_update(&st, &p, 7100, 0, 0), 0);
    assert_int_equal(overload_update(&st, &p, 9999, 0, 0), 0);
    assert_false(st.below);

    /* a fall stops at what the signals still ask for */
    memset(&st, 0, sizeof(st));
    st.prev_lag_ms = 400;
    assert_int_equal(overload_update(&st, &p, 0, 400, 0), 3);
    assert_int_equal(overload_update(&st, &p, 100, 0, 850), 3);
    assert_int_equal(overload_update(&st, &p, 2100, 0, 850), 2);
    assert_int_equal(overload_update(&st, &p, 9000, 0, 850), 2);

    /* recover_ms 0: one step per sample */
    p.recover_ms = 0;
    memset(&st, 0, sizeof(st));
    st.prev_lag_ms = 400;
    assert_int_equal(overload_update(&st, &p, 0, 400, 0), 3);
    assert_int_equal(overload_update(&st, &p, 1, 0, 0), 3);
    assert_int_equal(overload_update(&st, &p, 2, 0, 0), 2);
}

static void
test_overload_does_not_flap(void **state)
{
    (void)state;
    struct overload_params p = params();
    struct overload_state st;
    memset(&st, 0, sizeof(st));

    /* connections hovering around the level-2 threshold every 100 ms for 30 s: the level goes to
     * 2 (through 1 on the first sample) and never falls back (each dip is shorter than
     * recover_ms) */
    uint32_t changes = 0;
    uint32_t prev = 0;
    for (uint64_t t = 0; t < 30000; t += 100) {
        uint64_t conns = (t / 100) % 2 ? 805 : 795;
        uint32_t lvl = overload_update(&st, &p, t, 0, conns);
        assert_true(lvl <= 2);
        assert_true(lvl >= prev);
        if (lvl != prev)
            changes++;
        prev = lvl;
    }
    assert_int_equal(changes, 2);
    assert_int_equal(prev, 2);

    /* a rise while falling resets the quiet period */
    memset(&st, 0, sizeof(st));
    assert_int_equal(overload_update(&st, &p, 0, 0, 800), 2);
    assert_int_equal(overload_update(&st, &p, 1000, 0, 0), 2);
    assert_int_equal(overload_update(&st, &p, 2500, 0, 800), 2);
    assert_int_equal(overload_update(&st, &p, 2600, 0, 0), 2);
    assert_int_equal(overload_update(&st, &p, 4599, 0, 0), 2);
    assert_int_equal(overload_update(&st, &p, 4600, 0, 0), 1);
}

static void
test_overload_params_from_cfg(void **state)
{
    (void)state;
    struct cfg_http h;
    struct overload_params p;
    memset(&h, 0, sizeof(h));
    h.overload_lag_ms = 7;
    h.overload_conn_percent = 33;
    h.overload_recover_ms = 900;
    h.max_connections = 64;
    overload_params_from_cfg(&h, &p);
    assert_int_equal(p.lag_ms, 7);
    assert_int_equal(p.conn_percent, 33);
    assert_int_equal(p.recover_ms, 900);
    assert_int_equal(p.max_conns, 64);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overload_signal_levels),
        cmocka_unit_test(test_overload_lag_needs_two_samples),
        cmocka_unit_test(test_overload_falls_one_step_after_recovery),
        cmocka_unit_test(test_overload_does_not_flap),
        cmocka_unit_test(test_overload_params_from_cfg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
