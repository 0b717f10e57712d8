#include "steerd/h_redirect.h"

#include <string.h>
#include <strings.h>

#include "steerd/cfg.h"
#include "steerd/cmcd.h"
#include "steerd/h_beacon.h"
#include "steerd/httpparse.h"
#include "steerd/log.h"
#include "steerd/router.h"
#include "steerd/snap.h"
#include "steerd/stats.h"
#include "steerd/uri.h"
#include "steerd/util.h"

#define SESSION_SEED 0x5f3759df2b9c4e1dULL
#define LOCATION_MAX (CFG_URL_MAX + 4 * URI_MAX_TARGET + 16)

static void
session_fill(struct h_redirect_session *s, const char *sid, size_t sidlen,
             const struct uri_parts *u, const struct netaddr *client)
{
    if (sid != NULL && sidlen > 0 && sidlen <= H_REDIRECT_SID_MAX) {
        memcpy(s->sid, sid, sidlen);
        s->sid[sidlen] = '\0';
        s->hash = util_hash64(sid, sidlen, SESSION_SEED);
        return;
    }
    /* No sid: the client address and the content's first path segment ("/vod/..." -> "vod"),
     * so a viewer's segments of one title stick together. */
    s->sid[0] = '\0';
    const char *p = u->path + 1;
    const char *slash = memchr(p, '/', u->path_len - 1);
    size_t seglen = slash ? (size_t)(slash - p) : u->path_len - 1;
    uint64_t h = util_hash64(client->b, sizeof(client->b), SESSION_SEED);
    s->hash = util_hash64(p, seglen, h);
}

void
h_redirect_session_from(const char *sid, const struct uri_parts *u, const struct netaddr *client,
                        struct h_redirect_session *s)
{
    session_fill(s, sid, sid ? strlen(sid) : 0, u, client);
}

void
h_redirect_session_of(const struct httpp_request *req, const struct uri_parts *u,
                      const struct netaddr *client, struct h_redirect_session *s)
{
    const char *sid = NULL;
    size_t sidlen = 0;

    if (u->query != NULL) {
        size_t vlen = 0;
        const char *v = uri_query_param(u->query, u->query_len, "CMCD", &vlen);
        char dec[1024];
        long dlen = v ? uri_decode(v, vlen, dec, sizeof(dec)) : -1;
        if (dlen > 0)
            sid = cmcd_find_sid(dec, (size_t)dlen, &sidlen);
        if (sid != NULL) {
            session_fill(s, sid, sidlen, u, client);
            return;
        }
    }
    const struct httpp_header *h = httpp_find(req, "CMCD-Session");
    if (h != NULL)
        sid = cmcd_find_sid(h->value.p, h->value.len, &sidlen);
    session_fill(s, sid, sidlen, u, client);
}

void
h_redirect_client_addr(const struct snap *snap, const struct httpp_request *req,
                       const struct netaddr *peer, struct netaddr *out)
{
    const struct geo *geo = snap->conf->geo;
    if (!geo_is_trusted(geo, peer)) {
        *out = *peer;
        return;
    }
    /* Several X-Forwarded-For fields form one list; the last field holds its right end. */
    const struct httpp_header *xff = NULL;
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct httpp_header *h = &req->headers[i];
        if (h->name.len == 15 && strncasecmp(h->name.p, "X-Forwarded-For", 15) == 0)
            xff = h;
    }
    geo_client_addr(geo, peer, xff ? xff->value.p : NULL, xff ? xff->value.len : 0, out);
}

static void
put(struct buf *b, const char *s, size_t n)
{
    buf_append(b, s, n);
}

#define PUTS(b, lit) put((b), (lit), sizeof(lit) - 1)

void
h_redirect_log_decision(const struct snap *snap, const char *answer, uint32_t region,
                        uint64_t session_hash, struct policy_decision d)
{
    const struct cfg *cfg = snap->conf->cfg;
    double sample = cfg->decision_log_sample;
    uint64_t h = util_hash64(&session_hash, sizeof(session_hash), 0x5e1ec7ULL);
    if (sample <= 0 || (double)(h >> 11) * 0x1p-53 >= sample)
        return;
    uint32_t r = region < cfg->nregions ? region : cfg->default_region;
    const uint32_t *w = snap_weights(snap, r);
    const uint32_t *use = w ? w : cfg->rules[r].weights;
    uint64_t sum = 0;
    for (size_t i = 0; i < cfg->ncdns; i++)
        sum += use[i];
    log_msg(LOG_INFO, "decision",
            "answer=%s session=%016llx region=%s cdn=%s reason=%s weights=%s weight=%u/%llu",
            answer, (unsigned long long)session_hash, cfg->regions[r].name, cfg->cdns[d.cdn].id,
            policy_reason_str(d.reason), w ? "engine" : "static", use[d.cdn],
            (unsigned long long)sum);
}

int
h_redirect_handle(struct http_reqctx *ctx, const struct uri_parts *u, struct buf *out)
{
    const struct httpp_request *req = ctx->req;
    const struct snap *snap = ctx->snap;
    const struct cfg *cfg = snap->conf->cfg;
    struct netaddr client;
    struct geo_client gc;
    struct h_redirect_session sess;

    h_redirect_client_addr(snap, req, ctx->peer, &client);
    geo_lookup(snap->conf->geo, &client, &gc);
    h_redirect_session_of(req, u, &client, &sess);
    struct policy_decision d =
        policy_choose_w(cfg, snap_weights(snap, gc.region), snap->up, gc.region, sess.hash);
    const struct cfg_cdn *cdn = &cfg->cdns[d.cdn];
    if (cfg->decision_log_sample > 0)
        h_redirect_log_decision(snap, "302", gc.region, sess.hash, d);

    char loc[LOCATION_MAX];
    size_t loclen = uri_build_location(cdn->base_url, cdn->base_url_len, u, loc, sizeof(loc));
    if (loclen == 0) {
        stats_add(&ctx->stats->rejected[STATS_REJECT_URI_TOO_LONG], 1);
        ctx->close = true;
        router_write_error(ctx, 414, "uri too long", out);
        return 414;
    }

    PUTS(out, "HTTP/1.1 302 Found\r\nLocation: ");
    put(out, loc, loclen);
    PUTS(out, "\r\nX-Steerd-CDN: ");
    put(out, cdn->id, strlen(cdn->id));
    PUTS(out, "\r\n");
    put(out, snap->conf->redirect_block, snap->conf->redirect_block_len);
    put(out, ctx->date_line, ctx->date_len);
    if (ctx->close)
        PUTS(out, "Connection: close\r\n");
    PUTS(out, "Content-Length: 0\r\n\r\n");

    stats_request(ctx->stats, STATS_ROUTE_REDIRECT, 302);
    stats_decision(ctx->stats, gc.region, d.cdn);
    h_beacon_note_request(ctx, u, &client, gc.region, d.cdn);
    return 302;
}

/* A well-formed Access-Control-Request-Headers value: tokens, commas and spaces, bounded. */
static bool
request_headers_ok(const char *v, size_t n)
{
    if (n == 0 || n > 512)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == ',' || c == ' ';
        if (!ok)
            return false;
    }
    return true;
}

int
h_redirect_options(struct http_reqctx *ctx, struct buf *out)
{
    const struct snap_conf *conf = ctx->snap->conf;
    const struct httpp_header *h = httpp_find(ctx->req, "Access-Control-Request-Headers");

    PUTS(out, "HTTP/1.1 204 No Content\r\n");
    put(out, conf->cors_block, conf->cors_block_len);
    PUTS(out, "Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n");
    PUTS(out, "Access-Control-Allow-Headers: ");
    if (h != NULL && request_headers_ok(h->value.p, h->value.len))
        put(out, h->value.p, h->value.len);
    else
        PUTS(out, "CMCD-Object, CMCD-Request, CMCD-Session, CMCD-Status, Range");
    PUTS(out, "\r\nAccess-Control-Max-Age: 86400\r\n");
    put(out, ctx->date_line, ctx->date_len);
    if (ctx->close)
        PUTS(out, "Connection: close\r\n");
    PUTS(out, "Content-Length: 0\r\n\r\n");
    stats_request(ctx->stats, STATS_ROUTE_OPTIONS, 204);
    return 204;
}
