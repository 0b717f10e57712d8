/* control: the control thread's state and its work, all on one event_base: it owns the current
 * configuration, CDN health and the probes, builds and publishes snapshots to the workers,
 * reloads (parse -> validate -> build -> swap, the old configuration kept on any error), and
 * handles the signals. The admin endpoints read it through the accessors below. */
#ifndef STEERD_CONTROL_H
#define STEERD_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct beacon_hub;
struct buf;
struct diag;
struct event_base;
struct health;
struct http_server;
struct obs;
struct snap;
struct snap_conf;
struct stats;

struct control;

/* Takes ownership of *confp (set to NULL). base, http and stats are borrowed and must outlive
 * the control. The initial snap (every CDN up until probed) is ready for http_server_start. */
struct control *control_new(struct event_base *base, const char *cfg_path, struct snap_conf **confp,
                            struct http_server *http, struct stats *stats);
void control_free(struct control *c);

/* Feeds the beacons the workers queue on hub (borrowed, must outlive the control) into the
 * scoring engine's live measurements (control_beacon_obs): drained every CONTROL_BEACON_TICK_MS.
 * Call once, before control_start. */
void control_set_beacons(struct control *c, struct beacon_hub *hub);
#define CONTROL_BEACON_TICK_MS 50

/* The live measurements beacons and probes feed (borrowed). Control thread only. */
const struct obs *control_beacon_obs(const struct control *c);

/* Starts the probes and the signal handlers (HUP reload, TERM/INT drain, USR1 log reopen). */
int control_start(struct control *c, struct diag *d);

/* Reloads the configuration file. Returns 0 and publishes the new snapshot, or -1 with every
 * problem in d (the old configuration keeps serving). Counts the result either way. */
int control_reload(struct control *c, struct diag *d);

/* Starts a graceful stop (what SIGTERM does). */
void control_shutdown(struct control *c);

/* True when a second stop signal asked to exit at once. */
bool control_forced_exit(const struct control *c);

/* The current snapshot (borrowed, valid until the control thread publishes the next). */
struct snap *control_snap(const struct control *c);
const struct health *control_health(const struct control *c);
bool control_ready(const struct control *c);

/* Appends the control thread's metrics (config, reloads, CDN health, probes, readiness) and
 * the workers' counters in Prometheus text. */
void control_write_metrics(const struct control *c, struct buf *out);
/* Appends the /state JSON document. */
void control_write_state(const struct control *c, struct buf *out);

/* Appends to out, for /explain, a JSON object member "engine":{...} (with a leading comma):
 * whether the scoring engine is on and, when it is, every term of every CDN's score in region
 * and the rule that set its share. */
void control_write_explain_engine(const struct control *c, uint32_t region, struct buf *out);

/* How much of cdn's commit the month has used: month GB / commit GB, or the 95th percentile so
 * far / commit Gbps; NAN without a commit. */
double control_commit_used_ratio(const struct control *c, uint32_t cdn);

#endif
