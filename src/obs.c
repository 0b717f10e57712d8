#include "steerd/obs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "steerd/cfg.h"
#include "steerd/cmcd.h"
#include "steerd/util.h"

/* A time-decayed mean: weight halves every half-life; the mean is the weighted mean. */
struct ewma {
    double mean;
    double weight;
    uint64_t t_ms; /* when weight was last decayed */
};

/* A beacon rate in [0,1] whose term moves within a budget (see obs.h). The term is the mean
 * itself (bad == 0) or 1 - min(1, mean / bad). */
struct capped {
    struct ewma e;
    double budget;
    uint64_t budget_ms;
    double bad;
};

struct cell {
    /* probes */
    struct ewma ok, connect, ttfb, tp;
    uint64_t probe_samples, probe_failures;
    /* beacons */
    struct capped tp_norm, starve, err;
    struct ewma count, b_tp, b_ttfb;
    uint64_t beacon_samples, beacon_clamped, beacon_errors, beacon_startups;
};

struct obs {
    struct obs_params p;
    size_t ncdns, nregions;
    char **cdn_ids;
    char **region_names;
    struct cell *cells; /* [ncdns][nregions + 1], the last row of each CDN is OBS_GLOBAL */
};

void
obs_params_default(struct obs_params *p)
{
    p->probe_half_life_ms = 60000;
    p->beacon_half_life_ms = 300000;
    p->beacon_window_ms = 60000;
    p->beacon_max_step = 0.2;
    p->tp_target_bps = 5e6;
    p->starvation_bad = 0.1;
    p->error_bad = 0.1;
}

static double
elapsed_ms(uint64_t from, uint64_t to)
{
    return to > from ? (double)(to - from) : 0.0;
}

static double
decayed(const struct ewma *e, uint64_t now_ms, uint32_t half_life_ms)
{
    if (half_life_ms == 0)
        return e->weight;
    return e->weight * exp2(-elapsed_ms(e->t_ms, now_ms) / (double)half_life_ms);
}

static void
decay(struct ewma *e, uint64_t now_ms, uint32_t half_life_ms)
{
    e->weight = decayed(e, now_ms, half_life_ms);
    if (now_ms > e->t_ms)
        e->t_ms = now_ms;
}

static void
ewma_add(struct ewma *e, double x, uint64_t now_ms, uint32_t half_life_ms)
{
    decay(e, now_ms, half_life_ms);
    e->mean = (e->mean * e->weight + x) / (e->weight + 1.0);
    e->weight += 1.0;
}

static void
ewma_init(struct ewma *e, double mean)
{
    e->mean = mean;
    e->weight = 0.0;
    e->t_ms = 0;
}

/* Budget refill: capacity step/4, 3/4 step per window, so at most step in any window. A
 * window of 0 turns the cap off. */
static void
refill(struct capped *c, const struct obs_params *p, uint64_t now_ms)
{
    double cap = p->beacon_max_step / 4.0;
    if (p->beacon_window_ms == 0) {
        c->budget = INFINITY;
        return;
    }
    c->budget += 0.75 * p->beacon_max_step / p->beacon_window_ms * elapsed_ms(c->budget_ms, now_ms);
    if (c->budget > cap)
        c->budget = cap;
    if (now_ms > c->budget_ms)
        c->budget_ms = now_ms;
}

static void
capped_init(struct capped *c, double prior, double bad, const struct obs_params *p)
{
    ewma_init(&c->e, prior);
    c->budget = p->beacon_max_step / 4.0;
    c->budget_ms = 0;
    c->bad = bad;
}

static double
term(const struct capped *c, double mean)
{
    if (c->bad <= 0)
        return mean;
    double t = 1.0 - mean / c->bad;
    return t > 0 ? t : 0;
}

/* The mean whose term is t (0 < t <= 1). */
static double
mean_of(const struct capped *c, double t)
{
    return c->bad <= 0 ? t : c->bad * (1.0 - t);
}

/* Adds x in [0,1]; returns false when the budget admitted it only partly. */
static bool
capped_add(struct capped *c, double x, const struct obs_params *p, uint64_t now_ms)
{
    struct ewma *e = &c->e;
    decay(e, now_ms, p->beacon_half_life_ms);
    refill(c, p, now_ms);
    double whole = (e->mean * e->weight + x) / (e->weight + 1.0);
    double t0 = term(c, e->mean), t1 = term(c, whole);
    if (fabs(t1 - t0) <= c->budget) {
        c->budget -= fabs(t1 - t0);
        e->mean = whole;
        e->weight += 1.0;
        return true;
    }
    /* Move the term by exactly the budget, and admit the weight w that moves the mean there:
     * w * dist / (W + w) = d  =>  w = d * W / (dist - d). */
    double to = mean_of(c, t1 > t0 ? t0 + c->budget : t0 - c->budget);
    double d = fabs(to - e->mean), dist = fabs(x - e->mean);
    e->weight += dist > d ? d * e->weight / (dist - d) : 0.0;
    e->mean = to;
    c->budget = 0.0;
    return false;
}

static void
cell_init(struct cell *c, const struct obs_params *p)
{
    memset(c, 0, sizeof(*c));
    ewma_init(&c->ok, 1.0);
    ewma_init(&c->connect, -1.0);
    ewma_init(&c->ttfb, -1.0);
    ewma_init(&c->tp, -1.0);
    capped_init(&c->tp_norm, 1.0, 0.0, p);
    capped_init(&c->starve, 0.0, p->starvation_bad, p);
    capped_init(&c->err, 0.0, p->error_bad, p);
    ewma_init(&c->count, 0.0);
    ewma_init(&c->b_tp, -1.0);
    ewma_init(&c->b_ttfb, -1.0);
}

struct obs *
obs_new(const struct obs_params *p)
{
    struct obs *o = xcalloc(1, sizeof(*o));
    o->p = *p;
    return o;
}

void
obs_free(struct obs *o)
{
    if (o == NULL)
        return;
    util_strv_free(o->cdn_ids, o->ncdns);
    util_strv_free(o->region_names, o->nregions);
    free(o->cells);
    free(o);
}

void
obs_set_params(struct obs *o, const struct obs_params *p)
{
    o->p = *p;
}

static struct cell *
cell_at(const struct obs *o, uint32_t cdn, uint32_t region)
{
    if (cdn >= o->ncdns || (region != OBS_GLOBAL && region >= o->nregions))
        return NULL;
    size_t row = region == OBS_GLOBAL ? o->nregions : region;
    return &o->cells[cdn * (o->nregions + 1) + row];
}

void
obs_reconcile(struct obs *o, const struct cfg *c)
{
    size_t nrow = c->nregions + 1;
    struct cell *cells = xcalloc(c->ncdns * nrow, sizeof(*cells));
    char **ids = xcalloc(c->ncdns > 0 ? c->ncdns : 1, sizeof(*ids));
    char **names = xcalloc(c->nregions > 0 ? c->nregions : 1, sizeof(*names));

    for (size_t r = 0; r < c->nregions; r++)
        names[r] = xstrdup(c->regions[r].name);
    for (size_t i = 0; i < c->ncdns; i++) {
        ids[i] = xstrdup(c->cdns[i].id);
        long oi = util_strv_index(o->cdn_ids, o->ncdns, ids[i]);
        for (size_t r = 0; r < nrow; r++) {
            struct cell *dst = &cells[i * nrow + r];
            long orow = -1;
            if (oi >= 0)
                orow = r == c->nregions ? (long)o->nregions
                                        : util_strv_index(o->region_names, o->nregions, names[r]);
            if (orow >= 0)
                *dst = o->cells[(size_t)oi * (o->nregions + 1) + (size_t)orow];
            else
                cell_init(dst, &o->p);
        }
    }
    util_strv_free(o->cdn_ids, o->ncdns);
    util_strv_free(o->region_names, o->nregions);
    free(o->cells);
    o->cells = cells;
    o->cdn_ids = ids;
    o->region_names = names;
    o->ncdns = c->ncdns;
    o->nregions = c->nregions;
}

size_t
obs_ncdns(const struct obs *o)
{
    return o->ncdns;
}

size_t
obs_nregions(const struct obs *o)
{
    return o->nregions;
}

void
obs_record_probe(struct obs *o, uint32_t cdn, uint32_t region, const struct obs_probe *s,
                 uint64_t now_ms)
{
    struct cell *c = cell_at(o, cdn, region);
    uint32_t h = o->p.probe_half_life_ms;
    if (c == NULL)
        return;
    c->probe_samples++;
    if (!s->ok)
        c->probe_failures++;
    ewma_add(&c->ok, s->ok ? 1.0 : 0.0, now_ms, h);
    if (s->connect_ms >= 0)
        ewma_add(&c->connect, s->connect_ms, now_ms, h);
    if (s->ttfb_ms >= 0)
        ewma_add(&c->ttfb, s->ttfb_ms, now_ms, h);
    if (s->tp_bps >= 0)
        ewma_add(&c->tp, s->tp_bps, now_ms, h);
}

bool
obs_record_beacon(struct obs *o, uint32_t cdn, uint32_t region, const struct obs_beacon *b,
                  uint64_t now_ms)
{
    struct cell *c = region == OBS_GLOBAL ? NULL : cell_at(o, cdn, region);
    uint32_t h = o->p.beacon_half_life_ms;
    bool whole = true;
    if (c == NULL)
        return false;
    c->beacon_samples++;
    ewma_add(&c->count, 0.0, now_ms, h);
    if (b->tp_bps >= 0) {
        double norm = o->p.tp_target_bps > 0 ? b->tp_bps / o->p.tp_target_bps : 1.0;
        whole &= capped_add(&c->tp_norm, norm < 1.0 ? norm : 1.0, &o->p, now_ms);
        ewma_add(&c->b_tp, b->tp_bps, now_ms, h);
    }
    if (b->starved >= 0)
        whole &= capped_add(&c->starve, b->starved > 0 ? 1.0 : 0.0, &o->p, now_ms);
    whole &= capped_add(&c->err, b->error ? 1.0 : 0.0, &o->p, now_ms);
    if (b->error)
        c->beacon_errors++;
    if (b->startup)
        c->beacon_startups++;
    if (b->ttfb_ms >= 0)
        ewma_add(&c->b_ttfb, b->ttfb_ms, now_ms, h);
    if (!whole)
        c->beacon_clamped++;
    return whole;
}

int
obs_get(const struct obs *o, uint32_t cdn, uint32_t region, uint64_t now_ms, struct obs_cell *out)
{
    const struct cell *c = cell_at(o, cdn, region);
    struct cell empty;
    if (c == NULL) {
        cell_init(&empty, &o->p);
        c = &empty;
    }
    uint32_t ph = o->p.probe_half_life_ms, bh = o->p.beacon_half_life_ms;
    out->probe_samples = c->probe_samples;
    out->probe_failures = c->probe_failures;
    out->probe_weight = decayed(&c->ok, now_ms, ph);
    out->probe_ok = c->ok.mean;
    out->connect_ms = c->connect.mean;
    out->ttfb_ms = c->ttfb.mean;
    out->tp_bps = c->tp.mean;
    out->beacon_samples = c->beacon_samples;
    out->beacon_clamped = c->beacon_clamped;
    out->beacon_errors = c->beacon_errors;
    out->beacon_startups = c->beacon_startups;
    out->beacon_weight = decayed(&c->count, now_ms, bh);
    out->tp_norm = c->tp_norm.e.mean;
    out->starvation = c->starve.e.mean;
    out->error_rate = c->err.e.mean;
    out->rebuffer_term = term(&c->starve, c->starve.e.mean);
    out->error_term = term(&c->err, c->err.e.mean);
    out->beacon_tp_bps = c->b_tp.mean;
    out->beacon_ttfb_ms = c->b_ttfb.mean;
    return c == &empty ? -1 : 0;
}

void
obs_beacon_from_cmcd(const struct cmcd_report *r, struct obs_beacon *b)
{
    b->tp_bps = (r->has & CMCD_KEY_MTP) ? (double)r->mtp_kbps * 1000.0 : -1.0;
    if (((r->has & CMCD_KEY_BS) && r->bs) || ((r->has & CMCD_KEY_BSD) && r->bsd_ms > 0))
        b->starved = 1;
    else if (r->has & (CMCD_KEY_BL | CMCD_KEY_MTP))
        b->starved = 0;
    else
        b->starved = -1;
    b->error = ((r->has & CMCD_KEY_EC) && r->nec > 0) ||
               ((r->has & CMCD_KEY_STA) && strcmp(r->sta, "f") == 0);
    b->startup = (r->has & CMCD_KEY_SU) && r->su;
    b->ttfb_ms = (r->has & CMCD_KEY_TTFB) ? (double)r->ttfb_ms : -1.0;
}

/* ---- token buckets ------------------------------------------------------------------------- */

#define WAYS 8

struct slot {
    uint64_t key;
    double tokens;
    uint64_t t_ms;
    bool used;
};

struct obs_limiter {
    struct slot *slots; /* [nsets][WAYS] */
    size_t nsets;
    double rate_per_ms;
    double burst;
    uint64_t evictions;
};

struct obs_limiter *
obs_limiter_new(size_t max_sources, double rate_per_s, double burst)
{
    struct obs_limiter *l = xcalloc(1, sizeof(*l));
    l->nsets = max_sources / WAYS + (max_sources % WAYS != 0);
    if (l->nsets == 0)
        l->nsets = 1;
    l->slots = xcalloc(l->nsets * WAYS, sizeof(*l->slots));
    l->rate_per_ms = rate_per_s > 0 ? rate_per_s / 1000.0 : 0.0;
    l->burst = burst >= 1.0 ? burst : 1.0;
    return l;
}

void
obs_limiter_free(struct obs_limiter *l)
{
    if (l == NULL)
        return;
    free(l->slots);
    free(l);
}

static double
tokens_at(const struct obs_limiter *l, const struct slot *s, uint64_t now_ms)
{
    double t = s->tokens + l->rate_per_ms * elapsed_ms(s->t_ms, now_ms);
    return t < l->burst ? t : l->burst;
}

/* The slot to reuse in a full set: an idle source (full bucket) first, else the least recently
 * seen. */
static struct slot *
victim(const struct obs_limiter *l, struct slot *set, uint64_t now_ms)
{
    struct slot *lru = &set[0];
    for (size_t w = 0; w < WAYS; w++) {
        if (tokens_at(l, &set[w], now_ms) >= l->burst)
            return &set[w];
        if (set[w].t_ms < lru->t_ms)
            lru = &set[w];
    }
    return lru;
}

bool
obs_limiter_take(struct obs_limiter *l, uint64_t key, uint64_t now_ms, uint32_t *retry_after_ms)
{
    /* Keys are hashes already; mixing again keeps a poor hash from crowding one set. */
    uint64_t h = util_hash64(&key, sizeof(key), 0x6f6273);
    struct slot *set = &l->slots[(h % l->nsets) * WAYS];
    struct slot *s = NULL, *free_slot = NULL;

    for (size_t w = 0; w < WAYS && s == NULL; w++) {
        if (set[w].used && set[w].key == key)
            s = &set[w];
        else if (!set[w].used && free_slot == NULL)
            free_slot = &set[w];
    }
    if (s == NULL) {
        s = free_slot;
        if (s == NULL) {
            s = victim(l, set, now_ms);
            l->evictions++;
        }
        s->used = true;
        s->key = key;
        s->tokens = l->burst;
        s->t_ms = now_ms;
    }
    s->tokens = tokens_at(l, s, now_ms);
    if (now_ms > s->t_ms)
        s->t_ms = now_ms;
    if (s->tokens >= 1.0) {
        s->tokens -= 1.0;
        return true;
    }
    if (retry_after_ms != NULL) {
        double wait = l->rate_per_ms > 0 ? ceil((1.0 - s->tokens) / l->rate_per_ms) : 3600000.0;
        *retry_after_ms = wait < 3600000.0 ? (uint32_t)wait : 3600000u;
    }
    return false;
}

uint64_t
obs_limiter_evictions(const struct obs_limiter *l)
{
    return l->evictions;
}
