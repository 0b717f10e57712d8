#include "steerd/score.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "steerd/cfg.h"
#include "steerd/cost.h"
#include "steerd/diag.h"
#include "steerd/obs.h"
#include "steerd/util.h"

/* Shares closer than this are equal. */
#define TINY 1e-9

_Static_assert(SCORE_MAX_CANDS == CFG_MAX_CDNS, "one candidate per CDN");

/* What a (region, CDN) keeps between intervals. */
struct cell {
    double share; /* published */
    double penalty;
    uint64_t penalty_ms;
    bool meeting;    /* met the bar (and was up) at the last update */
    bool suppressed; /* flap damping */
};

struct score {
    struct score_params p;
    size_t ncdns, nregions;
    char **cdn_ids;
    char **region_names;
    struct cell *cells;        /* [nregions][ncdns] */
    double *share;             /* [nregions][ncdns] published, for score_shares */
    struct score_terms *terms; /* [nregions][ncdns] */
    bool *fresh;               /* [nregions] nothing published yet */
    bool computed;
    uint64_t last_ms;
};

void
score_params_default(struct score_params *p)
{
    p->w_throughput = 1;
    p->w_rebuffer = 2;
    p->w_latency = 1;
    p->w_availability = 2;
    p->cost_weight = 0.5;
    p->quality_bar = 0.9;
    p->hysteresis = 0.05;
    p->max_shift = 0.2;
    p->exploration = 0.02;
    p->interval_ms = 60000;
    p->latency_good_ms = 50;
    p->latency_bad_ms = 1000;
    p->spill_at = 0.9;
    p->flap_half_life_ms = 900000;
    p->flap_suppress = 1.5;
    p->flap_reuse = 0.75;
    p->probe_tp_target_bps = 0;
}

static bool
in01(double x)
{
    return isfinite(x) && x >= 0 && x <= 1;
}

int
score_params_check(const struct score_params *p, struct diag *d)
{
    size_t before = d->count + d->dropped;
    const double w[] = {p->w_throughput, p->w_rebuffer, p->w_latency, p->w_availability};
    const char *wn[] = {"w_throughput", "w_rebuffer", "w_latency", "w_availability"};
    double sum = 0;
    for (size_t i = 0; i < 4; i++) {
        if (!isfinite(w[i]) || w[i] < 0)
            diag_add(d, "score.%s: must be >= 0", wn[i]);
        else
            sum += w[i];
    }
    if (sum <= 0)
        diag_add(d, "score: the quality weights must not all be 0");
    if (!in01(p->cost_weight))
        diag_add(d, "score.cost_weight: must be 0..1");
    if (!in01(p->quality_bar))
        diag_add(d, "score.quality_bar: must be 0..1");
    if (!in01(p->hysteresis))
        diag_add(d, "score.hysteresis: must be 0..1");
    if (!in01(p->max_shift) || p->max_shift == 0)
        diag_add(d, "score.max_shift: must be in (0, 1]");
    if (!isfinite(p->exploration) || p->exploration < 0 || p->exploration > 0.5)
        diag_add(d, "score.exploration: must be 0..0.5");
    if (p->interval_ms == 0)
        diag_add(d, "score.interval_ms: must be > 0");
    if (!isfinite(p->latency_good_ms) || p->latency_good_ms < 0 || !isfinite(p->latency_bad_ms) ||
        p->latency_bad_ms <= p->latency_good_ms)
        diag_add(d, "score.latency_bad_ms: must be > latency_good_ms >= 0");
    if (!in01(p->spill_at) || p->spill_at == 0)
        diag_add(d, "score.spill_at: must be in (0, 1]");
    if (!isfinite(p->flap_reuse) || p->flap_reuse <= 0 || !isfinite(p->flap_suppress) ||
        p->flap_suppress <= p->flap_reuse)
        diag_add(d, "score.flap_suppress: must be > flap_reuse > 0");
    return d->count + d->dropped == before ? 0 : -1;
}

double
score_latency_term(const struct score_params *p, double ttfb_ms)
{
    if (ttfb_ms < 0)
        return 1;
    double x = (p->latency_bad_ms - ttfb_ms) / (p->latency_bad_ms - p->latency_good_ms);
    return x < 0 ? 0 : x > 1 ? 1 : x;
}

double
score_quality(const struct score_params *p, double throughput, double rebuffer, double latency,
              double availability)
{
    double sum = p->w_throughput + p->w_rebuffer + p->w_latency + p->w_availability;
    double q = p->w_throughput * throughput + p->w_rebuffer * rebuffer + p->w_latency * latency +
               p->w_availability * availability;
    return sum > 0 ? q / sum : 1;
}

/* ---- the target allocation ------------------------------------------------------------------ */

struct seg {
    size_t cand;
    bool is_free;
    bool last; /* the CDN's last segment: exhausting it means it is at capacity */
    double amount;
    double merit;
};

static double
merit_of(const struct score_params *p, double quality, double price, double max_price)
{
    double value = max_price > 0 ? 1 - price / max_price : 1;
    return (1 - p->cost_weight) * quality + p->cost_weight * value;
}

/* The highest price of a paid segment among the candidates meeting the bar. */
static double
max_paid_price(const struct score_cand *c, size_t n)
{
    double max_price = 0;
    for (size_t i = 0; i < n; i++)
        if (c[i].meets_bar && c[i].cap_share > c[i].free_share && isfinite(c[i].price_per_gb) &&
            c[i].price_per_gb > max_price)
            max_price = c[i].price_per_gb;
    return max_price;
}

double
score_value(const struct score_params *p, const struct score_cand *c, size_t n, const double *x)
{
    double max_price = max_paid_price(c, n);
    double j = 0;
    for (size_t i = 0; i < n; i++) {
        double fr = c[i].free_share < c[i].cap_share ? c[i].free_share : c[i].cap_share;
        /* unpriced and unlimited: free and cap are both infinite, and there is no paid part
         * (INFINITY - INFINITY would be NaN and poison the whole value) */
        double paid = c[i].cap_share > fr ? c[i].cap_share - fr : 0;
        double a = x[i] < fr ? x[i] : fr;
        double b = x[i] - a < paid ? x[i] - a : paid;
        j += a * merit_of(p, c[i].quality, 0, max_price);
        j += b * merit_of(p, c[i].quality, c[i].price_per_gb, max_price);
    }
    return j;
}

static bool
seg_before(const struct seg *a, const struct seg *b)
{
    if (a->merit != b->merit)
        return a->merit > b->merit;
    if (a->is_free != b->is_free)
        return a->is_free;
    return a->cand < b->cand;
}

static double
room_of(const struct score_cand *c, double e)
{
    double room = c->cap_share - e;
    return room > 0 ? room : 0;
}

static size_t
best_quality(const struct score_cand *c, size_t n, bool meeting_only)
{
    size_t best = n;
    for (size_t i = 0; i < n; i++) {
        if (meeting_only && !c[i].meets_bar)
            continue;
        if (best == n || c[i].quality > c[best].quality)
            best = i;
    }
    return best;
}

/* Fills the meeting candidates' segments in merit order; returns the share left. */
static double
fill_segments(const struct score_params *p, const struct score_cand *c, size_t n, double e,
              double left, double *share, enum score_rule *rule, double *merit)
{
    struct seg segs[2 * SCORE_MAX_CANDS];
    size_t nseg = 0;
    double max_price = max_paid_price(c, n);
    size_t top_q = best_quality(c, n, true);

    for (size_t i = 0; i < n; i++) {
        double paid_merit = merit_of(p, c[i].quality, c[i].price_per_gb, max_price);
        double free_merit = merit_of(p, c[i].quality, 0, max_price);
        double room = room_of(&c[i], e);
        double fr = (c[i].free_share < c[i].cap_share ? c[i].free_share : c[i].cap_share) - e;
        fr = fr > 0 ? fr : 0;
        merit[i] = fr > 0 ? free_merit : paid_merit;
        if (!c[i].meets_bar)
            continue;
        if (fr > 0)
            segs[nseg++] = (struct seg){i, true, room <= fr, fr, free_merit};
        if (room > fr)
            segs[nseg++] = (struct seg){i, false, true, room - fr, paid_merit};
    }
    /* Insertion sort: at most 2 x SCORE_MAX_CANDS segments. */
    for (size_t k = 1; k < nseg; k++) {
        struct seg s = segs[k];
        size_t j = k;
        while (j > 0 && seg_before(&s, &segs[j - 1])) {
            segs[j] = segs[j - 1];
            j--;
        }
        segs[j] = s;
    }

    bool spilled = false;
    for (size_t k = 0; k < nseg && left > TINY; k++) {
        const struct seg *s = &segs[k];
        double take = s->amount < left ? s->amount : left;
        share[s->cand] += take;
        left -= take;
        if (rule[s->cand] == SCORE_RULE_EXCLUDED) {
            if (s->is_free && c[s->cand].free_is_commit)
                rule[s->cand] = SCORE_RULE_COMMIT_FILL;
            else if (spilled)
                rule[s->cand] = SCORE_RULE_SPILL;
            else if (s->cand == top_q || p->cost_weight == 0)
                rule[s->cand] = SCORE_RULE_QUALITY;
            else
                rule[s->cand] = SCORE_RULE_COST;
        }
        if (take >= s->amount && s->last)
            spilled = true;
    }
    return left;
}

void
score_target(const struct score_params *p, const struct score_cand *c, size_t n, double exploration,
             double *share, enum score_rule *rule_out, double *merit_out)
{
    enum score_rule rule[SCORE_MAX_CANDS];
    double merit[SCORE_MAX_CANDS];

    assert(n <= SCORE_MAX_CANDS);
    if (n == 0)
        return;
    double e = exploration > 0 ? exploration : 0;
    if (e * (double)n > 1)
        e = 1.0 / (double)n;
    double left = 1 - e * (double)n;
    for (size_t i = 0; i < n; i++) {
        share[i] = e;
        rule[i] = SCORE_RULE_EXCLUDED; /* not decided yet */
    }

    left = fill_segments(p, c, n, e, left, share, rule, merit);

    /* Nobody meeting the bar has room: the others by quality, within their capacity. */
    bool any_meets = best_quality(c, n, true) < n;
    bool used[SCORE_MAX_CANDS] = {false};
    while (left > TINY) {
        size_t best = n;
        for (size_t i = 0; i < n; i++)
            if (!c[i].meets_bar && !used[i] && room_of(&c[i], e) > 0 &&
                (best == n || c[i].quality > c[best].quality))
                best = i;
        if (best == n)
            break;
        used[best] = true;
        double room = room_of(&c[best], e);
        double take = room < left ? room : left;
        share[best] += take;
        left -= take;
        rule[best] = any_meets ? SCORE_RULE_SPILL : SCORE_RULE_QUALITY;
    }
    /* Everyone is full: the best quality candidate takes the rest anyway. */
    if (left > TINY) {
        size_t best = best_quality(c, n, false);
        share[best] += left;
        if (rule[best] == SCORE_RULE_EXCLUDED)
            rule[best] = any_meets ? SCORE_RULE_SPILL : SCORE_RULE_QUALITY;
    }
    for (size_t i = 0; i < n; i++) {
        if (rule[i] == SCORE_RULE_EXCLUDED)
            rule[i] = c[i].meets_bar ? SCORE_RULE_EXPLORATION : SCORE_RULE_QUALITY;
        if (rule_out != NULL)
            rule_out[i] = rule[i];
        if (merit_out != NULL)
            merit_out[i] = merit[i];
    }
}

/* ---- state --------------------------------------------------------------------------------- */

struct score *
score_new(const struct score_params *p)
{
    struct score *s = xcalloc(1, sizeof(*s));
    s->p = *p;
    return s;
}

void
score_free(struct score *s)
{
    if (s == NULL)
        return;
    util_strv_free(s->cdn_ids, s->ncdns);
    util_strv_free(s->region_names, s->nregions);
    free(s->cells);
    free(s->share);
    free(s->terms);
    free(s->fresh);
    free(s);
}

void
score_set_params(struct score *s, const struct score_params *p)
{
    s->p = *p;
}

void
score_reconcile(struct score *s, const struct cfg *c)
{
    size_t nc = c->ncdns, nr = c->nregions;
    struct cell *cells = xcalloc(nr * nc, sizeof(*cells));
    double *share = xcalloc(nr * nc, sizeof(*share));
    struct score_terms *terms = xcalloc(nr * nc, sizeof(*terms));
    bool *fresh = xcalloc(nr, sizeof(*fresh));
    char **ids = xcalloc(nc, sizeof(*ids));
    char **names = xcalloc(nr, sizeof(*names));
    long map[CFG_MAX_CDNS];

    for (size_t i = 0; i < nc; i++) {
        ids[i] = xstrdup(c->cdns[i].id);
        map[i] = util_strv_index(s->cdn_ids, s->ncdns, ids[i]);
    }
    for (size_t r = 0; r < nr; r++) {
        names[r] = xstrdup(c->regions[r].name);
        long o = util_strv_index(s->region_names, s->nregions, names[r]);
        fresh[r] = o < 0 || s->fresh[o];
        for (size_t i = 0; i < nc && o >= 0; i++) {
            if (map[i] < 0)
                continue;
            size_t from = (size_t)o * s->ncdns + (size_t)map[i];
            cells[r * nc + i] = s->cells[from];
            share[r * nc + i] = s->share[from];
        }
    }
    util_strv_free(s->cdn_ids, s->ncdns);
    util_strv_free(s->region_names, s->nregions);
    free(s->cells);
    free(s->share);
    free(s->terms);
    free(s->fresh);
    s->cdn_ids = ids;
    s->region_names = names;
    s->cells = cells;
    s->share = share;
    s->terms = terms;
    s->fresh = fresh;
    s->ncdns = nc;
    s->nregions = nr;
}

/* The four terms of CDN i in region r. */
static void
fill_terms(const struct score_params *p, const struct obs *o, uint32_t i, uint32_t r,
           uint64_t now_ms, struct score_terms *t)
{
    struct obs_cell cell, global;
    t->throughput = t->rebuffer = t->latency = t->availability = 1;
    t->quality = 1;
    if (o == NULL || obs_get(o, i, r, now_ms, &cell) != 0 ||
        obs_get(o, i, OBS_GLOBAL, now_ms, &global) != 0)
        return;
    const struct obs_cell *probes = cell.probe_samples > 0 ? &cell : &global;
    t->throughput = cell.tp_norm;
    if (p->probe_tp_target_bps > 0 && probes->tp_bps >= 0) {
        double pt = probes->tp_bps / p->probe_tp_target_bps;
        pt = pt < 1 ? pt : 1;
        t->throughput = pt < t->throughput ? pt : t->throughput;
    }
    t->rebuffer = cell.rebuffer_term;
    t->latency = score_latency_term(p, probes->ttfb_ms);
    t->availability = probes->probe_ok * cell.error_term;
    t->quality = score_quality(p, t->throughput, t->rebuffer, t->latency, t->availability);
}

/* Flap damping: a fall below the bar (or down) adds 1 to the decayed penalty. Returns whether
 * the CDN is suppressed. */
static bool
damp(const struct score_params *p, struct cell *cl, bool meeting, uint64_t now_ms)
{
    double dt = now_ms > cl->penalty_ms ? (double)(now_ms - cl->penalty_ms) : 0;
    if (p->flap_half_life_ms > 0)
        cl->penalty *= exp2(-dt / p->flap_half_life_ms);
    cl->penalty_ms = now_ms > cl->penalty_ms ? now_ms : cl->penalty_ms;
    if (cl->meeting && !meeting)
        cl->penalty += 1;
    cl->meeting = meeting;
    if (cl->penalty >= p->flap_suppress)
        cl->suppressed = true;
    else if (cl->penalty < p->flap_reuse)
        cl->suppressed = false;
    return cl->suppressed;
}

/* The previous shares over the candidates, summing to 1: published, else static, else equal. */
static void
previous(const struct score *s, const struct cfg *c, uint32_t r, const size_t *cand, size_t n,
         double *prev)
{
    const struct cell *cells = &s->cells[r * s->ncdns];
    double sum = 0;
    for (int pass = 0; pass < 3 && sum <= 0; pass++) {
        sum = 0;
        for (size_t k = 0; k < n; k++) {
            if (pass == 0)
                prev[k] = s->fresh[r] ? 0 : cells[cand[k]].share;
            else if (pass == 1)
                prev[k] = c->rules[r].weights[cand[k]];
            else
                prev[k] = 1;
            sum += prev[k];
        }
    }
    for (size_t k = 0; k < n; k++)
        prev[k] /= sum;
}

/* Moves from prev toward goal by at most max_shift per share, keeping the sum. */
static void
shift_capped(double max_shift, const double *prev, const double *goal, size_t n, double *out)
{
    double delta[SCORE_MAX_CANDS];
    double up = 0, down = 0;
    for (size_t k = 0; k < n; k++) {
        double d = goal[k] - prev[k];
        d = d > max_shift ? max_shift : d < -max_shift ? -max_shift : d;
        delta[k] = d;
        if (d > 0)
            up += d;
        else
            down -= d;
    }
    double up_scale = up > down && up > 0 ? down / up : 1;
    double down_scale = down > up && down > 0 ? up / down : 1;
    for (size_t k = 0; k < n; k++)
        out[k] = prev[k] + delta[k] * (delta[k] > 0 ? up_scale : down_scale);
}

/* Raises every share to at least e, taking from those above e in proportion to their excess. */
static void
apply_floor(double e, double *x, size_t n, bool *raised)
{
    double need = 0, excess = 0;
    for (size_t k = 0; k < n; k++) {
        raised[k] = x[k] < e - TINY;
        if (raised[k])
            need += e - x[k];
        else
            excess += x[k] - e;
    }
    if (need <= 0)
        return;
    for (size_t k = 0; k < n; k++) {
        if (raised[k])
            x[k] = e;
        else if (excess > 0)
            x[k] -= (x[k] - e) * (need / excess);
    }
}

/* The candidate view of CDN i for this region, from its cost quote. */
static void
candidate(const struct score_params *p, const struct cost *cost, uint32_t i, double demand,
          double prev_share, struct score_terms *t, struct score_cand *sc)
{
    struct cost_quote q = {0, INFINITY, INFINITY, 0, COST_BASIS_UNPRICED, INFINITY};
    if (cost != NULL)
        cost_quote(cost, i, &q);
    double others = q.rate_bps - prev_share * demand;
    others = others > 0 ? others : 0;
    double cap = INFINITY;
    if (isfinite(q.capacity_bps) && demand > 0) {
        cap = (p->spill_at * q.capacity_bps - others) / demand;
        cap = cap > 0 ? cap : 0;
    }
    double fr;
    if (!isfinite(q.commit_bps))
        fr = INFINITY;
    else if (demand > 0)
        fr = q.commit_bps > others ? (q.commit_bps - others) / demand : 0;
    else
        fr = q.free_bps > 0 ? INFINITY : 0;
    sc->quality = t->quality;
    sc->cap_share = cap;
    sc->free_share = fr < cap ? fr : cap;
    sc->price_per_gb = q.price_per_gb;
    sc->free_is_commit = q.basis != COST_BASIS_UNPRICED;
    t->cap_share = sc->cap_share;
    t->free_share = sc->free_share;
    t->price_per_gb = q.price_per_gb;
    t->basis = q.basis;
}

static void
update_region(struct score *s, const struct score_inputs *in, uint32_t r, uint64_t now_ms)
{
    const struct score_params *p = &s->p;
    const struct cfg *c = in->cfg;
    struct score_terms *terms = &s->terms[r * s->ncdns];
    struct cell *cells = &s->cells[r * s->ncdns];
    size_t cand[SCORE_MAX_CANDS];
    struct score_cand sc[SCORE_MAX_CANDS];
    double prev[SCORE_MAX_CANDS], target[SCORE_MAX_CANDS], merit[SCORE_MAX_CANDS];
    double next[SCORE_MAX_CANDS];
    enum score_rule rule[SCORE_MAX_CANDS];
    bool raised[SCORE_MAX_CANDS];
    size_t n = 0;

    for (size_t i = 0; i < s->ncdns; i++) {
        struct score_terms *t = &terms[i];
        memset(t, 0, sizeof(*t));
        t->allowed = c->rules[r].weights[i] > 0;
        t->up = in->up[i] != 0;
        t->candidate = t->allowed && t->up;
        t->rule = SCORE_RULE_EXCLUDED;
        fill_terms(p, in->obs, (uint32_t)i, r, now_ms, t);
        if (t->candidate)
            cand[n++] = i;
        else if (t->allowed)
            t->suppressed = damp(p, &cells[i], false, now_ms);
        t->flap_penalty = cells[i].penalty;
    }
    if (n == 0) {
        for (size_t i = 0; i < s->ncdns; i++)
            cells[i].share = 0;
        s->fresh[r] = true; /* start again from the static weights */
        return;
    }
    double e = p->exploration * (double)n > 1 ? 1.0 / (double)n : p->exploration;
    double demand = in->demand_bps != NULL ? in->demand_bps[r] : 0;
    previous(s, c, r, cand, n, prev);
    for (size_t k = 0; k < n; k++) {
        struct score_terms *t = &terms[cand[k]];
        candidate(p, in->cost, (uint32_t)cand[k], demand, prev[k], t, &sc[k]);
        /* A band around the bar: noisy estimates from a few exploring viewers must not pull
         * traffic in, and one bad minute must not push it out. */
        bool holding = prev[k] > e + TINY;
        bool meets = t->quality >= p->quality_bar + (holding ? -p->hysteresis : p->hysteresis);
        t->suppressed = damp(p, &cells[cand[k]], meets, now_ms);
        t->flap_penalty = cells[cand[k]].penalty;
        sc[k].meets_bar = meets && !t->suppressed;
        t->meets_bar = sc[k].meets_bar;
    }
    score_target(p, sc, n, e, target, rule, merit);

    /* Hysteresis: keep the current shares while admissible, unless each share moved would gain
     * at least `hysteresis` merit on average. */
    bool admissible = true;
    double moved = 0;
    for (size_t k = 0; k < n; k++) {
        if (prev[k] > e + TINY && (!sc[k].meets_bar || prev[k] > sc[k].cap_share + TINY))
            admissible = false;
        if (target[k] > prev[k])
            moved += target[k] - prev[k];
    }
    double gain = score_value(p, sc, n, target) - score_value(p, sc, n, prev);
    bool held = admissible && moved > TINY && gain < p->hysteresis * moved;
    const double *goal = held ? prev : target;

    shift_capped(p->max_shift, prev, goal, n, next);
    apply_floor(e, next, n, raised);

    double sum = 0;
    for (size_t k = 0; k < n; k++)
        sum += next[k];
    for (size_t i = 0; i < s->ncdns; i++)
        cells[i].share = 0;
    for (size_t k = 0; k < n; k++) {
        struct score_terms *t = &terms[cand[k]];
        t->merit = merit[k];
        t->target = target[k];
        t->share = next[k] / sum;
        t->rule = rule[k];
        if (held && fabs(goal[k] - target[k]) > TINY)
            t->rule = SCORE_RULE_HYSTERESIS;
        if (fabs(next[k] - goal[k]) > TINY)
            t->rule = SCORE_RULE_SHIFT_CAP;
        if (raised[k])
            t->rule = SCORE_RULE_EXPLORATION;
        cells[cand[k]].share = t->share;
    }
    s->fresh[r] = false;
}

bool
score_update(struct score *s, const struct score_inputs *in, uint64_t now_ms)
{
    if (s->computed && now_ms >= s->last_ms && now_ms - s->last_ms < s->p.interval_ms)
        return false;
    assert(in->cfg->ncdns == s->ncdns && in->cfg->nregions == s->nregions);
    for (uint32_t r = 0; r < s->nregions; r++) {
        update_region(s, in, r, now_ms);
        for (size_t i = 0; i < s->ncdns; i++)
            s->share[r * s->ncdns + i] = s->cells[r * s->ncdns + i].share;
    }
    s->computed = true;
    s->last_ms = now_ms;
    return true;
}

void
score_expire(struct score *s)
{
    s->computed = false;
}

const double *
score_shares(const struct score *s, uint32_t region)
{
    return region < s->nregions ? &s->share[region * s->ncdns] : NULL;
}

const struct score_terms *
score_terms(const struct score *s, uint32_t region)
{
    return region < s->nregions ? &s->terms[region * s->ncdns] : NULL;
}

void
score_weights(const struct score *s, const struct cfg *c, uint32_t region, uint32_t *out)
{
    uint32_t r = region < c->nregions ? region : c->default_region;
    const uint32_t *stat = c->rules[r].weights;
    if (r >= s->nregions || s->fresh[r] || s->ncdns != c->ncdns) {
        memcpy(out, stat, c->ncdns * sizeof(*out));
        return;
    }
    const double *share = &s->share[r * s->ncdns];
    const struct score_terms *t = &s->terms[r * s->ncdns];
    for (size_t i = 0; i < c->ncdns; i++) {
        if (share[i] > 0) {
            double w = round(share[i] * SCORE_WEIGHT_SCALE);
            out[i] = w >= 1 ? (uint32_t)w : 1;
        } else {
            out[i] = stat[i] > 0 && !t[i].up ? 1 : 0;
        }
    }
}

const char *
score_rule_str(enum score_rule r)
{
    switch (r) {
    case SCORE_RULE_EXCLUDED:
        return "excluded";
    case SCORE_RULE_QUALITY:
        return "quality";
    case SCORE_RULE_COST:
        return "cost";
    case SCORE_RULE_COMMIT_FILL:
        return "commit_fill";
    case SCORE_RULE_SPILL:
        return "spill";
    case SCORE_RULE_EXPLORATION:
        return "exploration";
    case SCORE_RULE_HYSTERESIS:
        return "hysteresis";
    case SCORE_RULE_SHIFT_CAP:
        return "shift_cap";
    }
    return "unknown";
}
