/* fetch: the asynchronous origin client of one worker. libcurl's multi interface driven by the
 * worker's libevent base (the pattern of curl's docs/examples/multi-event.c). Only http/https,
 * redirects never followed (a 3xx is an HTTP error), no proxy, no Accept-Encoding (identity),
 * a whole-transfer timeout, a low-speed limit, and a body cap enforced during the transfer
 * (Content-Length checked up front; nothing is buffered past the cap). Connections to the
 * origin are kept alive and reused, at most FETCH_MAX_HOST_CONNECTIONS per host (more transfers
 * wait for a free one) and FETCH_MAX_IDLE_CONNECTIONS kept idle.
 * One struct fetch per event_base, used only from that base's thread. libcurl is confined to
 * curlev.c, probe.c and fetch.c; curl_global_init must have been called before fetch_new. */
#ifndef STEERD_FETCH_H
#define STEERD_FETCH_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct fetch;
struct netaddr_cidr;

#define FETCH_MAX_HOST_CONNECTIONS 32
#define FETCH_MAX_IDLE_CONNECTIONS 16
#define FETCH_MAX_HEADER_LINE 8192 /* a longer response header line fails the transfer */
#define FETCH_MAX_HEADERS 100      /* more response header lines fail the transfer */
#define FETCH_LOW_SPEED_BYTES_PER_S 1024
#define FETCH_LOW_SPEED_TIME_MS 5000
#define FETCH_CONNECT_TIMEOUT_MS 5000
#define FETCH_MAX_ALLOW 64

enum fetch_status {
    FETCH_OK = 0,       /* 2xx, body complete */
    FETCH_NOT_MODIFIED, /* 304 to a conditional request */
    FETCH_HTTP_ERROR,   /* any other status (3xx included; a 304 to an unconditional request):
                           http_status is set */
    FETCH_TIMEOUT,      /* whole-transfer, connect or low-speed timeout (504) */
    FETCH_TOO_LARGE,    /* body (or its Content-Length) passed max_bytes: aborted, nothing kept */
    FETCH_FAILED,       /* refused, DNS, TLS, bad or oversized response head, non-http URL (502) */
    FETCH_LOCAL_ERROR,  /* out of descriptors or memory, a curl failure: not the origin's
                           fault (the caller answers 503) */
};

/* Everything is copied by fetch_start; the caller may free it as soon as fetch_start returns. */
struct fetch_request {
    const char *url;               /* absolute http(s) URL */
    uint32_t timeout_ms;           /* whole transfer, > 0 (waiting for a connection included) */
    uint32_t connect_timeout_ms;   /* 0: min(timeout_ms, FETCH_CONNECT_TIMEOUT_MS) */
    size_t max_bytes;              /* body cap, > 0; a body of exactly max_bytes is accepted */
    const char *if_none_match;     /* conditional request headers; NULL when absent */
    const char *if_modified_since; /* (values with control bytes are refused) */
    /* Abort (FETCH_TIMEOUT) when slower than low_speed_bytes_per_s for low_speed_time_ms
     * (rounded up to whole seconds; waiting for the first byte counts as slow). 0 in either:
     * both FETCH_LOW_SPEED_* (the limit cannot be turned off). */
    uint32_t low_speed_bytes_per_s;
    uint32_t low_speed_time_ms;
    /* Internal ranges (netaddr_is_internal) the origin may resolve to (the config's
     * allow_targets); any other internal address fails the transfer (FETCH_FAILED, "address
     * denied: ADDR"). At most FETCH_MAX_ALLOW; NULL/0: none. */
    const struct netaddr_cidr *allow;
    size_t nallow;
};

/* What a transfer ended with. Every pointer is borrowed for the duration of the callback only:
 * the caller copies what it keeps. Header values are trimmed and hold no control bytes; one
 * that was too long or held control bytes is reported absent. */
struct fetch_result {
    enum fetch_status status;
    long http_status; /* final response status; 0 when no response head was read */
    const char *body; /* FETCH_OK: the body, NUL-terminated (not counted in len);
                         NULL for every other status */
    size_t len;       /* body length, <= max_bytes */
    const char *etag; /* final response head's headers: NULL when absent or when no whole
                         head was read */
    const char *last_modified;
    const char *content_type;
    const char *cache_control; /* several Cache-Control lines are joined with ", " */
    double total_ms;           /* time from start (queueing included) to the end */
    const char *error;         /* short reason for the log when status is not OK or
                                  NOT_MODIFIED; NULL otherwise. Never sent to clients. */
};

/* Runs on the base's thread when a transfer ends (never inside fetch_start or fetch_cancel).
 * It may call fetch_start and fetch_cancel (for any id), but not fetch_free. */
typedef void (*fetch_done_fn)(void *arg, const struct fetch_result *r);

/* Creates the client of base; the caller owns it. Returns NULL when curl or libevent could not
 * be set up. */
struct fetch *fetch_new(struct event_base *base);

/* Starts a transfer; cb(arg, result) runs once, later, on the base's thread. Returns a handle
 * id > 0 (unique for f's lifetime) for fetch_cancel, or 0 when it could not start: an invalid
 * request (no URL, timeout_ms or max_bytes 0, a conditional value with control bytes, more
 * than FETCH_MAX_ALLOW allowed ranges) or a
 * local failure (curl could not set up the transfer; answer as for FETCH_LOCAL_ERROR). When 0
 * is returned cb is never called. */
uint64_t fetch_start(struct fetch *f, const struct fetch_request *rq, fetch_done_fn cb, void *arg);

/* Ends transfer id at once; its cb will not run. Unknown or finished ids are ignored. */
void fetch_cancel(struct fetch *f, uint64_t id);

/* Cancels every transfer (no callback runs), closes the kept connections and frees f; accepts
 * NULL. Must run on the base's thread, before the base is freed, and not inside a callback. */
void fetch_free(struct fetch *f);

/* Transfers started and neither ended nor cancelled (queued ones included). */
size_t fetch_active(const struct fetch *f);

#endif
