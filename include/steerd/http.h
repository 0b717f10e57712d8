/* http: the player-facing front end. N worker threads, each with its own event_base and its own
 * SO_REUSEPORT listening socket per listen address, read/parse/answer in one callback
 * (pipelining-safe, no allocation per request beyond the answer's buffer growth), and enforce
 * the limits libevent 2.1 lacks: a total request-head deadline (slowloris), a keep-alive idle
 * timeout, a write timeout, a per-worker connection cap, and accept back-off on fd exhaustion.
 * Workers read configuration and health only through the snap the control thread hands them. */
#ifndef STEERD_HTTP_H
#define STEERD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct beacon_hub;
struct beacon_worker;
struct buf;
struct cfg;
struct diag;
struct event_base;
struct http_reqctx;
struct snap;
struct stats;

struct http_server;

/* What a handler can reach on the worker it runs on. Owned by the server; valid while the
 * worker runs. */
struct http_env {
    uint32_t worker;         /* 0..workers-1 */
    struct event_base *base; /* the worker's loop */
    struct http_server *server;
    void *shared;                 /* http_hooks.shared, borrowed */
    void *local;                  /* what http_hooks.worker_start returned for this worker */
    struct beacon_worker *beacon; /* this worker's beacon ring, NULL when none (borrowed) */
    uint32_t overload;            /* the worker's overload level 0..3 (overload.h); written and
                                     read only on the worker's thread */
};

/* The overload level of the worker env belongs to (0 without one). Lock-free, for handlers. */
static inline uint32_t
http_env_overload(const struct http_env *env)
{
    return env != NULL ? env->overload : 0;
}

/* Per-worker set-up for handlers that keep state on a worker (e.g. an origin client on its
 * loop). worker_start runs on the worker's thread before it serves; worker_stop runs on it after
 * its connections are closed and before its queued tasks run for the last time. */
struct http_hooks {
    void *shared;
    void *(*worker_start)(struct http_env *env);
    void (*worker_stop)(struct http_env *env);
};

/* Creates the listening sockets (cfg->listen x workers, SO_REUSEPORT; port 0 gets one
 * ephemeral port shared by all workers) without starting threads. Returns NULL with the reason
 * in d. stats must have `workers` slots and outlive the server. */
struct http_server *http_server_new(const struct cfg *cfg, uint32_t workers, struct stats *stats,
                                    struct diag *d);

/* The bound address of listen entry i as "host:port" into out (outsz bytes); 0 or -1. */
int http_server_bound_addr(const struct http_server *s, size_t i, char *out, size_t outsz);
size_t http_server_listen_count(const struct http_server *s);

/* Sets the handler hooks; call before http_server_start. hooks is copied. */
void http_server_set_hooks(struct http_server *s, const struct http_hooks *hooks);

/* Gives worker i the ring beacon_hub_worker(hub, i); call before http_server_start. hub is
 * borrowed and must outlive the server. */
void http_server_set_beacons(struct http_server *s, struct beacon_hub *hub);

/* Starts the worker threads, each with a reference to initial. Returns 0 or -1 (d). */
int http_server_start(struct http_server *s, struct snap *initial, struct diag *d);

/* Hands snap to every worker (each takes its own reference; the caller keeps its own). */
void http_server_publish(struct http_server *s, struct snap *snap);

/* Graceful drain: workers close their listeners at once, finish in-flight requests (answers
 * carry Connection: close), close idle connections, and stop when none is left or after
 * grace_ms. Returns at once; http_server_join waits. */
void http_server_drain(struct http_server *s, uint32_t grace_ms);

/* How many worker threads are still running (0 once a drain has finished). */
uint32_t http_server_running(const struct http_server *s);

/* Waits for every worker thread to end. */
void http_server_join(struct http_server *s);

/* Frees the server (after join, or before start); accepts NULL. */
void http_server_free(struct http_server *s);

/* Runs fn(arg) on worker's thread soon; callable from any thread. Returns 0, or -1 when that
 * worker has stopped (then fn will not run). Tasks queued when a worker stops still run, on its
 * thread, after its connections are closed. */
int http_server_post(struct http_server *s, uint32_t worker, void (*fn)(void *), void *arg);

/* ---- asynchronous answers ----------------------------------------------------------------
 * A handler that cannot answer at once (it waits for an origin) calls http_async_begin and
 * returns ROUTER_ASYNC: the connection stops reading and parsing (pipelined requests wait, so
 * answers stay in order) until http_async_finish sends the answer written to http_async_out.
 * The token belongs to the handler from begin to finish (or abandon). */
struct http_async;

/* Pauses ctx's connection. Copy what you need from ctx->req first: it is not valid afterwards. */
struct http_async *http_async_begin(struct http_reqctx *ctx);
/* The context to build the answer with: snap (a reference held by the token), stats, date, head,
 * close (writable); req is NULL. Only on the token's worker thread. */
struct http_reqctx *http_async_ctx(struct http_async *a);
/* Where the answer goes (one whole response). */
struct buf *http_async_out(struct http_async *a);
/* The worker the token belongs to; finish and ctx/out use happen on its thread. */
uint32_t http_async_worker(const struct http_async *a);
/* False once the connection is gone (client closed, timeout, shutdown): finish then only frees. */
bool http_async_alive(const struct http_async *a);
/* Sends the answer and frees the token; resumes the connection (and its pipelined requests).
 * Only on the token's worker thread. */
void http_async_finish(struct http_async *a);
/* Frees a token whose worker is gone (shutdown clean-up from the thread that joined it). */
void http_async_abandon(struct http_async *a);

#endif
