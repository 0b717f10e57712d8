/* http: the player-facing front end. N worker threads, each with its own event_base and its own
 * SO_REUSEPORT listening socket per listen address, read/parse/answer in one callback
 * (pipelining-safe, no allocation per request beyond the answer's buffer growth), and enforce
 * the limits libevent 2.1 lacks: a total request-head deadline (slowloris), a keep-alive idle
 * timeout, a write timeout, a per-worker connection cap, and accept back-off on fd exhaustion.
 * Workers read configuration and health only through the snap the control thread hands them. */
#ifndef STEERD_HTTP_H
#define STEERD_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct cfg;
struct diag;
struct snap;
struct stats;

struct http_server;

/* Creates the listening sockets (cfg->listen x workers, SO_REUSEPORT; port 0 gets one
 * ephemeral port shared by all workers) without starting threads. Returns NULL with the reason
 * in d. stats must have `workers` slots and outlive the server. */
struct http_server *http_server_new(const struct cfg *cfg, uint32_t workers, struct stats *stats,
                                    struct diag *d);

/* The bound address of listen entry i as "host:port" into out (outsz bytes); 0 or -1. */
int http_server_bound_addr(const struct http_server *s, size_t i, char *out, size_t outsz);
size_t http_server_listen_count(const struct http_server *s);

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

#endif
