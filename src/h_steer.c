#include "steerd/h_steer.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "steerd/beacon.h"
#include "steerd/cfg.h"
#include "steerd/geo.h"
#include "steerd/h_manifest.h"
#include "steerd/h_redirect.h"
#include "steerd/http.h"
#include "steerd/obs.h"
#include "steerd/policy.h"
#include "steerd/router.h"
#include "steerd/snap.h"
#include "steerd/stats.h"
#include "steerd/uri.h"
#include "steerd/util.h"

#define BODY_MAX (256 * 1024)
#define RELOAD_MAX (CFG_URL_MAX + 64 + STEERING_STATE_TOKEN_MAX)
#define NAME_SEED 0x9e3779b97f4a7c15ULL
#define PRIO_MAX STEERING_MAX_PATHWAYS

bool
h_steer_is_steering(const char *path, size_t len, enum steering_kind *kind)
{
    if (len == sizeof(H_STEER_PATH_HLS) - 1 && memcmp(path, H_STEER_PATH_HLS, len) == 0) {
        *kind = STEERING_HLS;
        return true;
    }
    if (len == sizeof(H_STEER_PATH_DASH) - 1 && memcmp(path, H_STEER_PATH_DASH, len) == 0) {
        *kind = STEERING_DASH;
        return true;
    }
    return false;
}

static const char *
path_of(enum steering_kind kind)
{
    return kind == STEERING_DASH ? H_STEER_PATH_DASH : H_STEER_PATH_HLS;
}

size_t
h_steer_server_uri(const struct cfg *cfg, enum steering_kind kind, uint64_t session, char *out,
                   size_t outsz)
{
    const char *base = cfg->manifest.public_base_url;
    if (outsz > 0)
        out[0] = '\0';
    if (base == NULL)
        return 0;
    int n = snprintf(out, outsz, "%s%s?%s=%016" PRIx64, base, path_of(kind),
                     H_MANIFEST_SESSION_PARAM, session);
    if (n < 0 || (size_t)n >= outsz) {
        if (outsz > 0)
            out[0] = '\0';
        return 0;
    }
    return (size_t)n;
}

void
h_steer_throughput_sample(const struct http_reqctx *ctx, uint32_t region, uint32_t cdn,
                          uint64_t bps)
{
    stats_steering(ctx->stats, cdn, STATS_STEER_THROUGHPUT);
    struct beacon_worker *bw = ctx->env != NULL ? ctx->env->beacon : NULL;
    if (bw == NULL)
        return;
    struct obs_beacon b = {
        .tp_bps = (double)bps, .starved = -1, .error = false, .startup = false, .ttfb_ms = -1};
    beacon_worker_push(bw, ctx->snap->conf->generation, cdn, region, &b);
}

/* ---- names that survive reloads -------------------------------------------------------- */

static uint32_t
name_hash(const char *s)
{
    return (uint32_t)util_hash64(s, strlen(s), NAME_SEED);
}

/* A tag of the CDN id list: a state's prio[] (CDN indexes) is only read back by a steerd with
 * the same list. */
static uint32_t
cdn_set_hash(const struct cfg *cfg)
{
    uint64_t h = NAME_SEED;
    for (size_t i = 0; i < cfg->ncdns; i++)
        h = util_hash64(cfg->cdns[i].id, strlen(cfg->cdns[i].id) + 1, h);
    return (uint32_t)h;
}

static long
region_by_hash(const struct cfg *cfg, uint32_t h)
{
    for (size_t i = 0; i < cfg->nregions; i++) {
        if (name_hash(cfg->regions[i].name) == h)
            return (long)i;
    }
    return -1;
}

/* The CDN a pathway id stands for: a CDN id, or a clone id followed back to its CDN; -1 when
 * unknown. */
static long
pathway_cdn(const struct cfg *cfg, const char *id)
{
    for (int hops = 0; hops <= CFG_STEERING_MAX_CLONES; hops++) {
        long k = cfg_cdn_index(cfg, id);
        if (k >= 0)
            return k;
        const char *next = NULL;
        for (size_t i = 0; i < cfg->steering.nclones && next == NULL; i++) {
            if (strcmp(cfg->steering.clones[i].id, id) == 0)
                next = cfg->steering.clones[i].base_id;
        }
        if (next == NULL)
            return -1;
        id = next;
    }
    return -1;
}

static bool
session_param(const struct uri_parts *u, uint64_t *out)
{
    size_t vlen = 0;
    const char *v =
        u->query ? uri_query_param(u->query, u->query_len, H_MANIFEST_SESSION_PARAM, &vlen) : NULL;
    uint64_t h = 0;
    if (v == NULL || vlen != 16)
        return false;
    for (size_t i = 0; i < 16; i++) {
        char c = v[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return false;
        h = h << 4 | (uint64_t)d;
    }
    *out = h;
    return true;
}

/* ---- the answer ------------------------------------------------------------------------ */

/* Appends id and then the clones derived from it (depth first) to prio. */
static void
add_with_clones(const struct cfg *cfg, const char *id, const char **prio, size_t *n, int depth)
{
    if (*n >= PRIO_MAX || depth > CFG_STEERING_MAX_CLONES)
        return;
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(prio[i], id) == 0)
            return;
    }
    prio[(*n)++] = id;
    for (size_t i = 0; i < cfg->steering.nclones; i++) {
        if (strcmp(cfg->steering.clones[i].base_id, id) == 0)
            add_with_clones(cfg, cfg->steering.clones[i].id, prio, n, depth + 1);
    }
}

static int
answer_error(struct http_reqctx *ctx, int code, const char *reason, struct buf *out)
{
    router_write_error(ctx, code, reason, out);
    return code;
}

/* Compliance: what the player says it is on against what steerd asked for (asked, a CDN
 * index). HLS reports the one pathway in use; DASH the locations used since the last poll. */
static void
record_reports(struct http_reqctx *ctx, const struct cfg *cfg, enum steering_kind kind,
               const struct steering_query *q, long asked, uint32_t region)
{
    if (kind == STEERING_HLS) {
        long on = q->has_hls_pathway ? pathway_cdn(cfg, q->hls_pathway) : -1;
        if (asked >= 0 && q->has_hls_pathway)
            stats_steering(ctx->stats, (uint32_t)asked,
                           on == asked ? STATS_STEER_MATCH : STATS_STEER_MISMATCH);
        if (on >= 0 && q->has_hls_throughput)
            h_steer_throughput_sample(ctx, region, (uint32_t)on, q->hls_throughput_bps);
        return;
    }
    bool seen = false;
    for (size_t i = 0; i < q->ndash_pathways; i++) {
        long on = pathway_cdn(cfg, q->dash_pathways[i]);
        seen |= on >= 0 && on == asked;
        if (on >= 0 && i < q->ndash_throughputs)
            h_steer_throughput_sample(ctx, region, (uint32_t)on, q->dash_throughput_bps[i]);
    }
    if (asked >= 0 && q->ndash_pathways > 0)
        stats_steering(ctx->stats, (uint32_t)asked,
                       seen ? STATS_STEER_MATCH : STATS_STEER_MISMATCH);
}

int
h_steer_handle(struct http_reqctx *ctx, const struct uri_parts *u, struct buf *out)
{
    const struct snap *snap = ctx->snap;
    const struct cfg *cfg = snap->conf->cfg;
    const struct cfg_steering *sc = &cfg->steering;
    enum steering_kind kind = STEERING_HLS;
    struct steering_query q;
    struct steering_state st;
    bool have_state = false;
    uint64_t now_s = util_wall_ms() / 1000;

    (void)h_steer_is_steering(u->path, u->path_len, &kind);
    stats_add(&ctx->stats->steer_req[kind == STEERING_DASH ? STATS_STEER_DASH : STATS_STEER_HLS],
              1);
    if (steering_parse_query(u->query ? u->query : "", u->query ? u->query_len : 0, &q) != 0) {
        router_write_error(ctx, 400, "invalid steering parameters", out);
        return 400;
    }
    if (q.has_state) {
        enum steering_state_status ss =
            sc->keyring == NULL ? STEERING_STATE_UNKNOWN_KID
                                : steering_state_decode(sc->keyring, q.state, q.state_len, now_s,
                                                        sc->clock_skew_s, &st);
        if (ss != STEERING_STATE_OK) {
            router_write_error(ctx, 400, "invalid steering state", out);
            return 400;
        }
        have_state = true;
    }

    /* the session and its region */
    struct netaddr client;
    struct geo_client gc;
    h_redirect_client_addr(snap, ctx->req, ctx->peer, &client);
    uint64_t session = 0;
    long region = -1;
    if (have_state) {
        session = st.session_hash;
        region = region_by_hash(cfg, st.region);
    } else if (!session_param(u, &session)) {
        struct h_redirect_session sess;
        h_redirect_session_of(ctx->req, u, &client, &sess);
        session = sess.hash;
    }
    if (region < 0) {
        geo_lookup(snap->conf->geo, &client, &gc);
        region = (long)gc.region;
    }

    uint32_t ranked[CFG_MAX_CDNS];
    size_t nrank = policy_rank_w(cfg, snap_weights(snap, (uint32_t)region), snap->up,
                                 (uint32_t)region, session, ranked);
    bool same_set = have_state && st.cdn_set == cdn_set_hash(cfg);
    long asked =
        same_set && st.nprio > 0 && st.prio[0] < cfg->ncdns ? (long)st.prio[0] : (long)ranked[0];
    record_reports(ctx, cfg, kind, &q, asked, (uint32_t)region);
    if (cfg->decision_log_sample > 0 && nrank > 0) {
        struct policy_decision pd = policy_choose_w(cfg, snap_weights(snap, (uint32_t)region),
                                                    snap->up, (uint32_t)region, session);
        h_redirect_log_decision(snap, "steering", (uint32_t)region, session, pd);
    }

    const char *prio[PRIO_MAX];
    size_t nprio = 0;
    for (size_t i = 0; i < nrank; i++)
        add_with_clones(cfg, cfg->cdns[ranked[i]].id, prio, &nprio, 0);

    struct steering_pair params[CFG_STEERING_MAX_CLONES][CFG_STEERING_MAX_CLONE_PARAMS];
    struct steering_clone clones[CFG_STEERING_MAX_CLONES];
    for (size_t i = 0; i < sc->nclones; i++) {
        const struct cfg_steering_clone *c = &sc->clones[i];
        for (size_t k = 0; k < c->nparams; k++)
            params[i][k] = (struct steering_pair){c->param_names[k], c->param_values[k]};
        clones[i] = (struct steering_clone){.base_id = c->base_id,
                                            .id = c->id,
                                            .host = c->host,
                                            .params = params[i],
                                            .nparams = c->nparams};
    }

    /* RELOAD-URI: the signed state when there is a key, else the session hash */
    char reload[RELOAD_MAX];
    const char *reload_uri = NULL;
    if (cfg->manifest.public_base_url != NULL) {
        int n;
        if (sc->keyring != NULL) {
            struct steering_state ns = {0};
            char tok[STEERING_STATE_TOKEN_MAX + 1];
            ns.session_hash = session;
            ns.region = name_hash(cfg->regions[region].name);
            ns.cdn_set = cdn_set_hash(cfg);
            ns.iat_s = now_s;
            ns.exp_s = now_s + sc->state_ttl_s;
            for (size_t i = 0; i < nrank && i < STEERING_STATE_MAX_PRIO; i++)
                ns.prio[ns.nprio++] = (uint8_t)ranked[i];
            size_t tl = steering_state_encode(sc->keyring, &ns, tok, sizeof(tok));
            n = tl == 0
                    ? -1
                    : snprintf(reload, sizeof(reload), "%s%s?%s=%s", cfg->manifest.public_base_url,
                               path_of(kind), STEERING_STATE_PARAM, tok);
        } else {
            n = (int)h_steer_server_uri(cfg, kind, session, reload, sizeof(reload));
        }
        if (n > 0 && (size_t)n < sizeof(reload))
            reload_uri = reload;
    }

    /* Never 429 (hls.js stops polling): a worker at overload level 2 or more asks for fewer
     * polls. */
    bool loaded = http_env_overload(ctx->env) >= 2;
    if (loaded)
        stats_add(&ctx->stats->shed[STATS_SHED_STEERING_TTL], 1);
    struct steering_manifest m = {
        .kind = kind,
        .ttl_s = loaded ? sc->ttl_max_s : sc->ttl_s,
        .ttl_min_s = sc->ttl_min_s,
        .ttl_max_s = sc->ttl_max_s,
        .reload_uri = reload_uri,
        .priority = prio,
        .npriority = nprio,
        .clones = clones,
        .nclones = sc->nclones,
    };
    struct buf body;
    buf_init(&body, BODY_MAX);
    enum steering_status ws = steering_write_manifest(&body, &m);
    if (ws != STEERING_OK) {
        buf_free(&body);
        return answer_error(ctx, 500, "steering manifest could not be written", out);
    }
    const struct snap_conf *conf = snap->conf;
    buf_printf(out,
               "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
               "Cache-Control: no-store\r\nX-Steerd-CDN: %s\r\n",
               body.len, cfg->cdns[ranked[0]].id);
    buf_append(out, conf->cors_block, conf->cors_block_len);
    buf_append(out, ctx->date_line, ctx->date_len);
    if (ctx->close)
        buf_puts(out, "Connection: close\r\n");
    buf_puts(out, "\r\n");
    if (!ctx->head)
        buf_append(out, body.data, body.len);
    buf_free(&body);
    stats_request(ctx->stats, STATS_ROUTE_STEERING, 200);
    stats_decision(ctx->stats, (uint32_t)region, ranked[0]);
    return 200;
}
