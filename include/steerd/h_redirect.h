/* h_redirect: the hot path. Decides the CDN for a request (client address -> region, session
 * key, policy) and answers 302 Location: <cdn base_url><canonical path>[?query]; answers CORS
 * preflights. The decision part is shared with /explain so both always agree. */
#ifndef STEERD_H_REDIRECT_H
#define STEERD_H_REDIRECT_H

#include <stddef.h>
#include <stdint.h>

#include "steerd/geo.h"
#include "steerd/policy.h"

struct buf;
struct http_reqctx;
struct httpp_request;
struct snap;
struct uri_parts;

#define H_REDIRECT_SID_MAX 64

/* The session a request belongs to: the CMCD sid when the player sends one, else the client
 * address and the first segment of the canonical path. */
struct h_redirect_session {
    char sid[H_REDIRECT_SID_MAX + 1]; /* "" when derived from address + path */
    uint64_t hash;
};

/* Finds the CMCD sid in the CMCD query argument or the CMCD-Session header of req (query u) and
 * fills s. */
void h_redirect_session_of(const struct httpp_request *req, const struct uri_parts *u,
                           const struct netaddr *client, struct h_redirect_session *s);
/* The same from an explicit sid (may be NULL or "") for /explain. */
void h_redirect_session_from(const char *sid, const struct uri_parts *u,
                             const struct netaddr *client, struct h_redirect_session *s);

/* The client address of req as seen through trusted proxies. */
void h_redirect_client_addr(const struct snap *snap, const struct httpp_request *req,
                            const struct netaddr *peer, struct netaddr *out);

/* The sampled decision log (policy.decision_log_sample): sessions are sampled by their hash, so
 * a sampled session has every decision logged, one line with the answer kind ("302",
 * "manifest", "steering"), region, CDN, reason and the weight it had. */
void h_redirect_log_decision(const struct snap *snap, const char *answer, uint32_t region,
                             uint64_t session_hash, struct policy_decision d);

/* GET/HEAD of the target u (parsed by the router): appends the 302 (or an error answer) to
 * out; returns the status code. */
int h_redirect_handle(struct http_reqctx *ctx, const struct uri_parts *u, struct buf *out);
/* OPTIONS: appends the 204 preflight answer; returns 204. */
int h_redirect_options(struct http_reqctx *ctx, struct buf *out);

#endif
