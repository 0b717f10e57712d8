#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "steerd/cfg.h"
#include "steerd/diag.h"
#include "steerd/geo.h"
#include "steerd/netaddr.h"
#include "steerd/util.h"

#define GEOIP_DIR FIXTURE_DIR "/geoip/"

/* ---- helpers ---- */

static struct netaddr
addr_of(const char *s)
{
    struct netaddr a;
    if (netaddr_parse(s, strlen(s), &a) != 0)
        fail_msg("bad test address %s", s);
    return a;
}

static struct netaddr_cidr
cidr_of(const char *s)
{
    struct netaddr_cidr c;
    if (netaddr_parse_cidr(s, &c) != 0)
        fail_msg("bad test cidr %s", s);
    return c;
}

static bool
diag_has(const struct diag *d, const char *needle)
{
    for (size_t i = 0; i < d->count; i++)
        if (strstr(d->lines[i], needle) != NULL)
            return true;
    return false;
}

static void
print_diag(const struct diag *d)
{
    for (size_t i = 0; i < d->count; i++)
        print_message("diag: %s\n", d->lines[i]);
}

/* geo_new that must succeed without diagnostics. */
static struct geo *
must_geo_new(const struct cfg *c)
{
    struct diag d;
    diag_init(&d);
    struct geo *g = geo_new(c, &d);
    print_diag(&d);
    assert_non_null(g);
    assert_int_equal(d.count, 0);
    diag_free(&d);
    return g;
}

static struct geo_client
lookup(const struct geo *g, const char *ip)
{
    struct netaddr a = addr_of(ip);
    struct geo_client gc;
    memset(&gc, 0x5a, sizeof(gc));
    geo_lookup(g, &a, &gc);
    assert_memory_equal(gc.addr.b, a.b, 16);
    return gc;
}

/* Rows of expected-test-lookups.tsv: db, ip, path (space separated keys), value ('-...' when
 * the lookup found nothing or failed). */
struct tsv_row {
    char db[64];
    char ip[64];
    char path[64];
    char value[160];
};

static bool
copy_field(char *dst, size_t dstsz, const char *s, size_t n)
{
    if (n >= dstsz)
        return false;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

static size_t
read_tsv(const char *db, const char *path, struct tsv_row *rows, size_t max)
{
    FILE *f = fopen(GEOIP_DIR "expected-test-lookups.tsv", "r");
    assert_non_null(f);
    char line[512];
    size_t n = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        const char *f0 = line, *t0 = strchr(f0, '\t');
        const char *f1 = t0 ? t0 + 1 : NULL, *t1 = f1 ? strchr(f1, '\t') : NULL;
        const char *f2 = t1 ? t1 + 1 : NULL, *t2 = f2 ? strchr(f2, '\t') : NULL;
        assert_non_null(t2);
        struct tsv_row r;
        assert_true(copy_field(r.db, sizeof(r.db), f0, (size_t)(t0 - f0)));
        assert_true(copy_field(r.ip, sizeof(r.ip), f1, (size_t)(t1 - f1)));
        assert_true(copy_field(r.path, sizeof(r.path), f2, (size_t)(t2 - f2)));
        assert_true(copy_field(r.value, sizeof(r.value), t2 + 1, strlen(t2 + 1)));
        if (strcmp(r.db, db) != 0 || strcmp(r.path, path) != 0)
            continue;
        assert_true(n < max);
        rows[n++] = r;
    }
    fclose(f);
    return n;
}

static bool
rows_have_ip(const struct tsv_row *rows, size_t n, const char *ip)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].ip, ip) == 0)
            return true;
    return false;
}

/* ---- CIDR trie ---- */

static void
test_geo_cidr_most_specific_wins(void **state)
{
    (void)state;
    struct netaddr_cidr wide[] = {cidr_of("10.0.0.0/8"), cidr_of("2001:db8::/32")};
    struct netaddr_cidr mid[] = {cidr_of("10.1.0.0/16"), cidr_of("2001:db8:1::/48")};
    struct netaddr_cidr narrow[] = {cidr_of("10.1.2.0/24"), cidr_of("10.1.0.0/16"),
                                    cidr_of("2001:db8:1:2::/64"), cidr_of("192.0.2.7")};
    struct cfg_region regions[] = {
        {.name = "wide", .cidrs = wide, .ncidrs = UTIL_ARRAY_LEN(wide)},
        {.name = "mid", .cidrs = mid, .ncidrs = UTIL_ARRAY_LEN(mid)},
        {.name = "narrow", .cidrs = narrow, .ncidrs = UTIL_ARRAY_LEN(narrow)},
        {.name = "default", .implicit = true},
    };
    struct cfg c = {.regions = regions, .nregions = 4, .default_region = 3};
    struct geo *g = must_geo_new(&c);

    static const struct {
        const char *ip;
        uint32_t region;
        int by;
    } cases[] = {
        {"10.9.9.9", 0, GEO_BY_CIDR},
        {"10.1.9.9", 1, GEO_BY_CIDR}, /* 10.1.0.0/16 is in "mid" and "narrow": mid is first */
        {"10.1.2.3", 2, GEO_BY_CIDR},
        {"10.1.2.255", 2, GEO_BY_CIDR},
        {"10.1.3.0", 1, GEO_BY_CIDR},
        {"::ffff:10.1.2.3", 2, GEO_BY_CIDR},
        {"192.0.2.7", 2, GEO_BY_CIDR},
        {"192.0.2.6", 3, GEO_BY_DEFAULT},
        {"11.0.0.1", 3, GEO_BY_DEFAULT},
        {"2001:db8::1", 0, GEO_BY_CIDR},
        {"2001:db8:1::1", 1, GEO_BY_CIDR},
        {"2001:db8:1:2::1", 2, GEO_BY_CIDR},
        {"2001:db8:1:3::1", 1, GEO_BY_CIDR},
        {"2001:db9::1", 3, GEO_BY_DEFAULT},
        {"::a01:203", 3, GEO_BY_DEFAULT}, /* IPv4-compatible, not IPv4 */
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        struct geo_client gc = lookup(g, cases[i].ip);
        if (gc.region != cases[i].region || (int)gc.matched_by != cases[i].by)
            fail_msg("%s: region %u by %s, want %u by %s", cases[i].ip, gc.region,
                     geo_matched_by_str(gc.matched_by), cases[i].region,
                     geo_matched_by_str(cases[i].by));
        assert_string_equal(gc.country, "");
        assert_int_equal(gc.asn, 0);
    }
    geo_free(g);
}

static void
test_geo_cidr_default_routes(void **state)
{
    (void)state;
    struct netaddr_cidr v4all[] = {cidr_of("0.0.0.0/0")};
    struct netaddr_cidr v6all[] = {cidr_of("::/0"), cidr_of("2001:db8::/32")};
    struct cfg_region regions[] = {
        {.name = "v4", .cidrs = v4all, .ncidrs = 1},
        {.name = "v6", .cidrs = v6all, .ncidrs = 2},
        {.name = "default", .implicit = true},
    };
    struct cfg c = {.regions = regions, .nregions = 3, .default_region = 2};
    struct geo *g = must_geo_new(&c);
    assert_int_equal(lookup(g, "8.8.8.8").region, 0);
    assert_int_equal(lookup(g, "0.0.0.0").region, 0);
    assert_int_equal(lookup(g, "2001:db8::1").region, 1);
    assert_int_equal(lookup(g, "2606:4700::1").region, 1);
    geo_free(g);

    /* Without ::/0 an IPv6 address is not in 0.0.0.0/0. */
    regions[1].ncidrs = 0;
    g = must_geo_new(&c);
    struct geo_client gc = lookup(g, "2606:4700::1");
    assert_int_equal(gc.region, 2);
    assert_int_equal(gc.matched_by, GEO_BY_DEFAULT);
    geo_free(g);
}

/* IPv4 lookups start below the shared ::ffff:0:0/96 prefix; IPv6 prefixes that cover that
 * prefix must still count for them. */
static void
test_geo_v6_prefix_covering_mapped_space(void **state)
{
    (void)state;
    struct netaddr_cidr wide[] = {cidr_of("::/8")};
    struct netaddr_cidr ten[] = {cidr_of("10.0.0.0/8")};
    struct cfg_region regions[] = {
        {.name = "wide", .cidrs = wide, .ncidrs = 1},
        {.name = "ten", .cidrs = ten, .ncidrs = 1},
        {.name = "default", .implicit = true},
    };
    struct cfg c = {.regions = regions, .nregions = 3, .default_region = 2};
    struct geo *g = must_geo_new(&c);
    assert_int_equal(lookup(g, "10.1.2.3").region, 1);
    assert_int_equal(lookup(g, "11.1.2.3").region, 0);
    assert_int_equal(lookup(g, "2001:db8::1").region, 2);
    geo_free(g);

    /* Only IPv6 prefixes outside the mapped space: IPv4 falls through to the default. */
    struct netaddr_cidr doc[] = {cidr_of("2001:db8::/32")};
    regions[0].cidrs = doc;
    regions[1].ncidrs = 0;
    g = must_geo_new(&c);
    assert_int_equal(lookup(g, "10.1.2.3").region, 2);
    assert_int_equal(lookup(g, "2001:db8::1").region, 0);
    geo_free(g);
}

static void
test_geo_keeps_no_pointer_into_cfg(void **state)
{
    (void)state;
    struct netaddr_cidr *cidrs = xmalloc(sizeof(*cidrs));
    cidrs[0] = cidr_of("10.0.0.0/8");
    struct netaddr_cidr *trusted = xmalloc(sizeof(*trusted));
    trusted[0] = cidr_of("192.0.2.0/24");
    char(*countries)[3] = xmalloc(sizeof(*countries));
    memcpy(countries[0], "SE", 3);
    struct cfg_region *regions = xcalloc(2, sizeof(*regions));
    regions[0] = (struct cfg_region){
        .name = "r", .cidrs = cidrs, .ncidrs = 1, .countries = countries, .ncountries = 1};
    regions[1] = (struct cfg_region){.name = "default", .implicit = true};
    char *path = xstrdup(GEOIP_DIR "GeoIP2-Country-Test.mmdb");
    struct cfg c = {.regions = regions,
                    .nregions = 2,
                    .default_region = 1,
                    .trusted_proxies = trusted,
                    .ntrusted_proxies = 1,
                    .geoip_country_db = path};
    struct geo *g = must_geo_new(&c);
    free(cidrs);
    free(trusted);
    free(countries);
    free(regions);
    free(path);
    memset(&c, 0, sizeof(c));

    assert_int_equal(lookup(g, "10.2.3.4").matched_by, GEO_BY_CIDR);
    struct geo_client gc = lookup(g, "89.160.20.112");
    assert_int_equal(gc.matched_by, GEO_BY_COUNTRY);
    assert_string_equal(gc.country, "SE");
    struct netaddr p = addr_of("192.0.2.1");
    assert_true(geo_is_trusted(g, &p));
    geo_free(g);
}

/* ---- X-Forwarded-For ---- */

struct xff_case {
    const char *peer;
    const char *xff; /* NULL: no header */
    const char *want;
};

static void
run_xff_cases(const struct geo *g, const struct xff_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct netaddr peer = addr_of(cases[i].peer), out;
        memset(&out, 0x5a, sizeof(out));
        geo_client_addr(g, &peer, cases[i].xff, cases[i].xff ? strlen(cases[i].xff) : 0, &out);
        char got[NETADDR_STRLEN];
        netaddr_format(&out, got);
        struct netaddr want = addr_of(cases[i].want);
        if (memcmp(out.b, want.b, 16) != 0)
            fail_msg("peer %s xff \"%s\": got %s, want %s", cases[i].peer,
                     cases[i].xff ? cases[i].xff : "(null)", got, cases[i].want);
    }
}

static struct geo *
xff_geo(void)
{
    struct netaddr_cidr trusted[] = {cidr_of("10.0.0.0/8"), cidr_of("2001:db8:ffff::/48"),
                                     cidr_of("192.0.2.10")};
    struct cfg_region regions[] = {{.name = "default", .implicit = true}};
    struct cfg c = {.regions = regions,
                    .nregions = 1,
                    .trusted_proxies = trusted,
                    .ntrusted_proxies = UTIL_ARRAY_LEN(trusted)};
    return must_geo_new(&c);
}

static void
test_geo_is_trusted(void **state)
{
    (void)state;
    struct geo *g = xff_geo();
    static const struct {
        const char *ip;
        bool trusted;
    } cases[] = {
        {"10.0.0.1", true},         {"10.255.255.255", true},    {"11.0.0.1", false},
        {"::ffff:10.1.1.1", true},  {"192.0.2.10", true},        {"192.0.2.11", false},
        {"2001:db8:ffff::1", true}, {"2001:db8:fffe::1", false}, {"::1", false},
        {"127.0.0.1", false},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        struct netaddr a = addr_of(cases[i].ip);
        if (geo_is_trusted(g, &a) != cases[i].trusted)
            fail_msg("%s: trusted should be %d", cases[i].ip, cases[i].trusted);
    }
    geo_free(g);
}

static void
test_geo_xff_untrusted_peer_is_the_client(void **state)
{
    (void)state;
    struct geo *g = xff_geo();
    static const struct xff_case cases[] = {
        {"203.0.113.5", "198.51.100.1", "203.0.113.5"},
        {"203.0.113.5", "10.0.0.1, 198.51.100.1", "203.0.113.5"},
        {"203.0.113.5", NULL, "203.0.113.5"},
        {"2606:4700::1", "198.51.100.1", "2606:4700::1"},
        {"192.0.2.11", "198.51.100.1", "192.0.2.11"},
    };
    run_xff_cases(g, cases, UTIL_ARRAY_LEN(cases));
    geo_free(g);
}

static void
test_geo_xff_trusted_peer_uses_rightmost_untrusted(void **state)
{
    (void)state;
    struct geo *g = xff_geo();
    static const struct xff_case cases[] = {
        {"10.0.0.1", "198.51.100.1", "198.51.100.1"},
        {"10.0.0.1", NULL, "10.0.0.1"},
        {"10.0.0.1", "", "10.0.0.1"},
        /* The left-most entries are client-supplied: a forged one is ignored. */
        {"10.0.0.1", "1.1.1.1, 198.51.100.1", "198.51.100.1"},
        /* Several hops, trusted proxies in the chain are skipped. */
        {"10.0.0.1", "1.1.1.1, 198.51.100.1, 10.9.9.9, 192.0.2.10", "198.51.100.1"},
        {"192.0.2.10", "203.0.113.9,10.1.1.1", "203.0.113.9"},
        {"2001:db8:ffff::5", "2606:4700::1, 2001:db8:ffff::6", "2606:4700::1"},
        {"::ffff:10.0.0.1", "198.51.100.1", "198.51.100.1"},
        /* Whitespace (spaces, tabs) around entries. */
        {"10.0.0.1", "  198.51.100.1\t", "198.51.100.1"},
        {"10.0.0.1", "1.1.1.1 ,\t 198.51.100.2 ", "198.51.100.2"},
        /* Ports and brackets. */
        {"10.0.0.1", "198.51.100.1:51234", "198.51.100.1"},
        {"10.0.0.1", "[2606:4700::1]", "2606:4700::1"},
        {"10.0.0.1", "[2606:4700::1]:443", "2606:4700::1"},
        {"10.0.0.1", "2606:4700::1", "2606:4700::1"},
        {"10.0.0.1", "::ffff:198.51.100.1", "198.51.100.1"},
        /* Every entry trusted: the left-most one is the best guess. */
        {"10.0.0.1", "10.1.1.1, 10.2.2.2", "10.1.1.1"},
    };
    run_xff_cases(g, cases, UTIL_ARRAY_LEN(cases));
    geo_free(g);
}

static void
test_geo_xff_garbage_stops_the_walk(void **state)
{
    (void)state;
    struct geo *g = xff_geo();
    static const struct xff_case cases[] = {
        {"10.0.0.1", "garbage", "10.0.0.1"},
        {"10.0.0.1", "198.51.100.1, garbage", "10.0.0.1"},
        {"10.0.0.1", "garbage, 198.51.100.1", "198.51.100.1"},
        /* A trusted hop, then garbage: the last good address is used. */
        {"10.0.0.1", "garbage, 10.7.7.7", "10.7.7.7"},
        {"10.0.0.1", "198.51.100.1,", "10.0.0.1"},
        {"10.0.0.1", "198.51.100.1, , 10.7.7.7", "10.7.7.7"},
    };
    run_xff_cases(g, cases, UTIL_ARRAY_LEN(cases));

    static const char *const bad[] = {
        "unknown",
        "127.1",
        "0x7f.0.0.1",
        "1.2.3.4:",
        "1.2.3.4:99999",
        "1.2.3.4:http",
        "[1.2.3.4]",
        "[2606:4700::1",
        "[2606:4700::1]x",
        "[2606:4700::1]:",
        "fe80::1%eth0",
        "1.2.3.4 5.6.7.8",
        "_",
        "[]",
        "2606:4700::1:80:",
        "1.2.3.4/32",
        "\"1.2.3.4\"",
        "1.2.3.4\r",
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++) {
        struct netaddr peer = addr_of("10.0.0.1"), out;
        geo_client_addr(g, &peer, bad[i], strlen(bad[i]), &out);
        if (memcmp(out.b, peer.b, 16) != 0)
            fail_msg("xff \"%s\" was accepted", bad[i]);
    }

    /* Only xff_len bytes are read. */
    const char *s = "198.51.100.1, 203.0.113.9";
    struct netaddr peer = addr_of("10.0.0.1"), out;
    geo_client_addr(g, &peer, s, strlen("198.51.100.1"), &out);
    struct netaddr want = addr_of("198.51.100.1");
    assert_memory_equal(out.b, want.b, 16);
    geo_free(g);
}

/* ---- MaxMind databases ---- */

static void
check_country_db(const char *dbname)
{
    struct tsv_row rows[32];
    size_t n = read_tsv(dbname, "country iso_code", rows, UTIL_ARRAY_LEN(rows));
    assert_true(n > 0);

    /* One region per expected country, in the order the rows name them, then the default. */
    char countries[32][3];
    size_t ncountries = 0;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].value[0] == '-')
            continue;
        assert_int_equal(strlen(rows[i].value), 2);
        bool seen = false;
        for (size_t j = 0; j < ncountries; j++)
            seen = seen || strcmp(countries[j], rows[i].value) == 0;
        if (!seen)
            memcpy(countries[ncountries++], rows[i].value, 3);
    }
    struct cfg_region regions[33];
    memset(regions, 0, sizeof(regions));
    for (size_t j = 0; j < ncountries; j++) {
        regions[j].name = countries[j];
        regions[j].countries = &countries[j];
        regions[j].ncountries = 1;
    }
    regions[ncountries].name = "default";
    char path[512];
    snprintf(path, sizeof(path), "%s%s.mmdb", GEOIP_DIR, dbname);
    struct cfg c = {.regions = regions,
                    .nregions = ncountries + 1,
                    .default_region = (uint32_t)ncountries,
                    .geoip_country_db = path};
    struct geo *g = must_geo_new(&c);

    for (size_t i = 0; i < n; i++) {
        struct geo_client gc = lookup(g, rows[i].ip);
        if (rows[i].value[0] == '-') {
            assert_string_equal(gc.country, "");
            assert_int_equal(gc.matched_by, GEO_BY_DEFAULT);
            assert_int_equal(gc.region, ncountries);
            continue;
        }
        if (strcmp(gc.country, rows[i].value) != 0)
            fail_msg("%s %s: country \"%s\", want %s", dbname, rows[i].ip, gc.country,
                     rows[i].value);
        assert_int_equal(gc.matched_by, GEO_BY_COUNTRY);
        assert_string_equal(countries[gc.region], rows[i].value);
        assert_int_equal(gc.asn, 0);
    }
    geo_free(g);
}

static void
test_geo_country_from_expected_lookups(void **state)
{
    (void)state;
    struct tsv_row rows[32];
    size_t n = read_tsv("GeoIP2-Country-Test", "country iso_code", rows, UTIL_ARRAY_LEN(rows));
    /* The cases the lookup order depends on are in the table. */
    assert_true(rows_have_ip(rows, n, "81.2.69.142"));
    assert_true(rows_have_ip(rows, n, "89.160.20.112"));
    assert_true(rows_have_ip(rows, n, "2001:218::1"));
    assert_true(rows_have_ip(rows, n, "::ffff:81.2.69.142"));
    assert_true(rows_have_ip(rows, n, "1.1.1.1"));

    check_country_db("GeoIP2-Country-Test");
    check_country_db("GeoLite2-Country-Test");
    check_country_db("GeoIP2-City-Test");
}

static void
test_geo_country_known_values(void **state)
{
    (void)state;
    char eu[][3] = {"GB", "SE"};
    char se_jp[][3] = {"SE", "JP"};
    struct cfg_region regions[] = {
        {.name = "eu", .countries = eu, .ncountries = 2},
        {.name = "se-jp", .countries = se_jp, .ncountries = 2},
        {.name = "default", .implicit = true},
    };
    struct cfg c = {.regions = regions,
                    .nregions = 3,
                    .default_region = 2,
                    .geoip_country_db = GEOIP_DIR "GeoIP2-Country-Test.mmdb"};
    struct geo *g = must_geo_new(&c);
    static const struct {
        const char *ip, *country;
        uint32_t region;
        int by;
    } cases[] = {
        {"81.2.69.142", "GB", 0, GEO_BY_COUNTRY},
        {"::ffff:81.2.69.142", "GB", 0, GEO_BY_COUNTRY},
        {"89.160.20.112", "SE", 0, GEO_BY_COUNTRY}, /* SE is listed twice: first region wins */
        {"2001:218::1", "JP", 1, GEO_BY_COUNTRY},
        {"2001:220::1", "KR", 2, GEO_BY_DEFAULT}, /* known country, no region lists it */
        {"1.1.1.1", "", 2, GEO_BY_DEFAULT},       /* not in the database */
        {"214.1.1.1", "", 2, GEO_BY_DEFAULT},     /* found, but no country in the record */
        {"2001:db8::1", "", 2, GEO_BY_DEFAULT},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        struct geo_client gc = lookup(g, cases[i].ip);
        if (strcmp(gc.country, cases[i].country) != 0 || gc.region != cases[i].region ||
            (int)gc.matched_by != cases[i].by)
            fail_msg("%s: \"%s\" region %u by %s", cases[i].ip, gc.country, gc.region,
                     geo_matched_by_str(gc.matched_by));
    }
    geo_free(g);
}

static void
check_asn_rows(const char *dbname, const char *rowdb, const char *rowpath)
{
    struct tsv_row rows[32];
    size_t n = read_tsv(rowdb, rowpath, rows, UTIL_ARRAY_LEN(rows));
    assert_true(n > 0);
    uint32_t asns[32];
    size_t nasns = 0;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].value[0] == '-')
            continue;
        uint64_t v;
        assert_int_equal(util_parse_u64(rows[i].value, strlen(rows[i].value), 1, UINT32_MAX, &v),
                         0);
        asns[nasns++] = (uint32_t)v;
    }
    struct cfg_region regions[33];
    memset(regions, 0, sizeof(regions));
    for (size_t j = 0; j < nasns; j++) {
        regions[j].name = "asn";
        regions[j].asns = &asns[j];
        regions[j].nasns = 1;
    }
    regions[nasns].name = "default";
    char path[512];
    snprintf(path, sizeof(path), "%s%s.mmdb", GEOIP_DIR, dbname);
    struct cfg c = {.regions = regions,
                    .nregions = nasns + 1,
                    .default_region = (uint32_t)nasns,
                    .geoip_asn_db = path};
    struct geo *g = must_geo_new(&c);
    for (size_t i = 0; i < n; i++) {
        struct geo_client gc = lookup(g, rows[i].ip);
        if (rows[i].value[0] == '-') {
            assert_int_equal(gc.asn, 0);
            assert_int_equal(gc.matched_by, GEO_BY_DEFAULT);
            assert_int_equal(gc.region, nasns);
            continue;
        }
        char want[16];
        snprintf(want, sizeof(want), "%u", (unsigned)gc.asn);
        if (strcmp(want, rows[i].value) != 0)
            fail_msg("%s %s: asn %s, want %s", dbname, rows[i].ip, want, rows[i].value);
        assert_int_equal(gc.matched_by, GEO_BY_ASN);
        assert_int_equal(asns[gc.region], gc.asn);
        assert_string_equal(gc.country, "");
    }
    geo_free(g);
}

static void
test_geo_asn_from_expected_lookups(void **state)
{
    (void)state;
    struct tsv_row rows[32];
    size_t n =
        read_tsv("GeoLite2-ASN-Test", "autonomous_system_number", rows, UTIL_ARRAY_LEN(rows));
    assert_true(rows_have_ip(rows, n, "1.128.0.0"));
    assert_true(rows_have_ip(rows, n, "2600:6000::1"));
    assert_true(rows_have_ip(rows, n, "8.8.8.8"));
    check_asn_rows("GeoLite2-ASN-Test", "GeoLite2-ASN-Test", "autonomous_system_number");
}

static void
test_geo_asn_known_values(void **state)
{
    (void)state;
    uint32_t a0[] = {1221, 237};
    uint32_t a1[] = {237, 7018};
    struct cfg_region regions[] = {
        {.name = "a0", .asns = a0, .nasns = 2},
        {.name = "a1", .asns = a1, .nasns = 2},
        {.name = "default", .implicit = true},
    };
    struct cfg c = {.regions = regions,
                    .nregions = 3,
                    .default_region = 2,
                    .geoip_asn_db = GEOIP_DIR "GeoLite2-ASN-Test.mmdb"};
    struct geo *g = must_geo_new(&c);
    struct geo_client gc = lookup(g, "1.128.0.0");
    assert_int_equal(gc.asn, 1221);
    assert_int_equal(gc.region, 0);
    gc = lookup(g, "2600:6000::1");
    assert_int_equal(gc.asn, 237);
    assert_int_equal(gc.region, 0); /* listed by both: the first region wins */
    gc = lookup(g, "12.81.92.1");
    assert_int_equal(gc.asn, 7018);
    assert_int_equal(gc.region, 1);
    gc = lookup(g, "89.160.20.112");
    assert_int_equal(gc.asn, 29518); /* known, but no region lists it */
    assert_int_equal(gc.region, 2);
    assert_int_equal(gc.matched_by, GEO_BY_DEFAULT);
    gc = lookup(g, "8.8.8.8");
    assert_int_equal(gc.asn, 0);
    assert_int_equal(gc.matched_by, GEO_BY_DEFAULT);
    geo_free(g);

    /* An ISP database carries the ASN too. */
    c.geoip_asn_db = GEOIP_DIR "GeoIP2-ISP-Test.mmdb";
    g = must_geo_new(&c);
    gc = lookup(g, "1.128.0.0");
    assert_int_equal(gc.asn, 1221);
    assert_int_equal(gc.matched_by, GEO_BY_ASN);
    geo_free(g);
}

static void
test_geo_lookup_order_cidr_asn_country(void **state)
{
    (void)state;
    /* 89.160.20.112 is AS29518 and SE in the test databases. */
    struct netaddr_cidr by_cidr[] = {cidr_of("89.160.20.0/24")};
    uint32_t by_asn[] = {29518};
    char by_country[][3] = {"SE"};
    struct cfg_region regions[] = {
        {.name = "country", .countries = by_country, .ncountries = 1},
        {.name = "asn", .asns = by_asn, .nasns = 1},
        {.name = "cidr", .cidrs = by_cidr, .ncidrs = 1},
        {.name = "default", .implicit = true},
    };
    struct cfg c = {.regions = regions,
                    .nregions = 4,
                    .default_region = 3,
                    .geoip_country_db = GEOIP_DIR "GeoIP2-Country-Test.mmdb",
                    .geoip_asn_db = GEOIP_DIR "GeoLite2-ASN-Test.mmdb"};

    struct geo *g = must_geo_new(&c);
    struct geo_client gc = lookup(g, "89.160.20.112");
    assert_int_equal(gc.matched_by, GEO_BY_CIDR);
    assert_int_equal(gc.region, 2);
    assert_string_equal(gc.country, "");
    assert_int_equal(gc.asn, 0);
    geo_free(g);

    regions[2].ncidrs = 0;
    g = must_geo_new(&c);
    gc = lookup(g, "89.160.20.112");
    assert_int_equal(gc.matched_by, GEO_BY_ASN);
    assert_int_equal(gc.region, 1);
    assert_int_equal(gc.asn, 29518);
    assert_string_equal(gc.country, "");
    geo_free(g);

    regions[1].nasns = 0;
    g = must_geo_new(&c);
    gc = lookup(g, "89.160.20.112");
    assert_int_equal(gc.matched_by, GEO_BY_COUNTRY);
    assert_int_equal(gc.region, 0);
    /* No region lists an ASN, so the open ASN database is not consulted. */
    assert_int_equal(gc.asn, 0);
    assert_string_equal(gc.country, "SE");
    gc = lookup(g, "81.2.69.142");
    assert_int_equal(gc.matched_by, GEO_BY_DEFAULT);
    assert_string_equal(gc.country, "GB");
    geo_free(g);

    /* An ASN that no region lists falls through to the country. */
    uint32_t other[] = {1221};
    regions[1].asns = other;
    regions[1].nasns = 1;
    g = must_geo_new(&c);
    gc = lookup(g, "89.160.20.112");
    assert_int_equal(gc.matched_by, GEO_BY_COUNTRY);
    assert_int_equal(gc.asn, 29518);
    assert_string_equal(gc.country, "SE");
    gc = lookup(g, "1.128.0.0");
    assert_int_equal(gc.matched_by, GEO_BY_ASN);
    geo_free(g);

    /* Regions that list ASNs or countries without a database: nothing to consult. */
    c.geoip_asn_db = NULL;
    c.geoip_country_db = NULL;
    g = must_geo_new(&c);
    gc = lookup(g, "89.160.20.112");
    assert_int_equal(gc.matched_by, GEO_BY_DEFAULT);
    assert_int_equal(gc.region, 3);
    assert_int_equal(gc.asn, 0);
    assert_string_equal(gc.country, "");
    geo_free(g);
}

/* A tiny MaxMind DB writer for records the test databases do not have. One search tree node
 * whose two records both point at the single data record, so every address finds it. */
struct mmdb_writer {
    uint8_t b[1024];
    size_t n;
};

static void
mw_put(struct mmdb_writer *w, const void *p, size_t n)
{
    assert_true(w->n + n <= sizeof(w->b));
    memcpy(w->b + w->n, p, n);
    w->n += n;
}

static void
mw_byte(struct mmdb_writer *w, unsigned v)
{
    uint8_t c = (uint8_t)v;
    mw_put(w, &c, 1);
}

static void
mw_str(struct mmdb_writer *w, const char *s)
{
    size_t len = strlen(s);
    assert_true(len < 29);
    mw_byte(w, 0x40u | (unsigned)len);
    mw_put(w, s, len);
}

static void
mw_map(struct mmdb_writer *w, unsigned pairs)
{
    mw_byte(w, 0xe0u | pairs);
}

static void
mw_uint(struct mmdb_writer *w, unsigned type, uint64_t v, unsigned nbytes)
{
    if (type <= 7) {
        mw_byte(w, (type << 5) | nbytes);
    } else {
        mw_byte(w, nbytes);
        mw_byte(w, type - 7);
    }
    for (unsigned i = nbytes; i > 0; i--)
        mw_byte(w, (unsigned)(v >> (8 * (i - 1))) & 0xffu);
}

/* Writes a database to a new temporary file and returns its path (caller frees and unlinks).
 * data_offset past the data section makes the search tree point nowhere. */
static char *
write_mmdb(uint16_t ip_version, const char *type, unsigned data_offset)
{
    struct mmdb_writer w = {.n = 0};
    const unsigned node_count = 1;
    uint32_t rec = node_count + 16 + data_offset;
    for (int side = 0; side < 2; side++) {
        mw_byte(&w, (rec >> 16) & 0xffu);
        mw_byte(&w, (rec >> 8) & 0xffu);
        mw_byte(&w, rec & 0xffu);
    }
    static const uint8_t sep[16] = {0};
    mw_put(&w, sep, sizeof(sep));
    /* {"registered_country": {"iso_code": "NZ"}, "autonomous_system_number": 64500} */
    mw_map(&w, 2);
    mw_str(&w, "registered_country");
    mw_map(&w, 1);
    mw_str(&w, "iso_code");
    mw_str(&w, "NZ");
    mw_str(&w, "autonomous_system_number");
    mw_uint(&w, 6, 64500, 4);
    mw_put(&w, "\xab\xcd\xefMaxMind.com", 14);
    mw_map(&w, 9);
    mw_str(&w, "binary_format_major_version");
    mw_uint(&w, 5, 2, 2);
    mw_str(&w, "binary_format_minor_version");
    mw_uint(&w, 5, 0, 2);
    mw_str(&w, "build_epoch");
    mw_uint(&w, 9, 1700000000, 8);
    mw_str(&w, "database_type");
    mw_str(&w, type);
    mw_str(&w, "description");
    mw_map(&w, 0);
    mw_str(&w, "ip_version");
    mw_uint(&w, 5, ip_version, 2);
    mw_str(&w, "languages");
    mw_byte(&w, 0); /* array of 0 entries (extended type 11) */
    mw_byte(&w, 4);
    mw_str(&w, "node_count");
    mw_uint(&w, 6, node_count, 4);
    mw_str(&w, "record_size");
    mw_uint(&w, 5, 24, 2);

    char *path = xstrdup("/tmp/steerd-test-geo-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, w.b, w.n), (ssize_t)w.n);
    assert_int_equal(close(fd), 0);
    return path;
}

static void
test_geo_country_falls_back_to_registered_country(void **state)
{
    (void)state;
    char *path = write_mmdb(6, "Test-Country", 0);
    char nz[][3] = {"NZ"};
    uint32_t asn[] = {64500};
    struct cfg_region regions[] = {
        {.name = "nz", .countries = nz, .ncountries = 1},
        {.name = "default", .implicit = true},
    };
    struct cfg c = {
        .regions = regions, .nregions = 2, .default_region = 1, .geoip_country_db = path};
    struct geo *g = must_geo_new(&c);
    struct geo_client gc = lookup(g, "198.51.100.1");
    assert_string_equal(gc.country, "NZ");
    assert_int_equal(gc.matched_by, GEO_BY_COUNTRY);
    assert_int_equal(gc.region, 0);
    gc = lookup(g, "2001:db8::1");
    assert_string_equal(gc.country, "NZ");
    geo_free(g);

    /* The same file has the type of neither an ASN nor an ISP database. */
    regions[0] = (struct cfg_region){.name = "asn", .asns = asn, .nasns = 1};
    c.geoip_country_db = NULL;
    c.geoip_asn_db = path;
    struct diag d;
    diag_init(&d);
    assert_null(geo_new(&c, &d));
    assert_true(diag_has(&d, "geoip.asn_db: "));
    assert_true(diag_has(&d, "database type \"Test-Country\""));
    diag_free(&d);
    unlink(path);
    free(path);

    path = write_mmdb(6, "Test-ASN", 0);
    c.geoip_asn_db = path;
    g = must_geo_new(&c);
    gc = lookup(g, "198.51.100.1");
    assert_int_equal(gc.asn, 64500);
    assert_int_equal(gc.matched_by, GEO_BY_ASN);
    geo_free(g);
    unlink(path);
    free(path);
}

static void
expect_rejected(const char *country_db, const char *asn_db, const char *const *needles,
                size_t nneedles)
{
    struct cfg_region regions[] = {{.name = "default", .implicit = true}};
    struct cfg c = {.regions = regions,
                    .nregions = 1,
                    .geoip_country_db = (char *)country_db,
                    .geoip_asn_db = (char *)asn_db};
    struct diag d;
    diag_init(&d);
    struct geo *g = geo_new(&c, &d);
    if (g != NULL)
        fail_msg("accepted country_db=%s asn_db=%s", country_db ? country_db : "-",
                 asn_db ? asn_db : "-");
    for (size_t i = 0; i < nneedles; i++) {
        if (!diag_has(&d, needles[i])) {
            print_diag(&d);
            fail_msg("no diag line with \"%s\"", needles[i]);
        }
    }
    diag_free(&d);
}

static void
test_geo_rejects_bad_databases(void **state)
{
    (void)state;
    {
        const char *n[] = {"geoip.country_db: cannot open /nonexistent/steerd/GeoIP2-Country.mmdb: "
                           "Error opening the specified MaxMind DB file"};
        expect_rejected("/nonexistent/steerd/GeoIP2-Country.mmdb", NULL, n, 1);
    }
    {
        const char *n[] = {"geoip.asn_db: cannot open " FIXTURE_DIR "/geoip/: "};
        expect_rejected(NULL, FIXTURE_DIR "/geoip/", n, 1); /* a directory */
    }
    {
        const char *n[] = {"geoip.country_db: cannot open " GEOIP_DIR
                           "GeoIP2-City-Test-Invalid-Node-Count.mmdb: The MaxMind DB file "
                           "contains invalid metadata"};
        expect_rejected(GEOIP_DIR "GeoIP2-City-Test-Invalid-Node-Count.mmdb", NULL, n, 1);
    }
    {
        const char *n[] = {"geoip.country_db: cannot open " GEOIP_DIR
                           "libmaxminddb-metadata-marker-only.mmdb: "};
        expect_rejected(GEOIP_DIR "libmaxminddb-metadata-marker-only.mmdb", NULL, n, 1);
    }
    {
        /* Opens, but is not a country database, and (IPv4-only) cannot look up IPv6. */
        const char *n[] = {"geoip.country_db: " GEOIP_DIR "libmaxminddb-corrupt-search-tree.mmdb: "
                           "database type \"Test\"",
                           "test lookup of 2001:4860::1 failed: You attempted to look up an IPv6 "
                           "address in an IPv4-only database"};
        expect_rejected(GEOIP_DIR "libmaxminddb-corrupt-search-tree.mmdb", NULL, n, 2);
    }
    {
        const char *n[] = {"geoip.asn_db: " GEOIP_DIR
                           "GeoIP2-City-Test.mmdb: database type \"GeoIP2-City\" is not an ASN or "
                           "ISP database"};
        expect_rejected(NULL, GEOIP_DIR "GeoIP2-City-Test.mmdb", n, 1);
    }
    {
        const char *n[] = {"geoip.country_db: " GEOIP_DIR
                           "GeoLite2-ASN-Test.mmdb: database type \"GeoLite2-ASN\" is not a "
                           "Country or City database"};
        expect_rejected(GEOIP_DIR "GeoLite2-ASN-Test.mmdb", NULL, n, 1);
    }
    {
        const char *n[] = {"geoip.asn_db: " GEOIP_DIR "GeoIP2-Connection-Type-Test.mmdb: "
                           "database type"};
        expect_rejected(NULL, GEOIP_DIR "GeoIP2-Connection-Type-Test.mmdb", n, 1);
    }
    {
        const char *n[] = {"geoip.country_db: " GEOIP_DIR "GeoIP2-Anonymous-IP-Test.mmdb: "
                           "database type"};
        expect_rejected(GEOIP_DIR "GeoIP2-Anonymous-IP-Test.mmdb", NULL, n, 1);
    }
    {
        /* Every problem is reported, not only the first. */
        const char *n[] = {"geoip.country_db: cannot open ", "geoip.asn_db: cannot open "};
        expect_rejected(GEOIP_DIR "missing-country.mmdb", GEOIP_DIR "missing-asn.mmdb", n, 2);
    }
}

static void
test_geo_rejects_ipv4_only_and_corrupt_tree(void **state)
{
    (void)state;
    /* Right type, IPv4-only: IPv6 clients could never be placed. */
    char *path = write_mmdb(4, "GeoLite2-Country", 0);
    {
        const char *n[] = {"geoip.country_db: ", "test lookup of 2001:4860::1 failed"};
        expect_rejected(path, NULL, n, 2);
    }
    unlink(path);
    free(path);

    /* Right type, search tree pointing past the data section. */
    path = write_mmdb(6, "GeoLite2-Country", 500);
    {
        const char *n[] = {"test lookup of 1.1.1.1 failed: The MaxMind DB file's search tree is "
                           "corrupt",
                           "test lookup of 2001:4860::1 failed"};
        expect_rejected(path, NULL, n, 2);
    }
    unlink(path);
    free(path);
}

static void
test_geo_valid_databases_together(void **state)
{
    (void)state;
    struct cfg_region regions[] = {{.name = "default", .implicit = true}};
    const char *country[] = {"GeoIP2-Country-Test", "GeoLite2-Country-Test", "GeoIP2-City-Test",
                             "GeoLite2-City-Test"};
    const char *asn[] = {"GeoLite2-ASN-Test", "GeoIP2-ISP-Test"};
    for (size_t i = 0; i < UTIL_ARRAY_LEN(country); i++) {
        for (size_t j = 0; j < UTIL_ARRAY_LEN(asn); j++) {
            char cp[512], ap[512];
            snprintf(cp, sizeof(cp), "%s%s.mmdb", GEOIP_DIR, country[i]);
            snprintf(ap, sizeof(ap), "%s%s.mmdb", GEOIP_DIR, asn[j]);
            struct cfg c = {
                .regions = regions, .nregions = 1, .geoip_country_db = cp, .geoip_asn_db = ap};
            struct geo *g = must_geo_new(&c);
            /* Databases nobody needs are not consulted. */
            struct geo_client gc = lookup(g, "89.160.20.112");
            assert_int_equal(gc.matched_by, GEO_BY_DEFAULT);
            assert_int_equal(gc.asn, 0);
            assert_string_equal(gc.country, "");
            geo_free(g);
        }
    }
    geo_free(NULL);
}

static void
test_geo_matched_by_str(void **state)
{
    (void)state;
    assert_string_equal(geo_matched_by_str(GEO_BY_CIDR), "cidr");
    assert_string_equal(geo_matched_by_str(GEO_BY_ASN), "asn");
    assert_string_equal(geo_matched_by_str(GEO_BY_COUNTRY), "country");
    assert_string_equal(geo_matched_by_str(GEO_BY_DEFAULT), "default");
    assert_string_equal(geo_matched_by_str(-1), "unknown");
    assert_string_equal(geo_matched_by_str(42), "unknown");
}

/* ---- concurrency ---- */

struct thread_arg {
    const struct geo *g;
    int errors;
};

static void *
lookup_thread(void *p)
{
    struct thread_arg *arg = p;
    static const struct {
        const char *ip;
        uint32_t region;
    } cases[] = {
        {"89.160.20.112", 1}, {"81.2.69.142", 0}, {"2001:218::1", 2},
        {"1.128.0.0", 3},     {"10.1.2.3", 4},    {"8.8.8.8", 5},
    };
    for (int round = 0; round < 500; round++) {
        for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
            struct netaddr a;
            struct geo_client gc;
            if (netaddr_parse(cases[i].ip, strlen(cases[i].ip), &a) != 0) {
                arg->errors++;
                continue;
            }
            geo_lookup(arg->g, &a, &gc);
            if (gc.region != cases[i].region)
                arg->errors++;
        }
    }
    return NULL;
}

static void
test_geo_lookup_from_many_threads(void **state)
{
    (void)state;
    char gb[][3] = {"GB"};
    char se[][3] = {"SE"};
    char jp[][3] = {"JP"};
    uint32_t telstra[] = {1221};
    struct netaddr_cidr net10[] = {cidr_of("10.0.0.0/8")};
    struct cfg_region regions[] = {
        {.name = "gb", .countries = gb, .ncountries = 1},
        {.name = "se", .countries = se, .ncountries = 1},
        {.name = "jp", .countries = jp, .ncountries = 1},
        {.name = "telstra", .asns = telstra, .nasns = 1},
        {.name = "net10", .cidrs = net10, .ncidrs = 1},
        {.name = "default", .implicit = true},
    };
    struct cfg c = {.regions = regions,
                    .nregions = 6,
                    .default_region = 5,
                    .geoip_country_db = GEOIP_DIR "GeoIP2-Country-Test.mmdb",
                    .geoip_asn_db = GEOIP_DIR "GeoLite2-ASN-Test.mmdb"};
    struct geo *g = must_geo_new(&c);
    pthread_t th[4];
    struct thread_arg args[4];
    for (size_t i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){.g = g, .errors = 0};
        assert_int_equal(pthread_create(&th[i], NULL, lookup_thread, &args[i]), 0);
    }
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].errors, 0);
    }
    geo_free(g);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geo_cidr_most_specific_wins),
        cmocka_unit_test(test_geo_cidr_default_routes),
        cmocka_unit_test(test_geo_v6_prefix_covering_mapped_space),
        cmocka_unit_test(test_geo_keeps_no_pointer_into_cfg),
        cmocka_unit_test(test_geo_is_trusted),
        cmocka_unit_test(test_geo_xff_untrusted_peer_is_the_client),
        cmocka_unit_test(test_geo_xff_trusted_peer_uses_rightmost_untrusted),
        cmocka_unit_test(test_geo_xff_garbage_stops_the_walk),
        cmocka_unit_test(test_geo_country_from_expected_lookups),
        cmocka_unit_test(test_geo_country_known_values),
        cmocka_unit_test(test_geo_asn_from_expected_lookups),
        cmocka_unit_test(test_geo_asn_known_values),
        cmocka_unit_test(test_geo_lookup_order_cidr_asn_country),
        cmocka_unit_test(test_geo_country_falls_back_to_registered_country),
        cmocka_unit_test(test_geo_rejects_bad_databases),
        cmocka_unit_test(test_geo_rejects_ipv4_only_and_corrupt_tree),
        cmocka_unit_test(test_geo_valid_databases_together),
        cmocka_unit_test(test_geo_matched_by_str),
        cmocka_unit_test(test_geo_lookup_from_many_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
