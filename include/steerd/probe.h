/* probe: active health probes for every CDN with a probe URL, run by libcurl's multi interface
 * on a libevent base (the pattern of curl's docs/examples/multi-event.c). Only http/https, no
 * redirects followed, capped body, low-speed limit and a whole-transfer timeout. Local resource
 * errors (fd exhaustion, out of memory, a curl init failure) are reported INCONCLUSIVE, never
 * FAIL. libcurl is confined to probe.c (and later fetch.c). */
#ifndef STEERD_PROBE_H
#define STEERD_PROBE_H

#include "steerd/health.h"

struct cfg;
struct event_base;
struct probe;

/* Called on the base's thread after each probe ends. id is borrowed for the call. */
typedef void (*probe_result_fn)(void *arg, const char *id, const struct health_sample *s);

/* Creates a prober on base; it probes nothing until probe_set_targets. Caller owns it. */
struct probe *probe_new(struct event_base *base, probe_result_fn cb, void *arg);

/* Makes the probed set match c (by CDN id): unchanged targets keep their schedule, changed ones
 * (URL or timings) are restarted, removed ones are cancelled. Each target's first probe starts
 * at once. Returns 0, or -1 when curl could not be set up (then nothing changed). */
int probe_set_targets(struct probe *p, const struct cfg *c);

/* Cancels every transfer and timer; no callback runs after it returns. */
void probe_stop(struct probe *p);
/* Stops and frees; accepts NULL. Must be called before the event_base is freed. */
void probe_free(struct probe *p);

#endif
