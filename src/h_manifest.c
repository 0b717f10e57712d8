#include "steerd/h_manifest.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "steerd/cfg.h"
#include "steerd/dash.h"
#include "steerd/fetch.h"
#include "steerd/geo.h"
#include "steerd/h_beacon.h"
#include "steerd/h_redirect.h"
#include "steerd/h_steer.h"
#include "steerd/hls.h"
#include "steerd/http.h"
#include "steerd/httpparse.h"
#include "steerd/log.h"
#include "steerd/mcache.h"
#include "steerd/policy.h"
#include "steerd/rcache.h"
#include "steerd/router.h"
#include "steerd/snap.h"
#include "steerd/stats.h"
#include "steerd/uri.h"
#include "steerd/util.h"

#define ORIGIN_URL_MAX (CFG_URL_MAX + 4 * URI_MAX_TARGET + 16)
#define NESTED_QUERY_MAX 32
#define SCRATCH_KEEP_CAP (1024 * 1024) /* a larger rewrite buffer is freed after use */
#define OUTPUT_SLACK (1024 * 1024)
#define OUTPUT_MAX ((size_t)512 * 1024 * 1024)
#define LOG_INTERVAL_MS 1000
/* Rendered answers kept per worker (see rcache.h): slots, total bytes, largest answer. */
#define RENDER_CACHE_SLOTS 512
#define RENDER_CACHE_BYTES ((size_t)16 * 1024 * 1024)
#define RENDER_CACHE_ENTRY ((size_t)1024 * 1024)
#define CT_HLS "application/vnd.apple.mpegurl"
#define CT_DASH "application/dash+xml"

/* The handler's state on one worker; used only on that worker's thread. */
struct mworker {
    struct mcache *mc;
    struct fetch *fetch; /* NULL when it could not be created: manifests misses get 503 */
    struct http_server *srv;
    uint32_t index;
    struct mreq *flights; /* requests whose origin fetch runs on this worker */
    struct buf scratch;   /* rewrite output */
    struct rcache *rc;    /* renderings for reuse, made with the placeholder session */
    uint64_t rc_gen;      /* the configuration generation of rc's entries */
    uint64_t placeholder; /* the session every rendering is made for (random per worker) */
    uint32_t *slots;      /* where the placeholder's hex digits are in mw->scratch */
    size_t nslots, slots_cap;
    uint64_t last_log_ms;
    uint64_t suppressed; /* origin failures not logged since last_log_ms */
};

/* Who the answer is for: everything the rewrite needs, copied out of the request. */
struct decision {
    enum cfg_manifest_mode mode; /* rewrite or steering (redirect never gets here) */
    uint32_t region;
    uint64_t session;
    uint32_t rank[CFG_MAX_CDNS]; /* cdn indexes in the snap's cfg, best first */
    size_t nrank;
};

/* A manifest request that could not be answered at once. */
struct mreq {
    struct mworker *mw;
    struct http_async *async;
    struct mcache_waiter waiter; /* waiter.arg = this */
    struct mreq *prev, *next;    /* mw->flights while its fetch runs */
    uint64_t fetch_id;
    struct mcache_blob *stale; /* the expired body a conditional fetch revalidates */
    enum mcache_kind kind;
    char *origin_url;
    size_t origin_len;
    struct decision dec;
};

/* ---- classification and decision -------------------------------------------------------- */

static bool
ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

enum h_manifest_kind
h_manifest_kind_of(const char *path, size_t len)
{
    if (ends_with(path, len, ".m3u8"))
        return H_MANIFEST_HLS;
    if (ends_with(path, len, ".mpd"))
        return H_MANIFEST_DASH;
    return H_MANIFEST_NONE;
}

static int
hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The steerd_s session hash of the query: exactly 16 hex digits. */
static bool
carried_session(const struct uri_parts *u, uint64_t *out)
{
    size_t vlen = 0;
    const char *v =
        u->query ? uri_query_param(u->query, u->query_len, H_MANIFEST_SESSION_PARAM, &vlen) : NULL;
    if (v == NULL || vlen != 16)
        return false;
    uint64_t h = 0;
    for (size_t i = 0; i < 16; i++) {
        int d = hex_val(v[i]);
        if (d < 0)
            return false;
        h = h << 4 | (uint64_t)d;
    }
    *out = h;
    return true;
}

/* The CDN a steerd_cdn=<id> pin names, when it is allowed in region and up; else -1. */
static long
pinned_cdn(const struct snap *snap, const struct uri_parts *u, uint32_t region)
{
    const struct cfg *cfg = snap->conf->cfg;
    size_t vlen = 0;
    const char *v = u->query ? uri_query_param(u->query, u->query_len, HLS_CDN_PARAM, &vlen) : NULL;
    if (v == NULL || vlen == 0 || vlen > CFG_ID_MAX || region >= cfg->nregions)
        return -1;
    for (size_t i = 0; i < cfg->ncdns; i++) {
        if (strlen(cfg->cdns[i].id) != vlen || memcmp(cfg->cdns[i].id, v, vlen) != 0)
            continue;
        const struct cfg_rule *r = &cfg->rules[region];
        bool allowed = r->weights[i] > 0;
        for (size_t k = 0; k < r->nfailover && !allowed; k++)
            allowed = r->failover[k] == i;
        return allowed && snap->up[i] ? (long)i : -1;
    }
    return -1;
}

static void
decide(const struct http_reqctx *ctx, const struct uri_parts *u, struct decision *d)
{
    const struct snap *snap = ctx->snap;
    const struct cfg *cfg = snap->conf->cfg;
    struct netaddr client;
    struct geo_client gc;

    h_redirect_client_addr(snap, ctx->req, ctx->peer, &client);
    geo_lookup(snap->conf->geo, &client, &gc);
    d->region = gc.region;
    d->mode = cfg_manifest_mode_for(cfg, u->path, u->path_len, gc.region);
    if (!carried_session(u, &d->session)) {
        struct h_redirect_session sess;
        h_redirect_session_of(ctx->req, u, &client, &sess);
        d->session = sess.hash;
    }
    uint32_t ranked[CFG_MAX_CDNS];
    size_t n =
        policy_rank_w(cfg, snap_weights(snap, gc.region), snap->up, gc.region, d->session, ranked);
    long pin = pinned_cdn(snap, u, gc.region);
    d->nrank = 0;
    if (pin >= 0)
        d->rank[d->nrank++] = (uint32_t)pin;
    for (size_t i = 0; i < n; i++) {
        if (pin < 0 || ranked[i] != (uint32_t)pin)
            d->rank[d->nrank++] = ranked[i];
    }
    h_beacon_note_request(ctx, u, &client, gc.region, d->rank[0]);
    if (cfg->decision_log_sample > 0 && d->nrank > 0) {
        struct policy_decision pd =
            policy_choose_w(cfg, snap_weights(snap, gc.region), snap->up, gc.region, d->session);
        pd.cdn = d->rank[0]; /* a pinned copy names its own CDN */
        h_redirect_log_decision(snap, "manifest", gc.region, d->session, pd);
    }
}

/* origin.base_url + path + the query without steerd_* and CMCD (what the origin serves does not
 * depend on them, and CMCD changes with every request). Returns the length, 0 when too long. */
static size_t
origin_url(const struct cfg *cfg, const struct uri_parts *u, char *out, size_t outsz)
{
    struct uri_parts v;
    char q[URI_MAX_TARGET + 1];
    size_t qlen = 0;

    memcpy(v.path, u->path, u->path_len + 1);
    v.path_len = u->path_len;
    for (size_t i = 0; u->query != NULL && i < u->query_len;) {
        const char *pair = u->query + i;
        const char *amp = memchr(pair, '&', u->query_len - i);
        size_t plen = amp ? (size_t)(amp - pair) : u->query_len - i;
        const char *eq = memchr(pair, '=', plen);
        size_t klen = eq ? (size_t)(eq - pair) : plen;
        bool drop = (klen >= 7 && memcmp(pair, "steerd_", 7) == 0) ||
                    (klen == 4 && memcmp(pair, "CMCD", 4) == 0);
        if (!drop && plen > 0) {
            if (qlen > 0)
                q[qlen++] = '&';
            memcpy(q + qlen, pair, plen);
            qlen += plen;
        }
        i += plen + 1;
    }
    q[qlen] = '\0';
    v.query = qlen > 0 ? q : NULL;
    v.query_len = qlen;
    return uri_build_location(cfg->origin_base_url, strlen(cfg->origin_base_url), &v, out, outsz);
}

/* ---- rendering ------------------------------------------------------------------------- */

static uint64_t
ttl_ms(const struct cfg *cfg, const struct mcache_blob *b)
{
    if (!b->live)
        return (uint64_t)cfg->manifest.vod_ttl_s * 1000;
    uint64_t min = cfg->manifest.live_ttl_min_ms;
    return b->live_hint_ms > min ? b->live_hint_ms : min;
}

static size_t
output_cap(size_t in_len, size_t ncdns)
{
    /* Media playlists grow with every URI written absolute, multivariant ones with each
     * redundant copy: a generous bound that still stops a runaway answer. */
    uint64_t cap = (uint64_t)in_len * (16 + 2 * (uint64_t)ncdns) + OUTPUT_SLACK;
    return cap > OUTPUT_MAX ? OUTPUT_MAX : (size_t)cap;
}

struct render_info {
    bool live;
    uint32_t live_hint_ms;
};

/* Rewrites body for the decision d into mw->scratch. Returns 0, or an HTTP status with a short
 * reason. */
static int
render(struct mworker *mw, const struct snap *snap, const struct decision *d, enum mcache_kind kind,
       const char *url, const char *body, size_t len, struct render_info *ri, const char **reason)
{
    const struct cfg *cfg = snap->conf->cfg;
    const char *self = cfg->manifest.public_base_url ? cfg->manifest.public_base_url : "";
    char nq[NESTED_QUERY_MAX];
    size_t cap = output_cap(len, d->nrank);

    /* Rendered for the worker's placeholder session: each request writes its own session into
     * the placeholder's places (finish_render, answer_body), so a rendering serves every
     * request with the same ranking. */
    snprintf(nq, sizeof(nq), "%s=%016" PRIx64, H_MANIFEST_SESSION_PARAM, mw->placeholder);
    /* steering mode: the session's steering server URL; none without public_base_url */
    char steer[CFG_URL_MAX + 64];
    bool steering = d->mode == CFG_MANIFEST_STEERING &&
                    h_steer_server_uri(cfg, kind == MCACHE_HLS ? STEERING_HLS : STEERING_DASH,
                                       mw->placeholder, steer, sizeof(steer)) > 0;
    buf_free(&mw->scratch);
    if (kind == MCACHE_HLS) {
        struct hls_target t[CFG_MAX_CDNS];
        struct hls_info info;
        for (size_t i = 0; i < d->nrank; i++) {
            const struct cfg_cdn *c = &cfg->cdns[d->rank[i]];
            t[i] = (struct hls_target){c->id, c->base_url, c->base_url_len};
        }
        struct hls_opts o = {
            .playlist_url = url,
            .origin_base = cfg->origin_base_url,
            .cdns = t,
            .ncdns = d->nrank,
            .self_base = self,
            .nested_query = nq,
            .redundant = cfg->manifest.redundant_streams,
            .steering_uri = steering ? steer : NULL,
            .steering_keep = cfg->steering.existing_tag == CFG_STEERING_KEEP,
            .max_output = cap,
        };
        buf_init(&mw->scratch, cap + 2 * HLS_MAX_LINE + ORIGIN_URL_MAX);
        enum hls_status st = hls_rewrite(body, len, &o, &mw->scratch, &info);
        switch (st) {
        case HLS_OK:
            ri->live = !info.multivariant && !info.endlist;
            ri->live_hint_ms = info.target_duration_s * 500;
            return 0;
        case HLS_NOT_PLAYLIST:
            *reason = "origin answer is not an HLS playlist";
            return 502;
        case HLS_BAD:
            *reason = "origin playlist is malformed";
            return 502;
        case HLS_TOO_LARGE:
            *reason = "rewritten playlist too large";
            return 502;
        }
        *reason = "origin playlist is malformed";
        return 502;
    }

    struct dash_target t[DASH_MAX_CDNS];
    struct dash_info info;
    size_t n = d->nrank < DASH_MAX_CDNS ? d->nrank : DASH_MAX_CDNS;
    for (size_t i = 0; i < n; i++) {
        const struct cfg_cdn *c = &cfg->cdns[d->rank[i]];
        t[i] = (struct dash_target){c->id, c->base_url, c->base_url_len};
    }
    struct dash_opts o = {
        .mpd_url = url,
        .origin_base = cfg->origin_base_url,
        .cdns = t,
        .ncdns = n,
        .self_base = self,
        .nested_query = nq,
        .steering_uri = steering ? steer : NULL,
        .query_before_start = cfg->steering.query_before_start,
        .steering_keep = cfg->steering.existing_tag == CFG_STEERING_KEEP,
        .max_input = cfg->origin.max_manifest_bytes,
        .max_output = cap,
    };
    buf_init(&mw->scratch, 0);
    enum dash_status st = dash_rewrite(body, len, &o, &mw->scratch, &info);
    switch (st) {
    case DASH_OK:
        ri->live = info.dynamic;
        ri->live_hint_ms = info.minimum_update_period_ms / 2;
        return 0;
    case DASH_BAD_XML:
        *reason = "origin MPD is not well-formed XML";
        return 502;
    case DASH_FORBIDDEN:
        *reason = "origin MPD uses forbidden XML (DOCTYPE, entities, XInclude)";
        return 502;
    case DASH_NOT_MPD:
        *reason = "origin answer is not an MPD";
        return 502;
    case DASH_TOO_LARGE:
        *reason = "MPD too large";
        return 502;
    case DASH_LIMIT:
        *reason = "origin MPD exceeds the parser limits";
        return 502;
    case DASH_BAD_OPTS:
        *reason = "MPD cannot be rewritten for this configuration";
        return 502;
    }
    *reason = "origin MPD is malformed";
    return 502;
}

static void
scratch_release(struct mworker *mw)
{
    if (mw->scratch.cap > SCRATCH_KEEP_CAP)
        buf_free(&mw->scratch);
    else
        buf_reset(&mw->scratch);
}

/* max_age 0: "no-store" (errors); else "private, max-age=N". */
static void
write_head(const struct http_reqctx *ctx, int code, const char *ctype, size_t clen,
           uint64_t max_age, const struct decision *d, struct buf *out)
{
    const struct snap_conf *conf = ctx->snap->conf;
    buf_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", code,
               router_status_text(code), ctype, clen);
    if (max_age == 0)
        buf_puts(out, "Cache-Control: no-store\r\n");
    else
        buf_printf(out, "Cache-Control: private, max-age=%llu\r\n", (unsigned long long)max_age);
    if (d != NULL && d->nrank > 0)
        buf_printf(out, "X-Steerd-CDN: %s\r\n", conf->cfg->cdns[d->rank[0]].id);
    buf_append(out, conf->cors_block, conf->cors_block_len);
    buf_append(out, ctx->date_line, ctx->date_len);
    if (ctx->close)
        buf_puts(out, "Connection: close\r\n");
    buf_puts(out, "\r\n");
}

/* A plain-text error answer of the manifest route (CORS, X-Steerd-CDN when decided). */
static int
answer_error(struct http_reqctx *ctx, const struct decision *d, int code, const char *reason,
             struct buf *out)
{
    size_t rlen = strlen(reason);
    write_head(ctx, code, "text/plain; charset=utf-8", rlen + 1, 0, d, out);
    if (!ctx->head) {
        buf_append(out, reason, rlen);
        buf_puts(out, "\n");
    }
    stats_request(ctx->stats, STATS_ROUTE_MANIFEST, code);
    return code;
}

/* Writes session as 16 hex digits at each of the n slot offsets of body. */
static void
patch_session(char *body, const uint32_t *slots, size_t n, uint64_t session)
{
    char hex[17];
    snprintf(hex, sizeof(hex), "%016" PRIx64, session);
    for (size_t i = 0; i < n; i++)
        memcpy(body + slots[i], hex, 16);
}

/* A rendered manifest as a 200, with the request's session written into its slots. */
static int
answer_body(struct http_reqctx *ctx, const struct decision *d, enum mcache_kind kind,
            const char *body, size_t len, const uint32_t *slots, size_t nslots, uint64_t expires_ms,
            uint64_t now_ms, struct buf *out)
{
    uint64_t left = expires_ms > now_ms ? (expires_ms - now_ms + 999) / 1000 : 0;
    write_head(ctx, 200, kind == MCACHE_HLS ? CT_HLS : CT_DASH, len, left > 0 ? left : 1, d, out);
    if (!ctx->head && buf_append(out, body, len) == 0)
        patch_session(out->data + out->len - len, slots, nslots, d->session);
    stats_request(ctx->stats, STATS_ROUTE_MANIFEST, 200);
    stats_decision(ctx->stats, d->region, d->rank[0]);
    return 200;
}

/* The rewritten manifest in mw->scratch (its slots in mw->slots) as a 200. */
static int
answer_ok(struct http_reqctx *ctx, struct mworker *mw, const struct decision *d,
          enum mcache_kind kind, uint64_t expires_ms, uint64_t now_ms, struct buf *out)
{
    int code = answer_body(ctx, d, kind, mw->scratch.data, mw->scratch.len, mw->slots, mw->nslots,
                           expires_ms, now_ms, out);
    stats_add(&ctx->stats->manifest_render[STATS_RENDER_REWRITTEN], 1);
    scratch_release(mw);
    return code;
}

/* After a rendering into mw->scratch: records in mw->slots where the placeholder session's hex
 * digits are (after each "steerd_s="), and keeps the rendering for reuse under k when k is not
 * NULL. */
static void
finish_render(struct mworker *mw, const struct rcache_key *k)
{
    static const char param[] = H_MANIFEST_SESSION_PARAM "=";
    const size_t plen = sizeof(param) - 1;
    char hex[17];
    const char *p = mw->scratch.data, *end = p + mw->scratch.len;

    snprintf(hex, sizeof(hex), "%016" PRIx64, mw->placeholder);
    mw->nslots = 0;
    while (p != NULL && (size_t)(end - p) >= plen + 16) {
        const char *at = memmem(p, (size_t)(end - p), param, plen);
        if (at == NULL || (size_t)(end - at) < plen + 16)
            break;
        if (memcmp(at + plen, hex, 16) == 0) {
            if (mw->nslots == mw->slots_cap) {
                mw->slots_cap = mw->slots_cap ? 2 * mw->slots_cap : 64;
                mw->slots = xrealloc(mw->slots, mw->slots_cap * sizeof(*mw->slots));
            }
            mw->slots[mw->nslots++] = (uint32_t)(at + plen - mw->scratch.data);
        }
        p = at + plen;
    }
    if (k != NULL)
        rcache_put(mw->rc, k, mw->scratch.data, mw->scratch.len, mw->slots, mw->nslots);
}

/* Renderings are kept for the newest configuration generation seen: after a reload no earlier
 * one can be asked for again, so they go at once. Returns whether gen is that generation (a
 * request still holding an older snapshot neither clears nor adds). */
static bool
rc_sync(struct mworker *mw, uint64_t gen)
{
    if (gen > mw->rc_gen) {
        rcache_clear(mw->rc);
        mw->rc_gen = gen;
    }
    return gen == mw->rc_gen;
}

/* The answer for a cache result: the blob rewritten for d (or its rendering kept from an earlier
 * request with the same ranking), or the remembered error. */
static int
answer_result(struct http_reqctx *ctx, struct mworker *mw, const struct decision *d,
              const char *url, const struct mcache_result *res, struct buf *out)
{
    if (res->blob == NULL)
        return answer_error(ctx, d, res->status ? res->status : 502,
                            res->reason[0] ? res->reason : "origin failed", out);
    struct rcache_key rk = {
        .blob = res->blob,
        .conf_gen = ctx->snap->conf->generation,
        .variant = (uint32_t)d->mode,
        .rank = d->rank,
        .nrank = d->nrank,
    };
    struct rcache_hit hit;
    rc_sync(mw, rk.conf_gen);
    if (rcache_get(mw->rc, &rk, &hit)) {
        stats_add(&ctx->stats->manifest_render[STATS_RENDER_REUSED], 1);
        return answer_body(ctx, d, res->blob->kind, hit.body, hit.len, hit.slots, hit.nslots,
                           res->expires_ms, util_now_ms(), out);
    }
    struct render_info ri;
    const char *reason = NULL;
    int code = render(mw, ctx->snap, d, res->blob->kind, url, res->blob->body, res->blob->len, &ri,
                      &reason);
    if (code != 0) {
        scratch_release(mw);
        return answer_error(ctx, d, code, reason, out);
    }
    finish_render(mw, rk.conf_gen == mw->rc_gen ? &rk : NULL);
    return answer_ok(ctx, mw, d, res->blob->kind, res->expires_ms, util_now_ms(), out);
}

/* ---- requests that wait ---------------------------------------------------------------- */

static void
mreq_free(struct mreq *m)
{
    mcache_blob_unref(m->stale);
    mcache_result_clear(&m->waiter.res);
    free(m->origin_url);
    free(m);
}

/* On the waiter's worker: answers with the result mcache_complete filled in. */
static void
deliver_task(void *arg)
{
    struct mreq *m = arg;
    if (http_async_alive(m->async)) {
        struct http_reqctx *ctx = http_async_ctx(m->async);
        answer_result(ctx, m->mw, &m->dec, m->origin_url, &m->waiter.res, http_async_out(m->async));
    }
    http_async_finish(m->async);
    mreq_free(m);
}

/* Hands every waiter of list to its worker; one whose worker is gone is freed here. */
static void
deliver_all(struct http_server *srv, struct mcache_waiter *list)
{
    while (list != NULL) {
        struct mcache_waiter *next = list->next;
        struct mreq *m = list->arg;
        list->next = NULL;
        if (http_server_post(srv, list->worker, deliver_task, m) != 0) {
            http_async_abandon(m->async);
            mreq_free(m);
        }
        list = next;
    }
}

void
h_manifest_release_waiter(struct mcache_waiter *w, void *ctx)
{
    struct mreq *m = w->arg;
    (void)ctx;
    http_async_abandon(m->async);
    mreq_free(m);
}

static void
flight_unlink(struct mreq *m)
{
    struct mworker *mw = m->mw;
    if (m->prev)
        m->prev->next = m->next;
    else
        mw->flights = m->next;
    if (m->next)
        m->next->prev = m->prev;
    m->prev = m->next = NULL;
}

static enum stats_origin
origin_stat(enum fetch_status st)
{
    switch (st) {
    case FETCH_OK:
        return STATS_ORIGIN_OK;
    case FETCH_NOT_MODIFIED:
        return STATS_ORIGIN_NOT_MODIFIED;
    case FETCH_HTTP_ERROR:
        return STATS_ORIGIN_HTTP_ERROR;
    case FETCH_TIMEOUT:
        return STATS_ORIGIN_TIMEOUT;
    case FETCH_TOO_LARGE:
        return STATS_ORIGIN_TOO_LARGE;
    case FETCH_FAILED:
        return STATS_ORIGIN_FAILED;
    case FETCH_LOCAL_ERROR:
        return STATS_ORIGIN_LOCAL_ERROR;
    }
    return STATS_ORIGIN_FAILED;
}

static void
log_origin_failure(struct mworker *mw, const char *url, const char *what)
{
    uint64_t now = util_now_ms();
    if (now - mw->last_log_ms < LOG_INTERVAL_MS) {
        mw->suppressed++;
        return;
    }
    if (mw->suppressed > 0)
        log_msg(LOG_WARN, "manifest", "origin fetch of %s failed: %s (%llu more not logged)", url,
                what, (unsigned long long)mw->suppressed);
    else
        log_msg(LOG_WARN, "manifest", "origin fetch of %s failed: %s", url, what);
    mw->last_log_ms = now;
    mw->suppressed = 0;
}

/* Turns a fetch result into what the cache remembers. The fetcher's rendering of a new body
 * stays in mw->scratch (rendered = true). */
static void
fill_from_fetch(struct mreq *m, const struct cfg *cfg, const struct snap *snap,
                const struct fetch_result *r, uint64_t now, struct mcache_fill *fill,
                struct mcache_blob **newblob, bool *rendered)
{
    struct mworker *mw = m->mw;
    uint64_t err_exp = now + cfg->manifest.error_ttl_ms;
    char code[32];

    *rendered = false;
    fill->kind = MCACHE_FILL_FAILED;
    fill->expires_ms = err_exp;
    fill->status = 502;
    switch (r->status) {
    case FETCH_OK: {
        struct render_info ri;
        const char *reason = NULL;
        int st = render(mw, snap, &m->dec, m->kind, m->origin_url, r->body, r->len, &ri, &reason);
        if (st != 0) {
            scratch_release(mw);
            fill->status = st;
            fill->reason = reason;
            log_origin_failure(mw, m->origin_url, reason);
            return;
        }
        struct mcache_blob *b =
            mcache_blob_new(m->kind, r->body, r->len, r->etag, r->last_modified, now);
        b->live = ri.live;
        b->live_hint_ms = ri.live_hint_ms;
        fill->kind = MCACHE_FILL_STORE;
        fill->blob = b;
        fill->expires_ms = now + ttl_ms(cfg, b);
        *newblob = b;
        *rendered = true;
        return;
    }
    case FETCH_NOT_MODIFIED:
        fill->kind = MCACHE_FILL_REVALIDATED;
        fill->expires_ms = m->stale ? now + ttl_ms(cfg, m->stale) : now;
        return;
    case FETCH_HTTP_ERROR:
        if (r->http_status == 404) {
            fill->status = 404;
            fill->reason = "not found at the origin";
            return;
        }
        snprintf(code, sizeof(code), "origin answered %ld", r->http_status);
        fill->reason = "origin answered with an error";
        log_origin_failure(mw, m->origin_url, code);
        return;
    case FETCH_TIMEOUT:
        fill->status = 504;
        fill->reason = "origin timed out";
        break;
    case FETCH_TOO_LARGE:
        fill->reason = "origin manifest too large";
        break;
    case FETCH_FAILED:
        fill->reason = "origin unreachable";
        break;
    case FETCH_LOCAL_ERROR:
        /* not the origin's fault: answered, never remembered */
        fill->status = 503;
        fill->reason = "origin fetch failed locally";
        fill->expires_ms = now;
        break;
    }
    log_origin_failure(mw, m->origin_url, r->error ? r->error : fill->reason);
}

/* On the fetcher's worker: the origin answered (or not). Stores the result, hands it to the
 * waiters, and answers the fetcher's own request. */
static void
on_fetched(void *arg, const struct fetch_result *r)
{
    struct mreq *m = arg;
    struct mworker *mw = m->mw;
    struct http_reqctx *ctx = http_async_ctx(m->async);
    const struct cfg *cfg = ctx->snap->conf->cfg;
    uint64_t now = util_now_ms();
    struct mcache_fill fill = {0};
    struct mcache_blob *newblob = NULL;
    struct mcache_result self;
    bool rendered = false;

    m->fetch_id = 0;
    flight_unlink(m);
    stats_add(&ctx->stats->origin_fetch[origin_stat(r->status)], 1);
    if (r->status == FETCH_NOT_MODIFIED)
        stats_add(&ctx->stats->manifest_cache[STATS_MCACHE_STALE_REVALIDATED], 1);
    fill_from_fetch(m, cfg, ctx->snap, r, now, &fill, &newblob, &rendered);
    struct mcache_waiter *list =
        mcache_complete(mw->mc, m->origin_url, m->origin_len, &fill, now, &self);
    mcache_blob_unref(newblob);
    if (rendered) {
        struct rcache_key rk = {
            .blob = self.blob,
            .conf_gen = ctx->snap->conf->generation,
            .variant = (uint32_t)m->dec.mode,
            .rank = m->dec.rank,
            .nrank = m->dec.nrank,
        };
        bool keep = self.blob != NULL && rc_sync(mw, rk.conf_gen);
        finish_render(mw, keep ? &rk : NULL);
    }
    deliver_all(mw->srv, list);

    if (http_async_alive(m->async)) {
        struct buf *out = http_async_out(m->async);
        if (rendered && self.blob != NULL)
            answer_ok(ctx, mw, &m->dec, m->kind, self.expires_ms, util_now_ms(), out);
        else
            answer_result(ctx, mw, &m->dec, m->origin_url, &self, out);
    } else if (rendered) {
        scratch_release(mw);
    }
    mcache_result_clear(&self);
    http_async_finish(m->async);
    mreq_free(m);
}

/* ---- worker hooks --------------------------------------------------------------------- */

void *
h_manifest_worker_start(struct http_env *env)
{
    if (env->shared == NULL)
        return NULL;
    struct mworker *mw = xcalloc(1, sizeof(*mw));
    mw->mc = env->shared;
    mw->srv = env->server;
    mw->index = env->worker;
    buf_init(&mw->scratch, 0);
    mw->rc = rcache_new(RENDER_CACHE_SLOTS, RENDER_CACHE_BYTES, RENDER_CACHE_ENTRY);
    /* A session no viewer will have: 64 bits from the clock and this worker's address. */
    uint64_t seed[4] = {(uint64_t)(uintptr_t)mw, util_wall_ms(), util_now_ms(), env->worker};
    mw->placeholder = util_hash64(seed, sizeof(seed), 0x5e55105ULL);
    mw->fetch = fetch_new(env->base);
    if (mw->fetch == NULL)
        log_msg(LOG_ERR, "manifest",
                "worker %u: cannot create the origin client; manifest misses get 503", env->worker);
    return mw;
}

void
h_manifest_worker_stop(struct http_env *env)
{
    struct mworker *mw = env->local;
    if (mw == NULL)
        return;
    /* Fetches still running end here: their waiters (on any worker) get a 503, and nothing is
     * remembered. The requests' own connections are already closed. */
    while (mw->flights != NULL) {
        struct mreq *m = mw->flights;
        struct mcache_result self;
        struct mcache_fill fill = {
            .kind = MCACHE_FILL_FAILED, .status = 503, .reason = "shutting down"};
        uint64_t now = util_now_ms();
        fill.expires_ms = now;
        fetch_cancel(mw->fetch, m->fetch_id);
        flight_unlink(m);
        struct mcache_waiter *list =
            mcache_complete(mw->mc, m->origin_url, m->origin_len, &fill, now, &self);
        mcache_result_clear(&self);
        deliver_all(mw->srv, list);
        http_async_finish(m->async);
        mreq_free(m);
    }
    fetch_free(mw->fetch);
    rcache_free(mw->rc);
    free(mw->slots);
    buf_free(&mw->scratch);
    free(mw);
    env->local = NULL;
}

/* ---- the handler ------------------------------------------------------------------------ */

/* Starts the origin fetch for m (the fetcher). Returns 0, or -1 when it could not start. */
static int
start_fetch(struct mreq *m, const struct cfg *cfg)
{
    struct mworker *mw = m->mw;
    if (mw->fetch == NULL)
        return -1;
    struct fetch_request rq = {
        .url = m->origin_url,
        .timeout_ms = cfg->origin.timeout_ms,
        .connect_timeout_ms = cfg->origin.connect_timeout_ms,
        .max_bytes = cfg->origin.max_manifest_bytes,
        .if_none_match = m->stale ? m->stale->etag : NULL,
        .if_modified_since = m->stale ? m->stale->last_modified : NULL,
        .allow = cfg->allow_targets,
        .nallow = cfg->nallow_targets,
    };
    m->fetch_id = fetch_start(mw->fetch, &rq, on_fetched, m);
    if (m->fetch_id == 0)
        return -1;
    m->prev = NULL;
    m->next = mw->flights;
    if (mw->flights)
        mw->flights->prev = m;
    mw->flights = m;
    return 0;
}

int
h_manifest_handle(struct http_reqctx *ctx, const struct uri_parts *u, struct buf *out)
{
    struct mworker *mw = ctx->env ? ctx->env->local : NULL;
    const struct cfg *cfg = ctx->snap->conf->cfg;
    struct decision d;
    char url[ORIGIN_URL_MAX];

    decide(ctx, u, &d);
    if (mw == NULL)
        return answer_error(ctx, &d, 503, "manifest service unavailable", out);
    if (cfg->origin_base_url == NULL)
        return answer_error(ctx, &d, 502, "no origin configured", out);
    size_t ulen = origin_url(cfg, u, url, sizeof(url));
    if (ulen == 0) {
        stats_add(&ctx->stats->rejected[STATS_REJECT_URI_TOO_LONG], 1);
        ctx->close = true;
        return answer_error(ctx, &d, 414, "uri too long", out);
    }

    struct mreq *m = xcalloc(1, sizeof(*m));
    m->mw = mw;
    m->dec = d;
    m->kind =
        h_manifest_kind_of(u->path, u->path_len) == H_MANIFEST_DASH ? MCACHE_DASH : MCACHE_HLS;
    m->origin_url = xstrndup(url, ulen);
    m->origin_len = ulen;
    m->waiter.worker = mw->index;
    m->waiter.arg = m;

    struct mcache_result res;
    uint64_t now = util_now_ms();
    int code;
    switch (mcache_lookup(mw->mc, url, ulen, now, &m->waiter, &res)) {
    case MCACHE_HIT:
    case MCACHE_ERROR:
        stats_add(&ctx->stats->manifest_cache[STATS_MCACHE_HIT], 1);
        code = answer_result(ctx, mw, &m->dec, m->origin_url, &res, out);
        mcache_result_clear(&res);
        mreq_free(m);
        return code;
    case MCACHE_WAIT:
        /* The result is posted to this worker, so it cannot arrive before we return. */
        stats_add(&ctx->stats->manifest_cache[STATS_MCACHE_COALESCED], 1);
        m->async = http_async_begin(ctx);
        return ROUTER_ASYNC;
    case MCACHE_FETCH:
        break;
    }
    stats_add(&ctx->stats->manifest_cache[STATS_MCACHE_MISS], 1);
    m->stale = res.blob;
    if (start_fetch(m, cfg) == 0) {
        /* fetch callbacks never run inside fetch_start: the token is in place first */
        m->async = http_async_begin(ctx);
        return ROUTER_ASYNC;
    }
    /* The fetch could not start (a local failure): answer now, release the waiters, remember
     * nothing. */
    stats_add(&ctx->stats->origin_fetch[STATS_ORIGIN_LOCAL_ERROR], 1);
    struct mcache_fill fill = {
        .kind = MCACHE_FILL_FAILED,
        .status = 503,
        .reason = "origin fetch could not start",
        .expires_ms = now,
    };
    struct mcache_result self;
    deliver_all(mw->srv, mcache_complete(mw->mc, url, ulen, &fill, now, &self));
    code = answer_result(ctx, mw, &m->dec, m->origin_url, &self, out);
    mcache_result_clear(&self);
    mreq_free(m);
    return code;
}
