#include "steerd/h_admin.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "steerd/cfg.h"
#include "steerd/control.h"
#include "steerd/diag.h"
#include "steerd/geo.h"
#include "steerd/h_redirect.h"
#include "steerd/log.h"
#include "steerd/netaddr.h"
#include "steerd/policy.h"
#include "steerd/snap.h"
#include "steerd/uri.h"
#include "steerd/util.h"

#define ADMIN_MAX_HEADERS 8192
#define ADMIN_MAX_BODY 4096
#define ADMIN_TIMEOUT_S 10
#define ADMIN_PAUSE_MS 1000

struct h_admin {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *sock;
    struct control *ctl;
    char bound[NETADDR_STRLEN + 16];
};

static void
reply(struct evhttp_request *req, int code, const char *ctype, const char *body, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *b = evbuffer_new();
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    evbuffer_add(b, body, len);
    evhttp_send_reply(req, code, NULL, b);
    evbuffer_free(b);
}

static void
reply_text(struct evhttp_request *req, int code, const char *text)
{
    reply(req, code, "text/plain; charset=utf-8", text, strlen(text));
}

static void
reply_buf(struct evhttp_request *req, int code, const char *ctype, struct buf *b)
{
    reply(req, code, ctype, b->data ? b->data : "", b->len);
}

static bool
authorized(struct h_admin *a, struct evhttp_request *req)
{
    const char *token = control_snap(a->ctl)->conf->cfg->admin.token;
    if (token == NULL)
        return true;
    const char *auth = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0)
        return false;
    return util_ct_equal(auth + 7, strlen(auth + 7), token, strlen(token));
}

static bool
sid_ok(const char *sid)
{
    size_t n = strlen(sid);
    if (n == 0 || n > H_REDIRECT_SID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (sid[i] < 0x20 || sid[i] > 0x7e)
            return false;
    }
    return true;
}

static void
handle_explain(struct h_admin *a, struct evhttp_request *req, const struct evhttp_uri *uri)
{
    struct evkeyvalq q;
    struct netaddr addr;
    struct uri_parts *u = xmalloc(sizeof(*u));
    struct buf b;
    const char *query = evhttp_uri_get_query(uri);

    TAILQ_INIT(&q);
    buf_init(&b, 0);
    if (query == NULL || evhttp_parse_query_str(query, &q) != 0) {
        reply_text(req, 400, "explain needs ?ip=ADDRESS&path=/PATH[&sid=SID]\n");
        goto out;
    }
    const char *ip = evhttp_find_header(&q, "ip");
    const char *path = evhttp_find_header(&q, "path");
    const char *sid = evhttp_find_header(&q, "sid");
    if (ip == NULL || netaddr_parse(ip, strlen(ip), &addr) != 0) {
        reply_text(req, 400, "ip: not an IPv4 or IPv6 address\n");
        goto out;
    }
    if (path == NULL)
        path = "/";
    if (uri_parse_target(path, strlen(path), u) != URI_OK) {
        reply_text(req, 400, "path: not a path steerd would redirect\n");
        goto out;
    }
    if (sid != NULL && !sid_ok(sid)) {
        reply_text(req, 400, "sid: 1 to 64 printable ASCII characters\n");
        goto out;
    }

    struct snap *snap = control_snap(a->ctl);
    const struct cfg *cfg = snap->conf->cfg;
    struct geo_client gc;
    struct h_redirect_session sess;
    struct policy_candidate cand[CFG_MAX_CDNS];
    char ipbuf[NETADDR_STRLEN];
    char loc[CFG_URL_MAX + 4 * URI_MAX_TARGET + 16];

    geo_lookup(snap->conf->geo, &addr, &gc);
    h_redirect_session_from(sid, u, &addr, &sess);
    struct policy_decision d =
        policy_explain_w(cfg, snap_weights(snap, gc.region), snap->up, gc.region, sess.hash, cand);
    const struct cfg_cdn *cdn = &cfg->cdns[d.cdn];
    size_t loclen = uri_build_location(cdn->base_url, cdn->base_url_len, u, loc, sizeof(loc));
    netaddr_format(&addr, ipbuf);

    buf_puts(&b, "{\"client\":{\"ip\":");
    buf_json_str(&b, ipbuf);
    buf_puts(&b, ",\"country\":");
    if (gc.country[0])
        buf_json_str(&b, gc.country);
    else
        buf_puts(&b, "null");
    if (gc.asn)
        buf_printf(&b, ",\"asn\":%u", gc.asn);
    else
        buf_puts(&b, ",\"asn\":null");
    buf_puts(&b, ",\"region\":");
    buf_json_str(&b, cfg->regions[gc.region].name);
    buf_printf(&b, ",\"matched_by\":\"%s\"},\"session\":", geo_matched_by_str(gc.matched_by));
    if (sess.sid[0])
        buf_json_str(&b, sess.sid);
    else
        buf_puts(&b, "\"address+path\"");
    buf_printf(&b, ",\"session_hash\":\"%016llx\",\"path\":", (unsigned long long)sess.hash);
    buf_json_str(&b, u->path);
    buf_puts(&b, ",\"cdn\":");
    buf_json_str(&b, cdn->id);
    buf_puts(&b, ",\"location\":");
    if (loclen)
        buf_json_str(&b, loc);
    else
        buf_puts(&b, "null");
    buf_printf(&b, ",\"reason\":\"%s\",\"generation\":%llu,\"candidates\":[",
               policy_reason_str(d.reason), (unsigned long long)snap->conf->generation);
    for (size_t i = 0; i < cfg->ncdns; i++) {
        buf_printf(&b,
                   "%s{\"id\":\"%s\",\"eligible\":%s,\"up\":%s,\"weight\":%u,"
                   "\"failover_rank\":%ld,\"score\":%.6g,\"chosen\":%s}",
                   i ? "," : "", cfg->cdns[cand[i].cdn].id, cand[i].eligible ? "true" : "false",
                   cand[i].up ? "true" : "false", cand[i].weight, cand[i].failover_rank,
                   cand[i].score, cand[i].cdn == d.cdn ? "true" : "false");
    }
    buf_puts(&b, "]");
    control_write_explain_engine(a->ctl, gc.region, &b);
    buf_puts(&b, "}\n");
    reply_buf(req, 200, "application/json", &b);
out:
    evhttp_clear_headers(&q);
    buf_free(&b);
    free(u);
}

static void
handle_reload(struct h_admin *a, struct evhttp_request *req)
{
    struct diag d;
    struct buf b;
    diag_init(&d);
    buf_init(&b, 0);
    if (control_reload(a->ctl, &d) == 0) {
        buf_printf(&b, "{\"generation\":%llu}\n",
                   (unsigned long long)control_snap(a->ctl)->conf->generation);
        reply_buf(req, 200, "application/json", &b);
    } else {
        buf_puts(&b, "{\"errors\":[");
        for (size_t i = 0; i < d.count; i++) {
            if (i)
                buf_puts(&b, ",");
            buf_json_str(&b, d.lines[i]);
        }
        buf_puts(&b, "]}\n");
        reply_buf(req, 409, "application/json", &b);
    }
    buf_free(&b);
    diag_free(&d);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
    struct h_admin *a = arg;
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    struct buf b;

    if (path == NULL) {
        reply_text(req, 400, "bad request\n");
        return;
    }
    if (!authorized(a, req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                          "Bearer realm=\"steerd\"");
        reply_text(req, 401, "unauthorized\n");
        return;
    }
    bool get = method == EVHTTP_REQ_GET || method == EVHTTP_REQ_HEAD;
    buf_init(&b, 0);
    if (strcmp(path, "/reload") == 0) {
        if (method == EVHTTP_REQ_POST)
            handle_reload(a, req);
        else
            reply_text(req, 405, "use POST\n");
    } else if (!get) {
        reply_text(req, 405, "method not allowed\n");
    } else if (strcmp(path, "/healthz") == 0) {
        reply_text(req, 200, "ok\n");
    } else if (strcmp(path, "/readyz") == 0) {
        if (control_ready(a->ctl))
            reply_text(req, 200, "ready\n");
        else
            reply_text(req, 503, "not ready\n");
    } else if (strcmp(path, "/metrics") == 0) {
        control_write_metrics(a->ctl, &b);
        reply_buf(req, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
    } else if (strcmp(path, "/state") == 0) {
        control_write_state(a->ctl, &b);
        reply_buf(req, 200, "application/json", &b);
    } else if (strcmp(path, "/explain") == 0) {
        handle_explain(a, req, uri);
    } else {
        reply_text(req, 404, "not found\n");
    }
    buf_free(&b);
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    evconnlistener_enable(arg);
}

/* evhttp sets no accept error callback, so on EMFILE the loop would spin: pause accepting for
 * a second instead (the callback's argument is evhttp's, so the pause carries the listener). */
static void
on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)arg;
    log_errno(LOG_WARN, EVUTIL_SOCKET_ERROR(), "admin", "accept failed; pausing for %d ms",
              ADMIN_PAUSE_MS);
    evconnlistener_disable(l);
    struct timeval tv = {ADMIN_PAUSE_MS / 1000, 0};
    event_base_once(evconnlistener_get_base(l), -1, EV_TIMEOUT, on_resume, l, &tv);
}

struct h_admin *
h_admin_new(struct event_base *base, const char *listen, struct control *ctl, struct diag *d)
{
    char host[NETADDR_STRLEN];
    uint16_t port = 0;
    struct h_admin *a = xcalloc(1, sizeof(*a));

    a->base = base;
    a->ctl = ctl;
    if (cfg_split_hostport(listen, host, sizeof(host), &port) != 0) {
        diag_add(d, "admin.listen: bad address %s", listen);
        goto fail;
    }
    a->http = evhttp_new(base);
    evhttp_set_max_headers_size(a->http, ADMIN_MAX_HEADERS);
    evhttp_set_max_body_size(a->http, ADMIN_MAX_BODY);
    evhttp_set_timeout(a->http, ADMIN_TIMEOUT_S);
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
    evhttp_set_gencb(a->http, on_request, a);
    a->sock = evhttp_bind_socket_with_handle(a->http, host, port);
    if (a->sock == NULL) {
        diag_add(d, "admin.listen: cannot bind %s: %s", listen, strerror(errno));
        goto fail;
    }
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(a->sock), on_accept_error);

    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    getsockname(evhttp_bound_socket_get_fd(a->sock), (struct sockaddr *)&ss, &len);
    uint16_t got = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                                 : ((struct sockaddr_in6 *)&ss)->sin6_port);
    snprintf(a->bound, sizeof(a->bound), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
             (unsigned)got);
    return a;
fail:
    h_admin_free(a);
    return NULL;
}

int
h_admin_bound_addr(const struct h_admin *a, char *out, size_t outsz)
{
    if (strlen(a->bound) >= outsz)
        return -1;
    memcpy(out, a->bound, strlen(a->bound) + 1);
    return 0;
}

void
h_admin_free(struct h_admin *a)
{
    if (a == NULL)
        return;
    if (a->http)
        evhttp_free(a->http);
    free(a);
}
