/* router: classifies a parsed player request and hands it to its handler (h_redirect today;
 * manifests, steering and beacons plug in here), and writes the error answers every handler
 * shares. I/O layer, but it only appends bytes to a buffer: the connection code in http.c
 * writes them. */
#ifndef STEERD_ROUTER_H
#define STEERD_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

struct buf;
struct http_env;
struct httpp_request;
struct netaddr;
struct snap;
struct stats_worker;

/* Everything a handler may use for one request; all borrowed for the call. */
struct http_reqctx {
    struct snap *snap;
    const struct netaddr *peer;
    const struct httpp_request *req; /* NULL once a request went asynchronous */
    struct stats_worker *stats;
    struct http_env *env;  /* the worker the request runs on (see http.h) */
    void *conn;            /* the connection, for http_async_begin only */
    const char *date_line; /* "Date: ...\r\n" */
    size_t date_len;
    const char *body; /* the request body when the route takes one (router_wants_body), else NULL */
    size_t body_len;
    bool head;  /* a HEAD request: answers carry no body */
    bool close; /* in/out: the connection closes after this answer */
};

/* What router_handle returns when the handler took the request asynchronously (it called
 * http_async_begin and will answer through http_async_finish). */
#define ROUTER_ASYNC 0

/* True when the route of req takes a request body (POST /beacon). The connection code then
 * reads Content-Length bytes (bounded by http.max_body_bytes and http.body_timeout_ms) and
 * passes them in ctx->body; every other request with a body is refused. */
bool router_wants_body(const struct httpp_request *req);

/* Appends one complete answer for ctx->req to out and returns its status code, or returns
 * ROUTER_ASYNC and appends nothing. */
int router_handle(struct http_reqctx *ctx, struct buf *out);

/* Appends a plain-text error answer with CORS headers (and Connection: close when close);
 * ctx->head suppresses the body. Counts it in stats under route "error" when stats is non-NULL. */
void router_write_error(const struct http_reqctx *ctx, int code, const char *reason,
                        struct buf *out);

/* The reason phrase of a status code ("Found", "Bad Request", ...). */
const char *router_status_text(int code);

#endif
