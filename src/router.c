#include "steerd/router.h"

#include <string.h>

#include "steerd/cfg.h"
#include "steerd/geo.h"
#include "steerd/h_beacon.h"
#include "steerd/h_manifest.h"
#include "steerd/h_redirect.h"
#include "steerd/h_steer.h"
#include "steerd/httpparse.h"
#include "steerd/netaddr.h"
#include "steerd/snap.h"
#include "steerd/stats.h"
#include "steerd/uri.h"
#include "steerd/util.h"

const char *
router_status_text(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 302:
        return "Found";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Unknown";
    }
}

void
router_write_error(const struct http_reqctx *ctx, int code, const char *reason, struct buf *out)
{
    bool head = ctx->head;
    size_t rlen = strlen(reason);
    const struct snap_conf *conf = ctx->snap->conf;

    buf_printf(out,
               "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Length: %zu\r\nCache-Control: no-store\r\n",
               code, router_status_text(code), rlen + 1);
    if (code == 405)
        buf_puts(out, "Allow: GET, HEAD, OPTIONS\r\n");
    buf_append(out, conf->cors_block, conf->cors_block_len);
    buf_append(out, ctx->date_line, ctx->date_len);
    if (ctx->close)
        buf_puts(out, "Connection: close\r\n");
    buf_puts(out, "\r\n");
    if (!head) {
        buf_append(out, reason, rlen);
        buf_puts(out, "\n");
    }
    if (ctx->stats)
        stats_request(ctx->stats, STATS_ROUTE_ERROR, code);
}

/* How the manifest at u is answered: by path, region (looked up only when some region has a
 * mode of its own) and policy (cfg_manifest_mode_for). */
static enum cfg_manifest_mode
manifest_mode(const struct http_reqctx *ctx, const struct uri_parts *u)
{
    const struct snap *snap = ctx->snap;
    const struct cfg *cfg = snap->conf->cfg;
    uint32_t region = UINT32_MAX;
    if (cfg->region_modes) {
        struct netaddr client;
        struct geo_client gc;
        h_redirect_client_addr(snap, ctx->req, ctx->peer, &client);
        geo_lookup(snap->conf->geo, &client, &gc);
        region = gc.region;
    }
    return cfg_manifest_mode_for(cfg, u->path, u->path_len, region);
}

/* GET/HEAD: the canonical target decides the handler. /steer/hls and /steer/dash are the
 * Content Steering servers (in every manifest mode, so a player holding a steering URL keeps
 * getting answers across a mode change). Manifests are served by h_manifest unless their mode
 * (policy.paths[], the region's manifest_mode, policy.manifest_mode) is "redirect" (in
 * "steering" mode they carry Content Steering); everything else gets a 302. */
static int
route_get(struct http_reqctx *ctx, struct buf *out)
{
    struct uri_parts u;
    const struct httpp_request *req = ctx->req;

    enum uri_status st = uri_parse_target(req->target.p, req->target.len, &u);
    if (st != URI_OK) {
        int code = st == URI_TOO_LONG ? 414 : 400;
        stats_add(&ctx->stats->rejected[st == URI_TOO_LONG ? STATS_REJECT_URI_TOO_LONG
                                                           : STATS_REJECT_BAD_PATH],
                  1);
        ctx->close = true;
        router_write_error(ctx, code, code == 414 ? "uri too long" : "bad request path", out);
        return code;
    }
    enum steering_kind sk;
    if (h_steer_is_steering(u.path, u.path_len, &sk))
        return h_steer_handle(ctx, &u, out);
    if (h_beacon_is_path(u.path, u.path_len))
        return h_beacon_handle(ctx, &u, out);
    if (h_manifest_kind_of(u.path, u.path_len) != H_MANIFEST_NONE &&
        manifest_mode(ctx, &u) != CFG_MANIFEST_REDIRECT)
        return h_manifest_handle(ctx, &u, out);
    return h_redirect_handle(ctx, &u, out);
}

/* The raw target is "/beacon" or "/beacon?...". */
static bool
target_is_beacon(const struct httpp_request *req)
{
    static const char path[] = H_BEACON_PATH;
    size_t n = sizeof(path) - 1;
    const struct httpp_str *t = &req->target;
    return t->len >= n && memcmp(t->p, path, n) == 0 && (t->len == n || t->p[n] == '?');
}

bool
router_wants_body(const struct httpp_request *req)
{
    return req->method_id == HTTPP_POST && target_is_beacon(req);
}

int
router_handle(struct http_reqctx *ctx, struct buf *out)
{
    const struct httpp_request *req = ctx->req;

    /* Only routes that take a body get one (read by the connection code, in ctx->body); refuse
     * any other rather than mis-frame the next request. */
    if (!router_wants_body(req) && (req->content_length > 0 || req->chunked)) {
        stats_add(&ctx->stats->rejected[STATS_REJECT_BODY], 1);
        ctx->close = true;
        bool big = req->content_length > 65536;
        router_write_error(ctx, big ? 413 : 400, "request body not allowed here", out);
        return big ? 413 : 400;
    }
    /* RFC 9112 3.2: an HTTP/1.1 request without Host is malformed. */
    if (req->minor_version == 1 && httpp_find(req, "Host") == NULL) {
        stats_add(&ctx->stats->rejected[STATS_REJECT_BAD_REQUEST], 1);
        ctx->close = true;
        router_write_error(ctx, 400, "missing Host header", out);
        return 400;
    }
    switch (req->method_id) {
    case HTTPP_GET:
    case HTTPP_HEAD:
    case HTTPP_POST:
        /* POST reaches a handler only on /beacon (route_get sends it there); elsewhere 405. */
        if (req->method_id == HTTPP_POST && !target_is_beacon(req))
            break;
        return route_get(ctx, out);
    case HTTPP_OPTIONS:
        if (target_is_beacon(req))
            return h_beacon_options(ctx, out);
        return h_redirect_options(ctx, out);
    default:
        break;
    }
    stats_add(&ctx->stats->rejected[STATS_REJECT_METHOD], 1);
    router_write_error(ctx, 405, "method not allowed", out);
    return 405;
}
