#include "steerd/h_beacon.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "steerd/beacon.h"
#include "steerd/cfg.h"
#include "steerd/cmcd.h"
#include "steerd/geo.h"
#include "steerd/h_redirect.h"
#include "steerd/http.h"
#include "steerd/httpparse.h"
#include "steerd/obs.h"
#include "steerd/policy.h"
#include "steerd/router.h"
#include "steerd/snap.h"
#include "steerd/stats.h"
#include "steerd/uri.h"
#include "steerd/util.h"

#define SOURCE_SEED 0x62656163u /* rate-limit keys: a hash of the client address */
#define RETRY_AFTER_MAX_S 3600

static void
put(struct buf *b, const char *s, size_t n)
{
    buf_append(b, s, n);
}

#define PUTS(b, lit) put((b), (lit), sizeof(lit) - 1)

bool
h_beacon_is_path(const char *path, size_t len)
{
    return len == sizeof(H_BEACON_PATH) - 1 && memcmp(path, H_BEACON_PATH, len) == 0;
}

static struct beacon_worker *
worker_ring(const struct http_reqctx *ctx)
{
    return ctx->env != NULL ? ctx->env->beacon : NULL;
}

static uint64_t
source_key(const struct netaddr *client)
{
    return util_hash64(client->b, sizeof(client->b), SOURCE_SEED);
}

/* One parsed report to the ring: attributed to its cdn key when configured, else to the CDN
 * the session gets (*chosen, or computed from the report's sid when chosen is NULL). */
struct ingest {
    struct beacon_worker *bw;
    const struct snap *snap;
    const struct uri_parts *u;
    const struct netaddr *client;
    uint32_t region;
    const uint32_t *chosen;
};

static void
ingest_report(const struct cmcd_report *r, void *arg)
{
    const struct ingest *in = arg;
    const struct cfg *cfg = in->snap->conf->cfg;
    struct obs_beacon b;
    uint32_t cdn;

    if (r->has == 0)
        return; /* an empty payload says nothing */
    if (in->chosen != NULL) {
        cdn = beacon_attribute(cfg, r, *in->chosen);
    } else {
        cdn = beacon_attribute(cfg, r, UINT32_MAX);
        if (cdn == UINT32_MAX) {
            struct h_redirect_session sess;
            h_redirect_session_from((r->has & CMCD_KEY_SID) ? r->sid : NULL, in->u, in->client,
                                    &sess);
            cdn = policy_choose_w(cfg, snap_weights(in->snap, in->region), in->snap->up, in->region,
                                  sess.hash)
                      .cdn;
        }
    }
    obs_beacon_from_cmcd(r, &b);
    beacon_worker_push(in->bw, in->snap->conf->generation, cdn, in->region, &b);
}

/* The CMCD-* headers of req into vals/lens; true when at least one is there. */
static bool
find_cmcd_headers(const struct httpp_request *req, const char *vals[CMCD_NHEADERS],
                  size_t lens[CMCD_NHEADERS])
{
    bool any = false;
    for (size_t i = 0; i < CMCD_NHEADERS; i++) {
        vals[i] = NULL;
        lens[i] = 0;
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct httpp_header *h = &req->headers[i];
        /* CMCD-Object and CMCD-Status are 11 bytes, CMCD-Request and CMCD-Session 12 */
        if (h->name.len < 11 || h->name.len > 12 || (h->name.p[0] | 0x20) != 'c')
            continue;
        int k = cmcd_header_index(h->name.p, h->name.len);
        if (k < 0)
            continue;
        vals[k] = h->value.p;
        lens[k] = h->value.len;
        any = true;
    }
    return any;
}

/* Query argument first (what players send when not in header mode), else the headers. */
static void
ingest_request_cmcd(const struct ingest *in, const struct httpp_request *req, bool has_query,
                    bool has_headers)
{
    struct cmcd_report r;
    enum cmcd_status st = CMCD_ABSENT;

    if (has_query)
        st = cmcd_parse_query(in->u->query, in->u->query_len, &r);
    if (st == CMCD_ABSENT && has_headers) {
        const char *vals[CMCD_NHEADERS];
        size_t lens[CMCD_NHEADERS];
        find_cmcd_headers(req, vals, lens);
        st = cmcd_parse_headers(vals, lens, &r);
    }
    if (st == CMCD_OK)
        ingest_report(&r, (void *)in);
    else if (st != CMCD_ABSENT)
        beacon_worker_count_bad(in->bw, 1);
}

static bool
query_has_cmcd(const struct uri_parts *u)
{
    size_t vlen = 0;
    return u->query != NULL && uri_query_param(u->query, u->query_len, "CMCD", &vlen) != NULL;
}

void
h_beacon_note_request(const struct http_reqctx *ctx, const struct uri_parts *u,
                      const struct netaddr *client, uint32_t region, uint32_t chosen)
{
    struct beacon_worker *bw = worker_ring(ctx);
    const char *vals[CMCD_NHEADERS];
    size_t lens[CMCD_NHEADERS];

    if (bw == NULL || ctx->req == NULL || http_env_overload(ctx->env) >= 1)
        return; /* overload level 1 and up: CMCD on player requests is not read */
    bool q = query_has_cmcd(u);
    bool h = find_cmcd_headers(ctx->req, vals, lens);
    if (!q && !h)
        return;
    if (!beacon_worker_admit(bw, source_key(client), util_now_ms(), NULL))
        return;
    struct ingest in = {
        .bw = bw,
        .snap = ctx->snap,
        .u = u,
        .client = client,
        .region = region,
        .chosen = &chosen,
    };
    ingest_request_cmcd(&in, ctx->req, q, h);
}

/* ---- POST /beacon --------------------------------------------------------------------- */

static int
answer(struct http_reqctx *ctx, int code, const char *extra, const char *reason, struct buf *out)
{
    const struct snap_conf *conf = ctx->snap->conf;
    size_t rlen = reason ? strlen(reason) : 0;

    buf_printf(out, "HTTP/1.1 %d %s\r\n", code, router_status_text(code));
    put(out, conf->cors_block, conf->cors_block_len);
    PUTS(out, "Cache-Control: no-store\r\n");
    if (extra != NULL)
        buf_puts(out, extra);
    put(out, ctx->date_line, ctx->date_len);
    if (ctx->close)
        PUTS(out, "Connection: close\r\n");
    if (code == 204) {
        PUTS(out, "\r\n");
    } else {
        buf_printf(out, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n\r\n",
                   rlen + 1);
        if (!ctx->head) {
            put(out, reason, rlen);
            PUTS(out, "\n");
        }
    }
    stats_request(ctx->stats, STATS_ROUTE_BEACON, code);
    return code;
}

/* application/cmcd, text/plain or application/json (parameters ignored), or no Content-Type. */
static bool
content_type_ok(const struct httpp_request *req)
{
    static const char *const ok[] = {"application/cmcd", "text/plain", "application/json"};
    const struct httpp_header *h = httpp_find(req, "Content-Type");
    if (h == NULL)
        return true;
    size_t n = 0;
    while (n < h->value.len && h->value.p[n] != ';')
        n++;
    while (n > 0 && (h->value.p[n - 1] == ' ' || h->value.p[n - 1] == '\t'))
        n--;
    for (size_t i = 0; i < UTIL_ARRAY_LEN(ok); i++) {
        if (strlen(ok[i]) == n && strncasecmp(h->value.p, ok[i], n) == 0)
            return true;
    }
    return false;
}

int
h_beacon_handle(struct http_reqctx *ctx, const struct uri_parts *u, struct buf *out)
{
    const struct httpp_request *req = ctx->req;
    const struct snap *snap = ctx->snap;
    struct beacon_worker *bw = worker_ring(ctx);
    struct netaddr client;
    struct geo_client gc;
    uint32_t retry_ms = 0;
    char extra[64];

    if (req->method_id != HTTPP_POST) {
        stats_add(&ctx->stats->rejected[STATS_REJECT_METHOD], 1);
        return answer(ctx, 405, "Allow: POST, OPTIONS\r\n", "method not allowed", out);
    }
    if (http_env_overload(ctx->env) >= 1) {
        /* Overload level 1 and up: acknowledged unread. A 204 keeps every player quiet (a 429
         * would only make some of them retry); the body was framed and is dropped. */
        stats_add(&ctx->stats->shed[STATS_SHED_BEACON], 1);
        return answer(ctx, 204, NULL, NULL, out);
    }
    if (!content_type_ok(req))
        return answer(ctx, 415, NULL,
                      "content type must be application/cmcd, text/plain or "
                      "application/json",
                      out);
    if (bw == NULL)
        return answer(ctx, 503, NULL, "beacon ingestion unavailable", out);

    h_redirect_client_addr(snap, req, ctx->peer, &client);
    if (!beacon_worker_admit(bw, source_key(&client), util_now_ms(), &retry_ms)) {
        uint32_t s = (retry_ms + 999) / 1000;
        snprintf(extra, sizeof(extra), "Retry-After: %u\r\n",
                 s < 1 ? 1u : (s > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : s));
        return answer(ctx, 429, extra, "too many beacons", out);
    }
    geo_lookup(snap->conf->geo, &client, &gc);
    struct ingest in = {
        .bw = bw,
        .snap = snap,
        .u = u,
        .client = &client,
        .region = gc.region,
        .chosen = NULL,
    };
    struct cmcd_body_result res = {0};
    if (ctx->body_len > 0)
        cmcd_parse_body(ctx->body, ctx->body_len, ingest_report, &in, &res);
    beacon_worker_count_bad(bw, res.bad);
    /* CMCD on the beacon request itself counts too (same token). */
    const char *vals[CMCD_NHEADERS];
    size_t lens[CMCD_NHEADERS];
    bool q = query_has_cmcd(u);
    bool h = find_cmcd_headers(req, vals, lens);
    if (q || h)
        ingest_request_cmcd(&in, req, q, h);

    if (res.ok == 0 && res.bad > 0)
        return answer(ctx, 400, NULL, "bad CMCD", out);
    return answer(ctx, 204, NULL, NULL, out);
}

int
h_beacon_options(struct http_reqctx *ctx, struct buf *out)
{
    const struct snap_conf *conf = ctx->snap->conf;

    PUTS(out, "HTTP/1.1 204 No Content\r\n");
    put(out, conf->cors_block, conf->cors_block_len);
    PUTS(out, "Access-Control-Allow-Methods: POST, OPTIONS\r\n"
              "Access-Control-Allow-Headers: Content-Type, CMCD-Object, CMCD-Request, "
              "CMCD-Session, CMCD-Status\r\nAccess-Control-Max-Age: 86400\r\n");
    put(out, ctx->date_line, ctx->date_len);
    if (ctx->close)
        PUTS(out, "Connection: close\r\n");
    PUTS(out, "\r\n");
    stats_request(ctx->stats, STATS_ROUTE_OPTIONS, 204);
    return 204;
}
