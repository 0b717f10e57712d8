/* score: the cost/performance policy engine. Every interval it turns live measurements (obs),
 * prices and commits (cost), health and each region's static weights into the share of the
 * region's sessions each CDN should get, with the reason for each. The hot path keeps doing
 * weighted rendezvous hashing over score_weights(), so sessions stay on their CDN and a change
 * moves only the sessions it must. State layer: no I/O, no logging, no clock reads (now_ms is an
 * argument). Not thread-safe: the control thread owns it and publishes copies.
 *
 * The formula, per region r. Candidates C: the CDNs the region allows (static weight > 0) that
 * are up (health from probes only: beacons can lower a score, never take a CDN out).
 *
 *  Terms, each in [0,1] (1 = perfect), from the (CDN, region) cell, probes falling back to the
 *  CDN's global probes:
 *    T throughput   = beacon tp_norm: mean of min(1, throughput / target), 1 without beacons;
 *                     with probe_tp_target_bps > 0, the lower of that and min(1, probe
 *                     throughput mean / probe_tp_target_bps) (1 without a measurement)
 *    R rebuffering  = 1 - min(1, beacon starvation rate / starvation_bad)
 *    L latency      = (latency_bad_ms - ttfb) / (latency_bad_ms - latency_good_ms) clamped to
 *                     [0,1], ttfb the probe mean (1 without probes)
 *    A availability = probe success rate x (1 - min(1, beacon error rate / error_bad))
 *  (T, R and the beacon factor of A come from obs, which caps how fast a flood moves them.)
 *  Quality  Q = (w_t T + w_r R + w_l L + w_a A) / (w_t + w_r + w_l + w_a).
 *  The bar has a band: a CDN carrying more than the exploration share meets it while
 *  Q >= quality_bar - hysteresis; any other must reach Q >= quality_bar + hysteresis (the
 *  estimate from a few exploring viewers is noisy).
 *
 *  Prices: a CDN's traffic falls in up to two segments, in share of the region's demand D_r:
 *  a free one (the room below its commit left by other regions: commit_fill) and a paid one at
 *  its marginal price, the two together ending at spill_at x capacity. Each segment's merit is
 *    M = (1 - cost_weight) Q + cost_weight (1 - price / max_price)
 *  with max_price the highest price among the region's paid segments (the term is 1 when all
 *  are free).
 *
 *  Target: every candidate gets the exploration share e (e |C| <= 1). The rest fills the
 *  segments of the CDNs meeting the bar in decreasing merit, each up to its size: commits are
 *  filled first, then the best value (the cheapest at cost_weight 1), and a CDN near capacity
 *  spills to the next. What no such segment holds goes to the other candidates by quality within
 *  their capacity, then to the best quality candidate.
 *
 *  Flap damping (as BGP route flap damping): each time a CDN stops meeting the bar in a region
 *  (or goes down) its penalty there grows by 1; the penalty halves every flap_half_life_ms. A
 *  CDN whose penalty reaches flap_suppress is treated as below the bar until it decays under
 *  flap_reuse: a CDN that keeps failing and recovering gets only the exploration share.
 *
 *  Smoothing from the shares published last (restricted to C; the static weights at first):
 *   hysteresis: the value of an allocation x is J(x) = sum of share x merit over each CDN's
 *               segments. The current shares are kept when they are still admissible (each
 *               CDN above e meets the bar and fits its capacity) and J(target) - J(current) <
 *               hysteresis x (the share the target moves): no change unless each share moved
 *               gains at least `hysteresis` merit on average;
 *   shift cap:  no share moves by more than max_shift per interval (the moves are scaled so
 *               the shares still sum to 1);
 *   floor:      every candidate keeps at least e.
 *  The shares sum to 1 over C; score_weights() scales them by SCORE_WEIGHT_SCALE. */
#ifndef STEERD_SCORE_H
#define STEERD_SCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "steerd/cost.h"

struct cfg;
struct diag;
struct obs;

#define SCORE_WEIGHT_SCALE 10000u
#define SCORE_MAX_CANDS 64 /* CFG_MAX_CDNS */

struct score_params {
    double w_throughput, w_rebuffer, w_latency, w_availability; /* >= 0, sum > 0; 1 2 1 2 */
    double cost_weight;                                         /* 0..1, default 0.5 */
    double quality_bar;                                         /* 0..1, default 0.9 */
    double hysteresis;          /* 0..1, default 0.05 (merit and quality units) */
    double max_shift;           /* 0..1, default 0.2: largest share change per interval */
    double exploration;         /* 0..0.5, default 0.02 */
    uint32_t interval_ms;       /* default 60000 */
    double latency_good_ms;     /* default 50 */
    double latency_bad_ms;      /* default 1000 (> latency_good_ms) */
    double spill_at;            /* 0..1, default 0.9: fraction of capacity a CDN is filled to */
    uint32_t flap_half_life_ms; /* default 900000 */
    double flap_suppress;       /* default 1.5 (> flap_reuse): two falls within a half-life */
    double flap_reuse;          /* default 0.75 */
    double probe_tp_target_bps; /* default 0 (off): when > 0, T is the lower of the beacon term
                                   and min(1, probe throughput / this) */
};

void score_params_default(struct score_params *p);
/* Adds a "score.<field>: ..." line to d per bad field; returns 0 or -1. */
int score_params_check(const struct score_params *p, struct diag *d);

enum score_rule {
    SCORE_RULE_EXCLUDED = 0, /* not allowed in the region, or down */
    SCORE_RULE_QUALITY,      /* best quality; or below the bar (or suppressed for flapping),
                                so exploration share only */
    SCORE_RULE_COST,         /* best value among those meeting the bar */
    SCORE_RULE_COMMIT_FILL,  /* filling a commit that is paid anyway */
    SCORE_RULE_SPILL,        /* takes what CDNs ahead of it had no capacity for */
    SCORE_RULE_EXPLORATION,  /* meets the bar, holds the exploration share */
    SCORE_RULE_HYSTERESIS,   /* kept at its share: the new best was not enough better */
    SCORE_RULE_SHIFT_CAP,    /* on its way to the target, limited by max_shift */
};

/* One CDN's terms in one region, for /explain. */
struct score_terms {
    bool allowed, up, candidate, meets_bar;
    bool suppressed; /* flap damping holds it below the bar */
    double flap_penalty;
    double throughput, rebuffer, latency, availability, quality;
    double free_share;   /* share of the region's demand it can take for free */
    double cap_share;    /* share it can take before spill_at x capacity (INFINITY: no limit) */
    double price_per_gb; /* beyond the free share */
    enum cost_basis basis;
    double merit;  /* of its best segment */
    double target; /* share before hysteresis, shift cap and floor */
    double share;  /* the share published */
    enum score_rule rule;
};

/* One candidate as score_target sees it. */
struct score_cand {
    double quality;
    bool meets_bar;
    double free_share; /* <= cap_share */
    double cap_share;  /* INFINITY: no limit */
    double price_per_gb;
    bool free_is_commit; /* the free share is a commit being filled (else: unpriced) */
};

/* The target allocation of one region (no smoothing): shares of the n candidates (sum 1 when
 * n > 0, n <= SCORE_MAX_CANDS), with each one's rule and the merit of its best segment (rule
 * and merit may be NULL). Pure; no allocation. */
void score_target(const struct score_params *p, const struct score_cand *c, size_t n,
                  double exploration, double *share, enum score_rule *rule, double *merit);
/* J(x): the value of allocation x[n] over the candidates' segments (see above). */
double score_value(const struct score_params *p, const struct score_cand *c, size_t n,
                   const double *x);

/* Q from the four terms. */
double score_quality(const struct score_params *p, double throughput, double rebuffer,
                     double latency, double availability);
/* The latency term of a TTFB in ms (< 0: unknown, 1). */
double score_latency_term(const struct score_params *p, double ttfb_ms);

struct score_inputs {
    const struct cfg *cfg;    /* CDNs, regions, static weights */
    const uint8_t *up;        /* [ncdns] health: non-zero = up */
    const struct obs *obs;    /* NULL: no measurements (every term 1) */
    const struct cost *cost;  /* NULL: everything free, no capacity limits */
    const double *demand_bps; /* [nregions] each region's traffic; NULL: unknown (no commit
                                 room or capacity in shares: both unlimited) */
};

struct score;

/* Never NULL. Shares are empty until score_reconcile and score_update. */
struct score *score_new(const struct score_params *p);
void score_free(struct score *s);
void score_set_params(struct score *s, const struct score_params *p);

/* Makes the state match c's regions and CDNs (by name and id): the published shares of those
 * that remain are kept, so the next update moves on from them. */
void score_reconcile(struct score *s, const struct cfg *c);

/* Recomputes every region when interval_ms has passed since the last recomputation (or at the
 * first call); in->cfg must have the regions and CDNs of the last reconcile. Returns true when
 * it recomputed. */
bool score_update(struct score *s, const struct score_inputs *in, uint64_t now_ms);

/* Makes the next score_update recompute whatever the time (e.g. right after a reconcile, whose
 * new regions and CDNs have no terms yet). */
void score_expire(struct score *s);

/* Borrowed, [ncdns], valid until the next update or reconcile; NULL when out of range. */
const double *score_shares(const struct score *s, uint32_t region);
const struct score_terms *score_terms(const struct score *s, uint32_t region);

/* Rendezvous weights of a region into out[ncdns]: a share > 0 gives max(1, round(share x
 * SCORE_WEIGHT_SCALE)); a CDN allowed there but down gives 1 (so it stays in the fail-open
 * choice); others 0. Without shares yet (or out of range), the static weights. */
void score_weights(const struct score *s, const struct cfg *c, uint32_t region, uint32_t *out);

/* "excluded", "quality", "cost", "commit_fill", "spill", "exploration", "hysteresis",
 * "shift_cap" (a static string). */
const char *score_rule_str(enum score_rule r);

#endif
