/* router: classifies a parsed player request and hands it to its handler (h_redirect today;
 * manifests, steering and beacons plug in here), and writes the error answers every handler
 * shares. I/O layer, but it only appends bytes to a buffer: the connection code in http.c
 * writes them. */
#ifndef STEERD_ROUTER_H
#define STEERD_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

struct buf;
struct httpp_request;
struct netaddr;
struct snap;
struct stats_worker;

/* Everything a handler may use for one request; all borrowed for the call. */
struct http_reqctx {
    struct snap *snap;
    const struct netaddr *peer;
    const struct httpp_request *req;
    struct stats_worker *stats;
    const char *date_line; /* "Date: ...\r\n" */
    size_t date_len;
    bool close; /* in/out: the connection closes after this answer */
};

/* Appends one complete answer for ctx->req to out. Returns its status code. */
int router_handle(struct http_reqctx *ctx, struct buf *out);

/* Appends a plain-text error answer with CORS headers (and Connection: close when close);
 * head suppresses the body. Counts it in stats under route "error" when stats is non-NULL. */
void router_write_error(const struct http_reqctx *ctx, int code, const char *reason,
                        struct buf *out);

/* The reason phrase of a status code ("Found", "Bad Request", ...). */
const char *router_status_text(int code);

#endif
