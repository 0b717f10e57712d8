#include "steerd/control.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "steerd/beacon.h"
#include "steerd/cfg.h"
#include "steerd/cost.h"
#include "steerd/diag.h"
#include "steerd/health.h"
#include "steerd/http.h"
#include "steerd/log.h"
#include "steerd/obs.h"
#include "steerd/probe.h"
#include "steerd/score.h"
#include "steerd/snap.h"
#include "steerd/stats.h"
#include "steerd/util.h"

#define DRAIN_POLL_MS 50

struct control {
    struct event_base *base;
    char *cfg_path;
    struct snap_conf *conf;
    struct snap *snap;
    struct health *health;
    struct probe *probe;
    struct http_server *http;
    struct stats *stats;
    struct event *sig_hup, *sig_term, *sig_int, *sig_usr1, *drain_poll;
    uint64_t generation;
    uint64_t reload_ok, reload_failed;
    uint64_t started_ms;
    bool stopping, forced;
    bool all_down;
    /* Beacon ingestion: the workers' rings (borrowed) drained into the engine's obs every
     * tick. */
    struct beacon_hub *beacon_hub;
    struct event *beacon_tick;
    struct engine *eng;
};

/* The scoring engine's state, owned by the control thread: live measurements, prices and
 * commits, shares, and the traffic estimate built from the workers' decision counts. Arrays are
 * sized for the current configuration and rebuilt on reload. */
struct engine {
    struct obs *obs;
    struct cost *cost;
    struct score *score;
    struct event *tick;
    uint32_t tick_ms;
    size_t nregions, ncdns;
    uint64_t *dec_prev; /* [nregions * ncdns] decision totals at the last tick */
    double *active;     /* [nregions * ncdns] estimated sessions playing */
    double *demand_bps; /* [nregions] */
    double *cdn_bps;    /* [ncdns] */
    uint32_t *weights;  /* [nregions * ncdns] published with the snapshot */
    bool has_weights;   /* weights hold the engine's (else: static ones apply) */
    uint64_t last_tick_ms;
    uint64_t updates; /* recomputations */
    uint64_t beacons; /* samples drained into obs */
};

static void write_metrics_engine(const struct control *c, struct buf *out);
static void write_state_engine(const struct control *c, struct buf *out);

static void
publish(struct control *c)
{
    const struct cfg *cfg = c->conf->cfg;
    uint8_t *up = xcalloc(cfg->ncdns, 1);
    health_fill_up(c->health, cfg, up);
    const uint32_t *w = c->eng != NULL && c->eng->has_weights ? c->eng->weights : NULL;
    struct snap *s = snap_new_weighted(c->conf, up, w);
    free(up);
    if (s->all_down != c->all_down) {
        if (s->all_down)
            log_msg(LOG_ERR, "control", "every CDN is down: failing open to the configured order");
        else
            log_msg(LOG_NOTICE, "control", "at least one CDN is up again");
        c->all_down = s->all_down;
    }
    if (c->http)
        http_server_publish(c->http, s);
    snap_unref(c->snap);
    c->snap = s;
}

/* ---- the scoring engine ---- */

static void
engine_params(const struct cfg *cfg, struct obs_params *op, struct score_params *sp)
{
    obs_params_default(op);
    op->probe_half_life_ms = cfg->observe.probe_half_life_ms;
    op->beacon_half_life_ms = cfg->observe.beacon_half_life_ms;
    op->beacon_window_ms = cfg->observe.beacon_window_ms;
    op->beacon_max_step = cfg->observe.beacon_max_step;
    op->tp_target_bps = cfg->observe.tp_target_bps;
    op->starvation_bad = cfg->observe.starvation_bad;
    op->error_bad = cfg->observe.error_bad;

    const struct cfg_score *cs = &cfg->score;
    score_params_default(sp);
    sp->w_throughput = cs->w_throughput;
    sp->w_rebuffer = cs->w_rebuffer;
    sp->w_latency = cs->w_latency;
    sp->w_availability = cs->w_availability;
    sp->cost_weight = cs->cost_weight;
    sp->quality_bar = cs->quality_bar;
    sp->hysteresis = cs->hysteresis;
    sp->max_shift = cs->max_shift;
    sp->exploration = cs->exploration;
    /* The tick timer fires every interval_ms; a tick a little early must still recompute. */
    sp->interval_ms = cs->interval_ms - cs->interval_ms / 10;
    sp->latency_good_ms = cs->latency_good_ms;
    sp->latency_bad_ms = cs->latency_bad_ms;
    sp->spill_at = cs->spill_at;
    sp->flap_half_life_ms = cs->flap_half_life_ms;
    sp->flap_suppress = cs->flap_suppress;
    sp->flap_reuse = cs->flap_reuse;
    sp->probe_tp_target_bps = cs->probe_tp_target_bps;
}

static void
cost_params_of(const struct cfg_cost *cc, struct cost_cdn_params *p)
{
    memset(p, 0, sizeof(*p));
    p->ntiers = cc->ntiers;
    for (size_t t = 0; t < cc->ntiers && t < COST_MAX_TIERS; t++) {
        p->tiers[t].up_to_gb = cc->tier_up_to_gb[t];
        p->tiers[t].price_per_gb = cc->tier_price_per_gb[t];
    }
    p->commit = cc->commit == CFG_COMMIT_P95_GBPS ? COST_COMMIT_P95_GBPS
                : cc->commit == CFG_COMMIT_GB     ? COST_COMMIT_GB
                                                  : COST_COMMIT_NONE;
    p->commit_amount = cc->commit_amount;
    p->commit_fee = cc->commit_fee;
    p->burst_price = cc->burst_price;
    p->capacity_gbps = cc->capacity_gbps;
}

/* The engine's rendezvous weights for every region, from the shares published last. */
static void
engine_fill_weights(struct engine *e, const struct cfg *cfg)
{
    for (uint32_t r = 0; r < cfg->nregions; r++)
        score_weights(e->score, cfg, r, &e->weights[(size_t)r * cfg->ncdns]);
}

static void
engine_tick_arm(struct control *c)
{
    struct engine *e = c->eng;
    const struct cfg *cfg = c->conf->cfg;
    if (!cfg->score.enabled || c->stopping) {
        if (e->tick != NULL)
            event_del(e->tick);
        e->tick_ms = 0;
        return;
    }
    if (e->tick == NULL || e->tick_ms == cfg->score.interval_ms)
        return;
    e->tick_ms = cfg->score.interval_ms;
    struct timeval tv = {.tv_sec = e->tick_ms / 1000, .tv_usec = (e->tick_ms % 1000) * 1000};
    event_add(e->tick, &tv);
}

/* Makes the engine match the configuration now in c->conf (old: the previous one, or NULL at
 * start): parameters, cells kept by name, prices, month usage from reports, traffic baseline. */
static void
engine_apply(struct control *c, const struct cfg *old)
{
    struct engine *e = c->eng;
    const struct cfg *cfg = c->conf->cfg;
    struct obs_params op;
    struct score_params sp;
    engine_params(cfg, &op, &sp);
    obs_set_params(e->obs, &op);
    score_set_params(e->score, &sp);
    obs_reconcile(e->obs, cfg);
    cost_reconcile(e->cost, cfg);
    score_reconcile(e->score, cfg);

    uint64_t wall = util_wall_ms();
    for (size_t i = 0; i < cfg->ncdns; i++) {
        const struct cfg_cost *cc = &cfg->cdns[i].cost;
        struct cost_cdn_params p;
        struct diag d;
        cost_params_of(cc, &p);
        diag_init(&d);
        if (cost_configure(e->cost, (uint32_t)i, &p, &d) != 0) {
            char *msg = diag_join(&d);
            log_msg(LOG_ERR, "control", "cdn %s: pricing not applied: %s", cfg->cdns[i].id, msg);
            free(msg);
        }
        diag_free(&d);
        /* A usage report applies when it is new: at start, or when a reload changes it. */
        long was = old != NULL ? cfg_cdn_index(old, cfg->cdns[i].id) : -1;
        double prev = was >= 0 ? old->cdns[was].cost.month_used_gb : -1;
        if (cc->month_used_gb >= 0 && cc->month_used_gb != prev)
            cost_set_month_gb(e->cost, (uint32_t)i, cc->month_used_gb, wall);
    }

    /* Traffic estimates restart from the current decision totals. */
    size_t n = cfg->nregions * cfg->ncdns;
    double *active = xcalloc(n ? n : 1, sizeof(*active));
    for (size_t r = 0; old != NULL && r < cfg->nregions; r++) {
        long orr = cfg_region_index(old, cfg->regions[r].name);
        for (size_t k = 0; orr >= 0 && k < cfg->ncdns; k++) {
            long ok = cfg_cdn_index(old, cfg->cdns[k].id);
            if (ok >= 0 && (size_t)orr < e->nregions && (size_t)ok < e->ncdns)
                active[r * cfg->ncdns + k] = e->active[(size_t)orr * e->ncdns + (size_t)ok];
        }
    }
    free(e->active);
    e->active = active;
    free(e->dec_prev);
    e->dec_prev = xcalloc(n ? n : 1, sizeof(*e->dec_prev));
    if (c->stats != NULL)
        stats_decision_totals(c->stats, cfg, e->dec_prev);
    free(e->demand_bps);
    e->demand_bps = xcalloc(cfg->nregions ? cfg->nregions : 1, sizeof(*e->demand_bps));
    free(e->cdn_bps);
    e->cdn_bps = xcalloc(cfg->ncdns, sizeof(*e->cdn_bps));
    free(e->weights);
    e->weights = xcalloc(n ? n : 1, sizeof(*e->weights));
    e->nregions = cfg->nregions;
    e->ncdns = cfg->ncdns;
    e->last_tick_ms = util_now_ms();
    e->has_weights = cfg->score.enabled;
    if (e->has_weights)
        engine_fill_weights(e, cfg);
    engine_tick_arm(c);
    /* After a reload, recompute at once: new regions and CDNs have no terms until then. */
    if (old != NULL && cfg->score.enabled && e->tick != NULL && !c->stopping) {
        score_expire(e->score);
        event_active(e->tick, EV_TIMEOUT, 0);
    }
}

/* Every interval: the traffic estimate from the decisions since the last tick, cost accounting,
 * new shares, and a snapshot carrying them. */
static void
on_engine_tick(evutil_socket_t fd, short what, void *arg)
{
    struct control *c = arg;
    struct engine *e = c->eng;
    const struct cfg *cfg = c->conf->cfg;
    (void)fd;
    (void)what;
    if (c->stopping || !cfg->score.enabled)
        return;
    uint64_t now = util_now_ms(), wall = util_wall_ms();
    size_t nr = cfg->nregions, nc = cfg->ncdns;
    uint64_t *tot = xcalloc(nr * nc, sizeof(*tot)); /* a cfg has >= 1 region and CDN */
    uint8_t *up = xcalloc(nc, 1);
    if (c->stats != NULL)
        stats_decision_totals(c->stats, cfg, tot);

    /* Sessions playing, per (region, CDN): each decision starts one; sessions end at a rate
     * of 1/session_s (exponential lengths with that mean). Their traffic is x bitrate. A
     * region's traffic goes to its CDNs by the shares published last (players ask again for
     * every segment or manifest reload, so sessions follow the shares); before the engine has
     * shares for a region, by where its decisions went. */
    double dt_s = (double)(now - e->last_tick_ms) / 1000.0;
    double keep = exp(-dt_s / (double)cfg->traffic.session_s);
    for (size_t k = 0; k < nc; k++)
        e->cdn_bps[k] = 0;
    for (size_t r = 0; r < nr; r++) {
        e->demand_bps[r] = 0;
        for (size_t k = 0; k < nc; k++) {
            size_t i = r * nc + k;
            uint64_t delta = tot[i] >= e->dec_prev[i] ? tot[i] - e->dec_prev[i] : 0;
            e->active[i] = e->active[i] * keep + (double)delta;
            e->demand_bps[r] += e->active[i] * cfg->traffic.bitrate_bps;
        }
        const double *share = score_shares(e->score, (uint32_t)r);
        double sum = 0;
        for (size_t k = 0; share != NULL && k < nc; k++)
            sum += share[k];
        for (size_t k = 0; k < nc; k++)
            e->cdn_bps[k] += sum > 0 ? e->demand_bps[r] * share[k] / sum
                                     : e->active[r * nc + k] * cfg->traffic.bitrate_bps;
    }
    memcpy(e->dec_prev, tot, nr * nc * sizeof(*tot));
    e->last_tick_ms = now;
    for (size_t k = 0; k < nc; k++)
        cost_account(e->cost, (uint32_t)k, e->cdn_bps[k], wall);

    health_fill_up(c->health, cfg, up);
    struct score_inputs in = {cfg, up, e->obs, e->cost, e->demand_bps};
    if (score_update(e->score, &in, now)) {
        e->updates++;
        engine_fill_weights(e, cfg);
        e->has_weights = true;
        publish(c);
    }
    free(up);
    free(tot);
}

static struct engine *
engine_new(struct control *c)
{
    struct engine *e = xcalloc(1, sizeof(*e));
    struct obs_params op;
    struct score_params sp;
    engine_params(c->conf->cfg, &op, &sp);
    e->obs = obs_new(&op);
    e->cost = cost_new();
    e->score = score_new(&sp);
    e->tick = event_new(c->base, -1, EV_PERSIST, on_engine_tick, c);
    return e;
}

static void
engine_free(struct engine *e)
{
    if (e == NULL)
        return;
    if (e->tick != NULL)
        event_free(e->tick);
    obs_free(e->obs);
    cost_free(e->cost);
    score_free(e->score);
    free(e->dec_prev);
    free(e->active);
    free(e->demand_bps);
    free(e->cdn_bps);
    free(e->weights);
    free(e);
}

/* A probe result as a live measurement: the CDN's own probe feeds its global cell, a regional
 * URL that region's cell. Inconclusive results say nothing about the CDN. */
static void
engine_record_probe(struct control *c, const char *id, const struct health_sample *s)
{
    const struct cfg *cfg = c->conf->cfg;
    long k = cfg_cdn_index(cfg, id);
    long r = s->region != NULL ? cfg_region_index(cfg, s->region) : -1;
    if (k < 0 || s->outcome == HEALTH_INCONCLUSIVE || (s->region != NULL && r < 0))
        return;
    bool ok = s->outcome == HEALTH_OK;
    struct obs_probe op = {ok, ok ? s->connect_ms : -1, ok ? s->ttfb_ms : -1, ok ? s->tp_bps : -1};
    obs_record_probe(c->eng->obs, (uint32_t)k, r >= 0 ? (uint32_t)r : OBS_GLOBAL, &op,
                     util_now_ms());
}

struct control *
control_new(struct event_base *base, const char *cfg_path, struct snap_conf **confp,
            struct http_server *http, struct stats *stats)
{
    struct control *c = xcalloc(1, sizeof(*c));
    c->base = base;
    c->cfg_path = xstrdup(cfg_path);
    c->conf = *confp;
    *confp = NULL;
    c->generation = c->conf->generation;
    c->http = http;
    c->stats = stats;
    c->health = health_new();
    c->started_ms = util_now_ms();
    health_reconcile(c->health, c->conf->cfg);
    c->eng = engine_new(c);
    engine_apply(c, NULL);
    /* The first snapshot is built before the workers start; they receive it at start. */
    struct http_server *h = c->http;
    c->http = NULL;
    publish(c);
    c->http = h;
    return c;
}

void
control_free(struct control *c)
{
    if (c == NULL)
        return;
    probe_free(c->probe);
    struct event *evs[] = {c->sig_hup,  c->sig_term,   c->sig_int,
                           c->sig_usr1, c->drain_poll, c->beacon_tick};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(evs); i++) {
        if (evs[i])
            event_free(evs[i]);
    }
    health_free(c->health);
    engine_free(c->eng);
    snap_unref(c->snap);
    snap_conf_unref(c->conf);
    free(c->cfg_path);
    free(c);
}

/* The hub follows the current configuration (queued samples of the previous generation are
 * dropped); the engine's obs is reconciled with it by engine_apply. */
static void
beacon_sync(struct control *c)
{
    if (c->beacon_hub == NULL)
        return;
    beacon_hub_set_conf(c->beacon_hub, c->conf->cfg, c->conf->generation);
}

static void
on_beacon_tick(evutil_socket_t fd, short what, void *arg)
{
    struct control *c = arg;
    (void)fd;
    (void)what;
    c->eng->beacons += beacon_drain(c->beacon_hub, c->eng->obs, util_now_ms());
}

void
control_set_beacons(struct control *c, struct beacon_hub *hub)
{
    c->beacon_hub = hub;
    beacon_sync(c);
    c->beacon_tick = event_new(c->base, -1, EV_PERSIST, on_beacon_tick, c);
    struct timeval tv = {0, CONTROL_BEACON_TICK_MS * 1000};
    event_add(c->beacon_tick, &tv);
}

const struct obs *
control_beacon_obs(const struct control *c)
{
    return c->eng->obs;
}

static void
on_probe(void *arg, const char *id, const struct health_sample *s)
{
    struct control *c = arg;
    if (c->stopping)
        return;
    engine_record_probe(c, id, s);
    if (s->region != NULL) /* regional URLs feed the region's quality, never up/down */
        return;
    if (!health_record(c->health, id, s, util_now_ms()))
        return;
    for (size_t i = 0; i < health_count(c->health); i++) {
        const struct health_cdn *hc = health_at(c->health, i);
        if (strcmp(hc->id, id) != 0)
            continue;
        if (hc->state == HEALTH_DOWN)
            log_msg(LOG_WARN, "control", "cdn %s is down: %s", id,
                    s->error ? s->error : "probe failed");
        else
            log_msg(LOG_NOTICE, "control", "cdn %s is up", id);
    }
    publish(c);
}

static bool
same_strings(char **a, size_t na, char **b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        if (strcmp(a[i], b[i]) != 0)
            return false;
    }
    return true;
}

static bool
same_opt(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

static void
apply_logging(const struct cfg *old, const struct cfg *cfg)
{
    enum log_level lvl;
    if (log_level_parse(cfg->log_level, &lvl) == 0)
        log_set_level(lvl);
    if (old != NULL && same_opt(old->log_file, cfg->log_file))
        return;
    if (log_open(cfg->log_file) != 0)
        log_errno(LOG_ERR, errno, "control", "cannot open log file %s; logging to stderr",
                  cfg->log_file);
}

int
control_reload(struct control *c, struct diag *d)
{
    const struct cfg *old = c->conf->cfg;
    struct cfg *cfg = cfg_load(c->cfg_path, d);
    struct snap_conf *nc = NULL;

    if (cfg != NULL)
        nc = snap_conf_new(&cfg, c->generation + 1, d);
    if (nc == NULL) {
        c->reload_failed++;
        char *msg = diag_join(d);
        for (char *p = msg; *p; p++) {
            if (*p == '\n')
                *p = ';';
        }
        log_msg(LOG_ERR, "control", "reload of %s failed, keeping generation %llu: %s", c->cfg_path,
                (unsigned long long)c->generation, msg);
        free(msg);
        return -1;
    }
    const struct cfg *ncfg = nc->cfg;
    if (!same_strings(old->listen, old->nlisten, ncfg->listen, ncfg->nlisten) ||
        old->workers != ncfg->workers || !same_opt(old->admin.listen, ncfg->admin.listen))
        log_msg(LOG_WARN, "control",
                "listen, workers and admin.listen changes take effect at the next restart");
    apply_logging(old, ncfg);

    struct snap_conf *prev = c->conf;
    c->conf = nc;
    c->generation = nc->generation;
    health_reconcile(c->health, ncfg);
    beacon_sync(c);
    engine_apply(c, old);
    if (c->probe != NULL && probe_set_targets(c->probe, ncfg) != 0)
        log_msg(LOG_ERR, "control", "probes could not be updated; health kept as it was");
    publish(c);
    snap_conf_unref(prev);
    c->reload_ok++;
    log_msg(LOG_NOTICE, "control", "configuration %s loaded, generation %llu", c->cfg_path,
            (unsigned long long)c->generation);
    return 0;
}

static void
on_drain_poll(evutil_socket_t fd, short what, void *arg)
{
    struct control *c = arg;
    (void)fd;
    (void)what;
    if (c->http == NULL || http_server_running(c->http) == 0)
        event_base_loopexit(c->base, NULL);
}

void
control_shutdown(struct control *c)
{
    if (c->stopping)
        return;
    c->stopping = true;
    uint32_t grace = c->conf->cfg->http.shutdown_grace_ms;
    log_msg(LOG_NOTICE, "control", "shutting down: draining connections for up to %u ms", grace);
    probe_stop(c->probe);
    engine_tick_arm(c);
    if (c->http)
        http_server_drain(c->http, grace);
    c->drain_poll = event_new(c->base, -1, EV_PERSIST, on_drain_poll, c);
    struct timeval tv = {0, DRAIN_POLL_MS * 1000};
    event_add(c->drain_poll, &tv);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct control *c = arg;
    (void)what;
    if (sig == SIGHUP) {
        struct diag d;
        diag_init(&d);
        control_reload(c, &d);
        diag_free(&d);
    } else if (sig == SIGUSR1) {
        if (log_open(c->conf->cfg->log_file) != 0)
            log_errno(LOG_ERR, errno, "control", "cannot reopen log file");
        else
            log_msg(LOG_NOTICE, "control", "log reopened");
    } else if (c->stopping) {
        log_msg(LOG_WARN, "control", "second stop signal: exiting now");
        c->forced = true;
        event_base_loopbreak(c->base);
    } else {
        control_shutdown(c);
    }
}

int
control_start(struct control *c, struct diag *d)
{
    apply_logging(NULL, c->conf->cfg);
    c->probe = probe_new(c->base, on_probe, c);
    if (c->probe == NULL || probe_set_targets(c->probe, c->conf->cfg) != 0) {
        diag_add(d, "cannot start the health probes");
        return -1;
    }
    c->sig_hup = evsignal_new(c->base, SIGHUP, on_signal, c);
    c->sig_term = evsignal_new(c->base, SIGTERM, on_signal, c);
    c->sig_int = evsignal_new(c->base, SIGINT, on_signal, c);
    c->sig_usr1 = evsignal_new(c->base, SIGUSR1, on_signal, c);
    struct event *evs[] = {c->sig_hup, c->sig_term, c->sig_int, c->sig_usr1};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(evs); i++) {
        if (evs[i] == NULL || event_add(evs[i], NULL) != 0) {
            diag_add(d, "cannot install signal handlers");
            return -1;
        }
    }
    return 0;
}

bool
control_forced_exit(const struct control *c)
{
    return c->forced;
}

struct snap *
control_snap(const struct control *c)
{
    return c->snap;
}

const struct health *
control_health(const struct control *c)
{
    return c->health;
}

bool
control_ready(const struct control *c)
{
    if (health_all_known(c->health))
        return true;
    /* Probes that stay inconclusive must not keep the instance unready forever: after one
     * full round of the slowest probe, the configuration alone makes it ready. */
    const struct cfg *cfg = c->conf->cfg;
    uint64_t round = 0;
    for (size_t i = 0; i < cfg->ncdns; i++) {
        const struct cfg_probe *p = &cfg->cdns[i].probe;
        if (p->url != NULL && p->interval_ms + p->timeout_ms > round)
            round = p->interval_ms + p->timeout_ms;
    }
    return util_now_ms() - c->started_ms > round + 1000;
}

void
control_write_metrics(const struct control *c, struct buf *out)
{
    const struct cfg *cfg = c->conf->cfg;

    buf_printf(out,
               "# HELP steerd_build_info steerd version.\n# TYPE steerd_build_info gauge\n"
               "steerd_build_info{version=\"%s\"} 1\n"
               "# HELP steerd_config_generation Generation of the configuration in use.\n"
               "# TYPE steerd_config_generation gauge\nsteerd_config_generation %llu\n"
               "# HELP steerd_config_reload_total Configuration reloads by result.\n"
               "# TYPE steerd_config_reload_total counter\n"
               "steerd_config_reload_total{result=\"ok\"} %llu\n"
               "steerd_config_reload_total{result=\"failed\"} %llu\n"
               "# HELP steerd_ready 1 once the first probe round is in.\n"
               "# TYPE steerd_ready gauge\nsteerd_ready %d\n"
               "# HELP steerd_all_cdns_down 1 while no CDN is up (failing open).\n"
               "# TYPE steerd_all_cdns_down gauge\nsteerd_all_cdns_down %d\n"
               "# HELP steerd_uptime_seconds Seconds since start.\n"
               "# TYPE steerd_uptime_seconds gauge\nsteerd_uptime_seconds %llu\n",
               STEERD_VERSION, (unsigned long long)c->generation, (unsigned long long)c->reload_ok,
               (unsigned long long)c->reload_failed, control_ready(c) ? 1 : 0,
               c->snap->all_down ? 1 : 0,
               (unsigned long long)((util_now_ms() - c->started_ms) / 1000));

    buf_puts(out, "# HELP steerd_cdn_up 1 when the CDN is up (or not probed).\n"
                  "# TYPE steerd_cdn_up gauge\n");
    for (size_t i = 0; i < cfg->ncdns; i++)
        buf_printf(out, "steerd_cdn_up{cdn=\"%s\"} %d\n", cfg->cdns[i].id, c->snap->up[i] ? 1 : 0);

    buf_puts(out, "# HELP steerd_probe_total Health probe outcomes by CDN.\n"
                  "# TYPE steerd_probe_total counter\n");
    for (size_t i = 0; i < health_count(c->health); i++) {
        const struct health_cdn *h = health_at(c->health, i);
        buf_printf(out,
                   "steerd_probe_total{cdn=\"%s\",result=\"ok\"} %llu\n"
                   "steerd_probe_total{cdn=\"%s\",result=\"fail\"} %llu\n"
                   "steerd_probe_total{cdn=\"%s\",result=\"inconclusive\"} %llu\n",
                   h->id, (unsigned long long)h->ok_total, h->id, (unsigned long long)h->fail_total,
                   h->id, (unsigned long long)h->inconclusive_total);
    }
    buf_puts(out, "# HELP steerd_cdn_transitions_total Up/down changes by CDN.\n"
                  "# TYPE steerd_cdn_transitions_total counter\n");
    for (size_t i = 0; i < health_count(c->health); i++) {
        const struct health_cdn *h = health_at(c->health, i);
        buf_printf(out, "steerd_cdn_transitions_total{cdn=\"%s\"} %llu\n", h->id,
                   (unsigned long long)h->transitions_total);
    }
    buf_puts(out, "# HELP steerd_probe_duration_seconds Duration of the last probe.\n"
                  "# TYPE steerd_probe_duration_seconds gauge\n");
    for (size_t i = 0; i < health_count(c->health); i++) {
        const struct health_cdn *h = health_at(c->health, i);
        if (h->probed && h->last_probe_ms != 0)
            buf_printf(out, "steerd_probe_duration_seconds{cdn=\"%s\"} %.6f\n", h->id,
                       h->last_total_ms / 1000.0);
    }
    write_metrics_engine(c, out);
    stats_write_prometheus(c->stats, out);
    if (c->beacon_hub != NULL)
        beacon_hub_write_prometheus(c->beacon_hub, out);
}

static void
json_num_or_null(struct buf *out, const char *key, double v)
{
    if (v < 0)
        buf_printf(out, ",\"%s\":null", key);
    else
        buf_printf(out, ",\"%s\":%.3f", key, v);
}

void
control_write_state(const struct control *c, struct buf *out)
{
    const struct cfg *cfg = c->conf->cfg;

    buf_printf(out, "{\"version\":\"%s\",\"generation\":%llu,\"ready\":%s,\"all_cdns_down\":%s,",
               STEERD_VERSION, (unsigned long long)c->generation,
               control_ready(c) ? "true" : "false", c->snap->all_down ? "true" : "false");
    buf_puts(out, "\"config\":");
    buf_json_str(out, c->cfg_path);
    buf_printf(out, ",\"uptime_s\":%llu,\"cdns\":[",
               (unsigned long long)((util_now_ms() - c->started_ms) / 1000));
    for (size_t i = 0; i < health_count(c->health); i++) {
        const struct health_cdn *h = health_at(c->health, i);
        long k = cfg_cdn_index(cfg, h->id);
        if (i)
            buf_puts(out, ",");
        buf_puts(out, "{\"id\":");
        buf_json_str(out, h->id);
        if (k >= 0) {
            buf_puts(out, ",\"base_url\":");
            buf_json_str(out, cfg->cdns[k].base_url);
        }
        buf_printf(out, ",\"up\":%s,\"state\":\"%s\",\"probed\":%s,\"last_status\":%ld",
                   (k >= 0 && c->snap->up[k]) ? "true" : "false", health_state_str(h->state),
                   h->probed ? "true" : "false", h->last_status);
        buf_puts(out, ",\"last_error\":");
        if (h->last_error[0])
            buf_json_str(out, h->last_error);
        else
            buf_puts(out, "null");
        json_num_or_null(out, "connect_ms", h->last_probe_ms ? h->last_connect_ms : -1);
        json_num_or_null(out, "ttfb_ms", h->last_probe_ms ? h->last_ttfb_ms : -1);
        json_num_or_null(out, "total_ms", h->last_probe_ms ? h->last_total_ms : -1);
        buf_printf(out, ",\"ok_total\":%llu,\"fail_total\":%llu,\"inconclusive_total\":%llu}",
                   (unsigned long long)h->ok_total, (unsigned long long)h->fail_total,
                   (unsigned long long)h->inconclusive_total);
    }
    buf_puts(out, "],\"regions\":[");
    for (size_t r = 0; r < cfg->nregions; r++) {
        const struct cfg_rule *rule = &cfg->rules[r];
        if (r)
            buf_puts(out, ",");
        buf_puts(out, "{\"name\":");
        buf_json_str(out, cfg->regions[r].name);
        buf_printf(out, ",\"default\":%s,\"cdns\":{", r == cfg->default_region ? "true" : "false");
        bool first = true;
        for (size_t k = 0; k < cfg->ncdns; k++) {
            if (rule->weights[k] == 0)
                continue;
            buf_printf(out, "%s\"%s\":%u", first ? "" : ",", cfg->cdns[k].id, rule->weights[k]);
            first = false;
        }
        buf_puts(out, "},\"failover\":[");
        for (size_t k = 0; k < rule->nfailover; k++)
            buf_printf(out, "%s\"%s\"", k ? "," : "", cfg->cdns[rule->failover[k]].id);
        buf_puts(out, "]}");
    }
    buf_puts(out, "]");
    write_state_engine(c, out);
    buf_puts(out, "}\n");
}

/* ---- the scoring engine in /explain, /state and /metrics ---- */

static void
json_num(struct buf *out, const char *key, double v)
{
    if (isfinite(v))
        buf_printf(out, "\"%s\":%.6g", key, v);
    else
        buf_printf(out, "\"%s\":null", key);
}

/* One CDN's terms in a region as a JSON object body (without braces). */
static void
write_terms(struct buf *out, const char *id, const struct score_terms *t)
{
    buf_printf(out, "\"id\":\"%s\",\"allowed\":%s,\"up\":%s,\"candidate\":%s,", id,
               t->allowed ? "true" : "false", t->up ? "true" : "false",
               t->candidate ? "true" : "false");
    buf_printf(out, "\"meets_bar\":%s,\"suppressed\":%s,", t->meets_bar ? "true" : "false",
               t->suppressed ? "true" : "false");
    json_num(out, "flap_penalty", t->flap_penalty);
    buf_puts(out, ",\"terms\":{");
    json_num(out, "throughput", t->throughput);
    buf_puts(out, ",");
    json_num(out, "rebuffer", t->rebuffer);
    buf_puts(out, ",");
    json_num(out, "latency", t->latency);
    buf_puts(out, ",");
    json_num(out, "availability", t->availability);
    buf_puts(out, "},");
    json_num(out, "quality", t->quality);
    buf_puts(out, ",");
    json_num(out, "free_share", t->free_share);
    buf_puts(out, ",");
    json_num(out, "cap_share", t->cap_share);
    buf_puts(out, ",");
    json_num(out, "price_per_gb", t->price_per_gb);
    buf_printf(out, ",\"cost_basis\":\"%s\",", cost_basis_str(t->basis));
    json_num(out, "merit", t->merit);
    buf_puts(out, ",");
    json_num(out, "target", t->target);
    buf_puts(out, ",");
    json_num(out, "share", t->share);
    buf_printf(out, ",\"rule\":\"%s\"", score_rule_str(t->rule));
}

void
control_write_explain_engine(const struct control *c, uint32_t region, struct buf *out)
{
    const struct cfg *cfg = c->conf->cfg;
    const struct engine *e = c->eng;
    uint32_t r = region < cfg->nregions ? region : cfg->default_region;
    const struct score_terms *t = e->nregions == cfg->nregions ? score_terms(e->score, r) : NULL;
    buf_printf(out, ",\"engine\":{\"enabled\":%s", cfg->score.enabled ? "true" : "false");
    if (!cfg->score.enabled || t == NULL || !e->has_weights) {
        buf_puts(out, ",\"weights\":\"static\"}");
        return;
    }
    buf_printf(out, ",\"weights\":\"engine\",\"updates\":%llu,\"candidates\":[",
               (unsigned long long)e->updates);
    for (size_t i = 0; i < cfg->ncdns; i++) {
        buf_puts(out, i ? ",{" : "{");
        write_terms(out, cfg->cdns[i].id, &t[i]);
        buf_printf(out, ",\"weight\":%u}", e->weights[(size_t)r * cfg->ncdns + i]);
    }
    buf_puts(out, "]}");
}

/* "engine":{...} for /state: per region shares, scores and rules; per CDN estimated traffic,
 * month volume and commit use. */
static void
write_state_engine(const struct control *c, struct buf *out)
{
    const struct cfg *cfg = c->conf->cfg;
    const struct engine *e = c->eng;
    buf_printf(out, ",\"engine\":{\"enabled\":%s,\"updates\":%llu,\"interval_ms\":%u,",
               cfg->score.enabled ? "true" : "false", (unsigned long long)e->updates,
               cfg->score.interval_ms);
    buf_printf(out, "\"beacons\":%llu,\"cdns\":[", (unsigned long long)e->beacons);
    for (size_t i = 0; i < cfg->ncdns && e->ncdns == cfg->ncdns; i++) {
        struct cost_quote q;
        cost_quote(e->cost, (uint32_t)i, &q);
        buf_printf(out, "%s{\"id\":\"%s\",", i ? "," : "", cfg->cdns[i].id);
        json_num(out, "rate_bps", e->cdn_bps[i]);
        buf_puts(out, ",");
        json_num(out, "month_gb", cost_month_gb(e->cost, (uint32_t)i));
        buf_puts(out, ",");
        json_num(out, "p95_bps", cost_p95_bps(e->cost, (uint32_t)i));
        buf_puts(out, ",");
        json_num(out, "bill", cost_bill(e->cost, (uint32_t)i));
        buf_puts(out, ",");
        json_num(out, "commit_used_ratio", control_commit_used_ratio(c, (uint32_t)i));
        buf_puts(out, ",");
        json_num(out, "price_per_gb", q.price_per_gb);
        buf_printf(out, ",\"cost_basis\":\"%s\"}", cost_basis_str(q.basis));
    }
    buf_puts(out, "],\"regions\":[");
    for (uint32_t r = 0; r < cfg->nregions && e->nregions == cfg->nregions; r++) {
        const struct score_terms *t = score_terms(e->score, r);
        buf_printf(out, "%s{\"name\":", r ? "," : "");
        buf_json_str(out, cfg->regions[r].name);
        buf_puts(out, ",");
        json_num(out, "demand_bps", e->demand_bps[r]);
        buf_puts(out, ",\"cdns\":[");
        for (size_t i = 0; i < cfg->ncdns; i++) {
            buf_puts(out, i ? ",{" : "{");
            write_terms(out, cfg->cdns[i].id, &t[i]);
            buf_puts(out, "}");
        }
        buf_puts(out, "]}");
    }
    buf_puts(out, "]}");
}

double
control_commit_used_ratio(const struct control *c, uint32_t cdn)
{
    const struct cfg *cfg = c->conf->cfg;
    if (cdn >= cfg->ncdns || cdn >= c->eng->ncdns)
        return NAN;
    const struct cfg_cost *cc = &cfg->cdns[cdn].cost;
    if (cc->commit == CFG_COMMIT_GB)
        return cost_month_gb(c->eng->cost, cdn) / cc->commit_amount;
    if (cc->commit == CFG_COMMIT_P95_GBPS)
        return cost_p95_bps(c->eng->cost, cdn) / (cc->commit_amount * 1e9);
    return NAN;
}

static void
write_metrics_engine(const struct control *c, struct buf *out)
{
    const struct cfg *cfg = c->conf->cfg;
    const struct engine *e = c->eng;
    buf_printf(out,
               "# HELP steerd_policy_engine_enabled 1 when the scoring engine sets the weights.\n"
               "# TYPE steerd_policy_engine_enabled gauge\nsteerd_policy_engine_enabled %d\n"
               "# HELP steerd_policy_updates_total Share recomputations.\n"
               "# TYPE steerd_policy_updates_total counter\nsteerd_policy_updates_total %llu\n"
               "# HELP steerd_policy_beacons_total Beacon samples recorded in the live "
               "measurements.\n# TYPE steerd_policy_beacons_total counter\n"
               "steerd_policy_beacons_total %llu\n",
               cfg->score.enabled ? 1 : 0, (unsigned long long)e->updates,
               (unsigned long long)e->beacons);
    if (e->ncdns != cfg->ncdns || e->nregions != cfg->nregions)
        return;
    buf_puts(out, "# HELP steerd_cdn_commit_used_ratio Month volume (GB commit) or 95th "
                  "percentile (Gbps commit) over the commit.\n"
                  "# TYPE steerd_cdn_commit_used_ratio gauge\n");
    for (size_t i = 0; i < cfg->ncdns; i++) {
        double u = control_commit_used_ratio(c, (uint32_t)i);
        if (isfinite(u))
            buf_printf(out, "steerd_cdn_commit_used_ratio{cdn=\"%s\"} %.6g\n", cfg->cdns[i].id, u);
    }
    buf_puts(out, "# HELP steerd_cdn_traffic_estimate_bps Estimated egress (sessions x "
                  "bitrate).\n# TYPE steerd_cdn_traffic_estimate_bps gauge\n");
    for (size_t i = 0; i < cfg->ncdns; i++)
        buf_printf(out, "steerd_cdn_traffic_estimate_bps{cdn=\"%s\"} %.6g\n", cfg->cdns[i].id,
                   e->cdn_bps[i]);
    buf_puts(out, "# HELP steerd_cdn_month_gigabytes Month-to-date volume estimate.\n"
                  "# TYPE steerd_cdn_month_gigabytes gauge\n");
    for (size_t i = 0; i < cfg->ncdns; i++)
        buf_printf(out, "steerd_cdn_month_gigabytes{cdn=\"%s\"} %.6g\n", cfg->cdns[i].id,
                   cost_month_gb(e->cost, (uint32_t)i));
    if (!cfg->score.enabled)
        return;
    /* Labels are bounded by the configuration: CDNs x regions, both capped in cfg. */
    buf_puts(out, "# HELP steerd_cdn_score Quality score (0..1) of a CDN in a region.\n"
                  "# TYPE steerd_cdn_score gauge\n");
    for (uint32_t r = 0; r < cfg->nregions; r++) {
        const struct score_terms *t = score_terms(e->score, r);
        for (size_t i = 0; i < cfg->ncdns; i++) {
            if (t[i].allowed)
                buf_printf(out, "steerd_cdn_score{cdn=\"%s\",region=\"%s\"} %.6g\n",
                           cfg->cdns[i].id, cfg->regions[r].name, t[i].quality);
        }
    }
    buf_puts(out, "# HELP steerd_cdn_share Share of a region's sessions given to a CDN.\n"
                  "# TYPE steerd_cdn_share gauge\n");
    for (uint32_t r = 0; r < cfg->nregions; r++) {
        const struct score_terms *t = score_terms(e->score, r);
        for (size_t i = 0; i < cfg->ncdns; i++) {
            if (t[i].allowed)
                buf_printf(out, "steerd_cdn_share{cdn=\"%s\",region=\"%s\"} %.6g\n",
                           cfg->cdns[i].id, cfg->regions[r].name, t[i].share);
        }
    }
}
