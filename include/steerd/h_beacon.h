/* h_beacon: player beacons in. POST /beacon takes CMCD reports in its body (application/cmcd
 * or text/plain lines, or JSON: an object or an array of objects with CMCD keys); every other
 * player request (302, manifest) is read for the CMCD query argument and the CMCD-Object/
 * -Request/-Session/-Status headers. Good reports become samples queued on the worker's
 * beacon ring (see beacon.h) for the control thread; bad ones are counted and dropped. I/O
 * layer; no allocation per request. */
#ifndef STEERD_H_BEACON_H
#define STEERD_H_BEACON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;
struct http_reqctx;
struct netaddr;
struct uri_parts;

#define H_BEACON_PATH "/beacon"

/* True when the canonical path is the beacon endpoint. */
bool h_beacon_is_path(const char *path, size_t len);

/* A request for H_BEACON_PATH: POST with ctx->body gets 204 (at least one good report, or no
 * report at all), 400 (every report bad), 415 (a Content-Type other than application/cmcd,
 * text/plain or application/json), 429 + Retry-After (per-source limit) or 503 (no beacon
 * ring on this worker); any other method 405. Appends the answer; returns its status. */
int h_beacon_handle(struct http_reqctx *ctx, const struct uri_parts *u, struct buf *out);

/* OPTIONS on H_BEACON_PATH: the CORS preflight for POST with Content-Type and CMCD headers;
 * returns 204. */
int h_beacon_options(struct http_reqctx *ctx, struct buf *out);

/* The CMCD a request answered elsewhere carries (query argument first, else the CMCD-*
 * headers), attributed to its cdn key when that names a configured CDN, else to chosen (the CDN
 * the answer used), from region. Does nothing, and parses nothing, when the request carries no
 * CMCD or the worker has no beacon ring. Takes one token of the client's rate limit when it
 * does (no answer changes when limited: only the sample is lost, and counted). */
void h_beacon_note_request(const struct http_reqctx *ctx, const struct uri_parts *u,
                           const struct netaddr *client, uint32_t region, uint32_t chosen);

#endif
