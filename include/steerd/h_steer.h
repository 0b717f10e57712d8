/* h_steer: the Content Steering servers, GET/HEAD /steer/hls and /steer/dash. Each poll is
 * answered from the session's ranking (policy_rank over the CDNs that are up, fail open when
 * none is): a steering manifest (VERSION 1, TTL, RELOAD-URI, PATHWAY-PRIORITY, PATHWAY-CLONES)
 * built by the pure steering module.
 *
 * Session: the signed state "st" of a RELOAD-URI (session hash, region, last priority), else
 * steerd_s=<16 hex digits> (what steering-mode manifests put in SERVER-URI), else the client
 * address like a 302. A state that is malformed, forged, signed by an unknown key or expired
 * gets 400 (the player keeps its current pathway and retries after its TTL); a missing one is a
 * fresh session. Invalid player parameters get 400. Never 410 (it ends steering for the
 * session) and never 429 (hls.js stops polling): under load the TTL grows to ttl_max_s instead.
 *
 * RELOAD-URI is manifest.public_base_url + the path + "?st=<token>" (or "?steerd_s=<hash>" when
 * no key file is configured); it is omitted when public_base_url is not set, since steerd never
 * builds its own URL from the request's Host header. Answers: 200 application/json,
 * Cache-Control no-store, X-Steerd-CDN (the first pathway), CORS. I/O layer. */
#ifndef STEERD_H_STEER_H
#define STEERD_H_STEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "steerd/steering.h"

struct buf;
struct cfg;
struct http_reqctx;
struct stats_worker;
struct uri_parts;

#define H_STEER_PATH_HLS "/steer/hls"
#define H_STEER_PATH_DASH "/steer/dash"

/* True when the canonical path is one of the steering endpoints; sets *kind. */
bool h_steer_is_steering(const char *path, size_t len, enum steering_kind *kind);

/* GET/HEAD of a steering endpoint (u parsed by the router). Appends the answer to out and
 * returns its status. */
int h_steer_handle(struct http_reqctx *ctx, const struct uri_parts *u, struct buf *out);

/* Writes the absolute steering server URL for a session into out (outsz bytes, NUL-terminated):
 * public_base_url + H_STEER_PATH_HLS / _DASH + "?steerd_s=<16 hex digits>". Returns its length,
 * or 0 when public_base_url is not configured or out is too small. */
size_t h_steer_server_uri(const struct cfg *cfg, enum steering_kind kind, uint64_t session,
                          char *out, size_t outsz);

/* Per-pathway throughput reported by a player (_HLS_throughput, _DASH_throughput, bit/s): counted
 * per CDN and queued on the worker's beacon ring as a sample about cdn from region (indexes of
 * the request's cfg), like a CMCD report. */
void h_steer_throughput_sample(const struct http_reqctx *ctx, uint32_t region, uint32_t cdn,
                               uint64_t bps);

#endif
