#include "steerd/control.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "steerd/beacon.h"
#include "steerd/cfg.h"
#include "steerd/diag.h"
#include "steerd/health.h"
#include "steerd/http.h"
#include "steerd/log.h"
#include "steerd/obs.h"
#include "steerd/probe.h"
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
    /* Beacon ingestion: the workers' rings (borrowed) drained into beacon_obs every tick. */
    struct beacon_hub *beacon_hub;
    struct obs *beacon_obs;
    struct event *beacon_tick;
};

static void
publish(struct control *c)
{
    const struct cfg *cfg = c->conf->cfg;
    uint8_t *up = xcalloc(cfg->ncdns, 1);
    health_fill_up(c->health, cfg, up);
    struct snap *s = snap_new(c->conf, up);
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
    obs_free(c->beacon_obs);
    snap_unref(c->snap);
    snap_conf_unref(c->conf);
    free(c->cfg_path);
    free(c);
}

/* The beacon obs and the hub follow the current configuration (cells of CDNs and regions that
 * stay keep their history; queued samples of the previous generation are dropped). */
static void
beacon_sync(struct control *c)
{
    if (c->beacon_hub == NULL)
        return;
    obs_reconcile(c->beacon_obs, c->conf->cfg);
    beacon_hub_set_conf(c->beacon_hub, c->conf->cfg, c->conf->generation);
}

static void
on_beacon_tick(evutil_socket_t fd, short what, void *arg)
{
    struct control *c = arg;
    (void)fd;
    (void)what;
    beacon_drain(c->beacon_hub, c->beacon_obs, util_now_ms());
}

void
control_set_beacons(struct control *c, struct beacon_hub *hub)
{
    struct obs_params p;
    obs_params_default(&p);
    c->beacon_hub = hub;
    c->beacon_obs = obs_new(&p);
    beacon_sync(c);
    c->beacon_tick = event_new(c->base, -1, EV_PERSIST, on_beacon_tick, c);
    struct timeval tv = {0, CONTROL_BEACON_TICK_MS * 1000};
    event_add(c->beacon_tick, &tv);
}

const struct obs *
control_beacon_obs(const struct control *c)
{
    return c->beacon_obs;
}

static void
on_probe(void *arg, const char *id, const struct health_sample *s)
{
    struct control *c = arg;
    if (c->stopping)
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
    buf_puts(out, "]}\n");
}
