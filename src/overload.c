#include "steerd/overload.h"

#include "steerd/cfg.h"

void
overload_params_from_cfg(const struct cfg_http *h, struct overload_params *p)
{
    p->lag_ms = h->overload_lag_ms;
    p->conn_percent = h->overload_conn_percent;
    p->max_conns = h->max_connections;
    p->recover_ms = h->overload_recover_ms;
}

static uint32_t
lag_level(uint32_t threshold, uint32_t lag_ms)
{
    uint64_t t = threshold > 0 ? threshold : 1;
    if (lag_ms >= 4 * t)
        return 3;
    if (lag_ms >= 2 * t)
        return 2;
    if (lag_ms >= t)
        return 1;
    return 0;
}

static uint32_t
conn_level(const struct overload_params *p, uint64_t conns)
{
    uint64_t max = p->max_conns > 0 ? p->max_conns : 1;
    uint64_t pct = p->conn_percent > 100 ? 100 : p->conn_percent;
    /* conns >= pct % of max, and >= 3/4 of that, in integers */
    if (conns * 100 >= max * pct)
        return 2;
    if (conns * 400 >= max * pct * 3)
        return 1;
    return 0;
}

uint32_t
overload_signal_level(const struct overload_params *p, uint32_t lag_ms, uint64_t conns)
{
    uint32_t a = lag_level(p->lag_ms, lag_ms);
    uint32_t b = conn_level(p, conns);
    return a > b ? a : b;
}

uint32_t
overload_update(struct overload_state *st, const struct overload_params *p, uint64_t now_ms,
                uint32_t lag_ms, uint64_t conns)
{
    uint32_t lag = lag_ms < st->prev_lag_ms ? lag_ms : st->prev_lag_ms;
    st->prev_lag_ms = lag_ms;
    uint32_t want = overload_signal_level(p, lag, conns);

    if (st->level > OVERLOAD_LEVEL_MAX)
        st->level = OVERLOAD_LEVEL_MAX;
    if (want >= st->level) {
        st->level = want;
        st->below = false;
        return st->level;
    }
    if (!st->below) {
        st->below = true;
        st->below_since_ms = now_ms;
    } else if (now_ms - st->below_since_ms >= p->recover_ms) {
        st->level--;
        /* the next step down needs its own quiet period */
        st->below = st->level > want;
        st->below_since_ms = now_ms;
    }
    return st->level;
}
