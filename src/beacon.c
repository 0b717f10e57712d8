#include "steerd/beacon.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "steerd/cfg.h"
#include "steerd/cmcd.h"
#include "steerd/util.h"

/* One queued sample: indexes of the configuration `generation`. */
struct sample {
    uint64_t generation;
    uint32_t cdn, region;
    struct obs_beacon b;
};

/* Counters written by one worker (relaxed load+store, single writer), read by the control
 * thread. Each worker slot sits on its own cache lines. */
struct beacon_worker {
    _Alignas(64) struct sample *ring; /* [mask + 1] */
    size_t mask;
    _Atomic size_t tail; /* written by the worker: next slot to fill */
    size_t head_cache;   /* the worker's last view of head */
    struct obs_limiter *limiter;
    _Atomic uint64_t count[BEACON_RESULT_N];
    _Atomic uint64_t evictions;
    _Alignas(64) _Atomic size_t head; /* written by the control thread: next slot to read */
};

/* Per-CDN sample counts of the current configuration, with the id they belong to. */
struct cdn_count {
    char id[CFG_ID_MAX + 1];
    uint64_t n;
};

struct beacon_hub {
    struct beacon_worker *workers;
    uint32_t nworkers;
    /* control thread only */
    uint64_t generation;
    struct cdn_count *cdns; /* [ncdns] of the cfg given to beacon_hub_set_conf */
    size_t ncdns;
    uint64_t stale; /* samples of another generation, dropped at drain */
    uint64_t drained;
};

static void
bump(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static size_t
pow2_at_least(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

struct beacon_hub *
beacon_hub_new(const struct beacon_params *p)
{
    struct beacon_hub *h = xcalloc(1, sizeof(*h));
    size_t slots = pow2_at_least(p->queue_per_worker ? p->queue_per_worker : 1);

    h->nworkers = p->nworkers;
    /* aligned_alloc needs a size that is a multiple of the alignment: the struct is. */
    h->workers = aligned_alloc(64, (p->nworkers ? p->nworkers : 1) * sizeof(*h->workers));
    if (h->workers == NULL)
        abort();
    memset(h->workers, 0, (p->nworkers ? p->nworkers : 1) * sizeof(*h->workers));
    for (uint32_t i = 0; i < p->nworkers; i++) {
        struct beacon_worker *w = &h->workers[i];
        w->ring = xcalloc(slots, sizeof(*w->ring));
        w->mask = slots - 1;
        atomic_init(&w->tail, 0);
        atomic_init(&w->head, 0);
        w->limiter = obs_limiter_new(p->max_sources, p->rate_per_s, p->burst);
    }
    return h;
}

void
beacon_hub_free(struct beacon_hub *h)
{
    if (h == NULL)
        return;
    for (uint32_t i = 0; i < h->nworkers; i++) {
        free(h->workers[i].ring);
        obs_limiter_free(h->workers[i].limiter);
    }
    free(h->workers);
    free(h->cdns);
    free(h);
}

struct beacon_worker *
beacon_hub_worker(struct beacon_hub *h, uint32_t i)
{
    return i < h->nworkers ? &h->workers[i] : NULL;
}

bool
beacon_worker_admit(struct beacon_worker *w, uint64_t source, uint64_t now_ms,
                    uint32_t *retry_after_ms)
{
    bool ok = obs_limiter_take(w->limiter, source, now_ms, retry_after_ms);
    uint64_t ev = obs_limiter_evictions(w->limiter);
    if (ev != atomic_load_explicit(&w->evictions, memory_order_relaxed))
        atomic_store_explicit(&w->evictions, ev, memory_order_relaxed);
    if (!ok)
        bump(&w->count[BEACON_RATE_LIMITED], 1);
    return ok;
}

bool
beacon_worker_push(struct beacon_worker *w, uint64_t generation, uint32_t cdn, uint32_t region,
                   const struct obs_beacon *b)
{
    size_t tail = atomic_load_explicit(&w->tail, memory_order_relaxed);
    if (tail - w->head_cache > w->mask) {
        w->head_cache = atomic_load_explicit(&w->head, memory_order_acquire);
        if (tail - w->head_cache > w->mask) {
            bump(&w->count[BEACON_DROPPED], 1);
            return false;
        }
    }
    struct sample *s = &w->ring[tail & w->mask];
    s->generation = generation;
    s->cdn = cdn;
    s->region = region;
    s->b = *b;
    atomic_store_explicit(&w->tail, tail + 1, memory_order_release);
    bump(&w->count[BEACON_ACCEPTED], 1);
    return true;
}

void
beacon_worker_count_bad(struct beacon_worker *w, uint32_t n)
{
    if (n)
        bump(&w->count[BEACON_BAD], n);
}

uint32_t
beacon_attribute(const struct cfg *c, const struct cmcd_report *r, uint32_t chosen)
{
    if (r != NULL && (r->has & CMCD_KEY_CDN) && r->cdn[0] != '\0') {
        long k = cfg_cdn_index(c, r->cdn);
        if (k >= 0)
            return (uint32_t)k;
    }
    return chosen;
}

void
beacon_hub_set_conf(struct beacon_hub *h, const struct cfg *cfg, uint64_t generation)
{
    struct cdn_count *n = xcalloc(cfg->ncdns ? cfg->ncdns : 1, sizeof(*n));
    for (size_t i = 0; i < cfg->ncdns; i++) {
        /* ids are at most CFG_ID_MAX bytes (validated) */
        size_t len = strlen(cfg->cdns[i].id);
        memcpy(n[i].id, cfg->cdns[i].id, len < CFG_ID_MAX ? len : CFG_ID_MAX);
        for (size_t k = 0; k < h->ncdns; k++) {
            if (strcmp(h->cdns[k].id, n[i].id) == 0)
                n[i].n = h->cdns[k].n;
        }
    }
    free(h->cdns);
    h->cdns = n;
    h->ncdns = cfg->ncdns;
    h->generation = generation;
}

size_t
beacon_drain(struct beacon_hub *h, struct obs *o, uint64_t now_ms)
{
    size_t recorded = 0;

    for (uint32_t i = 0; i < h->nworkers; i++) {
        struct beacon_worker *w = &h->workers[i];
        size_t head = atomic_load_explicit(&w->head, memory_order_relaxed);
        size_t tail = atomic_load_explicit(&w->tail, memory_order_acquire);
        for (; head != tail; head++) {
            const struct sample *s = &w->ring[head & w->mask];
            if (s->generation != h->generation || s->cdn >= h->ncdns) {
                h->stale++;
                continue;
            }
            obs_record_beacon(o, s->cdn, s->region, &s->b, now_ms);
            h->cdns[s->cdn].n++;
            recorded++;
        }
        atomic_store_explicit(&w->head, head, memory_order_release);
    }
    h->drained += recorded;
    return recorded;
}

void
beacon_hub_totals(const struct beacon_hub *h, struct beacon_totals *out)
{
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < h->nworkers; i++) {
        for (int r = 0; r < BEACON_RESULT_N; r++)
            out->result[r] += atomic_load_explicit(&h->workers[i].count[r], memory_order_relaxed);
    }
    out->result[BEACON_DROPPED] += h->stale;
    out->drained = h->drained;
}

uint64_t
beacon_hub_cdn_samples(const struct beacon_hub *h, uint32_t cdn)
{
    return cdn < h->ncdns ? h->cdns[cdn].n : 0;
}

const char *
beacon_result_str(enum beacon_result r)
{
    switch (r) {
    case BEACON_ACCEPTED:
        return "accepted";
    case BEACON_BAD:
        return "bad";
    case BEACON_RATE_LIMITED:
        return "rate_limited";
    case BEACON_DROPPED:
        return "dropped";
    case BEACON_RESULT_N:
    default:
        return "unknown";
    }
}

void
beacon_hub_write_prometheus(const struct beacon_hub *h, struct buf *out)
{
    struct beacon_totals t;
    uint64_t ev = 0;

    beacon_hub_totals(h, &t);
    for (uint32_t i = 0; i < h->nworkers; i++)
        ev += atomic_load_explicit(&h->workers[i].evictions, memory_order_relaxed);
    buf_puts(out, "# HELP steerd_beacons_total Player beacon samples (CMCD reports) by result; "
                  "rate_limited counts requests.\n# TYPE steerd_beacons_total counter\n");
    for (int r = 0; r < BEACON_RESULT_N; r++)
        buf_printf(out, "steerd_beacons_total{result=\"%s\"} %llu\n",
                   beacon_result_str((enum beacon_result)r), (unsigned long long)t.result[r]);
    buf_puts(out, "# HELP steerd_beacon_samples_total Beacon samples recorded, by the CDN they "
                  "were attributed to.\n# TYPE steerd_beacon_samples_total counter\n");
    for (size_t k = 0; k < h->ncdns; k++)
        buf_printf(out, "steerd_beacon_samples_total{cdn=\"%s\"} %llu\n", h->cdns[k].id,
                   (unsigned long long)h->cdns[k].n);
    buf_printf(out,
               "# HELP steerd_beacon_limiter_evictions_total Beacon sources evicted from the "
               "per-worker rate limiter tables.\n"
               "# TYPE steerd_beacon_limiter_evictions_total counter\n"
               "steerd_beacon_limiter_evictions_total %llu\n",
               (unsigned long long)ev);
}
