/* stats: request and decision counters for /metrics. Each worker owns a struct stats_worker
 * and is its only writer (relaxed atomic load+store, no lock, no lock-prefixed instruction);
 * the control thread reads them when /metrics is scraped. Decision counters are per
 * (region, CDN) of the configuration a worker is using; when a worker moves to a new
 * configuration its counts are folded, under a mutex taken only then and at scrape time, into
 * totals kept by name, so counters never go backwards across reloads. */
#ifndef STEERD_STATS_H
#define STEERD_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct cfg;
struct snap_conf;
struct stats;

enum stats_route {
    STATS_ROUTE_REDIRECT = 0,
    STATS_ROUTE_OPTIONS,
    STATS_ROUTE_ERROR,
    STATS_ROUTE_MANIFEST, /* rewritten manifests and their origin errors */
    STATS_ROUTE_STEERING, /* GET /steer/hls, /steer/dash */
    STATS_ROUTE_BEACON,   /* POST /beacon */
    STATS_ROUTE_N
};

/* Manifest cache outcomes, one per manifest request (stale_revalidated in addition to the
 * miss that asked the origin, when it answered 304). */
enum stats_mcache {
    STATS_MCACHE_HIT = 0,           /* answered from the cache (a body or a remembered error) */
    STATS_MCACHE_MISS,              /* this request fetched from the origin */
    STATS_MCACHE_COALESCED,         /* waited for another request's origin fetch */
    STATS_MCACHE_STALE_REVALIDATED, /* the origin answered 304: the cached body was reused */
    STATS_MCACHE_N
};

/* How a 200 manifest answer was produced: reused from the worker's cache of rendered answers,
 * or rewritten for this request. */
enum stats_render { STATS_RENDER_REUSED = 0, STATS_RENDER_REWRITTEN, STATS_RENDER_N };

/* Origin fetch results (one per fetch started). */
enum stats_origin {
    STATS_ORIGIN_OK = 0,
    STATS_ORIGIN_NOT_MODIFIED,
    STATS_ORIGIN_HTTP_ERROR,
    STATS_ORIGIN_TIMEOUT,
    STATS_ORIGIN_TOO_LARGE,
    STATS_ORIGIN_FAILED,
    STATS_ORIGIN_LOCAL_ERROR,
    STATS_ORIGIN_N
};

enum stats_reject {
    STATS_REJECT_BAD_REQUEST = 0, /* malformed request head */
    STATS_REJECT_BAD_PATH,        /* traversal, controls, double encoding, not origin-form */
    STATS_REJECT_URI_TOO_LONG,
    STATS_REJECT_HEADERS_TOO_LARGE,
    STATS_REJECT_HEADER_TIMEOUT,
    STATS_REJECT_METHOD,
    STATS_REJECT_BODY,
    STATS_REJECT_VERSION,
    STATS_REJECT_NOT_IMPLEMENTED,
    STATS_REJECT_BODY_TIMEOUT, /* a request body that did not arrive in time */
    STATS_REJECT_N
};

/* Content Steering, per CDN of the worker's configuration: whether the pathway a player reports
 * being on is the one steerd asked for, and the throughput samples players reported. */
enum stats_steer {
    STATS_STEER_MATCH = 0,
    STATS_STEER_MISMATCH,
    STATS_STEER_THROUGHPUT, /* throughput samples reported for the pathway */
    STATS_STEER_N
};

/* What overload shedding did (see overload.h): a POST /beacon answered 204 unread, a keep-alive
 * request answered with Connection: close, accepting paused by the overload level or the
 * connection cap, a steering poll answered with ttl_max_s. */
enum stats_shed {
    STATS_SHED_BEACON = 0,
    STATS_SHED_KEEPALIVE,
    STATS_SHED_ACCEPT,
    STATS_SHED_STEERING_TTL,
    STATS_SHED_N
};

enum stats_steer_format { STATS_STEER_HLS = 0, STATS_STEER_DASH, STATS_STEER_FORMAT_N };

#define STATS_CODE_N 22

struct stats_worker {
    _Atomic uint64_t req[STATS_ROUTE_N][STATS_CODE_N];
    _Atomic uint64_t rejected[STATS_REJECT_N];
    _Atomic uint64_t conns_active;
    _Atomic uint64_t conns_total;
    _Atomic uint64_t accept_errors;
    _Atomic uint64_t overload_level; /* gauge: the worker's overload level, 0..3 */
    _Atomic uint64_t loop_lag_ms;    /* gauge: how late the worker's last lag timer ran */
    _Atomic uint64_t shed[STATS_SHED_N];
    _Atomic uint64_t manifest_cache[STATS_MCACHE_N];
    _Atomic uint64_t manifest_render[STATS_RENDER_N];
    _Atomic uint64_t origin_fetch[STATS_ORIGIN_N];
    /* Decisions for dec_conf: [region * ncdns + cdn]. Replaced only under the stats mutex. */
    struct snap_conf *dec_conf;
    _Atomic uint64_t *dec;
    _Atomic uint64_t steer_req[STATS_STEER_FORMAT_N];
    /* Steering per CDN of dec_conf: [cdn * STATS_STEER_N + what]; replaced with dec. */
    _Atomic uint64_t *steer;
};

/* Index of an HTTP status in req[][]; unknown codes share the last slot. */
int stats_code_index(int code);

static inline void
stats_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void
stats_request(struct stats_worker *w, enum stats_route route, int code)
{
    stats_add(&w->req[route][stats_code_index(code)], 1);
}

/* Counts a decision; region and cdn index the dec_conf's cfg. */
void stats_decision(struct stats_worker *w, uint32_t region, uint32_t cdn);

/* Counts a steering event for a CDN index of the dec_conf's cfg. */
void stats_steering(struct stats_worker *w, uint32_t cdn, enum stats_steer what);

/* A stats with nworkers worker slots. Caller owns it. */
struct stats *stats_new(size_t nworkers);
/* Frees everything, folding nothing; releases the snap_conf references the slots hold. */
void stats_free(struct stats *s);
struct stats_worker *stats_worker(struct stats *s, size_t i);

/* Called by worker i when it starts using conf (a new reference is taken): folds the counts of
 * the previous configuration by name and starts fresh counters. */
void stats_worker_adopt(struct stats *s, size_t i, struct snap_conf *conf);

/* Fills out[nregions * ncdns] (region-major, in c's order) with the decisions counted so far
 * for each of c's (region, CDN) pairs by name, whatever configuration the workers counted them
 * under: folded totals plus live counters. Takes the stats mutex (control thread). */
void stats_decision_totals(struct stats *s, const struct cfg *c, uint64_t *out);

/* Appends the Prometheus exposition of every worker counter (requests, rejections,
 * connections, manifest cache and origin fetches, decisions) to out. */
void stats_write_prometheus(struct stats *s, struct buf *out);

#endif
