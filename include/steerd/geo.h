/* geo: client address -> region. A CIDR trie built from the regions' cidrs (most specific prefix
 * wins), the trusted-proxy set, and the MaxMind country / ASN databases (libmaxminddb, confined
 * to geo.c). Immutable after geo_new; safe to read from many threads at once. */
#ifndef STEERD_GEO_H
#define STEERD_GEO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "steerd/netaddr.h"

struct cfg;
struct diag;
struct geo;

/* country and asn hold what the databases said; a database is consulted only when the
 * steps before it did not decide the region, so a CIDR match leaves both unknown. */
struct geo_client {
    struct netaddr addr;
    char country[3]; /* "" when unknown */
    uint32_t asn;    /* 0 when unknown */
    uint32_t region; /* index into cfg->regions */
    enum { GEO_BY_CIDR, GEO_BY_ASN, GEO_BY_COUNTRY, GEO_BY_DEFAULT } matched_by;
};

/* Builds the lookup structures for c and opens the databases it names; each database is checked
 * by opening it, by its metadata type, and by test lookups (an IPv4-only or damaged database
 * is rejected). Returns NULL with every problem in d ("geoip.country_db: ...").
 * The geo keeps no pointer into c. Caller owns the result. */
struct geo *geo_new(const struct cfg *c, struct diag *d);
void geo_free(struct geo *g);

/* True when the peer may set the client address with X-Forwarded-For. */
bool geo_is_trusted(const struct geo *g, const struct netaddr *peer);

/* The client address for a request: the peer, or when the peer is trusted, the right-most
 * address of xff (a comma-separated header value, may be NULL) that is not itself trusted.
 * Entries are "1.2.3.4", "1.2.3.4:port", "2001:db8::1", "[2001:db8::1]" or "[2001:db8::1]:port",
 * with optional spaces or tabs around them. An unparsable or empty entry stops the walk: the
 * last good address (or the peer) is used. When every entry is trusted, the left-most is used. */
void geo_client_addr(const struct geo *g, const struct netaddr *peer, const char *xff,
                     size_t xff_len, struct netaddr *out);

/* Resolves addr to a region: cidrs (most specific) -> asns -> countries -> default_region.
 * Databases are consulted only when some region needs them. Never fails. */
void geo_lookup(const struct geo *g, const struct netaddr *addr, struct geo_client *out);

const char *geo_matched_by_str(int matched_by);

#endif
