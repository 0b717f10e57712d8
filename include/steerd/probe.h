/* probe: active health probes for every CDN with a probe URL, run by libcurl's multi interface
 * on a libevent base (the pattern of curl's docs/examples/multi-event.c). Only http/https, no
 * redirects followed, capped body, low-speed limit and a whole-transfer timeout. Local resource
 * errors (fd exhaustion, out of memory, a curl init failure) are reported INCONCLUSIVE, never
 * FAIL. libcurl is confined to curlev.c, probe.c and fetch.c. */
#ifndef STEERD_PROBE_H
#define STEERD_PROBE_H

#include "steerd/health.h"

struct cfg;
struct event_base;
struct probe;

/* Called on the base's thread after each probe ends. id and s (with s->error and s->region) are
 * borrowed for the call. Regional probe URLs (cfg_probe.regional) report with s->region set. The
 * callback may call probe_set_targets or probe_stop, but not probe_free. */
typedef void (*probe_result_fn)(void *arg, const char *id, const struct health_sample *s);

/* Creates a prober on base; it probes nothing until probe_set_targets. Caller owns it. Returns
 * NULL when curl or libevent could not be set up. curl_global_init must have been called. */
struct probe *probe_new(struct event_base *base, probe_result_fn cb, void *arg);

/* Makes the probed set match c (by CDN id and region, for regional URLs): unchanged targets keep
 * their schedule, changed ones (URL, timings or c's allow_targets, which each target copies: a
 * resolved internal address outside it fails the probe with "address denied") are restarted,
 * removed ones are cancelled. Each
 * target's first probe starts at once. Returns 0, or -1 when curl could not be set up (then nothing
 * changed). */
int probe_set_targets(struct probe *p, const struct cfg *c);

/* Cancels every transfer and timer; no callback runs after it returns. */
void probe_stop(struct probe *p);
/* Stops and frees; accepts NULL. Must be called before the event_base is freed. */
void probe_free(struct probe *p);

#endif
