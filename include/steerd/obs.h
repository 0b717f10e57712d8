/* obs: live quality per (CDN x region) cell, from probes and player beacons, time-decayed.
 * State layer: no I/O, no logging, no clock reads (now_ms is an argument, monotonic). Memory is
 * ncdns x (nregions + 1) cells whatever the traffic: nothing is kept per session. Not
 * thread-safe: the control thread owns it (workers hand beacons over in batches).
 *
 * Every aggregate is a time-decayed mean: a sample has weight 1, older weight halves every
 * half-life, the mean is the weighted mean. Probes are trusted. Beacons are not (anyone can
 * send one), so (S7):
 *  - the beacon terms the score reads (tp_norm, rebuffer_term, error_term, each in [0,1]) move
 *    at most params.beacon_max_step within any span of beacon_window_ms, however many samples
 *    arrive: a flood moves a score at most that step per window. Each term has a movement
 *    budget of step/4 that refills at 3/4 step per window; a sample that would move it further
 *    is admitted only partly (a rate beyond its "bad" level moves freely: the term is 0
 *    there).
 *  - obs keeps no up/down state at all: health comes from probes only, so beacons can lower a
 *    CDN's score but never take it out of rotation. */
#ifndef STEERD_OBS_H
#define STEERD_OBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;
struct cmcd_report;

/* The region index of probes that measure a CDN from no region in particular. */
#define OBS_GLOBAL UINT32_MAX

struct obs_params {
    uint32_t probe_half_life_ms;  /* default 60000 */
    uint32_t beacon_half_life_ms; /* default 300000 */
    uint32_t beacon_window_ms;    /* default 60000; 0 turns the beacon cap off */
    double beacon_max_step;       /* 0..1, default 0.2: largest move of a beacon aggregate per
                                     window */
    double tp_target_bps;         /* default 5e6: a beacon throughput at or above it counts as
                                     fully good (tp_norm 1) */
    double starvation_bad;        /* (0,1], default 0.1: a starvation rate at or above it makes
                                     rebuffer_term 0 */
    double error_bad;             /* (0,1], default 0.1: the same for player errors */
};

void obs_params_default(struct obs_params *p);

/* One probe result. A probe that could not conclude (local resource error) is not recorded. */
struct obs_probe {
    bool ok;
    double connect_ms; /* < 0: not measured */
    double ttfb_ms;    /* < 0: not measured */
    double tp_bps;     /* < 0: not measured */
};

/* One player report about the CDN that served it. */
struct obs_beacon {
    double tp_bps;  /* < 0: none (CMCD mtp, _HLS_throughput, _DASH_throughput in bit/s) */
    int starved;    /* 1 starved since the last report, 0 not, -1 unknown */
    bool error;     /* the player reported an error */
    bool startup;   /* a startup / urgent request */
    double ttfb_ms; /* < 0: none */
};

/* What a cell knows at a time. Means keep their last value while their weight decays. */
struct obs_cell {
    /* probes */
    uint64_t probe_samples, probe_failures;
    double probe_weight;                /* decayed number of probes */
    double probe_ok;                    /* decayed success rate, 1 without probes */
    double connect_ms, ttfb_ms, tp_bps; /* decayed means, -1 when never measured */
    /* beacons */
    uint64_t beacon_samples; /* every beacon recorded */
    uint64_t beacon_clamped; /* beacons the movement cap admitted only partly */
    uint64_t beacon_errors, beacon_startups;
    double beacon_weight;  /* decayed number of beacons */
    double tp_norm;        /* capped mean of min(1, tp / tp_target_bps); 1 without beacons */
    double starvation;     /* share of reports with a stall; 0 without beacons */
    double error_rate;     /* share of reports with an error; 0 without beacons */
    double rebuffer_term;  /* capped 1 - min(1, starvation / starvation_bad) */
    double error_term;     /* capped 1 - min(1, error_rate / error_bad) */
    double beacon_tp_bps;  /* decayed mean of reported throughput (uncapped, for display);
                              -1 when none */
    double beacon_ttfb_ms; /* -1 when none */
};

struct obs;

/* A store with no cells until obs_reconcile. Never NULL (aborts on OOM). */
struct obs *obs_new(const struct obs_params *p);
void obs_free(struct obs *o);
/* New parameters apply from the next sample on; history is kept. */
void obs_set_params(struct obs *o, const struct obs_params *p);

/* Makes the cells match c's CDNs and regions: cells of CDN ids and region names that remain
 * keep their history (the global row by CDN id), new ones start empty, others are dropped. */
void obs_reconcile(struct obs *o, const struct cfg *c);
size_t obs_ncdns(const struct obs *o);
size_t obs_nregions(const struct obs *o);

/* Records a probe of cdn from region (an index, or OBS_GLOBAL). Out-of-range indexes are
 * ignored. */
void obs_record_probe(struct obs *o, uint32_t cdn, uint32_t region, const struct obs_probe *s,
                      uint64_t now_ms);

/* Records a beacon about cdn from a viewer in region. Returns false when an index is out of
 * range (nothing recorded) or the movement cap admitted the sample only partly. */
bool obs_record_beacon(struct obs *o, uint32_t cdn, uint32_t region, const struct obs_beacon *b,
                       uint64_t now_ms);

/* Fills out with cell (cdn, region|OBS_GLOBAL) as of now_ms. Returns 0, or -1 with out set to an
 * empty cell when an index is out of range. */
int obs_get(const struct obs *o, uint32_t cdn, uint32_t region, uint64_t now_ms,
            struct obs_cell *out);

/* The beacon a parsed CMCD report amounts to: mtp as throughput; starved when bs or bsd > 0,
 * not starved when the report carries bl or mtp (a media request during playback), else
 * unknown; error when it lists error codes or the player state is fatal (sta=f). */
void obs_beacon_from_cmcd(const struct cmcd_report *r, struct obs_beacon *b);

/* ---- per-source token buckets for beacon rate limiting ------------------------------------- */

struct obs_limiter;

/* At most max_sources sources are tracked (rounded up to a multiple of 8): each gets burst
 * tokens, refilled at rate_per_s. When a source's set of 8 slots is full, an idle source (its
 * bucket full again) or else the least recently seen one is evicted; a source that returns
 * starts with a full bucket. Never NULL. Not thread-safe (one per worker). */
struct obs_limiter *obs_limiter_new(size_t max_sources, double rate_per_s, double burst);
void obs_limiter_free(struct obs_limiter *l);

/* Takes a token for source key (a hash of the client address). Returns true when allowed;
 * false when limited, with *retry_after_ms (may be NULL) set to the wait for the next token. */
bool obs_limiter_take(struct obs_limiter *l, uint64_t key, uint64_t now_ms,
                      uint32_t *retry_after_ms);

/* Sources evicted so far to make room. */
uint64_t obs_limiter_evictions(const struct obs_limiter *l);

#endif
