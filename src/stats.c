#include "steerd/stats.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "steerd/cfg.h"
#include "steerd/snap.h"
#include "steerd/util.h"

/* Folded decision totals by (region, cdn) name: an open-addressing table. */
struct dec_entry {
    char *region;
    char *cdn;
    uint64_t count;
};

struct stats {
    pthread_mutex_t mu;
    struct stats_worker *workers;
    size_t nworkers;
    struct dec_entry *folded;
    size_t folded_cap; /* power of two */
    size_t folded_len;
    struct dec_entry *sfolded; /* steering by (result, cdn) name, same layout */
    size_t sfolded_cap;
    size_t sfolded_len;
};

static const int status_codes[STATS_CODE_N] = {200, 204, 302, 400, 401, 403, 404, 405,
                                               408, 413, 414, 431, 500, 501, 502, 503,
                                               504, 505, 411, 415, 429, 0};
static const char *const route_names[STATS_ROUTE_N] = {"redirect", "options",  "error",
                                                       "manifest", "steering", "beacon"};
static const char *const steer_names[STATS_STEER_N] = {"match", "mismatch", "throughput"};
static const char *const steer_format_names[STATS_STEER_FORMAT_N] = {"hls", "dash"};
static const char *const mcache_names[STATS_MCACHE_N] = {"hit", "miss", "coalesced",
                                                         "stale_revalidated"};
static const char *const render_names[STATS_RENDER_N] = {"reused", "rewritten"};
static const char *const origin_names[STATS_ORIGIN_N] = {
    "ok", "not_modified", "http_error", "timeout", "too_large", "failed", "local_error"};
static const char *const reject_names[STATS_REJECT_N] = {
    "bad_request", "bad_path", "uri_too_long", "headers_too_large", "header_timeout",
    "method",      "body",     "version",      "not_implemented",   "body_timeout"};

int
stats_code_index(int code)
{
    switch (code) {
    case 200:
        return 0;
    case 204:
        return 1;
    case 302:
        return 2;
    case 400:
        return 3;
    case 401:
        return 4;
    case 403:
        return 5;
    case 404:
        return 6;
    case 405:
        return 7;
    case 408:
        return 8;
    case 413:
        return 9;
    case 414:
        return 10;
    case 431:
        return 11;
    case 500:
        return 12;
    case 501:
        return 13;
    case 502:
        return 14;
    case 503:
        return 15;
    case 504:
        return 16;
    case 505:
        return 17;
    case 411:
        return 18;
    case 415:
        return 19;
    case 429:
        return 20;
    default:
        return STATS_CODE_N - 1;
    }
}

void
stats_decision(struct stats_worker *w, uint32_t region, uint32_t cdn)
{
    if (w->dec == NULL)
        return;
    size_t ncdns = w->dec_conf->cfg->ncdns;
    stats_add(&w->dec[(size_t)region * ncdns + cdn], 1);
}

void
stats_steering(struct stats_worker *w, uint32_t cdn, enum stats_steer what)
{
    if (w->steer == NULL || cdn >= w->dec_conf->cfg->ncdns)
        return;
    stats_add(&w->steer[(size_t)cdn * STATS_STEER_N + what], 1);
}

struct stats *
stats_new(size_t nworkers)
{
    struct stats *s = xcalloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->workers = xcalloc(nworkers ? nworkers : 1, sizeof(*s->workers));
    s->nworkers = nworkers;
    return s;
}

/* Frees a (name, name) -> count table of cap slots. */
static void
table_free(struct dec_entry *t, size_t cap)
{
    for (size_t i = 0; i < cap; i++) {
        free(t[i].region);
        free(t[i].cdn);
    }
    free(t);
}

void
stats_free(struct stats *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nworkers; i++) {
        free(s->workers[i].dec);
        free(s->workers[i].steer);
        snap_conf_unref(s->workers[i].dec_conf);
    }
    free(s->workers);
    table_free(s->folded, s->folded_cap);
    table_free(s->sfolded, s->sfolded_cap);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

struct stats_worker *
stats_worker(struct stats *s, size_t i)
{
    return &s->workers[i];
}

static uint64_t
pair_hash(const char *region, const char *cdn)
{
    return util_hash64(cdn, strlen(cdn), util_hash64(region, strlen(region), 0));
}

/* Finds or inserts the (region, cdn) slot in the table t of capacity cap. */
static struct dec_entry *
table_slot(struct dec_entry *t, size_t cap, const char *region, const char *cdn)
{
    size_t i = (size_t)pair_hash(region, cdn) & (cap - 1);
    while (t[i].region != NULL) {
        if (strcmp(t[i].region, region) == 0 && strcmp(t[i].cdn, cdn) == 0)
            return &t[i];
        i = (i + 1) & (cap - 1);
    }
    return &t[i];
}

/* Adds n to the (a, b) count of the table *tab (*cap slots, a power of two, *len used), which
 * doubles when half full. */
static void
table_add(struct dec_entry **tab, size_t *cap, size_t *len, const char *a, const char *b,
          uint64_t n)
{
    if (*len + 1 > *cap / 2) {
        size_t ncap = *cap ? *cap * 2 : 64;
        struct dec_entry *t = xcalloc(ncap, sizeof(*t));
        for (size_t i = 0; i < *cap; i++) {
            if ((*tab)[i].region != NULL)
                *table_slot(t, ncap, (*tab)[i].region, (*tab)[i].cdn) = (*tab)[i];
        }
        free(*tab);
        *tab = t;
        *cap = ncap;
    }
    struct dec_entry *e = table_slot(*tab, *cap, a, b);
    if (e->region == NULL) {
        e->region = xstrdup(a);
        e->cdn = xstrdup(b);
        (*len)++;
    }
    e->count += n;
}

static void
folded_add(struct stats *s, const char *region, const char *cdn, uint64_t n)
{
    table_add(&s->folded, &s->folded_cap, &s->folded_len, region, cdn, n);
}

static void
fold_worker(struct stats *s, struct stats_worker *w)
{
    if (w->dec == NULL)
        return;
    const struct cfg *c = w->dec_conf->cfg;
    for (size_t r = 0; r < c->nregions; r++) {
        for (size_t k = 0; k < c->ncdns; k++) {
            uint64_t n = atomic_load_explicit(&w->dec[r * c->ncdns + k], memory_order_relaxed);
            if (n)
                folded_add(s, c->regions[r].name, c->cdns[k].id, n);
        }
    }
}

/* Adds n to the (what, cdn) steering total. */
static void
sfolded_add(struct stats *s, const char *what, const char *cdn, uint64_t n)
{
    table_add(&s->sfolded, &s->sfolded_cap, &s->sfolded_len, what, cdn, n);
}

static void
fold_worker_steering(struct stats *s, struct stats_worker *w)
{
    if (w->steer == NULL)
        return;
    const struct cfg *c = w->dec_conf->cfg;
    for (size_t k = 0; k < c->ncdns; k++) {
        for (size_t r = 0; r < STATS_STEER_N; r++) {
            uint64_t n =
                atomic_load_explicit(&w->steer[k * STATS_STEER_N + r], memory_order_relaxed);
            if (n)
                sfolded_add(s, steer_names[r], c->cdns[k].id, n);
        }
    }
}

void
stats_worker_adopt(struct stats *s, size_t i, struct snap_conf *conf)
{
    struct stats_worker *w = &s->workers[i];
    if (w->dec_conf == conf)
        return;
    size_t n = conf->cfg->nregions * conf->cfg->ncdns;
    _Atomic uint64_t *dec = xcalloc(n, sizeof(*dec));
    _Atomic uint64_t *steer = xcalloc(conf->cfg->ncdns * STATS_STEER_N, sizeof(*steer));
    struct snap_conf *old = NULL;

    pthread_mutex_lock(&s->mu);
    fold_worker(s, w);
    fold_worker_steering(s, w);
    free(w->dec);
    free(w->steer);
    w->steer = steer;
    old = w->dec_conf;
    w->dec = dec;
    w->dec_conf = snap_conf_ref(conf);
    pthread_mutex_unlock(&s->mu);
    snap_conf_unref(old);
}

static uint64_t
sum_workers(struct stats *s, size_t off)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->nworkers; i++) {
        _Atomic uint64_t *c = (_Atomic uint64_t *)((char *)&s->workers[i] + off);
        n += atomic_load_explicit(c, memory_order_relaxed);
    }
    return n;
}

static uint64_t
max_workers(struct stats *s, size_t off)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->nworkers; i++) {
        _Atomic uint64_t *c = (_Atomic uint64_t *)((char *)&s->workers[i] + off);
        uint64_t v = atomic_load_explicit(c, memory_order_relaxed);
        if (v > n)
            n = v;
    }
    return n;
}

static const char *const shed_names[STATS_SHED_N] = {"beacon", "keepalive", "accept",
                                                     "steering_ttl"};

/* Overload gauges (the worst worker) and what shedding did. */
static void
write_overload(struct stats *s, struct buf *out)
{
    buf_printf(out,
               "# HELP steerd_overload_level Highest overload level over the workers (0 normal, "
               "1 beacons shed, 2 keep-alive off, 3 accepting paused).\n"
               "# TYPE steerd_overload_level gauge\nsteerd_overload_level %llu\n"
               "# HELP steerd_event_loop_lag_ms Highest lateness of the workers' last lag timer.\n"
               "# TYPE steerd_event_loop_lag_ms gauge\nsteerd_event_loop_lag_ms %llu\n",
               (unsigned long long)max_workers(s, offsetof(struct stats_worker, overload_level)),
               (unsigned long long)max_workers(s, offsetof(struct stats_worker, loop_lag_ms)));
    buf_puts(out, "# HELP steerd_shed_total What overload shedding did, by kind.\n"
                  "# TYPE steerd_shed_total counter\n");
    for (int r = 0; r < STATS_SHED_N; r++) {
        size_t off = offsetof(struct stats_worker, shed) + (size_t)r * sizeof(_Atomic uint64_t);
        buf_printf(out, "steerd_shed_total{what=\"%s\"} %llu\n", shed_names[r],
                   (unsigned long long)sum_workers(s, off));
    }
}

static int
entry_cmp(const void *a, const void *b)
{
    const struct dec_entry *x = a, *y = b;
    int r = strcmp(x->region, y->region);
    return r ? r : strcmp(x->cdn, y->cdn);
}

/* The steering counters: requests by format, then compliance and throughput samples per CDN
 * (folded totals plus every worker's live counters, merged by name). */
static void
write_steering(struct stats *s, struct buf *out)
{
    buf_puts(out, "# HELP steerd_steering_requests_total Steering manifest requests by format.\n"
                  "# TYPE steerd_steering_requests_total counter\n");
    for (int f = 0; f < STATS_STEER_FORMAT_N; f++) {
        size_t off =
            offsetof(struct stats_worker, steer_req) + (size_t)f * sizeof(_Atomic uint64_t);
        buf_printf(out, "steerd_steering_requests_total{format=\"%s\"} %llu\n",
                   steer_format_names[f], (unsigned long long)sum_workers(s, off));
    }
    pthread_mutex_lock(&s->mu);
    size_t need = s->sfolded_len;
    for (size_t i = 0; i < s->nworkers; i++) {
        if (s->workers[i].dec_conf)
            need += s->workers[i].dec_conf->cfg->ncdns * STATS_STEER_N;
    }
    size_t cap = 64;
    while (cap < need * 2)
        cap *= 2;
    struct dec_entry *t = xcalloc(cap, sizeof(*t));
    for (size_t i = 0; i < s->sfolded_cap; i++) {
        struct dec_entry *f = &s->sfolded[i];
        if (f->region == NULL)
            continue;
        struct dec_entry *e = table_slot(t, cap, f->region, f->cdn);
        e->region = f->region;
        e->cdn = f->cdn;
        e->count += f->count;
    }
    for (size_t i = 0; i < s->nworkers; i++) {
        struct stats_worker *w = &s->workers[i];
        if (w->steer == NULL)
            continue;
        const struct cfg *c = w->dec_conf->cfg;
        for (size_t k = 0; k < c->ncdns; k++) {
            for (size_t r = 0; r < STATS_STEER_N; r++) {
                uint64_t n =
                    atomic_load_explicit(&w->steer[k * STATS_STEER_N + r], memory_order_relaxed);
                struct dec_entry *e = table_slot(t, cap, steer_names[r], c->cdns[k].id);
                e->region = (char *)steer_names[r]; /* borrowed, never written */
                e->cdn = c->cdns[k].id;
                e->count += n;
            }
        }
    }
    size_t j = 0;
    for (size_t i = 0; i < cap; i++) {
        if (t[i].region != NULL)
            t[j++] = t[i];
    }
    qsort(t, j, sizeof(*t), entry_cmp);
    buf_puts(out, "# HELP steerd_steering_compliance_total Steering polls by the CDN steerd asked "
                  "for and whether the player reported being on it.\n"
                  "# TYPE steerd_steering_compliance_total counter\n");
    for (size_t i = 0; i < j; i++) {
        if (strcmp(t[i].region, "throughput") != 0)
            buf_printf(out, "steerd_steering_compliance_total{cdn=\"%s\",result=\"%s\"} %llu\n",
                       t[i].cdn, t[i].region, (unsigned long long)t[i].count);
    }
    buf_puts(out, "# HELP steerd_steering_throughput_samples_total Per-pathway throughput "
                  "samples reported by players in steering polls.\n"
                  "# TYPE steerd_steering_throughput_samples_total counter\n");
    for (size_t i = 0; i < j; i++) {
        if (strcmp(t[i].region, "throughput") == 0)
            buf_printf(out, "steerd_steering_throughput_samples_total{cdn=\"%s\"} %llu\n", t[i].cdn,
                       (unsigned long long)t[i].count);
    }
    pthread_mutex_unlock(&s->mu);
    free(t);
}

void
stats_write_prometheus(struct stats *s, struct buf *out)
{
    buf_puts(out, "# HELP steerd_requests_total Player-facing requests by route and status.\n"
                  "# TYPE steerd_requests_total counter\n");
    for (int r = 0; r < STATS_ROUTE_N; r++) {
        for (int k = 0; k < STATS_CODE_N; k++) {
            size_t off = offsetof(struct stats_worker, req) +
                         ((size_t)r * STATS_CODE_N + (size_t)k) * sizeof(_Atomic uint64_t);
            uint64_t n = sum_workers(s, off);
            if (n == 0)
                continue;
            if (status_codes[k])
                buf_printf(out, "steerd_requests_total{route=\"%s\",code=\"%d\"} %llu\n",
                           route_names[r], status_codes[k], (unsigned long long)n);
            else
                buf_printf(out, "steerd_requests_total{route=\"%s\",code=\"other\"} %llu\n",
                           route_names[r], (unsigned long long)n);
        }
    }
    buf_puts(out, "# HELP steerd_requests_rejected_total Requests refused before routing, by "
                  "reason.\n# TYPE steerd_requests_rejected_total counter\n");
    for (int r = 0; r < STATS_REJECT_N; r++) {
        size_t off = offsetof(struct stats_worker, rejected) + (size_t)r * sizeof(_Atomic uint64_t);
        buf_printf(out, "steerd_requests_rejected_total{reason=\"%s\"} %llu\n", reject_names[r],
                   (unsigned long long)sum_workers(s, off));
    }
    buf_printf(out,
               "# HELP steerd_connections_active Open player connections.\n"
               "# TYPE steerd_connections_active gauge\nsteerd_connections_active %llu\n"
               "# HELP steerd_connections_total Accepted player connections.\n"
               "# TYPE steerd_connections_total counter\nsteerd_connections_total %llu\n"
               "# HELP steerd_accept_errors_total Failed accept() calls (e.g. out of fds).\n"
               "# TYPE steerd_accept_errors_total counter\nsteerd_accept_errors_total %llu\n",
               (unsigned long long)sum_workers(s, offsetof(struct stats_worker, conns_active)),
               (unsigned long long)sum_workers(s, offsetof(struct stats_worker, conns_total)),
               (unsigned long long)sum_workers(s, offsetof(struct stats_worker, accept_errors)));
    write_overload(s, out);
    buf_puts(out, "# HELP steerd_manifest_cache_total Manifest requests by cache outcome.\n"
                  "# TYPE steerd_manifest_cache_total counter\n");
    for (int r = 0; r < STATS_MCACHE_N; r++) {
        size_t off =
            offsetof(struct stats_worker, manifest_cache) + (size_t)r * sizeof(_Atomic uint64_t);
        buf_printf(out, "steerd_manifest_cache_total{result=\"%s\"} %llu\n", mcache_names[r],
                   (unsigned long long)sum_workers(s, off));
    }
    buf_puts(out, "# HELP steerd_manifest_render_total Manifest answers by how they were made.\n"
                  "# TYPE steerd_manifest_render_total counter\n");
    for (int r = 0; r < STATS_RENDER_N; r++) {
        size_t off =
            offsetof(struct stats_worker, manifest_render) + (size_t)r * sizeof(_Atomic uint64_t);
        buf_printf(out, "steerd_manifest_render_total{result=\"%s\"} %llu\n", render_names[r],
                   (unsigned long long)sum_workers(s, off));
    }
    buf_puts(out, "# HELP steerd_origin_fetch_total Origin manifest fetches by result.\n"
                  "# TYPE steerd_origin_fetch_total counter\n");
    for (int r = 0; r < STATS_ORIGIN_N; r++) {
        size_t off =
            offsetof(struct stats_worker, origin_fetch) + (size_t)r * sizeof(_Atomic uint64_t);
        buf_printf(out, "steerd_origin_fetch_total{result=\"%s\"} %llu\n", origin_names[r],
                   (unsigned long long)sum_workers(s, off));
    }

    /* Decisions: folded totals plus every worker's live counters, merged by name. */
    pthread_mutex_lock(&s->mu);
    size_t cap = 64;
    size_t need = s->folded_len;
    for (size_t i = 0; i < s->nworkers; i++) {
        if (s->workers[i].dec_conf)
            need += s->workers[i].dec_conf->cfg->nregions * s->workers[i].dec_conf->cfg->ncdns;
    }
    while (cap < need * 2)
        cap *= 2;
    struct dec_entry *t = xcalloc(cap, sizeof(*t));
    size_t len = 0;
    for (size_t i = 0; i < s->folded_cap; i++) {
        struct dec_entry *f = &s->folded[i];
        if (f->region == NULL)
            continue;
        struct dec_entry *e = table_slot(t, cap, f->region, f->cdn);
        if (e->region == NULL) {
            e->region = f->region;
            e->cdn = f->cdn;
            len++;
        }
        e->count += f->count;
    }
    for (size_t i = 0; i < s->nworkers; i++) {
        struct stats_worker *w = &s->workers[i];
        if (w->dec == NULL)
            continue;
        const struct cfg *c = w->dec_conf->cfg;
        for (size_t r = 0; r < c->nregions; r++) {
            for (size_t k = 0; k < c->ncdns; k++) {
                uint64_t n = atomic_load_explicit(&w->dec[r * c->ncdns + k], memory_order_relaxed);
                struct dec_entry *e = table_slot(t, cap, c->regions[r].name, c->cdns[k].id);
                if (e->region == NULL) {
                    e->region = c->regions[r].name;
                    e->cdn = c->cdns[k].id;
                    len++;
                }
                e->count += n;
            }
        }
    }
    /* Compact and sort for a stable exposition; names are borrowed while the mutex is held. */
    size_t j = 0;
    for (size_t i = 0; i < cap; i++) {
        if (t[i].region != NULL)
            t[j++] = t[i];
    }
    qsort(t, j, sizeof(*t), entry_cmp);
    buf_puts(out, "# HELP steerd_decisions_total Steering decisions by chosen CDN and region.\n"
                  "# TYPE steerd_decisions_total counter\n");
    for (size_t i = 0; i < j; i++)
        buf_printf(out, "steerd_decisions_total{cdn=\"%s\",region=\"%s\"} %llu\n", t[i].cdn,
                   t[i].region, (unsigned long long)t[i].count);
    pthread_mutex_unlock(&s->mu);
    free(t);
    (void)len;
    write_steering(s, out);
}

void
stats_decision_totals(struct stats *s, const struct cfg *c, uint64_t *out)
{
    size_t nr = c->nregions, nc = c->ncdns;
    long *rmap = NULL, *cmap = NULL;
    memset(out, 0, nr * nc * sizeof(*out));

    pthread_mutex_lock(&s->mu);
    if (s->folded != NULL) {
        for (size_t r = 0; r < nr; r++) {
            for (size_t k = 0; k < nc; k++) {
                const struct dec_entry *e =
                    table_slot(s->folded, s->folded_cap, c->regions[r].name, c->cdns[k].id);
                if (e->region != NULL)
                    out[r * nc + k] += e->count;
            }
        }
    }
    for (size_t i = 0; i < s->nworkers; i++) {
        struct stats_worker *w = &s->workers[i];
        if (w->dec == NULL)
            continue;
        const struct cfg *wc = w->dec_conf->cfg;
        /* the worker's (region, CDN) indexes in c, by name (the same when it counts for c) */
        rmap = xrealloc(rmap, (wc->nregions ? wc->nregions : 1) * sizeof(*rmap));
        cmap = xrealloc(cmap, (wc->ncdns ? wc->ncdns : 1) * sizeof(*cmap));
        for (size_t r = 0; r < wc->nregions; r++)
            rmap[r] = wc == c ? (long)r : cfg_region_index(c, wc->regions[r].name);
        for (size_t k = 0; k < wc->ncdns; k++)
            cmap[k] = wc == c ? (long)k : cfg_cdn_index(c, wc->cdns[k].id);
        for (size_t r = 0; r < wc->nregions; r++) {
            if (rmap[r] < 0)
                continue;
            for (size_t k = 0; k < wc->ncdns; k++) {
                if (cmap[k] < 0)
                    continue;
                out[(size_t)rmap[r] * nc + (size_t)cmap[k]] +=
                    atomic_load_explicit(&w->dec[r * wc->ncdns + k], memory_order_relaxed);
            }
        }
    }
    pthread_mutex_unlock(&s->mu);
    free(rmap);
    free(cmap);
}
