#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "steerd/uri.h"

#define BASE "http://cdn.example"

/* Marks "the target has no query" (query == NULL) in the table below. */
static const char NOQ[] = "<none>";

struct uri_case {
    const char *in;
    enum uri_status want;
    const char *path; /* expected canonical path when URI_OK */
    const char *query;
};

static const struct uri_case uri_cases[] = {
    /* Plain paths. */
    {"/", URI_OK, "/", NOQ},
    {"/a/b", URI_OK, "/a/b", NOQ},
    {"/a/b/", URI_OK, "/a/b/", NOQ},
    {"/vod/x-1_2.ts", URI_OK, "/vod/x-1_2.ts", NOQ},
    {"/a:b@c", URI_OK, "/a:b@c", NOQ},
    {"/a!$&()*+,;=b", URI_OK, "/a!$&()*+,;=b", NOQ},
    {"/a;p=1/b", URI_OK, "/a;p=1/b", NOQ},
    {"/;x", URI_OK, "/;x", NOQ},
    {"/...", URI_OK, "/...", NOQ},
    {"/..a/a..", URI_OK, "/..a/a..", NOQ},
    {"/.a/a.", URI_OK, "/.a/a.", NOQ},
    /* Open-redirect shapes stay under the base. */
    {"//evil", URI_OK, "/evil", NOQ},
    {"///evil//x//", URI_OK, "/evil/x/", NOQ},
    {"/%2F%2Fevil", URI_OK, "/evil", NOQ},
    {"/%2f%2fevil.example/x", URI_OK, "/evil.example/x", NOQ},
    {"/@evil", URI_OK, "/@evil", NOQ},
    {"/cdn.ok.evil", URI_OK, "/cdn.ok.evil", NOQ},
    {"/ok@evil", URI_OK, "/ok@evil", NOQ},
    {"/a%2Fb", URI_OK, "/a/b", NOQ},
    {"/a%2F", URI_OK, "/a/", NOQ},
    /* Dot segments that are removed. */
    {"/a/./b", URI_OK, "/a/b", NOQ},
    {"/./a", URI_OK, "/a", NOQ},
    {"/a/.", URI_OK, "/a/", NOQ},
    {"/.", URI_OK, "/", NOQ},
    {"/a/%2e/b", URI_OK, "/a/b", NOQ},
    {"/a/%2E/b", URI_OK, "/a/b", NOQ},
    /* Decoding and re-encoding. */
    {"/%41%42%43", URI_OK, "/ABC", NOQ},
    {"/%7e%7E", URI_OK, "/~~", NOQ},
    {"/a%3bp%3D1", URI_OK, "/a%3Bp%3D1", NOQ},
    {"/a%2b%2Cb%40c%3a", URI_OK, "/a%2B%2Cb%40c%3A", NOQ},
    {"/a+b,c@d:", URI_OK, "/a+b,c@d:", NOQ},
    {"/caf%c3%a9", URI_OK, "/caf%C3%A9", NOQ},
    {"/caf\xc3\xa9", URI_OK, "/caf%C3%A9", NOQ},
    {"/\xe6\x97\xa5\xe6\x9c\xac", URI_OK, "/%E6%97%A5%E6%9C%AC", NOQ},
    {"/a b", URI_OK, "/a%20b", NOQ},
    {"/a%20b", URI_OK, "/a%20b", NOQ},
    {"/a'b\"c<d>e", URI_OK, "/a%27b%22c%3Cd%3Ee", NOQ},
    {"/a^b`c{d}e|f[g]", URI_OK, "/a%5Eb%60c%7Bd%7De%7Cf%5Bg%5D", NOQ},
    {"/100%25off", URI_OK, "/100%25off", NOQ},
    {"/%25", URI_OK, "/%25", NOQ},
    {"/%25a", URI_OK, "/%25a", NOQ},
    {"/%25zz", URI_OK, "/%25zz", NOQ},
    {"/%25a/b", URI_OK, "/%25a/b", NOQ},
    {"/a%3Fb%23c", URI_OK, "/a%3Fb%23c", NOQ},
    {"/%ff", URI_OK, "/%FF", NOQ},
    /* Query and fragment. */
    {"/a?x=1&y=2", URI_OK, "/a", "x=1&y=2"},
    {"/a?", URI_OK, "/a", ""},
    {"/a?#f", URI_OK, "/a", ""},
    {"/a#frag", URI_OK, "/a", NOQ},
    {"/a?q=1#frag", URI_OK, "/a", "q=1"},
    {"/a#x?y", URI_OK, "/a", NOQ},
    {"/a?b?c", URI_OK, "/a", "b?c"},
    {"/?x", URI_OK, "/", "x"},
    {"/a?b=%2F%0D%0A", URI_OK, "/a", "b=%2F%0D%0A"},
    {"/a?CMCD=bl%3D21300%2Cbr%3D3200", URI_OK, "/a", "CMCD=bl%3D21300%2Cbr%3D3200"},
    {"/a?x=a/b:c@d!$'()*+,;=~-._", URI_OK, "/a", "x=a/b:c@d!$'()*+,;=~-._"},
    /* Not origin-form. */
    {"", URI_BAD, NULL, NULL},
    {"a", URI_BAD, NULL, NULL},
    {"*", URI_BAD, NULL, NULL},
    {"http://evil/x", URI_BAD, NULL, NULL},
    {"\\evil", URI_BAD, NULL, NULL},
    {"?x", URI_BAD, NULL, NULL},
    /* Backslash, controls, NUL. */
    {"/\\evil", URI_BAD, NULL, NULL},
    {"/%5cevil", URI_BAD, NULL, NULL},
    {"/%5Cevil", URI_BAD, NULL, NULL},
    {"/%0d%0aSet-Cookie:x", URI_BAD, NULL, NULL},
    {"/%0D%0ASet-Cookie:x", URI_BAD, NULL, NULL},
    {"/a\r\nSet-Cookie:x", URI_BAD, NULL, NULL},
    {"/a\nb", URI_BAD, NULL, NULL},
    {"/%00", URI_BAD, NULL, NULL},
    {"/a%00.ts", URI_BAD, NULL, NULL},
    {"/a\tb", URI_BAD, NULL, NULL},
    {"/a%09b", URI_BAD, NULL, NULL},
    {"/%7f", URI_BAD, NULL, NULL},
    {"/a\x7f", URI_BAD, NULL, NULL},
    {"/a\x1b", URI_BAD, NULL, NULL},
    /* Double encoding. */
    {"/%250d%250a", URI_BAD, NULL, NULL},
    {"/%2541", URI_BAD, NULL, NULL},
    {"/%25%34%31", URI_BAD, NULL, NULL},
    {"/%252e%252e/x", URI_BAD, NULL, NULL},
    {"/%252F%252Fevil", URI_BAD, NULL, NULL},
    /* Traversal. */
    {"/../x", URI_BAD, NULL, NULL},
    {"/..", URI_BAD, NULL, NULL},
    {"/a/..", URI_BAD, NULL, NULL},
    {"/a/../b", URI_BAD, NULL, NULL},
    {"/a/../../etc/passwd", URI_BAD, NULL, NULL},
    {"/%2e%2e/x", URI_BAD, NULL, NULL},
    {"/%2E%2E/x", URI_BAD, NULL, NULL},
    {"/.%2e/x", URI_BAD, NULL, NULL},
    {"/%2e./x", URI_BAD, NULL, NULL},
    {"/..%2fx", URI_BAD, NULL, NULL},
    {"/..%2Fx", URI_BAD, NULL, NULL},
    {"/a/..%2f..%2fx", URI_BAD, NULL, NULL},
    {"/..;/x", URI_BAD, NULL, NULL},
    {"/..;jsessionid=1/x", URI_BAD, NULL, NULL},
    {"/.;x/y", URI_BAD, NULL, NULL},
    {"/..%3b/x", URI_BAD, NULL, NULL},
    {"/%c0%ae%c0%ae/x", URI_BAD, NULL, NULL},
    {"/%C0%AF", URI_BAD, NULL, NULL},
    {"/\xc0\xae\xc0\xae/x", URI_BAD, NULL, NULL},
    {"/%c1%9c", URI_BAD, NULL, NULL},
    {"/..?x", URI_BAD, NULL, NULL},
    {"/..#x", URI_BAD, NULL, NULL},
    /* Bad %xx. */
    {"/%", URI_BAD, NULL, NULL},
    {"/%2", URI_BAD, NULL, NULL},
    {"/%zz", URI_BAD, NULL, NULL},
    {"/%g0", URI_BAD, NULL, NULL},
    {"/%0g", URI_BAD, NULL, NULL},
    {"/%%41", URI_BAD, NULL, NULL},
    {"/a%2?x", URI_BAD, NULL, NULL},
    /* Queries. */
    {"/a?b c", URI_BAD, NULL, NULL},
    {"/a?b\r\nX-Injected: 1", URI_BAD, NULL, NULL},
    {"/a?b\nc", URI_BAD, NULL, NULL},
    {"/a?b\rc", URI_BAD, NULL, NULL},
    {"/a?\t", URI_BAD, NULL, NULL},
    {"/a?\x7f", URI_BAD, NULL, NULL},
    {"/a?\xc3\xa9", URI_BAD, NULL, NULL},
    {"/a?%", URI_BAD, NULL, NULL},
    {"/a?%2", URI_BAD, NULL, NULL},
    {"/a?x=%zz", URI_BAD, NULL, NULL},
    {"/a?x=%2", URI_BAD, NULL, NULL},
    {"/a?\"", URI_OK, "/a", "\""},
    {"/a?<script>", URI_OK, "/a", "<script>"},
    {"/a?\\", URI_OK, "/a", "\\"},
    {"/a?^", URI_OK, "/a", "^"},
    {"/a?`", URI_OK, "/a", "`"},
    {"/a?{}", URI_OK, "/a", "{}"},
    {"/a?|", URI_OK, "/a", "|"},
};

static void
test_uri_parse_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(uri_cases) / sizeof(uri_cases[0]); i++) {
        const struct uri_case *c = &uri_cases[i];
        struct uri_parts u;
        size_t n = strlen(c->in);
        char *copy = malloc(n ? n : 1); /* exact size, so ASan sees any over-read */
        enum uri_status st;

        assert_non_null(copy);
        memcpy(copy, c->in, n);
        st = uri_parse_target(copy, n, &u);
        if (st != c->want)
            fail_msg("case %zu \"%s\": status %d, want %d", i, c->in, (int)st, (int)c->want);
        if (st == URI_OK) {
            if (u.path_len != strlen(c->path) || strcmp(u.path, c->path) != 0)
                fail_msg("case %zu \"%s\": path \"%s\", want \"%s\"", i, c->in, u.path, c->path);
            if (c->query == NOQ) {
                assert_null(u.query);
                assert_int_equal(u.query_len, 0);
            } else {
                assert_non_null(u.query);
                assert_int_equal(u.query_len, strlen(c->query));
                assert_memory_equal(u.query, c->query, u.query_len);
                /* The query points into the target as sent. */
                assert_true(u.query > copy && u.query + u.query_len <= copy + n);
            }
        } else {
            assert_int_equal(u.path_len, 0);
        }
        free(copy);
    }
}

/* The canonical form is a fixed point: parsing it again gives the same bytes. */
static void
test_uri_canonical_is_idempotent(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(uri_cases) / sizeof(uri_cases[0]); i++) {
        struct uri_parts a, b;

        if (uri_parse_target(uri_cases[i].in, strlen(uri_cases[i].in), &a) != URI_OK)
            continue;
        assert_int_equal(uri_parse_target(a.path, a.path_len, &b), URI_OK);
        assert_int_equal(a.path_len, b.path_len);
        assert_string_equal(a.path, b.path);
    }
}

static void
test_uri_equivalent_encodings_match(void **state)
{
    static const char *const groups[][8] = {
        {"/a/b", "/a%2Fb", "/a%2fb", "//a//b", "/a/./b", "/%61/%62", "/./a/b", "/a/%2e/b"},
        {"/caf%C3%A9", "/caf%c3%a9", "/caf\xc3\xa9", "/%63af%C3%a9", NULL},
        {"/a%20b", "/a b", NULL},
        {"/~x", "/%7Ex", "/%7ex", NULL},
        {"/a%3Bb%3Dc", "/a%3bb%3dc", "/a%3Bb%3dc", NULL},
        {"/a+b", "/%61+%62", NULL},
        {"/a%2Bb", "/a%2bb", "/%61%2b%62", NULL},
        {"/evil", "//evil", "/%2F%2Fevil", "/%2f/evil", "/./evil", NULL},
        {"/d/", "/d//", "/d/.", "/d/%2F", "/d/./", NULL},
    };
    size_t g, k;

    (void)state;
    for (g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
        struct uri_parts first, u;

        assert_int_equal(uri_parse_target(groups[g][0], strlen(groups[g][0]), &first), URI_OK);
        for (k = 1; k < 8 && groups[g][k] != NULL; k++) {
            assert_int_equal(uri_parse_target(groups[g][k], strlen(groups[g][k]), &u), URI_OK);
            if (strcmp(u.path, first.path) != 0)
                fail_msg("group %zu: \"%s\" -> \"%s\" but \"%s\" -> \"%s\"", g, groups[g][0],
                         first.path, groups[g][k], u.path);
        }
    }
}

/* RELIABILITY T14/T15: every hostile target is refused, or its Location is the base + "/"
 * followed only by safe bytes. */
static void
test_uri_hostile_targets_stay_under_base(void **state)
{
    static const char *const hostile[] = {
        "//evil",
        "/\\evil",
        "/%2F%2Fevil",
        "/%2f%2fevil",
        "/@evil",
        "/cdn.ok.evil",
        "/ok@evil",
        "/%0d%0aSet-Cookie:x",
        "/%250d%250a",
        "/%00",
        "/a\tb",
        "/../x",
        "/%2e%2e/x",
        "/..%2fx",
        "/%252e%252e/x",
        "/a/./b",
        "/a;p=1/b",
        "/%E2%80%A8x",
        "/x?%0d%0aSet-Cookie:x",
        "/x?a\r\nSet-Cookie: x",
        "/x?a b",
        "/%20evil",
        "/:evil",
        "/:@evil",
        "/.evil",
        "/%2e/evil",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        struct uri_parts u;
        char loc[URI_MAX_TARGET * 2 + 64];
        size_t n, j;

        if (uri_parse_target(hostile[i], strlen(hostile[i]), &u) != URI_OK)
            continue;
        n = uri_build_location(BASE, strlen(BASE), &u, loc, sizeof(loc));
        assert_true(n > 0);
        assert_int_equal(n, strlen(loc));
        if (strncmp(loc, BASE "/", strlen(BASE "/")) != 0)
            fail_msg("\"%s\" -> \"%s\"", hostile[i], loc);
        for (j = 0; j < n; j++)
            assert_true((unsigned char)loc[j] >= 0x21 && (unsigned char)loc[j] <= 0x7e);
        assert_null(strstr(loc + strlen(BASE), "//"));
        assert_null(strstr(loc, "/../"));
        assert_null(strchr(loc, '\\'));
    }
}

static void
test_uri_long_paths(void **state)
{
    size_t big = 64 * 1024;
    char *in = malloc(big);
    struct uri_parts u;

    (void)state;
    assert_non_null(in);
    memset(in, 'a', big);
    in[0] = '/';
    assert_int_equal(uri_parse_target(in, big, &u), URI_TOO_LONG);
    /* Exactly URI_MAX_TARGET bytes fit. */
    assert_int_equal(uri_parse_target(in, URI_MAX_TARGET, &u), URI_OK);
    assert_int_equal(u.path_len, URI_MAX_TARGET);
    assert_int_equal(u.path[URI_MAX_TARGET], '\0');
    assert_int_equal(uri_parse_target(in, URI_MAX_TARGET + 1, &u), URI_TOO_LONG);
    /* Short raw input whose re-encoding passes the limit. */
    memset(in + 1, 0xe9, 3000);
    assert_int_equal(uri_parse_target(in, 3001, &u), URI_TOO_LONG);
    /* ... and one that just fits: 1 + 3 * 2730 = 8191. */
    assert_int_equal(uri_parse_target(in, 2731, &u), URI_OK);
    assert_int_equal(u.path_len, 8191);
    /* A long query. */
    memset(in, 'q', big);
    memcpy(in, "/a?", 3);
    assert_int_equal(uri_parse_target(in, URI_MAX_TARGET, &u), URI_OK);
    assert_int_equal(u.query_len, URI_MAX_TARGET - 3);
    assert_int_equal(uri_parse_target(in, big, &u), URI_TOO_LONG);
    free(in);
}

static void
test_uri_build_location(void **state)
{
    struct uri_parts u;
    char out[64];
    size_t n;

    (void)state;
    assert_int_equal(uri_parse_target("/v/a.ts?t=1", 11, &u), URI_OK);
    n = uri_build_location(BASE, strlen(BASE), &u, out, sizeof(out));
    assert_string_equal(out, BASE "/v/a.ts?t=1");
    assert_int_equal(n, strlen(BASE "/v/a.ts?t=1"));
    /* Exactly fitting (with the NUL) and one byte short. */
    assert_int_equal(uri_build_location(BASE, strlen(BASE), &u, out, n + 1), n);
    assert_int_equal(uri_build_location(BASE, strlen(BASE), &u, out, n), 0);
    assert_string_equal(out, "");
    assert_int_equal(uri_build_location(BASE, strlen(BASE), &u, out, 0), 0);
    /* Bytes RFC 3986 does not allow in a query are encoded in the Location. */
    assert_int_equal(uri_parse_target("/v?s=\"a\"|<b>", 12, &u), URI_OK);
    n = uri_build_location(BASE, strlen(BASE), &u, out, sizeof(out));
    assert_string_equal(out, BASE "/v?s=%22a%22%7C%3Cb%3E");
    assert_int_equal(n, strlen(BASE "/v?s=%22a%22%7C%3Cb%3E"));
    assert_int_equal(uri_build_location(BASE, strlen(BASE), &u, out, n), 0);
    /* An empty query adds no '?'. */
    assert_int_equal(uri_parse_target("/v?", 3, &u), URI_OK);
    assert_non_null(u.query);
    assert_int_equal(uri_build_location(BASE, strlen(BASE), &u, out, sizeof(out)), 20);
    assert_string_equal(out, BASE "/v");
    /* A base with a path prefix. */
    assert_int_equal(uri_build_location(BASE "/vod", strlen(BASE "/vod"), &u, out, sizeof(out)),
                     24);
    assert_string_equal(out, BASE "/vod/v");
    /* Defence in depth: an unsafe byte anywhere gives 0. */
    assert_int_equal(uri_build_location("http://cdn.example\r\nX: 1", 24, &u, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(uri_build_location("http://cdn ex", 13, &u, out, sizeof(out)), 0);
    /* Parts not made by uri_parse_target: no leading '/', unsafe bytes. */
    memset(&u, 0, sizeof(u));
    memcpy(u.path, "evil.example/x", 14);
    u.path_len = 14;
    assert_int_equal(uri_build_location(BASE, strlen(BASE), &u, out, sizeof(out)), 0);
    memcpy(u.path, "/a\r\nb", 5);
    u.path_len = 5;
    assert_int_equal(uri_build_location(BASE, strlen(BASE), &u, out, sizeof(out)), 0);
    u.path_len = 2;
    u.query = "x\ny";
    u.query_len = 3;
    assert_int_equal(uri_build_location(BASE, strlen(BASE), &u, out, sizeof(out)), 0);
    u.path_len = 0;
    u.query = NULL;
    assert_int_equal(uri_build_location(BASE, strlen(BASE), &u, out, sizeof(out)), 0);
}

static void
test_uri_header_safe(void **state)
{
    (void)state;
    assert_true(uri_header_safe("abc", 3));
    assert_true(uri_header_safe("", 0));
    assert_true(uri_header_safe("a b c", 5));
    assert_true(uri_header_safe(BASE "/x?y=%0D", strlen(BASE "/x?y=%0D")));
    assert_false(uri_header_safe(" a", 2));
    assert_false(uri_header_safe("a ", 2));
    assert_false(uri_header_safe("a  b", 4));
    assert_false(uri_header_safe("a\tb", 3));
    assert_false(uri_header_safe("a\r\nb", 4));
    assert_false(uri_header_safe("a\nb", 3));
    assert_false(uri_header_safe("a\0b", 3));
    assert_false(uri_header_safe("a\x7f", 2));
    assert_false(uri_header_safe("a\xc3\xa9", 3));
}

static void
test_uri_query_param(void **state)
{
    static const char q[] = "a=1&b=2&bb=3&c&d=&a=9&e%3D=x&x=1;y=2";
    size_t ql = sizeof(q) - 1;
    size_t vlen = 99;
    const char *v;

    (void)state;
    v = uri_query_param(q, ql, "a", &vlen);
    assert_ptr_equal(v, q + 2);
    assert_int_equal(vlen, 1);
    v = uri_query_param(q, ql, "b", &vlen);
    assert_non_null(v);
    assert_int_equal(vlen, 1);
    assert_memory_equal(v, "2", 1);
    v = uri_query_param(q, ql, "bb", &vlen);
    assert_non_null(v);
    assert_memory_equal(v, "3", 1);
    v = uri_query_param(q, ql, "c", &vlen);
    assert_non_null(v);
    assert_int_equal(vlen, 0);
    v = uri_query_param(q, ql, "d", &vlen);
    assert_non_null(v);
    assert_int_equal(vlen, 0);
    /* Raw keys: the encoded key matches only as sent. */
    v = uri_query_param(q, ql, "e%3D", &vlen);
    assert_non_null(v);
    assert_memory_equal(v, "x", 1);
    assert_null(uri_query_param(q, ql, "e=", &vlen));
    /* Only '&' separates pairs. */
    v = uri_query_param(q, ql, "x", &vlen);
    assert_non_null(v);
    assert_int_equal(vlen, 5);
    assert_memory_equal(v, "1;y=2", 5);
    assert_null(uri_query_param(q, ql, "y", &vlen));
    assert_null(uri_query_param(q, ql, "z", &vlen));
    assert_null(uri_query_param(q, ql, "", &vlen));
    assert_null(uri_query_param(q, ql, "a=1", &vlen));
    assert_null(uri_query_param(NULL, 0, "a", &vlen));
    assert_null(uri_query_param("", 0, "a", &vlen));
    /* The length bounds the search. */
    assert_null(uri_query_param(q, 3, "b", &vlen));
    v = uri_query_param("a=12", 3, "a", &vlen);
    assert_int_equal(vlen, 1);
    /* An empty pair at either end. */
    v = uri_query_param("&a=1&", 5, "a", &vlen);
    assert_non_null(v);
    assert_int_equal(vlen, 1);
}

struct decode_case {
    const char *in;
    long want;
    const char *out;
};

static void
test_uri_decode(void **state)
{
    static const struct decode_case cases[] = {
        {"", 0, ""},       {"abc", 3, "abc"},   {"a%20b", 3, "a b"},       {"%41%4a%4A", 3, "AJJ"},
        {"a+b", 3, "a+b"}, {"%2541", 3, "%41"}, {"%C3%A9", 2, "\xc3\xa9"}, {"%0D%0A", 2, "\r\n"},
        {"%", -1, NULL},   {"%2", -1, NULL},    {"a%2", -1, NULL},         {"%zz", -1, NULL},
        {"%g1", -1, NULL}, {"%00", -1, NULL},   {"a%00b", -1, NULL},
    };
    char out[32];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long n = uri_decode(cases[i].in, strlen(cases[i].in), out, sizeof(out));

        if (n != cases[i].want)
            fail_msg("case %zu \"%s\": %ld, want %ld", i, cases[i].in, n, cases[i].want);
        if (n >= 0)
            assert_memory_equal(out, cases[i].out, (size_t)n + 1);
    }
    /* A raw NUL is refused like a decoded one. */
    assert_int_equal(uri_decode("a\0b", 3, out, sizeof(out)), -1);
    /* Room: the NUL terminator must fit too. */
    assert_int_equal(uri_decode("abc", 3, out, 4), 3);
    assert_int_equal(uri_decode("abc", 3, out, 3), -1);
    assert_int_equal(uri_decode("%41%42", 6, out, 3), 2);
    assert_int_equal(uri_decode("%41%42", 6, out, 2), -1);
    assert_int_equal(uri_decode("", 0, out, 1), 0);
    assert_int_equal(uri_decode("", 0, out, 0), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri_parse_table),
        cmocka_unit_test(test_uri_canonical_is_idempotent),
        cmocka_unit_test(test_uri_equivalent_encodings_match),
        cmocka_unit_test(test_uri_hostile_targets_stay_under_base),
        cmocka_unit_test(test_uri_long_paths),
        cmocka_unit_test(test_uri_build_location),
        cmocka_unit_test(test_uri_header_safe),
        cmocka_unit_test(test_uri_query_param),
        cmocka_unit_test(test_uri_decode),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
