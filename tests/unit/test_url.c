#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "steerd/url.h"
#include "steerd/util.h"

struct vec {
    const char *ref;
    const char *want;
};

#define RFC_BASE "http://a/b/c/d;p?q"

/* RFC 3986 section 5.4.1 */
static const struct vec normal[] = {
    {"g:h", "g:h"},
    {"g", "http://a/b/c/g"},
    {"./g", "http://a/b/c/g"},
    {"g/", "http://a/b/c/g/"},
    {"/g", "http://a/g"},
    {"//g", "http://g"},
    {"?y", "http://a/b/c/d;p?y"},
    {"g?y", "http://a/b/c/g?y"},
    {"#s", "http://a/b/c/d;p?q#s"},
    {"g#s", "http://a/b/c/g#s"},
    {"g?y#s", "http://a/b/c/g?y#s"},
    {";x", "http://a/b/c/;x"},
    {"g;x", "http://a/b/c/g;x"},
    {"g;x?y#s", "http://a/b/c/g;x?y#s"},
    {"", "http://a/b/c/d;p?q"},
    {".", "http://a/b/c/"},
    {"./", "http://a/b/c/"},
    {"..", "http://a/b/"},
    {"../", "http://a/b/"},
    {"../g", "http://a/b/g"},
    {"../..", "http://a/"},
    {"../../", "http://a/"},
    {"../../g", "http://a/g"},
};

/* RFC 3986 section 5.4.2 (strict parser: "http:g" stays as it is) */
static const struct vec abnormal[] = {
    {"../../../g", "http://a/g"},
    {"../../../../g", "http://a/g"},
    {"/./g", "http://a/g"},
    {"/../g", "http://a/g"},
    {"g.", "http://a/b/c/g."},
    {".g", "http://a/b/c/.g"},
    {"g..", "http://a/b/c/g.."},
    {"..g", "http://a/b/c/..g"},
    {"./../g", "http://a/b/g"},
    {"./g/.", "http://a/b/c/g/"},
    {"g/./h", "http://a/b/c/g/h"},
    {"g/../h", "http://a/b/c/h"},
    {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
    {"g;x=1/../y", "http://a/b/c/y"},
    {"g?y/./x", "http://a/b/c/g?y/./x"},
    {"g?y/../x", "http://a/b/c/g?y/../x"},
    {"g#s/./x", "http://a/b/c/g#s/./x"},
    {"g#s/../x", "http://a/b/c/g#s/../x"},
    {"http:g", "http:g"},
};

static void
check_vectors(const char *base, const struct vec *v, size_t n)
{
    struct buf out;
    buf_init(&out, 0);
    for (size_t i = 0; i < n; i++) {
        buf_reset(&out);
        assert_int_equal(url_resolve(base, strlen(base), v[i].ref, strlen(v[i].ref), &out), 0);
        if (strcmp(out.data, v[i].want) != 0)
            fail_msg("resolve(%s, \"%s\") = \"%s\", want \"%s\"", base, v[i].ref, out.data,
                     v[i].want);
    }
    buf_free(&out);
}

static void
test_url_resolve_rfc3986_normal(void **state)
{
    (void)state;
    check_vectors(RFC_BASE, normal, UTIL_ARRAY_LEN(normal));
}

static void
test_url_resolve_rfc3986_abnormal(void **state)
{
    (void)state;
    check_vectors(RFC_BASE, abnormal, UTIL_ARRAY_LEN(abnormal));
}

static void
test_url_resolve_playlist_cases(void **state)
{
    (void)state;
    static const struct vec v[] = {
        {"seg1.ts", "http://o.example/vod/x/seg1.ts"},
        {"seg1.ts?tok=1&b=2", "http://o.example/vod/x/seg1.ts?tok=1&b=2"},
        {"../y/seg1.ts", "http://o.example/vod/y/seg1.ts"},
        {"/abs/seg.ts", "http://o.example/abs/seg.ts"},
        {"//other.example/z.ts", "http://other.example/z.ts"},
        {"https://cdn.example/a/./b/../c.ts", "https://cdn.example/a/c.ts"},
        {"?only=query", "http://o.example/vod/x/main.m3u8?only=query"},
        {"data:text/plain,hi", "data:text/plain,hi"},
        {"skd://key-id", "skd://key-id"},
        {"a:b/c", "a:b/c"},
        {"1a:b", "http://o.example/vod/x/1a:b"},
    };
    check_vectors("http://o.example/vod/x/main.m3u8?pl=1", v, UTIL_ARRAY_LEN(v));

    /* a base with an authority and an empty path merges with "/" */
    static const struct vec v2[] = {{"g", "http://h/g"}, {"", "http://h"}};
    check_vectors("http://h", v2, UTIL_ARRAY_LEN(v2));
}

static void
test_url_resolve_appends_and_rejects(void **state)
{
    (void)state;
    struct buf out;
    buf_init(&out, 0);
    buf_puts(&out, "X=");
    assert_int_equal(url_resolve("http://h/a/b", 12, "c", 1, &out), 0);
    assert_string_equal(out.data, "X=http://h/a/c");

    /* a relative base is refused and out keeps its content */
    assert_int_equal(url_resolve("/a/b", 4, "c", 1, &out), -1);
    assert_string_equal(out.data, "X=http://h/a/c");
    buf_free(&out);

    /* the cap: nothing partial stays */
    buf_init(&out, 10);
    buf_puts(&out, "ab");
    assert_int_equal(url_resolve("http://h/a/b", 12, "ccccccccccc", 11, &out), -1);
    assert_int_equal(out.len, 2);
    assert_string_equal(out.data, "ab");
    buf_free(&out);
}

static void
test_url_resolve_is_not_confused_by_long_dots(void **state)
{
    (void)state;
    static const struct vec v[] = {
        {"../../../../../../../../../../x", "http://h/x"},
        {"a/b/../../../c/./d/..", "http://h/c/"},
        {"./././.", "http://h/p/"},
        {"...", "http://h/p/..."},
        {"/..", "http://h/"},
        {"/.", "http://h/"},
        {"x/..", "http://h/p/"},
    };
    check_vectors("http://h/p/q", v, UTIL_ARRAY_LEN(v));
}

static void
test_url_under_base_matches(void **state)
{
    (void)state;
    struct {
        const char *url;
        const char *base;
        bool want;
        const char *rest;
    } v[] = {
        {"http://origin.example/vod/a.ts", "http://origin.example", true, "/vod/a.ts"},
        {"HTTP://Origin.Example/vod/a.ts?x=1", "http://origin.example", true, "/vod/a.ts?x=1"},
        {"http://origin.example:80/a", "http://origin.example", true, "/a"},
        {"http://origin.example/a", "http://origin.example:80", true, "/a"},
        {"https://origin.example:443/a", "https://origin.example", true, "/a"},
        {"http://origin.example:8080/a", "http://origin.example", false, NULL},
        {"https://origin.example/a", "http://origin.example", false, NULL},
        {"http://origin.example.evil/a", "http://origin.example", false, NULL},
        {"http://origin.example@evil.example/a", "http://origin.example", false, NULL},
        {"http://evil.example/http://origin.example/a", "http://origin.example", false, NULL},
        {"http://origin.example", "http://origin.example", false, NULL},
        {"http://origin.example?a", "http://origin.example", false, NULL},
        {"http://o.example/base/x/y", "http://o.example/base", true, "/x/y"},
        {"http://o.example/base/x/y", "http://o.example/base/", true, "/x/y"},
        {"http://o.example/basement/y", "http://o.example/base", false, NULL},
        {"http://o.example/base", "http://o.example/base", false, NULL},
        {"http://o.example/Base/y", "http://o.example/base", false, NULL},
        {"http://[::1]:81/y", "http://[::1]:81", true, "/y"},
        {"http://[::1]/y", "http://[::1]:81", false, NULL},
        {"http://u@o.example/y", "http://o.example", false, NULL},
        {"http://u@o.example/y", "http://u@o.example", true, "/y"},
        {"http://o.example:x/y", "http://o.example", false, NULL},
        {"ftp://o.example/y", "ftp://o.example", false, NULL},
        {"//o.example/y", "http://o.example", false, NULL},
        {"http:///y", "http://", false, NULL},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(v); i++) {
        size_t off = 12345;
        bool got = url_under_base(v[i].url, strlen(v[i].url), v[i].base, strlen(v[i].base), &off);
        if (got != v[i].want)
            fail_msg("under(%s, %s) = %d", v[i].url, v[i].base, got);
        if (got)
            assert_string_equal(v[i].url + off, v[i].rest);
    }
}

static void
test_url_scheme_helpers(void **state)
{
    (void)state;
    assert_int_equal(url_scheme_len("http://x", 8), 4);
    assert_int_equal(url_scheme_len("skd://x", 7), 3);
    assert_int_equal(url_scheme_len("a+b-c.d:x", 9), 7);
    assert_int_equal(url_scheme_len("seg:1.ts", 8), 3);
    assert_int_equal(url_scheme_len("seg/a:1.ts", 10), 0);
    assert_int_equal(url_scheme_len("1x:y", 4), 0);
    assert_int_equal(url_scheme_len(":y", 2), 0);
    assert_int_equal(url_scheme_len("abc", 3), 0);
    assert_true(url_is_http("HTTPS://x", 9));
    assert_true(url_is_http("http:x", 6));
    assert_false(url_is_http("httpx://x", 9));
    assert_false(url_is_http("data:,x", 7));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_resolve_rfc3986_normal),
        cmocka_unit_test(test_url_resolve_rfc3986_abnormal),
        cmocka_unit_test(test_url_resolve_playlist_cases),
        cmocka_unit_test(test_url_resolve_appends_and_rejects),
        cmocka_unit_test(test_url_resolve_is_not_confused_by_long_dots),
        cmocka_unit_test(test_url_under_base_matches),
        cmocka_unit_test(test_url_scheme_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
