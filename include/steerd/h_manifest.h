/* h_manifest: answers GET/HEAD for HLS playlists (.m3u8) and DASH MPDs (.mpd) itself: the
 * origin's manifest (origin.base_url + canonical path + the query without steerd's own
 * parameters) rewritten for the CDNs ranked for the request's session (hls_rewrite /
 * dash_rewrite). Origin answers are kept in the shared manifest cache (mcache); each worker keeps
 * its renderings per (origin copy, generation, answer mode, ranking) in an rcache, made for a
 * placeholder session that each request replaces with its own; a missing or expired entry is
 * fetched once, on
 * the worker of the request that found it so (fetch on that worker's loop), while requests for
 * it on any worker wait and get the result through http_server_post.
 *
 * Sessions: a request carrying steerd_s=<16 hex digits> (which steerd adds to nested playlist
 * and MPD reload URLs) uses it as its session hash; otherwise the CMCD sid, otherwise the client
 * address and first path segment, exactly like a 302. steerd_cdn=<id> (on the redundant copies
 * of a multivariant playlist) ranks that CDN first when it is allowed in the client's region
 * and up. Neither parameter, nor CMCD, is sent to the origin.
 *
 * Answers: 200 with the manifest's Content-Type, Cache-Control "private, max-age=<seconds the
 * cached origin answer stays fresh, at least 1>", X-Steerd-CDN (the first-ranked CDN) and the
 * CORS headers; never anything partial. Errors (plain text, same headers): 502 no origin
 * configured, origin status other than 2xx/404, origin unreachable, manifest too large, not a
 * playlist / not an MPD / malformed or forbidden XML, rewritten manifest too large; 404 when the
 * origin says 404; 504 origin timeout; 503 local failure; 414 URL too long. I/O layer. */
#ifndef STEERD_H_MANIFEST_H
#define STEERD_H_MANIFEST_H

#include <stddef.h>

struct buf;
struct http_env;
struct http_reqctx;
struct mcache_waiter;
struct uri_parts;

#define H_MANIFEST_SESSION_PARAM "steerd_s" /* added to nested playlist / reload URLs */

enum h_manifest_kind { H_MANIFEST_NONE = 0, H_MANIFEST_HLS, H_MANIFEST_DASH };

/* What a canonical path names: ".m3u8" -> HLS, ".mpd" -> DASH (ASCII case-insensitive), else
 * NONE. */
enum h_manifest_kind h_manifest_kind_of(const char *path, size_t len);

/* http_hooks for the manifest handler: env->shared must be the struct mcache every worker
 * shares. worker_start creates the worker's origin client; worker_stop ends the fetches it
 * still runs (their waiters get a 503) and frees it. */
void *h_manifest_worker_start(struct http_env *env);
void h_manifest_worker_stop(struct http_env *env);

/* GET/HEAD of the manifest target u (canonical, parsed by the router). Appends the answer to out
 * and returns its status, or returns ROUTER_ASYNC after http_async_begin when the origin must be
 * asked (or another request is asking it). */
int h_manifest_handle(struct http_reqctx *ctx, const struct uri_parts *u, struct buf *out);

/* mcache_free's release callback at shutdown: frees a request still waiting for a fetch that
 * never ended (its worker is gone: the answer token is abandoned). ctx is unused. */
void h_manifest_release_waiter(struct mcache_waiter *w, void *ctx);

#endif
