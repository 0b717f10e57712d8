/* overload: a worker's overload level, computed from two cheap local signals: how late the
 * worker's event loop runs a periodic timer (lag) and how many connections it holds against
 * http.max_connections. Pure (no I/O, no clock, no allocation): the worker feeds it a sample
 * every tick and reads back the level, which its handlers consult without a lock.
 *
 * Levels (each includes the ones below):
 *  0  normal;
 *  1  shed beacons: POST /beacon answers 204 unparsed, CMCD on other requests is not read;
 *  2  keep-alive off (answers carry Connection: close) and steering polls get ttl_max_s;
 *  3  new connections are not accepted (they wait in the kernel backlog).
 *
 * Signal levels: lag >= lag_ms gives 1, >= 2 x lag_ms gives 2, >= 4 x lag_ms gives 3 (the lag
 * must hold for two samples in a row, so one stall does not shed); connections >= 3/4 of
 * conn_percent % of max_conns give 1, >= conn_percent % give 2 (at max_conns itself the
 * connection cap stops accepting on its own, at once and without hysteresis). The level
 * rises at once to the higher of the two, and falls one step once the signals have stayed
 * below the current level for recover_ms (hysteresis: no flapping at a threshold). */
#ifndef STEERD_OVERLOAD_H
#define STEERD_OVERLOAD_H

#include <stdbool.h>
#include <stdint.h>

struct cfg_http;

#define OVERLOAD_LEVEL_MAX 3

struct overload_params {
    uint32_t lag_ms;       /* level 1 lag; > 0 */
    uint32_t conn_percent; /* 1..100: level 2 share of max_conns */
    uint32_t max_conns;    /* > 0 */
    uint32_t recover_ms;   /* time below a level before it drops one step */
};

/* Caller-owned; zero-initialise before the first update. */
struct overload_state {
    uint32_t level;
    uint32_t prev_lag_ms; /* the previous lag sample */
    bool below;           /* the signals are below level since below_since_ms */
    uint64_t below_since_ms;
};

/* The parameters http's overload keys and max_connections describe. */
void overload_params_from_cfg(const struct cfg_http *h, struct overload_params *p);

/* The level the signals alone ask for (no history): lag_ms here is the smaller of the last two
 * lag samples. */
uint32_t overload_signal_level(const struct overload_params *p, uint32_t lag_ms, uint64_t conns);

/* Takes one sample at now_ms (monotonic) and returns the new level (also in st->level). */
uint32_t overload_update(struct overload_state *st, const struct overload_params *p,
                         uint64_t now_ms, uint32_t lag_ms, uint64_t conns);

#endif
