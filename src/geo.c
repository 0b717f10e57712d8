#include "steerd/geo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <maxminddb.h>

#include "steerd/cfg.h"
#include "steerd/diag.h"
#include "steerd/util.h"

/*
 * Layout
 *  - Two binary tries over the 128 address bits (region CIDRs, trusted proxies). A node's value
 *    is set when a prefix ends there; a lookup walks at most 128 nodes and remembers the last
 *    value seen, so the most specific prefix wins. Inserting in config order and never
 *    overwriting a value makes the first region win for equal prefixes.
 *  - Sorted (key, region) arrays for ASNs and countries, searched with bsearch.
 *  - Up to two MMDB handles opened with MMDB_MODE_MMAP. libmaxminddb lookups on an open handle
 *    are read-only, so one struct geo serves many threads without locks.
 *
 * Database checks at geo_new: MMDB_open must succeed; the metadata database_type must name the
 * right kind of database; and test lookups of one IPv4 and one IPv6 address must succeed or
 * report "not found", and any record found must decode. An IPv4-only database therefore fails
 * the IPv6 test lookup and is rejected: it could not place IPv6 clients, and a database whose
 * search tree is damaged must not be used at all.
 */

#define TRIE_NONE UINT32_MAX

struct trie_node {
    uint32_t child[2]; /* 0 = none (the root is never a child) */
    uint32_t value;    /* TRIE_NONE when no prefix ends here */
};

struct trie {
    struct trie_node *nodes;
    size_t n, cap;
    /* IPv4 fast path: every IPv4 address shares the 96-bit ::ffff:0:0 prefix, so lookups of
     * IPv4 addresses start where that prefix ends (set by trie_finish). */
    uint32_t v4_node; /* node after the 96 bits, 0 when the path does not exist */
    uint32_t v4_best; /* best value on the path to it */
};

struct asn_entry {
    uint32_t asn;
    uint32_t region;
};

struct country_entry {
    uint16_t cc; /* the two letters, first in the high byte */
    uint32_t region;
};

struct geo_db {
    MMDB_s mmdb;
    bool open;
};

struct geo {
    struct trie cidrs;   /* value: region index */
    struct trie trusted; /* value: 1 */
    struct asn_entry *asns;
    size_t nasns;
    struct country_entry *countries;
    size_t ncountries;
    uint32_t default_region;
    struct geo_db country_db;
    struct geo_db asn_db;
};

/* ---- trie ---- */

static void
trie_init(struct trie *t)
{
    t->cap = 64;
    t->nodes = xmalloc(t->cap * sizeof(*t->nodes));
    t->n = 1;
    t->nodes[0].child[0] = t->nodes[0].child[1] = 0;
    t->nodes[0].value = TRIE_NONE;
}

static void
trie_free(struct trie *t)
{
    free(t->nodes);
    t->nodes = NULL;
    t->n = t->cap = 0;
}

static unsigned
addr_bit(const struct netaddr *a, unsigned i)
{
    return (a->b[i / 8] >> (7 - i % 8)) & 1u;
}

/* Adds c -> value unless c already has a value. Returns -1 only when the trie would outgrow
 * its 32-bit node indexes. */
static int
trie_insert(struct trie *t, const struct netaddr_cidr *c, uint32_t value)
{
    unsigned prefix = c->prefix > 128 ? 128 : c->prefix;
    size_t cur = 0;
    for (unsigned i = 0; i < prefix; i++) {
        unsigned bit = addr_bit(&c->addr, i);
        uint32_t next = t->nodes[cur].child[bit];
        if (next == 0) {
            if (t->n >= UINT32_MAX - 1)
                return -1;
            if (t->n == t->cap) {
                t->cap *= 2;
                t->nodes = xrealloc(t->nodes, t->cap * sizeof(*t->nodes));
            }
            next = (uint32_t)t->n++;
            t->nodes[next].child[0] = t->nodes[next].child[1] = 0;
            t->nodes[next].value = TRIE_NONE;
            t->nodes[cur].child[bit] = next;
        }
        cur = next;
    }
    if (t->nodes[cur].value == TRIE_NONE)
        t->nodes[cur].value = value;
    return 0;
}

/* Precomputes the IPv4 starting point; call after the last insert. */
static void
trie_finish(struct trie *t)
{
    static const struct netaddr mapped = {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0}};
    uint32_t best = t->nodes[0].value;
    size_t cur = 0;
    t->v4_node = 0;
    for (unsigned i = 0; i < 96; i++) {
        uint32_t next = t->nodes[cur].child[addr_bit(&mapped, i)];
        if (next == 0) {
            t->v4_best = best;
            return;
        }
        cur = next;
        if (t->nodes[cur].value != TRIE_NONE)
            best = t->nodes[cur].value;
    }
    t->v4_node = (uint32_t)cur;
    t->v4_best = best;
}

static uint32_t
trie_lookup(const struct trie *t, const struct netaddr *a)
{
    uint32_t best = t->nodes[0].value;
    size_t cur = 0;
    unsigned start = 0;
    if (netaddr_is_v4(a)) {
        if (t->v4_node == 0)
            return t->v4_best;
        cur = t->v4_node;
        best = t->v4_best;
        start = 96;
    }
    for (unsigned i = start; i < 128; i++) {
        uint32_t next = t->nodes[cur].child[addr_bit(a, i)];
        if (next == 0)
            break;
        cur = next;
        if (t->nodes[cur].value != TRIE_NONE)
            best = t->nodes[cur].value;
    }
    return best;
}

/* ---- ASN / country tables ---- */

static int
cmp_asn(const void *x, const void *y)
{
    const struct asn_entry *a = x, *b = y;
    if (a->asn != b->asn)
        return a->asn < b->asn ? -1 : 1;
    if (a->region != b->region)
        return a->region < b->region ? -1 : 1;
    return 0;
}

static int
cmp_country(const void *x, const void *y)
{
    const struct country_entry *a = x, *b = y;
    if (a->cc != b->cc)
        return a->cc < b->cc ? -1 : 1;
    if (a->region != b->region)
        return a->region < b->region ? -1 : 1;
    return 0;
}

static uint16_t
country_key(const char *cc)
{
    return (uint16_t)(((unsigned char)cc[0] << 8) | (unsigned char)cc[1]);
}

static void
build_tables(struct geo *g, const struct cfg *c)
{
    size_t na = 0, nc = 0;
    for (size_t r = 0; r < c->nregions; r++) {
        na += c->regions[r].nasns;
        nc += c->regions[r].ncountries;
    }
    if (na > 0) {
        g->asns = xcalloc(na, sizeof(*g->asns));
        for (size_t r = 0; r < c->nregions; r++)
            for (size_t i = 0; i < c->regions[r].nasns; i++)
                g->asns[g->nasns++] = (struct asn_entry){c->regions[r].asns[i], (uint32_t)r};
        qsort(g->asns, g->nasns, sizeof(*g->asns), cmp_asn);
        /* Keep the first region (lowest index) for each ASN. */
        size_t w = 0;
        for (size_t i = 0; i < g->nasns; i++)
            if (w == 0 || g->asns[w - 1].asn != g->asns[i].asn)
                g->asns[w++] = g->asns[i];
        g->nasns = w;
    }
    if (nc > 0) {
        g->countries = xcalloc(nc, sizeof(*g->countries));
        for (size_t r = 0; r < c->nregions; r++)
            for (size_t i = 0; i < c->regions[r].ncountries; i++)
                g->countries[g->ncountries++] =
                    (struct country_entry){country_key(c->regions[r].countries[i]), (uint32_t)r};
        qsort(g->countries, g->ncountries, sizeof(*g->countries), cmp_country);
        size_t w = 0;
        for (size_t i = 0; i < g->ncountries; i++)
            if (w == 0 || g->countries[w - 1].cc != g->countries[i].cc)
                g->countries[w++] = g->countries[i];
        g->ncountries = w;
    }
}

static int
cmp_asn_key(const void *key, const void *elem)
{
    uint32_t k = *(const uint32_t *)key;
    const struct asn_entry *e = elem;
    return k < e->asn ? -1 : k > e->asn ? 1 : 0;
}

static int
cmp_country_key(const void *key, const void *elem)
{
    uint16_t k = *(const uint16_t *)key;
    const struct country_entry *e = elem;
    return k < e->cc ? -1 : k > e->cc ? 1 : 0;
}

/* ---- MaxMind databases ---- */

enum db_kind { DB_COUNTRY, DB_ASN };

/* Fills a sockaddr for libmaxminddb: IPv4-mapped addresses become AF_INET so that they are
 * found in the database's IPv4 subtree. */
static const struct sockaddr *
to_sockaddr(const struct netaddr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (netaddr_is_v4(a)) {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, a->b + 12, 4);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, a->b, 16);
    }
    return (const struct sockaddr *)ss;
}

/* Looks addr up; true with *res filled when an entry was found. Errors count as not found. */
static bool
db_find(const struct geo_db *db, const struct netaddr *addr, MMDB_lookup_result_s *res)
{
    struct sockaddr_storage ss;
    int err = MMDB_SUCCESS;
    *res = MMDB_lookup_sockaddr(&db->mmdb, to_sockaddr(addr, &ss), &err);
    return err == MMDB_SUCCESS && res->found_entry;
}

static bool
get_country(MMDB_lookup_result_s *res, char out[3])
{
    static const char *const paths[][3] = {
        {"country", "iso_code", NULL},
        {"registered_country", "iso_code", NULL},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(paths); i++) {
        MMDB_entry_data_s data;
        if (MMDB_aget_value(&res->entry, &data, paths[i]) != MMDB_SUCCESS || !data.has_data)
            continue;
        if (data.type != MMDB_DATA_TYPE_UTF8_STRING || data.data_size != 2)
            continue;
        char a = data.utf8_string[0], b = data.utf8_string[1];
        if (a >= 'a' && a <= 'z')
            a = (char)(a - 'a' + 'A');
        if (b >= 'a' && b <= 'z')
            b = (char)(b - 'a' + 'A');
        if (a < 'A' || a > 'Z' || b < 'A' || b > 'Z')
            continue;
        out[0] = a;
        out[1] = b;
        out[2] = '\0';
        return true;
    }
    return false;
}

static bool
get_asn(MMDB_lookup_result_s *res, uint32_t *out)
{
    static const char *const path[] = {"autonomous_system_number", NULL};
    MMDB_entry_data_s data;
    if (MMDB_aget_value(&res->entry, &data, path) != MMDB_SUCCESS || !data.has_data)
        return false;
    switch (data.type) {
    case MMDB_DATA_TYPE_UINT16:
        *out = data.uint16;
        return *out != 0;
    case MMDB_DATA_TYPE_UINT32:
        *out = data.uint32;
        return *out != 0;
    case MMDB_DATA_TYPE_UINT64:
        if (data.uint64 == 0 || data.uint64 > UINT32_MAX)
            return false;
        *out = (uint32_t)data.uint64;
        return true;
    default:
        return false;
    }
}

static bool
type_matches(const char *type, enum db_kind kind)
{
    if (type == NULL)
        return false;
    if (kind == DB_COUNTRY)
        return strstr(type, "Country") != NULL || strstr(type, "City") != NULL ||
               strstr(type, "Enterprise") != NULL;
    return strstr(type, "ASN") != NULL || strstr(type, "ISP") != NULL;
}

/* One test lookup of text; adds a diag line and returns -1 when the database misbehaves. */
static int
db_probe(struct geo_db *db, const char *key, const char *path, const char *text, struct diag *d)
{
    struct netaddr a;
    if (netaddr_parse(text, strlen(text), &a) != 0)
        return -1;
    struct sockaddr_storage ss;
    int err = MMDB_SUCCESS;
    MMDB_lookup_result_s res = MMDB_lookup_sockaddr(&db->mmdb, to_sockaddr(&a, &ss), &err);
    if (err != MMDB_SUCCESS) {
        diag_add(d, "%s: %s: test lookup of %s failed: %s", key, path, text, MMDB_strerror(err));
        return -1;
    }
    if (!res.found_entry)
        return 0;
    MMDB_entry_data_list_s *list = NULL;
    err = MMDB_get_entry_data_list(&res.entry, &list);
    MMDB_free_entry_data_list(list);
    if (err != MMDB_SUCCESS) {
        diag_add(d, "%s: %s: record for %s does not decode: %s", key, path, text,
                 MMDB_strerror(err));
        return -1;
    }
    return 0;
}

static int
db_open(struct geo_db *db, const char *key, const char *path, enum db_kind kind, struct diag *d)
{
    int err = MMDB_open(path, MMDB_MODE_MMAP, &db->mmdb);
    if (err != MMDB_SUCCESS) {
        int saved = errno;
        if (err == MMDB_FILE_OPEN_ERROR || err == MMDB_IO_ERROR)
            diag_add(d, "%s: cannot open %s: %s (%s)", key, path, MMDB_strerror(err),
                     strerror(saved));
        else
            diag_add(d, "%s: cannot open %s: %s", key, path, MMDB_strerror(err));
        return -1;
    }
    db->open = true;

    int rc = 0;
    const char *type = db->mmdb.metadata.database_type;
    if (!type_matches(type, kind)) {
        diag_add(d, "%s: %s: database type \"%s\" is not %s", key, path, type ? type : "",
                 kind == DB_COUNTRY ? "a Country or City database" : "an ASN or ISP database");
        rc = -1;
    }
    if (db_probe(db, key, path, "1.1.1.1", d) != 0)
        rc = -1;
    if (db_probe(db, key, path, "2001:4860::1", d) != 0)
        rc = -1;
    return rc;
}

static void
db_close(struct geo_db *db)
{
    if (db->open)
        MMDB_close(&db->mmdb);
    db->open = false;
}

/* ---- public ---- */

struct geo *
geo_new(const struct cfg *c, struct diag *d)
{
    struct geo *g = xcalloc(1, sizeof(*g));
    int rc = 0;
    trie_init(&g->cidrs);
    trie_init(&g->trusted);

    if (c->nregions == 0 || c->default_region >= c->nregions) {
        diag_add(d, "default_region: no such region");
        rc = -1;
    }
    g->default_region = c->default_region;

    for (size_t r = 0; r < c->nregions; r++) {
        for (size_t i = 0; i < c->regions[r].ncidrs; i++) {
            if (trie_insert(&g->cidrs, &c->regions[r].cidrs[i], (uint32_t)r) != 0) {
                diag_add(d, "regions[%zu].cidrs: too many prefixes", r);
                rc = -1;
                goto out;
            }
        }
    }
    for (size_t i = 0; i < c->ntrusted_proxies; i++) {
        if (trie_insert(&g->trusted, &c->trusted_proxies[i], 1) != 0) {
            diag_add(d, "trusted_proxies: too many prefixes");
            rc = -1;
            goto out;
        }
    }
    trie_finish(&g->cidrs);
    trie_finish(&g->trusted);
    build_tables(g, c);

    if (c->geoip_country_db != NULL &&
        db_open(&g->country_db, "geoip.country_db", c->geoip_country_db, DB_COUNTRY, d) != 0)
        rc = -1;
    if (c->geoip_asn_db != NULL &&
        db_open(&g->asn_db, "geoip.asn_db", c->geoip_asn_db, DB_ASN, d) != 0)
        rc = -1;

out:
    if (rc != 0) {
        geo_free(g);
        return NULL;
    }
    return g;
}

void
geo_free(struct geo *g)
{
    if (g == NULL)
        return;
    trie_free(&g->cidrs);
    trie_free(&g->trusted);
    free(g->asns);
    free(g->countries);
    db_close(&g->country_db);
    db_close(&g->asn_db);
    free(g);
}

bool
geo_is_trusted(const struct geo *g, const struct netaddr *peer)
{
    return trie_lookup(&g->trusted, peer) != TRIE_NONE;
}

static bool
is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Parses one X-Forwarded-For entry: "1.2.3.4", "2001:db8::1", "[2001:db8::1]",
 * "[2001:db8::1]:443" or "1.2.3.4:443". */
static int
parse_xff_entry(const char *s, size_t len, struct netaddr *out)
{
    if (len == 0)
        return -1;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return -1;
        size_t inner = (size_t)(close - s) - 1;
        size_t rest = len - inner - 2;
        if (memchr(s + 1, ':', inner) == NULL) /* brackets are for IPv6 only */
            return -1;
        if (rest > 0) {
            uint64_t port;
            if (close[1] != ':' || util_parse_u64(close + 2, rest - 1, 0, 65535, &port) != 0)
                return -1;
        }
        return netaddr_parse(s + 1, inner, out);
    }
    const char *colon = memchr(s, ':', len);
    if (colon != NULL && memchr(colon + 1, ':', len - (size_t)(colon - s) - 1) == NULL) {
        /* Exactly one colon: an IPv4 address with a port. */
        size_t host = (size_t)(colon - s);
        uint64_t port;
        if (util_parse_u64(colon + 1, len - host - 1, 0, 65535, &port) != 0)
            return -1;
        if (memchr(s, '.', host) == NULL)
            return -1;
        return netaddr_parse(s, host, out);
    }
    return netaddr_parse(s, len, out);
}

void
geo_client_addr(const struct geo *g, const struct netaddr *peer, const char *xff, size_t xff_len,
                struct netaddr *out)
{
    *out = *peer;
    if (xff == NULL || !geo_is_trusted(g, peer))
        return;
    size_t end = xff_len;
    for (;;) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        size_t a = start, b = end;
        while (a < b && is_ows(xff[a]))
            a++;
        while (b > a && is_ows(xff[b - 1]))
            b--;
        struct netaddr hop;
        if (parse_xff_entry(xff + a, b - a, &hop) != 0)
            return;
        *out = hop;
        if (!geo_is_trusted(g, &hop))
            return;
        if (start == 0)
            return;
        end = start - 1;
    }
}

void
geo_lookup(const struct geo *g, const struct netaddr *addr, struct geo_client *out)
{
    memset(out, 0, sizeof(*out));
    out->addr = *addr;

    uint32_t r = trie_lookup(&g->cidrs, addr);
    if (r != TRIE_NONE) {
        out->region = r;
        out->matched_by = GEO_BY_CIDR;
        return;
    }

    MMDB_lookup_result_s res;
    if (g->nasns > 0 && g->asn_db.open && db_find(&g->asn_db, addr, &res) &&
        get_asn(&res, &out->asn)) {
        const struct asn_entry *e =
            bsearch(&out->asn, g->asns, g->nasns, sizeof(*g->asns), cmp_asn_key);
        if (e != NULL) {
            out->region = e->region;
            out->matched_by = GEO_BY_ASN;
            return;
        }
    }

    if (g->ncountries > 0 && g->country_db.open && db_find(&g->country_db, addr, &res) &&
        get_country(&res, out->country)) {
        uint16_t key = country_key(out->country);
        const struct country_entry *e =
            bsearch(&key, g->countries, g->ncountries, sizeof(*g->countries), cmp_country_key);
        if (e != NULL) {
            out->region = e->region;
            out->matched_by = GEO_BY_COUNTRY;
            return;
        }
    }

    out->region = g->default_region;
    out->matched_by = GEO_BY_DEFAULT;
}

const char *
geo_matched_by_str(int matched_by)
{
    switch (matched_by) {
    case GEO_BY_CIDR:
        return "cidr";
    case GEO_BY_ASN:
        return "asn";
    case GEO_BY_COUNTRY:
        return "country";
    case GEO_BY_DEFAULT:
        return "default";
    default:
        return "unknown";
    }
}
