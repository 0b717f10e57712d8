/* steersim: replays a scenario through steerd's real policy engine, minute by minute, and
 * compares it with the static split of the configured weights and with an oracle.
 *
 *   steersim [--check] [--verbose] SCENARIO.json...
 *
 * The scenario (a JSON file, see tools/steersim.d) gives regions with their concurrent viewers,
 * CDNs with static weights, prices and commits, each CDN's true performance per region over time,
 * and the events worth a reaction time. Every minute:
 *  - probes (probes_per_minute per CDN, globally and from each region) feed health (rise/fall,
 *    global probes) and obs; players on the policy's CDNs send one CMCD report each, parsed by
 *    cmcd and recorded in obs;
 *  - every score.interval_ms the policy recomputes its shares (score) and publishes them as
 *    rendezvous weights; each viewer is then placed with policy_choose, sticky by session;
 *  - the static split places the same viewers with policy_choose over the static weights (and
 *    the same health); the oracle knows every CDN's true quality and splits each region's
 *    viewers with score_target, without exploration, hysteresis or stickiness;
 *  - each strategy's traffic (viewers x bitrate) goes into its own cost accounting.
 * QoE is the share of viewer-minutes spent on a CDN whose true quality meets the bar (the
 * score's own formula on the true performance); cost is what each strategy's traffic added to
 * the bills during the scenario. Reaction time to an event is the minutes until the share of
 * viewers placed differently from the oracle falls to 0.1 + exploration x (CDNs - 1).
 *
 * With --check, exits 1 unless the policy beats the static split on QoE at equal or lower cost
 * in every scenario. Exit 2 on a usage or scenario error.
 *
 * Scenario keys (times in minutes from the start; performance fields: tp_mbps, starve (share
 * of reports with a stall), ttfb_ms, avail (share of requests answered), error (share of
 * reports with a player error)):
 *   name, description, start_epoch_s, minutes, seed, bitrate_kbps, session_minutes,
 *   probes_per_minute, rise, fall,
 *   regions: [{name, viewers}],
 *   cdns: [{id, weight, perf: {...}, cost: {tiers: [[up_to_gb, price], ...], commit: "gb" |
 *           "p95", amount, fee, burst_price, capacity_gbps, month_gb}}],
 *   baseline: {...performance},
 *   changes: [{cdn, region ("*" = every region and the global probes), from, to, period,
 *              duty, ...performance}]  (with a period: applies during the first duty x period
 *              minutes of each period),
 *   events: [{at, label}],
 *   score: {any struct score_params field}, obs: {any struct obs_params field}. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steerd/cfg.h"
#include "steerd/cmcd.h"
#include "steerd/cost.h"
#include "steerd/diag.h"
#include "steerd/health.h"
#include "steerd/obs.h"
#include "steerd/policy.h"
#include "steerd/score.h"
#include "steerd/util.h"

#define MAX_CDNS 8
#define MAX_REGIONS 8
#define MAX_CHANGES 64
#define MAX_EVENTS 16
#define MAX_MINUTES 20160 /* two weeks */
#define MAX_SESSIONS 200000
#define MIN_MS 60000ull

struct perf {
    double tp_mbps, starve, ttfb_ms, avail, error;
};

struct change {
    int cdn;
    int region; /* -1: every region and the global probes */
    uint32_t from, to, period;
    double duty;
    struct perf set; /* NAN: unchanged */
};

struct event {
    uint32_t at;
    char label[128];
};

struct scenario {
    char name[64];
    char description[256];
    uint64_t start_ms;
    uint32_t minutes;
    uint64_t seed;
    double bitrate_bps;
    double session_min;
    uint32_t probes_per_min;
    uint32_t rise, fall;
    size_t ncdns, nregions;
    char cdn_ids[MAX_CDNS][CFG_ID_MAX + 1];
    char region_names[MAX_REGIONS][64];
    uint32_t weight[MAX_CDNS];
    double viewers[MAX_REGIONS];
    struct perf base[MAX_CDNS];
    struct cost_cdn_params price[MAX_CDNS];
    double month_gb[MAX_CDNS];
    struct change changes[MAX_CHANGES];
    size_t nchanges;
    struct event events[MAX_EVENTS];
    size_t nevents;
    struct score_params sp;
    struct obs_params op;
};

/* ---- a seeded random source (splitmix64) ---------------------------------------------------- */

struct rng {
    uint64_t s;
};

static uint64_t
rng_next(struct rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double
rng_unit(struct rng *r)
{
    return ((double)(rng_next(r) >> 11) + 0.5) * 0x1p-53;
}

/* exp(N(0, sigma)) */
static double
rng_lognormal(struct rng *r, double sigma)
{
    double z = sqrt(-2 * log(rng_unit(r))) * cos(2 * M_PI * rng_unit(r));
    return exp(sigma * z);
}

/* ---- scenario files ------------------------------------------------------------------------- */

static int
fail(const char *path, const char *what)
{
    fprintf(stderr, "steersim: %s: %s\n", path, what);
    return -1;
}

static double
num(const json_t *o, const char *key, double dflt)
{
    const json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

static void
read_perf(const json_t *o, struct perf *p)
{
    p->tp_mbps = num(o, "tp_mbps", p->tp_mbps);
    p->starve = num(o, "starve", p->starve);
    p->ttfb_ms = num(o, "ttfb_ms", p->ttfb_ms);
    p->avail = num(o, "avail", p->avail);
    p->error = num(o, "error", p->error);
}

static int
index_of(const char *name, const char (*names)[64], size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return (int)i;
    return -1;
}

static int
cdn_index(const struct scenario *s, const char *id)
{
    for (size_t i = 0; i < s->ncdns; i++)
        if (strcmp(s->cdn_ids[i], id) == 0)
            return (int)i;
    return -1;
}

static void
read_params(const json_t *o, struct score_params *sp, struct obs_params *op)
{
    const json_t *sc = json_object_get(o, "score");
    sp->w_throughput = num(sc, "w_throughput", sp->w_throughput);
    sp->w_rebuffer = num(sc, "w_rebuffer", sp->w_rebuffer);
    sp->w_latency = num(sc, "w_latency", sp->w_latency);
    sp->w_availability = num(sc, "w_availability", sp->w_availability);
    sp->cost_weight = num(sc, "cost_weight", sp->cost_weight);
    sp->quality_bar = num(sc, "quality_bar", sp->quality_bar);
    sp->hysteresis = num(sc, "hysteresis", sp->hysteresis);
    sp->max_shift = num(sc, "max_shift", sp->max_shift);
    sp->exploration = num(sc, "exploration", sp->exploration);
    sp->interval_ms = (uint32_t)num(sc, "interval_ms", sp->interval_ms);
    sp->latency_good_ms = num(sc, "latency_good_ms", sp->latency_good_ms);
    sp->latency_bad_ms = num(sc, "latency_bad_ms", sp->latency_bad_ms);
    sp->spill_at = num(sc, "spill_at", sp->spill_at);
    sp->flap_half_life_ms = (uint32_t)num(sc, "flap_half_life_ms", sp->flap_half_life_ms);
    sp->flap_suppress = num(sc, "flap_suppress", sp->flap_suppress);
    sp->flap_reuse = num(sc, "flap_reuse", sp->flap_reuse);
    const json_t *ob = json_object_get(o, "obs");
    op->probe_half_life_ms = (uint32_t)num(ob, "probe_half_life_ms", op->probe_half_life_ms);
    op->beacon_half_life_ms = (uint32_t)num(ob, "beacon_half_life_ms", op->beacon_half_life_ms);
    op->beacon_window_ms = (uint32_t)num(ob, "beacon_window_ms", op->beacon_window_ms);
    op->beacon_max_step = num(ob, "beacon_max_step", op->beacon_max_step);
    op->tp_target_bps = num(ob, "tp_target_bps", op->tp_target_bps);
}

static int
read_price(const char *path, const json_t *o, struct cost_cdn_params *p, double *month_gb)
{
    memset(p, 0, sizeof(*p));
    *month_gb = 0;
    if (o == NULL)
        return 0;
    const json_t *tiers = json_object_get(o, "tiers");
    size_t i;
    const json_t *t;
    json_array_foreach(tiers, i, t)
    {
        if (i >= COST_MAX_TIERS || json_array_size(t) != 2)
            return fail(path, "cost.tiers: [[up_to_gb, price_per_gb], ...], at most 8");
        p->tiers[i].up_to_gb = json_number_value(json_array_get(t, 0));
        p->tiers[i].price_per_gb = json_number_value(json_array_get(t, 1));
        p->ntiers = i + 1;
    }
    const char *commit = json_string_value(json_object_get(o, "commit"));
    if (commit != NULL && strcmp(commit, "gb") == 0)
        p->commit = COST_COMMIT_GB;
    else if (commit != NULL && strcmp(commit, "p95") == 0)
        p->commit = COST_COMMIT_P95_GBPS;
    else if (commit != NULL)
        return fail(path, "cost.commit: \"gb\" or \"p95\"");
    p->commit_amount = num(o, "amount", 0);
    p->commit_fee = num(o, "fee", 0);
    p->burst_price = num(o, "burst_price", -1);
    if (p->commit == COST_COMMIT_P95_GBPS && p->burst_price < 0)
        p->burst_price = 0;
    p->capacity_gbps = num(o, "capacity_gbps", 0);
    *month_gb = num(o, "month_gb", 0);
    return 0;
}

static int
read_changes(const char *path, const json_t *root, struct scenario *s)
{
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(root, "changes"), i, c)
    {
        if (i >= MAX_CHANGES)
            return fail(path, "too many changes");
        struct change *ch = &s->changes[i];
        const char *cdn = json_string_value(json_object_get(c, "cdn"));
        const char *region = json_string_value(json_object_get(c, "region"));
        ch->cdn = cdn != NULL ? cdn_index(s, cdn) : -1;
        if (ch->cdn < 0)
            return fail(path, "changes[].cdn: not a CDN of the scenario");
        ch->region = -1;
        if (region != NULL && strcmp(region, "*") != 0) {
            ch->region = index_of(region, s->region_names, s->nregions);
            if (ch->region < 0)
                return fail(path, "changes[].region: not a region of the scenario");
        }
        ch->from = (uint32_t)num(c, "from", 0);
        ch->to = (uint32_t)num(c, "to", s->minutes);
        ch->period = (uint32_t)num(c, "period", 0);
        ch->duty = num(c, "duty", 1);
        ch->set = (struct perf){NAN, NAN, NAN, NAN, NAN};
        read_perf(c, &ch->set);
        s->nchanges = i + 1;
    }
    json_array_foreach(json_object_get(root, "events"), i, c)
    {
        if (i >= MAX_EVENTS)
            return fail(path, "too many events");
        s->events[i].at = (uint32_t)num(c, "at", 0);
        snprintf(s->events[i].label, sizeof(s->events[i].label), "%s",
                 json_string_value(json_object_get(c, "label")) != NULL
                     ? json_string_value(json_object_get(c, "label"))
                     : "");
        s->nevents = i + 1;
    }
    return 0;
}

static int
read_scenario(const char *path, struct scenario *s)
{
    json_error_t err;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    int rc = -1;
    if (root == NULL) {
        fprintf(stderr, "steersim: %s:%d:%d: %s\n", path, err.line, err.column, err.text);
        return -1;
    }
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s",
             json_string_value(json_object_get(root, "name")) != NULL
                 ? json_string_value(json_object_get(root, "name"))
                 : path);
    const char *desc = json_string_value(json_object_get(root, "description"));
    snprintf(s->description, sizeof(s->description), "%s", desc != NULL ? desc : "");
    s->start_ms = (uint64_t)num(root, "start_epoch_s", 1741564800) * 1000; /* 2025-03-10 */
    s->minutes = (uint32_t)num(root, "minutes", 0);
    s->seed = (uint64_t)num(root, "seed", 1);
    s->bitrate_bps = num(root, "bitrate_kbps", 4000) * 1000;
    s->session_min = num(root, "session_minutes", 20);
    s->probes_per_min = (uint32_t)num(root, "probes_per_minute", 6);
    s->rise = (uint32_t)num(root, "rise", 2);
    s->fall = (uint32_t)num(root, "fall", 2);
    if (s->minutes == 0 || s->minutes > MAX_MINUTES || s->session_min < 1 ||
        s->probes_per_min == 0 || s->probes_per_min > 60 || s->rise == 0 || s->fall == 0) {
        fail(path, "minutes 1..20160, session_minutes >= 1, probes_per_minute 1..60, rise and "
                   "fall >= 1");
        goto out;
    }

    size_t i;
    const json_t *v;
    json_array_foreach(json_object_get(root, "regions"), i, v)
    {
        const char *name = json_string_value(json_object_get(v, "name"));
        if (i >= MAX_REGIONS || name == NULL) {
            fail(path, "regions: [{name, viewers}], at most 8");
            goto out;
        }
        snprintf(s->region_names[i], sizeof(s->region_names[i]), "%s", name);
        s->viewers[i] = num(v, "viewers", 0);
        s->nregions = i + 1;
    }
    struct perf base = {20, 0.002, 60, 1, 0};
    read_perf(json_object_get(root, "baseline"), &base);
    json_array_foreach(json_object_get(root, "cdns"), i, v)
    {
        const char *id = json_string_value(json_object_get(v, "id"));
        if (i >= MAX_CDNS || id == NULL || strlen(id) > CFG_ID_MAX) {
            fail(path, "cdns: [{id, ...}], at most 8");
            goto out;
        }
        snprintf(s->cdn_ids[i], sizeof(s->cdn_ids[i]), "%s", id);
        s->weight[i] = (uint32_t)num(v, "weight", 1);
        s->base[i] = base;
        read_perf(json_object_get(v, "perf"), &s->base[i]);
        if (read_price(path, json_object_get(v, "cost"), &s->price[i], &s->month_gb[i]) != 0)
            goto out;
        s->ncdns = i + 1;
    }
    if (s->nregions == 0 || s->ncdns == 0) {
        fail(path, "needs regions and cdns");
        goto out;
    }
    score_params_default(&s->sp);
    obs_params_default(&s->op);
    read_params(root, &s->sp, &s->op);
    struct diag d;
    diag_init(&d);
    if (score_params_check(&s->sp, &d) != 0) {
        char *msg = diag_join(&d);
        fail(path, msg);
        free(msg);
        diag_free(&d);
        goto out;
    }
    diag_free(&d);
    rc = read_changes(path, root, s);
out:
    json_decref(root);
    return rc;
}

/* ---- the world ------------------------------------------------------------------------------ */

static bool
active(const struct change *c, uint32_t minute)
{
    if (minute < c->from || minute >= c->to)
        return false;
    if (c->period == 0)
        return true;
    return (double)((minute - c->from) % c->period) < c->duty * c->period;
}

/* The true performance of cdn in region (-1: as the global probes see it) at minute. */
static struct perf
perf_at(const struct scenario *s, size_t cdn, int region, uint32_t minute)
{
    struct perf p = s->base[cdn];
    for (size_t k = 0; k < s->nchanges; k++) {
        const struct change *c = &s->changes[k];
        if ((size_t)c->cdn != cdn || (c->region >= 0 && c->region != region) || !active(c, minute))
            continue;
        if (!isnan(c->set.tp_mbps))
            p.tp_mbps = c->set.tp_mbps;
        if (!isnan(c->set.starve))
            p.starve = c->set.starve;
        if (!isnan(c->set.ttfb_ms))
            p.ttfb_ms = c->set.ttfb_ms;
        if (!isnan(c->set.avail))
            p.avail = c->set.avail;
        if (!isnan(c->set.error))
            p.error = c->set.error;
    }
    return p;
}

static double
true_quality(const struct scenario *s, const struct perf *p)
{
    double t = p->tp_mbps * 1e6 / s->op.tp_target_bps;
    return score_quality(&s->sp, t < 1 ? t : 1, 1 - p->starve,
                         score_latency_term(&s->sp, p->ttfb_ms), p->avail * (1 - p->error));
}

/* A config with only what policy, health, obs, cost and score read. */
static struct cfg *
build_cfg(const struct scenario *s)
{
    static char probe_url[] = "sim://probe";
    struct cfg *c = xcalloc(1, sizeof(*c));
    c->ncdns = s->ncdns;
    c->cdns = xcalloc(s->ncdns, sizeof(*c->cdns));
    for (size_t i = 0; i < s->ncdns; i++) {
        c->cdns[i].id = xstrdup(s->cdn_ids[i]);
        c->cdns[i].probe.url = probe_url;
        c->cdns[i].probe.rise = s->rise;
        c->cdns[i].probe.fall = s->fall;
    }
    c->nregions = s->nregions;
    c->regions = xcalloc(s->nregions, sizeof(*c->regions));
    c->rules = xcalloc(s->nregions, sizeof(*c->rules));
    for (size_t r = 0; r < s->nregions; r++) {
        c->regions[r].name = xstrdup(s->region_names[r]);
        c->rules[r].weights = xcalloc(s->ncdns, sizeof(uint32_t));
        memcpy(c->rules[r].weights, s->weight, s->ncdns * sizeof(uint32_t));
    }
    return c;
}

static void
free_cfg(struct cfg *c)
{
    for (size_t i = 0; i < c->ncdns; i++)
        free(c->cdns[i].id);
    for (size_t r = 0; r < c->nregions; r++) {
        free(c->regions[r].name);
        free(c->rules[r].weights);
    }
    free(c->cdns);
    free(c->regions);
    free(c->rules);
    free(c);
}

struct session {
    uint64_t hash;
    uint32_t region;
    uint32_t left; /* minutes */
};

struct strategy {
    const char *name;
    struct cost *cost;
    double bill_start;
    double good, total;                     /* viewer-minutes */
    double n[MAX_REGIONS][MAX_CDNS];        /* viewers this minute */
    float (*placed)[MAX_REGIONS][MAX_CDNS]; /* [minute] viewers per cell, for reaction times */
    double cost_total;
};

struct sim {
    const struct scenario *s;
    struct rng rng;
    struct cfg *cfg;        /* the static configuration */
    struct cfg *cfg_policy; /* the same with the published dynamic weights */
    struct health *health;
    struct obs *obs;
    struct score *score;
    uint8_t up[MAX_CDNS];
    struct session *sessions;
    size_t nsessions;
    double arrivals_due[MAX_REGIONS];
    struct strategy st[3]; /* policy, static, oracle */
    double oracle_prev[MAX_REGIONS][MAX_CDNS];
    bool meets[MAX_REGIONS][MAX_CDNS];
    struct perf perf[MAX_REGIONS][MAX_CDNS];
    uint64_t beacons_bad;
};

enum { POLICY = 0, STATIC, ORACLE };

static uint32_t
session_length(struct sim *m)
{
    double len = -log(rng_unit(&m->rng)) * m->s->session_min;
    return len < 1 ? 1 : (uint32_t)len;
}

static void
add_session(struct sim *m, uint32_t region)
{
    if (m->nsessions == MAX_SESSIONS)
        return;
    struct session *ss = &m->sessions[m->nsessions++];
    ss->hash = rng_next(&m->rng);
    ss->region = region;
    ss->left = session_length(m);
}

static void
sessions_step(struct sim *m)
{
    size_t k = 0;
    for (size_t i = 0; i < m->nsessions; i++) {
        if (--m->sessions[i].left > 0)
            m->sessions[k++] = m->sessions[i];
    }
    m->nsessions = k;
    for (uint32_t r = 0; r < m->s->nregions; r++) {
        m->arrivals_due[r] += m->s->viewers[r] / m->s->session_min;
        while (m->arrivals_due[r] >= 1) {
            add_session(m, r);
            m->arrivals_due[r] -= 1;
        }
    }
}

static void
probe(struct sim *m, size_t cdn, int region, const struct perf *p, uint64_t now)
{
    const struct scenario *s = m->s;
    for (uint32_t k = 0; k < s->probes_per_min; k++) {
        uint64_t t = now + k * (MIN_MS / s->probes_per_min);
        bool ok = rng_unit(&m->rng) < p->avail;
        double ttfb = p->ttfb_ms * rng_lognormal(&m->rng, 0.2);
        struct obs_probe op = {ok, ok ? ttfb / 3 : -1, ok ? ttfb : -1, -1};
        obs_record_probe(m->obs, (uint32_t)cdn, region < 0 ? OBS_GLOBAL : (uint32_t)region, &op, t);
        if (region < 0) {
            struct health_sample hs = {ok ? HEALTH_OK : HEALTH_FAIL,
                                       ok ? 200 : 503,
                                       op.connect_ms,
                                       op.ttfb_ms,
                                       ok ? ttfb : 1000,
                                       ok ? 1000 : 0,
                                       ok ? NULL : "http 503",
                                       op.tp_bps,
                                       NULL};
            health_record(m->health, s->cdn_ids[cdn], &hs, t);
        }
    }
}

/* One player's CMCD report about the CDN it is on, through the real parser. */
static void
beacon(struct sim *m, size_t cdn, uint32_t region, const struct perf *p, uint64_t now)
{
    char text[160];
    int n = 0;
    bool served = rng_unit(&m->rng) < p->avail;
    if (served) {
        double kbps = p->tp_mbps * 1000 * rng_lognormal(&m->rng, 0.25);
        long mtp = lround(kbps / 100) * 100;
        n = snprintf(text, sizeof(text), "bl=%ld,mtp=%ld", (long)(rng_unit(&m->rng) * 30) * 1000,
                     mtp > 0 ? mtp : 100);
    } else {
        n = snprintf(text, sizeof(text), "bl=0");
    }
    if (rng_unit(&m->rng) < p->starve || !served)
        n += snprintf(text + n, sizeof(text) - (size_t)n, ",bs");
    if (rng_unit(&m->rng) < p->error || !served)
        n += snprintf(text + n, sizeof(text) - (size_t)n, ",ec=(\"E%d\")", served ? 1 : 2);
    snprintf(text + n, sizeof(text) - (size_t)n, ",ot=v,sf=h,st=v,v=2");
    struct cmcd_report r;
    if (cmcd_parse(text, strlen(text), &r) != CMCD_OK) {
        m->beacons_bad++;
        return;
    }
    struct obs_beacon ob;
    obs_beacon_from_cmcd(&r, &ob);
    obs_record_beacon(m->obs, (uint32_t)cdn, region, &ob, now + rng_next(&m->rng) % MIN_MS);
}

static void
publish(struct sim *m, uint64_t now)
{
    double demand[MAX_REGIONS] = {0};
    for (size_t i = 0; i < m->nsessions; i++)
        demand[m->sessions[i].region] += m->s->bitrate_bps;
    struct score_inputs in = {m->cfg, m->up, m->obs, m->st[POLICY].cost, demand};
    if (!score_update(m->score, &in, now))
        return;
    for (uint32_t r = 0; r < m->s->nregions; r++)
        score_weights(m->score, m->cfg, r, m->cfg_policy->rules[r].weights);
}

/* The oracle: each region split by score_target on the true quality and its own costs. */
static void
oracle(struct sim *m, const double *viewers)
{
    const struct scenario *s = m->s;
    struct strategy *o = &m->st[ORACLE];
    for (uint32_t r = 0; r < s->nregions; r++) {
        struct score_cand c[MAX_CDNS];
        size_t idx[MAX_CDNS], n = 0;
        double demand = viewers[r] * s->bitrate_bps;
        for (size_t i = 0; i < s->ncdns; i++) {
            if (s->weight[i] == 0 || m->perf[r][i].avail <= 0)
                continue;
            struct cost_quote q;
            cost_quote(o->cost, (uint32_t)i, &q);
            double others = q.rate_bps - m->oracle_prev[r][i] * demand;
            others = others > 0 ? others : 0;
            double cap = INFINITY, fr = INFINITY;
            if (isfinite(q.capacity_bps) && demand > 0)
                cap = fmax(0, (s->sp.spill_at * q.capacity_bps - others) / demand);
            if (isfinite(q.commit_bps))
                fr = demand > 0 ? fmax(0, (q.commit_bps - others) / demand) : 0;
            c[n] = (struct score_cand){
                true_quality(s, &m->perf[r][i]), m->meets[r][i], fmin(fr, cap), cap, q.price_per_gb,
                q.basis != COST_BASIS_UNPRICED};
            idx[n++] = i;
        }
        double share[MAX_CDNS];
        memset(m->oracle_prev[r], 0, sizeof(m->oracle_prev[r]));
        score_target(&s->sp, c, n, 0, share, NULL, NULL);
        for (size_t k = 0; k < n; k++) {
            o->n[r][idx[k]] = share[k] * viewers[r];
            m->oracle_prev[r][idx[k]] = share[k];
        }
    }
}

static void
account(struct sim *m, struct strategy *st, uint32_t minute, uint64_t now)
{
    const struct scenario *s = m->s;
    double rate[MAX_CDNS] = {0};
    for (uint32_t r = 0; r < s->nregions; r++) {
        for (size_t i = 0; i < s->ncdns; i++) {
            rate[i] += st->n[r][i] * s->bitrate_bps;
            st->total += st->n[r][i];
            if (m->meets[r][i])
                st->good += st->n[r][i];
            st->placed[minute][r][i] = (float)st->n[r][i];
        }
    }
    for (size_t i = 0; i < s->ncdns; i++)
        cost_account(st->cost, (uint32_t)i, rate[i], now);
}

static void
minute_step(struct sim *m, uint32_t minute)
{
    const struct scenario *s = m->s;
    uint64_t now = s->start_ms + minute * MIN_MS;

    for (uint32_t r = 0; r < s->nregions; r++)
        for (size_t i = 0; i < s->ncdns; i++) {
            m->perf[r][i] = perf_at(s, i, (int)r, minute);
            m->meets[r][i] = true_quality(s, &m->perf[r][i]) >= s->sp.quality_bar;
        }
    for (size_t i = 0; i < s->ncdns; i++) {
        struct perf g = perf_at(s, i, -1, minute);
        probe(m, i, -1, &g, now);
        for (uint32_t r = 0; r < s->nregions; r++)
            probe(m, i, (int)r, &m->perf[r][i], now);
    }
    health_fill_up(m->health, m->cfg, m->up);
    sessions_step(m);
    publish(m, now);

    double viewers[MAX_REGIONS] = {0};
    for (int k = 0; k < 3; k++)
        memset(m->st[k].n, 0, sizeof(m->st[k].n));
    for (size_t i = 0; i < m->nsessions; i++) {
        const struct session *ss = &m->sessions[i];
        viewers[ss->region] += 1;
        struct policy_decision dp = policy_choose(m->cfg_policy, m->up, ss->region, ss->hash);
        struct policy_decision ds = policy_choose(m->cfg, m->up, ss->region, ss->hash);
        m->st[POLICY].n[ss->region][dp.cdn] += 1;
        m->st[STATIC].n[ss->region][ds.cdn] += 1;
        beacon(m, dp.cdn, ss->region, &m->perf[ss->region][dp.cdn], now);
    }
    oracle(m, viewers);
    for (int k = 0; k < 3; k++)
        account(m, &m->st[k], minute, now);
}

/* Share of the viewers placed differently from the oracle at minute. */
static double
distance(const struct sim *m, const struct strategy *st, uint32_t minute)
{
    const struct strategy *o = &m->st[ORACLE];
    double diff = 0, total = 0;
    for (uint32_t r = 0; r < m->s->nregions; r++)
        for (size_t i = 0; i < m->s->ncdns; i++) {
            diff += fabs(st->placed[minute][r][i] - o->placed[minute][r][i]);
            total += o->placed[minute][r][i];
        }
    return total > 0 ? diff / 2 / total : 0;
}

/* Minutes from an event until the strategy is within tolerance of the oracle, -1 if never
 * before the next event. */
static long
reaction(const struct sim *m, const struct strategy *st, size_t e)
{
    const struct scenario *s = m->s;
    double tol = 0.1 + s->sp.exploration * (double)(s->ncdns - 1);
    uint32_t end = e + 1 < s->nevents ? s->events[e + 1].at : s->minutes;
    for (uint32_t t = s->events[e].at; t < end && t < s->minutes; t++)
        if (distance(m, st, t) <= tol)
            return (long)(t - s->events[e].at);
    return -1;
}

static void
sim_init(struct sim *m, const struct scenario *s)
{
    static const char *const names[3] = {"policy", "static", "oracle"};
    memset(m, 0, sizeof(*m));
    m->s = s;
    m->rng.s = s->seed;
    m->cfg = build_cfg(s);
    m->cfg_policy = build_cfg(s);
    m->health = health_new();
    health_reconcile(m->health, m->cfg);
    m->obs = obs_new(&s->op);
    obs_reconcile(m->obs, m->cfg);
    m->score = score_new(&s->sp);
    score_reconcile(m->score, m->cfg);
    m->sessions = xcalloc(MAX_SESSIONS, sizeof(*m->sessions));
    for (int k = 0; k < 3; k++) {
        struct strategy *st = &m->st[k];
        st->name = names[k];
        st->cost = cost_new();
        cost_reconcile(st->cost, m->cfg);
        st->placed = xcalloc(s->minutes, sizeof(*st->placed));
        for (size_t i = 0; i < s->ncdns; i++) {
            struct diag d;
            diag_init(&d);
            if (cost_configure(st->cost, (uint32_t)i, &s->price[i], &d) != 0) {
                char *msg = diag_join(&d);
                fprintf(stderr, "steersim: %s: %s\n", s->name, msg);
                free(msg);
            }
            diag_free(&d);
            cost_set_month_gb(st->cost, (uint32_t)i, s->month_gb[i], s->start_ms);
            st->bill_start += cost_bill(st->cost, (uint32_t)i);
        }
    }
    /* Viewers already watching at the start. */
    for (uint32_t r = 0; r < s->nregions; r++)
        for (double v = 0; v < s->viewers[r]; v += 1)
            add_session(m, r);
}

static void
sim_free(struct sim *m)
{
    for (int k = 0; k < 3; k++) {
        cost_free(m->st[k].cost);
        free(m->st[k].placed);
    }
    free(m->sessions);
    score_free(m->score);
    obs_free(m->obs);
    health_free(m->health);
    free_cfg(m->cfg);
    free_cfg(m->cfg_policy);
}

static void
print_timeline(const struct sim *m, uint32_t minute)
{
    const struct scenario *s = m->s;
    printf("  t=%4u", minute);
    for (uint32_t r = 0; r < s->nregions; r++) {
        printf("  %s:", s->region_names[r]);
        const double *sh = score_shares(m->score, r);
        for (size_t i = 0; i < s->ncdns; i++)
            printf(" %s=%.2f%s", s->cdn_ids[i], sh[i], m->meets[r][i] ? "" : "!");
    }
    printf("  dist p=%.2f s=%.2f\n", distance(m, &m->st[POLICY], minute),
           distance(m, &m->st[STATIC], minute));
}

/* Runs one scenario and prints its table; returns 0 when the policy beats the static split on
 * QoE at equal or lower cost, 1 otherwise. */
static int
run(const struct scenario *s, bool verbose)
{
    struct sim m;
    sim_init(&m, s);
    for (uint32_t t = 0; t < s->minutes; t++) {
        minute_step(&m, t);
        if (verbose && t % 30 == 0)
            print_timeline(&m, t);
    }
    uint64_t end = s->start_ms + s->minutes * MIN_MS;
    for (int k = 0; k < 3; k++) {
        struct strategy *st = &m.st[k];
        cost_advance(st->cost, end);
        double bill = 0;
        for (size_t i = 0; i < s->ncdns; i++)
            bill += cost_bill(st->cost, (uint32_t)i);
        st->cost_total = bill - st->bill_start;
    }

    double viewers = 0;
    for (size_t r = 0; r < s->nregions; r++)
        viewers += s->viewers[r];
    printf("scenario %s: %s\n", s->name, s->description);
    printf("  %u minutes, %.0f concurrent viewers in %zu regions, %zu CDNs\n", s->minutes, viewers,
           s->nregions, s->ncdns);
    printf("  %-8s %8s %12s  %s\n", "", "QoE", "cost", "reaction (min) per event");
    for (int k = 0; k < 3; k++) {
        const struct strategy *st = &m.st[k];
        printf("  %-8s %7.2f%% %12.2f ", st->name, 100 * st->good / st->total, st->cost_total);
        for (size_t e = 0; e < s->nevents; e++) {
            long react = reaction(&m, st, e);
            if (react < 0)
                printf(" %6s", "never");
            else
                printf(" %6ld", react);
        }
        printf("\n");
    }
    for (size_t e = 0; e < s->nevents; e++)
        printf("  event %zu at %u min: %s\n", e + 1, s->events[e].at, s->events[e].label);
    if (m.beacons_bad > 0)
        printf("  %llu beacons rejected by the parser\n", (unsigned long long)m.beacons_bad);

    const struct strategy *p = &m.st[POLICY], *st = &m.st[STATIC];
    double qp = p->good / p->total, qs = st->good / st->total;
    bool ok = qp > qs && p->cost_total <= st->cost_total;
    printf("  check: policy QoE %.2f%% %s static %.2f%%, cost %.2f %s %.2f: %s\n\n", 100 * qp,
           qp > qs ? ">" : "<=", 100 * qs, p->cost_total,
           p->cost_total <= st->cost_total ? "<=" : ">", st->cost_total, ok ? "ok" : "FAILED");
    sim_free(&m);
    return ok ? 0 : 1;
}

static void
usage(void)
{
    fprintf(stderr, "usage: steersim [--check] [--verbose] SCENARIO.json...\n");
}

int
main(int argc, char **argv)
{
    bool check = false, verbose = false;
    int first = 1, failed = 0;
    for (; first < argc && argv[first][0] == '-'; first++) {
        if (strcmp(argv[first], "--check") == 0) {
            check = true;
        } else if (strcmp(argv[first], "--verbose") == 0 || strcmp(argv[first], "-v") == 0) {
            verbose = true;
        } else {
            usage();
            return 2;
        }
    }
    if (first == argc) {
        usage();
        return 2;
    }
    struct scenario *s = xmalloc(sizeof(*s));
    for (int i = first; i < argc; i++) {
        if (read_scenario(argv[i], s) != 0) {
            free(s);
            return 2;
        }
        failed += run(s, verbose);
    }
    free(s);
    if (check && failed > 0) {
        fprintf(stderr, "steersim: the policy did not beat the static split in %d scenario%s\n",
                failed, failed == 1 ? "" : "s");
        return 1;
    }
    return 0;
}
