#include "steerd/cost.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "steerd/cfg.h"
#include "steerd/diag.h"
#include "steerd/util.h"

#define DAY_MS 86400000ull
#define BITS_PER_GB 8e9

struct cdn {
    char *id;
    struct cost_cdn_params p;
    double rate_bps;
    uint64_t acct_ms; /* accounted up to here; 0 = not started */
    uint64_t month_start_ms;
    double month_gb;
    double bucket_bits; /* in the 5-minute bucket that acct_ms is in */
    double *sorted;     /* [COST_MONTH_SAMPLES] the month's closed samples, ascending */
    size_t nsamples;
};

struct cost {
    struct cdn *cdns;
    size_t ncdns;
};

/* ---- calendar (proleptic Gregorian, UTC) ---------------------------------------------------- */

/* Days since 1970-01-01 of y-m-d (H. Hinnant's days_from_civil). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, unsigned *m)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

uint64_t
cost_month_start_ms(uint64_t t_ms)
{
    int64_t y;
    unsigned m;
    civil_from_days((int64_t)(t_ms / DAY_MS), &y, &m);
    return (uint64_t)days_from_civil(y, m, 1) * DAY_MS;
}

static uint64_t
next_month_start_ms(uint64_t t_ms)
{
    int64_t y;
    unsigned m;
    civil_from_days((int64_t)(t_ms / DAY_MS), &y, &m);
    if (m == 12) {
        y++;
        m = 1;
    } else {
        m++;
    }
    return (uint64_t)days_from_civil(y, m, 1) * DAY_MS;
}

uint32_t
cost_month_days(uint64_t t_ms)
{
    return (uint32_t)((next_month_start_ms(t_ms) - cost_month_start_ms(t_ms)) / DAY_MS);
}

/* ---- set-up -------------------------------------------------------------------------------- */

struct cost *
cost_new(void)
{
    return xcalloc(1, sizeof(struct cost));
}

static void
cdn_release(struct cdn *d)
{
    free(d->id);
    free(d->sorted);
}

void
cost_free(struct cost *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->ncdns; i++)
        cdn_release(&c->cdns[i]);
    free(c->cdns);
    free(c);
}

void
cost_reconcile(struct cost *c, const struct cfg *cfg)
{
    struct cdn *cdns = xcalloc(cfg->ncdns, sizeof(*cdns));
    bool *kept = xcalloc(c->ncdns, sizeof(*kept));

    for (size_t i = 0; i < cfg->ncdns; i++) {
        size_t o = 0;
        while (o < c->ncdns && (kept[o] || strcmp(c->cdns[o].id, cfg->cdns[i].id) != 0))
            o++;
        if (o < c->ncdns) {
            cdns[i] = c->cdns[o];
            kept[o] = true;
        } else {
            cdns[i].id = xstrdup(cfg->cdns[i].id);
            cdns[i].sorted = xcalloc(COST_MONTH_SAMPLES, sizeof(double));
        }
    }
    for (size_t o = 0; o < c->ncdns; o++)
        if (!kept[o])
            cdn_release(&c->cdns[o]);
    free(kept);
    free(c->cdns);
    c->cdns = cdns;
    c->ncdns = cfg->ncdns;
}

size_t
cost_ncdns(const struct cost *c)
{
    return c->ncdns;
}

static bool
finite_nonneg(double x)
{
    return isfinite(x) && x >= 0;
}

int
cost_configure(struct cost *c, uint32_t cdn, const struct cost_cdn_params *p, struct diag *d)
{
    if (cdn >= c->ncdns) {
        diag_add(d, "cost: no CDN %u", cdn);
        return -1;
    }
    const char *id = c->cdns[cdn].id;
    size_t before = d->count + d->dropped;
    if (p->ntiers > COST_MAX_TIERS)
        diag_add(d, "cost.%s.tiers: at most %d", id, COST_MAX_TIERS);
    for (size_t t = 0; t < p->ntiers && t < COST_MAX_TIERS; t++) {
        if (!finite_nonneg(p->tiers[t].price_per_gb))
            diag_add(d, "cost.%s.tiers[%zu].price_per_gb: must be >= 0", id, t);
        if (!finite_nonneg(p->tiers[t].up_to_gb) ||
            (t > 0 && p->tiers[t].up_to_gb <= p->tiers[t - 1].up_to_gb && t + 1 < p->ntiers))
            diag_add(d, "cost.%s.tiers[%zu].up_to_gb: must be >= 0 and ascending", id, t);
    }
    if (p->commit != COST_COMMIT_NONE && !(isfinite(p->commit_amount) && p->commit_amount > 0))
        diag_add(d, "cost.%s.commit_amount: must be > 0", id);
    if (!finite_nonneg(p->commit_fee))
        diag_add(d, "cost.%s.commit_fee: must be >= 0", id);
    if (!isfinite(p->burst_price) || (p->commit == COST_COMMIT_P95_GBPS && p->burst_price < 0))
        diag_add(d, "cost.%s.burst_price: must be >= 0 (or < 0 for the tiers, GB commits)", id);
    if (!finite_nonneg(p->capacity_gbps))
        diag_add(d, "cost.%s.capacity_gbps: must be >= 0", id);
    if (d->count + d->dropped != before)
        return -1;
    c->cdns[cdn].p = *p;
    return 0;
}

/* ---- accounting ---------------------------------------------------------------------------- */

static void
sample_insert(struct cdn *d, double bps)
{
    if (d->nsamples == COST_MONTH_SAMPLES)
        return; /* cannot happen: a month has at most this many buckets */
    size_t lo = 0, hi = d->nsamples;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->sorted[mid] <= bps)
            lo = mid + 1;
        else
            hi = mid;
    }
    memmove(&d->sorted[lo + 1], &d->sorted[lo], (d->nsamples - lo) * sizeof(double));
    d->sorted[lo] = bps;
    d->nsamples++;
}

static void
month_reset(struct cdn *d, uint64_t t_ms)
{
    d->month_start_ms = cost_month_start_ms(t_ms);
    d->month_gb = 0;
    d->nsamples = 0;
    d->bucket_bits = 0;
}

static void
integrate(struct cdn *d, uint64_t now_ms)
{
    if (d->acct_ms == 0 || now_ms <= d->acct_ms) {
        if (d->acct_ms == 0) {
            d->acct_ms = now_ms;
            month_reset(d, now_ms);
        }
        return;
    }
    if (now_ms - d->acct_ms > 32 * DAY_MS) { /* too long a gap: start afresh */
        d->acct_ms = now_ms;
        month_reset(d, now_ms);
        return;
    }
    while (d->acct_ms < now_ms) {
        uint64_t bucket_end = (d->acct_ms / COST_SAMPLE_MS + 1) * COST_SAMPLE_MS;
        uint64_t month_end = next_month_start_ms(d->month_start_ms);
        uint64_t end = now_ms < bucket_end ? now_ms : bucket_end;
        double bits = d->rate_bps * (double)(end - d->acct_ms) / 1000.0;
        d->bucket_bits += bits;
        d->month_gb += bits / BITS_PER_GB;
        d->acct_ms = end;
        if (end == bucket_end) {
            sample_insert(d, d->bucket_bits / (COST_SAMPLE_MS / 1000.0));
            d->bucket_bits = 0;
            if (end >= month_end)
                month_reset(d, end);
        }
    }
}

void
cost_account(struct cost *c, uint32_t cdn, double rate_bps, uint64_t now_ms)
{
    if (cdn >= c->ncdns)
        return;
    struct cdn *d = &c->cdns[cdn];
    integrate(d, now_ms);
    d->rate_bps = isfinite(rate_bps) && rate_bps > 0 ? rate_bps : 0;
}

void
cost_advance(struct cost *c, uint64_t now_ms)
{
    for (size_t i = 0; i < c->ncdns; i++)
        integrate(&c->cdns[i], now_ms);
}

void
cost_set_month_gb(struct cost *c, uint32_t cdn, double gb, uint64_t now_ms)
{
    if (cdn >= c->ncdns)
        return;
    struct cdn *d = &c->cdns[cdn];
    integrate(d, now_ms);
    d->month_gb = isfinite(gb) && gb > 0 ? gb : 0;
}

/* ---- prices -------------------------------------------------------------------------------- */

static double
tier_price(const struct cost_cdn_params *p, double gb)
{
    if (p->ntiers == 0)
        return 0;
    for (size_t t = 0; t + 1 < p->ntiers; t++)
        if (gb < p->tiers[t].up_to_gb)
            return p->tiers[t].price_per_gb;
    return p->tiers[p->ntiers - 1].price_per_gb;
}

/* The price of volume gb of traffic starting at month-to-date volume from_gb, over the tiers. */
static double
tier_charge(const struct cost_cdn_params *p, double from_gb, double gb)
{
    double charge = 0, at = from_gb, left = gb;
    for (size_t t = 0; t < p->ntiers && left > 0; t++) {
        bool last = t + 1 == p->ntiers;
        double bound = last ? INFINITY : p->tiers[t].up_to_gb;
        if (at >= bound)
            continue;
        double in_tier = bound - at < left ? bound - at : left;
        charge += in_tier * p->tiers[t].price_per_gb;
        at += in_tier;
        left -= in_tier;
    }
    return charge;
}

/* GB in a month of a Gbps sustained: a 95th-percentile price per Gbps as a price per GB. */
static double
gb_per_gbps_month(uint64_t t_ms)
{
    return 1e9 / BITS_PER_GB * (double)cost_month_days(t_ms) * 86400.0;
}

static const struct cdn *
get(const struct cost *c, uint32_t cdn)
{
    return cdn < c->ncdns ? &c->cdns[cdn] : NULL;
}

void
cost_quote(const struct cost *c, uint32_t cdn, struct cost_quote *q)
{
    const struct cdn *d = get(c, cdn);
    q->rate_bps = 0;
    q->commit_bps = INFINITY;
    q->free_bps = INFINITY;
    q->price_per_gb = 0;
    q->basis = COST_BASIS_UNPRICED;
    q->capacity_bps = INFINITY;
    if (d == NULL)
        return;
    const struct cost_cdn_params *p = &d->p;
    q->rate_bps = d->rate_bps;
    if (p->capacity_gbps > 0)
        q->capacity_bps = p->capacity_gbps * 1e9;
    switch (p->commit) {
    case COST_COMMIT_NONE:
        if (p->ntiers > 0) {
            q->commit_bps = 0;
            q->free_bps = 0;
            q->price_per_gb = tier_price(p, d->month_gb);
            q->basis = COST_BASIS_TIER;
        }
        break;
    case COST_COMMIT_GB: {
        double over = d->month_gb - p->commit_amount;
        q->price_per_gb = p->burst_price >= 0 ? p->burst_price : tier_price(p, over > 0 ? over : 0);
        q->commit_bps = over < 0 ? INFINITY : 0;
        q->free_bps = q->commit_bps;
        q->basis = over < 0 ? COST_BASIS_COMMIT : COST_BASIS_BURST;
        break;
    }
    case COST_COMMIT_P95_GBPS: {
        double room = p->commit_amount * 1e9 - d->rate_bps;
        q->commit_bps = p->commit_amount * 1e9;
        q->price_per_gb = p->burst_price / gb_per_gbps_month(d->month_start_ms);
        q->free_bps = room > 0 ? room : 0;
        q->basis = room > 0 ? COST_BASIS_COMMIT : COST_BASIS_BURST;
        break;
    }
    }
}

double
cost_marginal(const struct cost *c, uint32_t cdn, double add_bps)
{
    struct cost_quote q;
    cost_quote(c, cdn, &q);
    if (add_bps < 0)
        add_bps = 0;
    if (q.rate_bps + add_bps > q.capacity_bps)
        return INFINITY;
    return add_bps <= q.free_bps && q.free_bps > 0 ? 0 : q.price_per_gb;
}

double
cost_month_gb(const struct cost *c, uint32_t cdn)
{
    const struct cdn *d = get(c, cdn);
    return d != NULL ? d->month_gb : 0;
}

double
cost_p95_bps(const struct cost *c, uint32_t cdn)
{
    const struct cdn *d = get(c, cdn);
    if (d == NULL || d->nsamples == 0)
        return 0;
    size_t rank = (95 * d->nsamples + 99) / 100; /* ceil(0.95 n), 1-based */
    return d->sorted[rank - 1];
}

size_t
cost_nsamples(const struct cost *c, uint32_t cdn)
{
    const struct cdn *d = get(c, cdn);
    return d != NULL ? d->nsamples : 0;
}

double
cost_bill(const struct cost *c, uint32_t cdn)
{
    const struct cdn *d = get(c, cdn);
    if (d == NULL)
        return 0;
    const struct cost_cdn_params *p = &d->p;
    switch (p->commit) {
    case COST_COMMIT_NONE:
        return tier_charge(p, 0, d->month_gb);
    case COST_COMMIT_GB: {
        double over = d->month_gb - p->commit_amount;
        if (over <= 0)
            return p->commit_fee;
        if (p->burst_price >= 0)
            return p->commit_fee + over * p->burst_price;
        return p->commit_fee + tier_charge(p, 0, over);
    }
    case COST_COMMIT_P95_GBPS: {
        double over_gbps = cost_p95_bps(c, cdn) / 1e9 - p->commit_amount;
        return p->commit_fee + (over_gbps > 0 ? over_gbps * p->burst_price : 0);
    }
    }
    return 0;
}

const char *
cost_basis_str(enum cost_basis b)
{
    switch (b) {
    case COST_BASIS_UNPRICED:
        return "unpriced";
    case COST_BASIS_COMMIT:
        return "commit";
    case COST_BASIS_TIER:
        return "tier";
    case COST_BASIS_BURST:
        return "burst";
    }
    return "unknown";
}
