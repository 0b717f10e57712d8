/* curlev: libcurl's multi interface driven by a libevent base (the pattern of curl's
 * docs/examples/multi-event.c), and what probe and fetch share about one transfer: the easy
 * options every steerd transfer sets, the socket() wrapper that keeps its errno, and the
 * classification of a failed transfer that tells a local shortage (descriptors, buffers,
 * memory, a curl failure) from a remote failure. libcurl is confined to curlev.c, probe.c and
 * fetch.c: only they include this header.
 *
 * Ownership. The caller owns the struct curlev (curlev_new, curlev_free). The struct curlev
 * owns the CURLM, its timer and one event per socket curl asks it to watch; curlev_multi lends
 * the CURLM for the caller's own curl_multi_setopt, curl_multi_add_handle and
 * curl_multi_remove_handle calls. The caller owns every transfer: it embeds a struct
 * curlev_xfer in its own record, creates and frees the easy handle in it (curl_easy_init,
 * curl_easy_cleanup) and adds it to and removes it from the multi. Every easy handle is out of
 * the multi before curlev_free. Everything runs on the base's thread; curl_global_init must
 * have been called before curlev_new. */
#ifndef STEERD_CURLEV_H
#define STEERD_CURLEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "steerd/netaddr.h"

struct event_base;
struct curlev;

/* Runs on the base's thread when the transfer whose CURLOPT_PRIVATE is priv ends with rc. It
 * must take that transfer's easy handle out of the multi; it may add and remove others (a
 * removed one's pending end goes with it), but must not call curlev_free. */
typedef void (*curlev_done_fn)(void *arg, void *priv, CURLcode rc);

/* Creates a multi handle driven by base; done(arg, ...) reports every ended transfer. The
 * caller owns the result. Returns NULL when curl or libevent could not be set up. */
struct curlev *curlev_new(struct event_base *base, curlev_done_fn done, void *arg);

/* The multi handle, borrowed while ev lives (for options and adding/removing transfers). */
CURLM *curlev_multi(struct curlev *ev);

/* Cleans the multi up (closing the connections it keeps), then frees its socket events and
 * timer; accepts NULL. Every easy handle must already be out of the multi; must run before
 * the base is freed and never inside a done callback. */
void curlev_free(struct curlev *ev);

/* The part of one transfer curlev reads and writes; the caller embeds it in its own record,
 * zeroed, and sets easy. */
#define CURLEV_MAX_ALLOW 64

struct curlev_xfer {
    CURL *easy;
    int socket_errno; /* errno of a failed socket() for this transfer, 0 if none */
    char errbuf[CURL_ERROR_SIZE];
    /* internal ranges this transfer may connect to (a copy: a reload cannot free it) */
    struct netaddr_cidr allow[CURLEV_MAX_ALLOW];
    size_t nallow;
    bool denied;                      /* a resolved address was refused (not allowed) */
    bool opened;                      /* a socket was opened for an allowed address */
    char denied_addr[NETADDR_STRLEN]; /* the last one refused */
};

/* The options every steerd transfer sets (see curlev_xfer_setup). */
struct curlev_options {
    const char *url;
    const char *user_agent;
    uint32_t timeout_ms;            /* whole transfer */
    uint32_t connect_timeout_ms;    /* > 0 */
    uint32_t low_speed_bytes_per_s; /* 0: no low-speed limit */
    uint32_t low_speed_time_ms;     /* rounded up to whole seconds, at least one */
    /* Internal addresses (netaddr_is_internal) the transfer may connect to; every other
     * internal address is refused after DNS. Borrowed for the call only (copied into the
     * xfer); at most CURLEV_MAX_ALLOW. NULL/0: none. */
    const struct netaddr_cidr *allow;
    size_t nallow;
};

/* Sets on x->easy: the URL, priv as CURLOPT_PRIVATE (handed to the done callback), x->errbuf
 * as the error buffer, no signals, http and https only, no redirect followed, no proxy
 * (whatever the environment says), a GET with the user agent, the timeouts and low-speed
 * limit, and a socket() wrapper that refuses an internal address o does not allow (recorded in
 * x->denied and x->denied_addr) and records a failed socket()'s errno in x->socket_errno. x
 * must outlive the easy handle. Returns 0, or -1 when curl refused an option or o allows more
 * than CURLEV_MAX_ALLOW ranges. */
int curlev_xfer_setup(struct curlev_xfer *x, const struct curlev_options *o, void *priv);

enum curlev_cause {
    CURLEV_CAUSE_REMOTE,  /* refused, DNS, TLS, a protocol error, a non-http URL ... */
    CURLEV_CAUSE_TIMEOUT, /* whole-transfer, connect or low-speed timeout */
    CURLEV_CAUSE_LOCAL,   /* out of descriptors, buffers, ports or memory, a curl failure:
                             not the remote's fault */
};

/* Why a transfer failed. label is a short static text; detail is NULL or a text borrowed from
 * x->errbuf, curl or the C library's error strings, valid while x lives. */
struct curlev_failure {
    enum curlev_cause cause;
    const char *label;
    const char *detail;
};

/* Classifies x's end with rc (not CURLE_OK; the caller has already looked at the reasons of
 * its own write or header callbacks for CURLE_WRITE_ERROR). A connect that failed with every
 * address refused is REMOTE "address denied" with the (last) address as detail. A failed connect
 * or name lookup is otherwise local when socket() failed for want of resources, when the connect's
 * errno says so, or when the process cannot open a socket right now. Never fails. */
void curlev_xfer_classify(const struct curlev_xfer *x, CURLcode rc, struct curlev_failure *out);

/* Writes the log reason of a failure into dst (dstsz > 0): "label: detail", or "label" when
 * detail is NULL or empty; a longer one is cut at dst's end (it is meant to be short). */
void curlev_reason_format(char *dst, size_t dstsz, const char *label, const char *detail);

#endif
