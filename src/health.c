#include "steerd/health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steerd/cfg.h"
#include "steerd/util.h"

/* One tracked CDN: the public view first, then the thresholds read from the config. */
struct entry {
    struct health_cdn pub;
    uint32_t rise, fall;
};

struct health {
    struct entry *entries; /* in the order of the last reconciled config */
    size_t n;
};

struct health *
health_new(void)
{
    return xcalloc(1, sizeof(struct health));
}

void
health_free(struct health *h)
{
    if (h == NULL)
        return;
    free(h->entries);
    free(h);
}

static struct entry *
find(const struct health *h, const char *id)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->entries[i].pub.id, id) == 0)
            return &h->entries[i];
    return NULL;
}

/* Returns the entry for c's CDN i, trying the same index first (the common case: the tracked
 * set was reconciled from c). */
static const struct entry *
find_for(const struct health *h, const struct cfg *c, size_t i)
{
    const char *id = c->cdns[i].id;
    if (i < h->n && strcmp(h->entries[i].pub.id, id) == 0)
        return &h->entries[i];
    return find(h, id);
}

static void
reset_state(struct health_cdn *e)
{
    e->state = HEALTH_UNKNOWN;
    e->consecutive_ok = 0;
    e->consecutive_fail = 0;
}

void
health_reconcile(struct health *h, const struct cfg *c)
{
    size_t n = c->ncdns;
    struct entry *next = xcalloc(n ? n : 1, sizeof(*next));

    for (size_t i = 0; i < n; i++) {
        const struct cfg_cdn *cdn = &c->cdns[i];
        struct entry *e = &next[i];
        const struct entry *old = find(h, cdn->id);
        bool probed = cdn->probe.url != NULL;

        if (old != NULL) {
            *e = *old;
            /* A CDN that stops being probed and is probed again later starts from scratch
             * rather than from a stale verdict. */
            if (!probed)
                reset_state(&e->pub);
        } else {
            snprintf(e->pub.id, sizeof(e->pub.id), "%s", cdn->id);
            e->pub.last_status = 0;
            e->pub.last_connect_ms = -1;
            e->pub.last_ttfb_ms = -1;
            e->pub.last_total_ms = -1;
            reset_state(&e->pub);
        }
        e->pub.probed = probed;
        e->rise = cdn->probe.rise ? cdn->probe.rise : 1;
        e->fall = cdn->probe.fall ? cdn->probe.fall : 1;
    }
    free(h->entries);
    h->entries = next;
    h->n = n;
}

static void
set_error(struct health_cdn *e, const char *err)
{
    snprintf(e->last_error, sizeof(e->last_error), "%s", err ? err : "");
}

bool
health_record(struct health *h, const char *id, const struct health_sample *s, uint64_t now_ms)
{
    struct entry *en = find(h, id);
    if (en == NULL)
        return false;
    struct health_cdn *e = &en->pub;
    e->last_probe_ms = now_ms;

    if (s->outcome == HEALTH_INCONCLUSIVE) {
        e->inconclusive_total++;
        set_error(e, s->error != NULL ? s->error : "inconclusive");
        return false;
    }

    e->last_status = s->http_status;
    e->last_connect_ms = s->connect_ms;
    e->last_ttfb_ms = s->ttfb_ms;
    e->last_total_ms = s->total_ms;

    enum health_state next = e->state;
    if (s->outcome == HEALTH_OK) {
        e->ok_total++;
        e->consecutive_ok++;
        e->consecutive_fail = 0;
        set_error(e, NULL);
        if (e->state == HEALTH_UNKNOWN || e->consecutive_ok >= en->rise)
            next = HEALTH_UP;
    } else {
        e->fail_total++;
        e->consecutive_fail++;
        e->consecutive_ok = 0;
        set_error(e, s->error != NULL ? s->error : "failed");
        if (e->state == HEALTH_UNKNOWN || e->consecutive_fail >= en->fall)
            next = HEALTH_DOWN;
    }

    if (next == e->state)
        return false;
    e->state = next;
    e->transitions_total++;
    e->last_change_ms = now_ms;
    return true;
}

void
health_fill_up(const struct health *h, const struct cfg *c, uint8_t *up)
{
    for (size_t i = 0; i < c->ncdns; i++) {
        if (c->cdns[i].probe.url == NULL) {
            up[i] = 1;
            continue;
        }
        const struct entry *e = find_for(h, c, i);
        up[i] = (e == NULL || e->pub.state != HEALTH_DOWN) ? 1 : 0;
    }
}

bool
health_all_known(const struct health *h)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->entries[i].pub.probed && h->entries[i].pub.state == HEALTH_UNKNOWN)
            return false;
    return true;
}

size_t
health_count(const struct health *h)
{
    return h->n;
}

const struct health_cdn *
health_at(const struct health *h, size_t i)
{
    return i < h->n ? &h->entries[i].pub : NULL;
}

const char *
health_state_str(enum health_state s)
{
    switch (s) {
    case HEALTH_UNKNOWN:
        return "unknown";
    case HEALTH_UP:
        return "up";
    case HEALTH_DOWN:
        return "down";
    }
    return "unknown";
}
