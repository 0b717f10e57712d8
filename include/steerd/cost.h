/* cost: what each CDN costs this billing month, and what sending it more traffic now would cost.
 * State layer: no I/O, no logging, no clock reads. Times are wall-clock UTC epoch milliseconds
 * passed in (billing months are calendar months in UTC). Not thread-safe: the control thread
 * owns it. Memory: one array of COST_MONTH_SAMPLES doubles per CDN.
 *
 * Pricing models per CDN (struct cost_cdn_params):
 *  - volume tiers: price per GB by month-to-date volume (no commit);
 *  - GB commit: commit_amount GB a month paid by commit_fee; above it burst_price per GB (or
 *    the tiers when burst_price < 0);
 *  - 95th-percentile commit: commit_amount Gbps at the 95th percentile of the month's 5-minute
 *    samples, paid by commit_fee; each Gbps of 95th percentile above it costs burst_price per
 *    month;
 *  - capacity_gbps: the most the CDN may carry (0 = unlimited).
 * Traffic is estimated, not measured: the caller gives each CDN's egress rate (active sessions
 * x bitrate) and cost integrates it over time into the month's volume and 5-minute samples.
 *
 * "Marginal cost now" (cost_marginal): 0 while the traffic fills a commit that is paid anyway
 * (the room below a 95th-percentile commit at the current rate, or a GB commit not used up),
 * the tier or burst price above it (a 95th-percentile burst price as its per-GB equivalent over
 * the month), and INFINITY when the CDN would exceed its capacity. */
#ifndef STEERD_COST_H
#define STEERD_COST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;
struct diag;

#define COST_MAX_TIERS 8
#define COST_SAMPLE_MS 300000u   /* 5 minutes */
#define COST_MONTH_SAMPLES 8928u /* 31 days x 288 */

enum cost_commit { COST_COMMIT_NONE = 0, COST_COMMIT_P95_GBPS, COST_COMMIT_GB };

struct cost_tier {
    double up_to_gb;     /* month-to-date volume up to which this price applies (ascending); the
                            last tier applies beyond its bound too */
    double price_per_gb; /* >= 0 */
};

struct cost_cdn_params {
    struct cost_tier tiers[COST_MAX_TIERS];
    size_t ntiers; /* 0: traffic outside a commit is free */
    enum cost_commit commit;
    double commit_amount; /* Gbps (p95) or GB per month; > 0 with a commit */
    double commit_fee;    /* the commit's price per month, paid whatever the traffic */
    double burst_price;   /* above the commit: per GB (GB commit; < 0 = the tiers) or per Gbps
                             of 95th percentile per month (p95 commit) */
    double capacity_gbps; /* 0 = unlimited */
};

enum cost_basis {
    COST_BASIS_UNPRICED = 0, /* no pricing: everything is free */
    COST_BASIS_COMMIT,       /* free_bps > 0 comes from a commit being filled */
    COST_BASIS_TIER,         /* price_per_gb is the current volume tier's */
    COST_BASIS_BURST,        /* price_per_gb is the price above the commit */
};

/* What the next bits sent to a CDN cost. */
struct cost_quote {
    double rate_bps;     /* its current estimated egress */
    double commit_bps;   /* the rate up to which traffic costs nothing: a p95 commit, INFINITY
                            while a GB commit lasts or without pricing, else 0 */
    double free_bps;     /* more traffic that costs nothing now: commit_bps - rate_bps, >= 0 */
    double price_per_gb; /* the price of traffic beyond free_bps */
    enum cost_basis basis;
    double capacity_bps; /* INFINITY when unlimited */
};

struct cost;

/* No CDNs until cost_reconcile. Never NULL. */
struct cost *cost_new(void);
void cost_free(struct cost *c);

/* Makes the tracked CDNs match cfg's (by id): pricing and month state are kept for ids that
 * remain; new ids start unpriced with no traffic. */
void cost_reconcile(struct cost *c, const struct cfg *cfg);
size_t cost_ncdns(const struct cost *c);

/* Validates p (every problem added to d as "cost.<id>.<field>: ...") and sets it for cdn.
 * Returns 0, or -1 leaving the old pricing. */
int cost_configure(struct cost *c, uint32_t cdn, const struct cost_cdn_params *p, struct diag *d);

/* Accounts cdn's traffic up to now_ms at its previous rate, then sets its rate to rate_bps
 * (active sessions x bitrate). The first call only starts the clock. A gap of more than a
 * month is not integrated. Out-of-range cdn is ignored. */
void cost_account(struct cost *c, uint32_t cdn, double rate_bps, uint64_t now_ms);
/* Accounts every CDN up to now_ms at its current rate. */
void cost_advance(struct cost *c, uint64_t now_ms);
/* Sets cdn's month-to-date volume as of now_ms (from the CDN's usage report or a shared store,
 * e.g. after a restart); starts the clock like a first cost_account. */
void cost_set_month_gb(struct cost *c, uint32_t cdn, double gb, uint64_t now_ms);

/* The quote for cdn at its current rate (an empty, unpriced quote out of range). */
void cost_quote(const struct cost *c, uint32_t cdn, struct cost_quote *q);
/* Price per GB of add_bps more traffic on cdn now: 0 inside free_bps, else price_per_gb;
 * INFINITY when rate + add_bps exceeds the capacity. */
double cost_marginal(const struct cost *c, uint32_t cdn, double add_bps);

/* Month-to-date volume in GB (10^9 bytes). */
double cost_month_gb(const struct cost *c, uint32_t cdn);
/* The exact 95th percentile of the month's closed 5-minute samples in bit/s (the sample at
 * rank ceil(0.95 n) in ascending order), 0 without samples. */
double cost_p95_bps(const struct cost *c, uint32_t cdn);
size_t cost_nsamples(const struct cost *c, uint32_t cdn);
/* The month-to-date bill: the commit fee plus usage charges (volume tiers, burst above a GB
 * commit, or the 95th percentile so far above a p95 commit). */
double cost_bill(const struct cost *c, uint32_t cdn);

/* The start of the UTC calendar month holding t_ms, and its length in days. */
uint64_t cost_month_start_ms(uint64_t t_ms);
uint32_t cost_month_days(uint64_t t_ms);

const char *cost_basis_str(enum cost_basis b);

#endif
