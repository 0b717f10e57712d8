#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "steerd/httpparse.h"

static const struct httpp_limits default_limits = {
    .max_request_line = 8192,
    .max_header_bytes = 32768,
    .max_headers = 100,
};

/* Parses a copy of s in a heap block of exactly its length, so ASan sees any read past it. */
static enum httpp_status
parse_n(const char *s, size_t n, const struct httpp_limits *lim, struct httpp_request *req)
{
    char *copy = malloc(n ? n : 1);
    enum httpp_status st;

    assert_non_null(copy);
    memcpy(copy, s, n);
    st = httpp_parse(copy, n, lim, req);
    free(copy);
    return st;
}

static enum httpp_status
parse(const char *s, const struct httpp_limits *lim, struct httpp_request *req)
{
    return parse_n(s, strlen(s), lim, req);
}

static void
assert_str(struct httpp_str s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.p, want, s.len);
}

static void
test_httpparse_parses_simple_get(void **state)
{
    static const char req_text[] = "GET /vod/a.ts?x=1 HTTP/1.1\r\n"
                                   "Host: steer.example\r\n"
                                   "User-Agent:  hls.js \t\r\n"
                                   "X-Empty:\r\n"
                                   "X-Tab: a\tb\r\n"
                                   "\r\n";
    struct httpp_request req;

    (void)state;
    assert_int_equal(httpp_parse(req_text, sizeof(req_text) - 1, &default_limits, &req),
                     HTTPP_COMPLETE);
    assert_str(req.method, "GET");
    assert_int_equal(req.method_id, HTTPP_GET);
    assert_str(req.target, "/vod/a.ts?x=1");
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(req.nheaders, 4);
    assert_str(req.headers[0].name, "Host");
    assert_str(req.headers[0].value, "steer.example");
    assert_str(req.headers[1].value, "hls.js");
    assert_str(req.headers[2].name, "X-Empty");
    assert_int_equal(req.headers[2].value.len, 0);
    assert_str(req.headers[3].value, "a\tb");
    assert_int_equal(req.head_len, sizeof(req_text) - 1);
    assert_int_equal(req.content_length, -1);
    assert_false(req.chunked);
    assert_true(req.keep_alive);
    assert_false(req.expect_continue);
    /* Pointers lie in the caller's buffer. */
    assert_ptr_equal(req.method.p, req_text);
    assert_ptr_equal(req.target.p, req_text + 4);
}

struct status_case {
    const char *in;
    enum httpp_status want;
};

static const struct status_case status_cases[] = {
    /* Valid variants. */
    {"GET / HTTP/1.1\r\n\r\n", HTTPP_COMPLETE},
    {"GET / HTTP/1.0\r\n\r\n", HTTPP_COMPLETE},
    {"GET / HTTP/1.1\n\n", HTTPP_COMPLETE},                    /* bare LF line ends */
    {"GET / HTTP/1.1\r\nA: b\n\r\n", HTTPP_COMPLETE},          /* mixed */
    {"\r\nGET / HTTP/1.1\r\n\r\n", HTTPP_COMPLETE},            /* one leading empty line */
    {"\nGET / HTTP/1.1\r\n\r\n", HTTPP_COMPLETE},              /* same with LF */
    {"M-SEARCH * HTTP/1.1\r\n\r\n", HTTPP_COMPLETE},           /* any token method, "*" target */
    {"GET http://a/b HTTP/1.1\r\n\r\n", HTTPP_COMPLETE},       /* absolute-form passes here */
    {"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", HTTPP_COMPLETE},        /* obs-text in the target */
    {"GET / HTTP/1.1\r\nX: \xff\x80\r\n\r\n", HTTPP_COMPLETE}, /* obs-text in a value */
    {"GET / HTTP/1.1\r\nX:\r\n\r\n", HTTPP_COMPLETE},          /* empty value */
    {"GET / HTTP/1.1\r\nX: a b\tc\r\n\r\n", HTTPP_COMPLETE},
    {"GET / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n", HTTPP_COMPLETE},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n", HTTPP_COMPLETE},
    /* Incomplete. */
    {"", HTTPP_INCOMPLETE},
    {"\r", HTTPP_INCOMPLETE},
    {"\r\n", HTTPP_INCOMPLETE},
    {"GET / HTTP/1.1\r\n", HTTPP_INCOMPLETE},
    {"GET / HTTP/1.1\r\nHost: a\r\n\r", HTTPP_INCOMPLETE},
    {"GET / HTTP/2.0", HTTPP_INCOMPLETE}, /* the version is judged once its line ends */
    /* Request line errors. */
    {"\r\n\r\nGET / HTTP/1.1\r\n\r\n", HTTPP_BAD_REQUEST}, /* two leading empty lines */
    {"\rGET / HTTP/1.1\r\n\r\n", HTTPP_BAD_REQUEST},       /* bare CR */
    {" GET / HTTP/1.1\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET  / HTTP/1.1\r\n\r\n", HTTPP_BAD_REQUEST}, /* two SP */
    {"GET /  HTTP/1.1\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET\t/ HTTP/1.1\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1 \r\n\r\n", HTTPP_BAD_REQUEST}, /* trailing SP */
    {"GET /\r\n\r\n", HTTPP_BAD_REQUEST},           /* HTTP/0.9 */
    {"GET / http/1.1\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1x\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/11\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / FOO/1.1\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1\r\r\n\r\n", HTTPP_BAD_REQUEST}, /* bare CR before CRLF */
    {"GET /a\rb HTTP/1.1\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET /a\x7f HTTP/1.1\r\n\r\n", HTTPP_BAD_REQUEST}, /* DEL */
    {"G(T / HTTP/1.1\r\n\r\n", HTTPP_BAD_REQUEST},      /* not a token */
    {"GE", HTTPP_INCOMPLETE},
    {"GE\tT", HTTPP_BAD_REQUEST}, /* refused before the line ends */
    {"GET /x HTTP/1.1\r\nA\x01", HTTPP_BAD_REQUEST},
    {"GET / HTTX", HTTPP_BAD_REQUEST},
    /* Versions. */
    {"GET / HTTP/2.0\r\n\r\n", HTTPP_VERSION_UNSUPPORTED},
    {"GET / HTTP/1.2\r\n\r\n", HTTPP_VERSION_UNSUPPORTED},
    {"GET / HTTP/0.9\r\n\r\n", HTTPP_VERSION_UNSUPPORTED},
    {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", HTTPP_VERSION_UNSUPPORTED},
    /* Header field errors. */
    {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", HTTPP_BAD_REQUEST}, /* SP before ':' */
    {"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", HTTPP_BAD_REQUEST},   /* SP before the first field */
    {"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", HTTPP_BAD_REQUEST}, /* obs-fold */
    {"GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1\r\n: b\r\n\r\n", HTTPP_BAD_REQUEST}, /* empty name */
    {"GET / HTTP/1.1\r\nA b: c\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1\r\nA(b: c\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", HTTPP_BAD_REQUEST}, /* bare CR in a value */
    {"GET / HTTP/1.1\r\nA: b\r\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1\r\nA: \x01\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1\r\nA: \x7f\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1\r\nA: \x1b[31m\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1\r\n\rX\r\n", HTTPP_BAD_REQUEST}, /* bare CR as the empty line */
    /* Framing. */
    {"GET / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1\r\nContent-Length:\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1\r\nContent-Length: 9007199254740993\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1\r\nContent-Length: 1000000000000000000\r\n\r\n", HTTPP_BAD_REQUEST},
    {"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", HTTPP_BAD_REQUEST},
    {"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
     HTTPP_BAD_REQUEST},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
     HTTPP_BAD_REQUEST},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
     HTTPP_BAD_REQUEST},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", HTTPP_BAD_REQUEST},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", HTTPP_NOT_IMPLEMENTED},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HTTPP_NOT_IMPLEMENTED},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", HTTPP_NOT_IMPLEMENTED},
    {"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n", HTTPP_NOT_IMPLEMENTED},
    {"POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n", HTTPP_NOT_IMPLEMENTED},
};

static void
test_httpparse_status_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(status_cases) / sizeof(status_cases[0]); i++) {
        const struct status_case *c = &status_cases[i];
        struct httpp_request req;
        enum httpp_status st = parse(c->in, &default_limits, &req);

        if (st != c->want)
            fail_msg("case %zu (%s): got %d, want %d", i, c->in, (int)st, (int)c->want);
        if (st == HTTPP_COMPLETE)
            assert_int_equal(req.head_len, strlen(c->in));
    }
}

static void
test_httpparse_rejects_embedded_nul(void **state)
{
    static const char in_target[] = "GET /a\0b HTTP/1.1\r\n\r\n";
    static const char in_value[] = "GET / HTTP/1.1\r\nA: x\0y\r\n\r\n";
    static const char in_name[] = "GET / HTTP/1.1\r\nA\0: x\r\n\r\n";
    struct httpp_request req;

    (void)state;
    assert_int_equal(parse_n(in_target, sizeof(in_target) - 1, &default_limits, &req),
                     HTTPP_BAD_REQUEST);
    assert_int_equal(parse_n(in_value, sizeof(in_value) - 1, &default_limits, &req),
                     HTTPP_BAD_REQUEST);
    assert_int_equal(parse_n(in_name, sizeof(in_name) - 1, &default_limits, &req),
                     HTTPP_BAD_REQUEST);
}

/* Every strict prefix of a valid head is INCOMPLETE; the whole is COMPLETE with head_len == n. */
static void
test_httpparse_every_split_point(void **state)
{
    static const char *const valid[] = {
        "GET /vod/seg-1.ts?CMCD=bl%3D2000 HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n"
        "Connection: keep-alive\r\n\r\n",
        "\r\nPOST /beacon HTTP/1.1\r\nContent-Length: 12\r\nExpect: 100-continue\r\n\r\n",
        "\nHEAD / HTTP/1.0\nConnection: keep-alive\n\n",
        "OPTIONS * HTTP/1.1\r\nX:\r\nY:  \t \r\n\r\n",
    };
    size_t i, k;

    (void)state;
    for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        size_t n = strlen(valid[i]);
        struct httpp_request req;

        for (k = 0; k < n; k++) {
            enum httpp_status st = parse_n(valid[i], k, &default_limits, &req);

            if (st != HTTPP_INCOMPLETE)
                fail_msg("request %zu prefix %zu: got %d", i, k, (int)st);
        }
        assert_int_equal(parse_n(valid[i], n, &default_limits, &req), HTTPP_COMPLETE);
        assert_int_equal(req.head_len, n);
    }
}

static void
test_httpparse_pipelined_requests(void **state)
{
    static const char in[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                             "HEAD /b HTTP/1.1\nHost: y\n\n"
                             "POST /c HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                             "GET /d HTTP/1.1\r\nHo";
    const char *p = in;
    size_t left = sizeof(in) - 1;
    struct httpp_request req;

    (void)state;
    assert_int_equal(httpp_parse(p, left, &default_limits, &req), HTTPP_COMPLETE);
    assert_str(req.target, "/a");
    assert_int_equal(req.head_len, 28);
    p += req.head_len;
    left -= req.head_len;

    assert_int_equal(httpp_parse(p, left, &default_limits, &req), HTTPP_COMPLETE);
    assert_int_equal(req.method_id, HTTPP_HEAD);
    assert_str(req.target, "/b");
    assert_str(req.headers[0].value, "y");
    assert_int_equal(req.head_len, 26);
    p += req.head_len;
    left -= req.head_len;

    assert_int_equal(httpp_parse(p, left, &default_limits, &req), HTTPP_COMPLETE);
    assert_int_equal(req.method_id, HTTPP_POST);
    assert_int_equal(req.content_length, 3);
    assert_memory_equal(p + req.head_len, "abc", 3);
    p += req.head_len + 3;
    left -= req.head_len + 3;

    assert_int_equal(httpp_parse(p, left, &default_limits, &req), HTTPP_INCOMPLETE);
}

static void
test_httpparse_request_line_limit(void **state)
{
    struct httpp_limits lim = {.max_request_line = 20, .max_header_bytes = 1000, .max_headers = 10};
    struct httpp_request req;

    (void)state;
    /* "GET /123456 HTTP/1.1" is exactly 20 bytes. */
    assert_int_equal(parse("GET /123456 HTTP/1.1\r\n\r\n", &lim, &req), HTTPP_COMPLETE);
    assert_int_equal(parse("GET /1234567 HTTP/1.1\r\n\r\n", &lim, &req), HTTPP_URI_TOO_LONG);
    /* Incomplete but already longer than the limit, with and without the version begun. */
    assert_int_equal(parse("GET /12345678901234567890", &lim, &req), HTTPP_URI_TOO_LONG);
    assert_int_equal(parse("GET /1234567 H", &lim, &req), HTTPP_URI_TOO_LONG);
    assert_int_equal(parse("GET /123456 HTTP/1.", &lim, &req), HTTPP_INCOMPLETE);
    /* A long method counts too. */
    assert_int_equal(parse("AAAAAAAAAAAAAAAAAAAAAAAAA", &lim, &req), HTTPP_URI_TOO_LONG);
    /* The leading empty line is not part of the request line. */
    assert_int_equal(parse("\r\nGET /123456 HTTP/1.1\r\n\r\n", &lim, &req), HTTPP_COMPLETE);
    assert_int_equal(httpp_status_code(HTTPP_URI_TOO_LONG), 414);
}

static void
test_httpparse_field_line_limit(void **state)
{
    struct httpp_limits lim = {
        .max_request_line = 100, .max_header_bytes = 1000, .max_headers = 10, .max_field_line = 16};
    struct httpp_request req;

    (void)state;
    /* "X-A: 0123456789a" is exactly 16 bytes. */
    assert_int_equal(parse("GET / HTTP/1.1\r\nX-A: 0123456789a\r\n\r\n", &lim, &req),
                     HTTPP_COMPLETE);
    assert_int_equal(parse("GET / HTTP/1.1\r\nX-A: 0123456789ab\r\n\r\n", &lim, &req),
                     HTTPP_HEADERS_TOO_LARGE);
    /* Trailing blanks count: they are on the line. */
    assert_int_equal(parse("GET / HTTP/1.1\r\nX-A: 0123456789a \r\n\r\n", &lim, &req),
                     HTTPP_HEADERS_TOO_LARGE);
    /* Refused before the line ends, in the name or in the value. */
    assert_int_equal(parse("GET / HTTP/1.1\r\nX-A: 0123456789abcdef", &lim, &req),
                     HTTPP_HEADERS_TOO_LARGE);
    assert_int_equal(parse("GET / HTTP/1.1\r\nX-Very-Long-Header-Name", &lim, &req),
                     HTTPP_HEADERS_TOO_LARGE);
    assert_int_equal(parse("GET / HTTP/1.1\r\nX-A: 0123", &lim, &req), HTTPP_INCOMPLETE);
    /* Each line on its own: many short lines are fine. */
    assert_int_equal(
        parse("GET / HTTP/1.1\r\nX-A: 0123456789a\r\nX-B: 0123456789a\r\n\r\n", &lim, &req),
        HTTPP_COMPLETE);
    /* 0: only the whole head is capped. */
    lim.max_field_line = 0;
    assert_int_equal(parse("GET / HTTP/1.1\r\nX-A: 0123456789abcdefghij\r\n\r\n", &lim, &req),
                     HTTPP_COMPLETE);
}

static void
test_httpparse_request_line_8k(void **state)
{
    const struct httpp_limits lim = {
        .max_request_line = 8192, .max_header_bytes = 65536, .max_headers = 100};
    size_t n = 8192 + 100;
    char *in = malloc(n);
    struct httpp_request req;
    size_t tlen;

    (void)state;
    assert_non_null(in);
    /* Target length so the line is exactly 8192 bytes: "GET " + t + " HTTP/1.1". */
    tlen = 8192 - 4 - 9;
    memcpy(in, "GET /", 5);
    memset(in + 5, 'a', tlen - 1);
    memcpy(in + 4 + tlen, " HTTP/1.1\r\n\r\n", 13);
    assert_int_equal(httpp_parse(in, 8192 + 4, &lim, &req), HTTPP_COMPLETE);
    assert_int_equal(req.target.len, tlen);
    /* One byte more: 414, and also while incomplete (no version yet). */
    memcpy(in, "GET /", 5);
    memset(in + 5, 'a', tlen);
    memcpy(in + 4 + tlen + 1, " HTTP/1.1\r\n\r\n", 13);
    assert_int_equal(httpp_parse(in, 8192 + 5, &lim, &req), HTTPP_URI_TOO_LONG);
    assert_int_equal(httpp_parse(in, 8192 + 1, &lim, &req), HTTPP_URI_TOO_LONG);
    free(in);
}

static void
test_httpparse_header_bytes_limit(void **state)
{
    static const char ok[] = "GET / HTTP/1.1\r\nA: 12345\r\n\r\n";
    struct httpp_limits lim = {
        .max_request_line = 100, .max_header_bytes = sizeof(ok) - 1, .max_headers = 10};
    struct httpp_request req;

    (void)state;
    assert_int_equal(parse(ok, &lim, &req), HTTPP_COMPLETE);
    assert_int_equal(req.head_len, sizeof(ok) - 1);
    assert_int_equal(parse("GET / HTTP/1.1\r\nA: 123456\r\n\r\n", &lim, &req),
                     HTTPP_HEADERS_TOO_LARGE);
    /* Not finished within the limit: 431 before the head ends. */
    assert_int_equal(parse("GET / HTTP/1.1\r\nA: 1234567890123", &lim, &req),
                     HTTPP_HEADERS_TOO_LARGE);
    assert_int_equal(parse("GET / HTTP/1.1\r\nA: 12345\r\n\r", &lim, &req), HTTPP_INCOMPLETE);
    /* Exactly max bytes seen and still not finished. */
    assert_int_equal(parse("GET / HTTP/1.1\r\nA: 123456\r\n\r", &lim, &req),
                     HTTPP_HEADERS_TOO_LARGE);
    /* Pipelined bytes after a complete head do not count. */
    assert_int_equal(parse("GET / HTTP/1.1\r\nA: 12345\r\n\r\nGET / HTTP/1.1\r\n", &lim, &req),
                     HTTPP_COMPLETE);
    assert_int_equal(req.head_len, sizeof(ok) - 1);
    /* The limit also applies inside the request line. */
    lim.max_header_bytes = 10;
    assert_int_equal(parse("GET /abcdefgh HTTP/1.1\r\n\r\n", &lim, &req), HTTPP_HEADERS_TOO_LARGE);
    assert_int_equal(parse("GET /ab", &lim, &req), HTTPP_INCOMPLETE);
    assert_int_equal(httpp_status_code(HTTPP_HEADERS_TOO_LARGE), 431);
}

static char *
many_headers(size_t count, size_t *len)
{
    size_t cap = 32 + count * 16;
    char *s = malloc(cap);
    size_t n = 0, i;

    assert_non_null(s);
    n += (size_t)snprintf(s + n, cap - n, "GET / HTTP/1.1\r\n");
    for (i = 0; i < count; i++)
        n += (size_t)snprintf(s + n, cap - n, "H%zu: v\r\n", i);
    n += (size_t)snprintf(s + n, cap - n, "\r\n");
    *len = n;
    return s;
}

static void
test_httpparse_header_count_limit(void **state)
{
    struct httpp_limits lim = {
        .max_request_line = 100, .max_header_bytes = 65536, .max_headers = 5};
    struct httpp_request req;
    size_t n;
    char *s;

    (void)state;
    s = many_headers(5, &n);
    assert_int_equal(httpp_parse(s, n, &lim, &req), HTTPP_COMPLETE);
    assert_int_equal(req.nheaders, 5);
    free(s);

    s = many_headers(6, &n);
    assert_int_equal(httpp_parse(s, n, &lim, &req), HTTPP_HEADERS_TOO_LARGE);
    free(s);

    /* A limit above the array size is clamped to HTTPP_MAX_HEADERS. */
    lim.max_headers = 1000;
    s = many_headers(HTTPP_MAX_HEADERS, &n);
    assert_int_equal(httpp_parse(s, n, &lim, &req), HTTPP_COMPLETE);
    assert_int_equal(req.nheaders, HTTPP_MAX_HEADERS);
    free(s);
    s = many_headers(HTTPP_MAX_HEADERS + 1, &n);
    assert_int_equal(httpp_parse(s, n, &lim, &req), HTTPP_HEADERS_TOO_LARGE);
    free(s);
}

static void
test_httpparse_content_length(void **state)
{
    struct httpp_request req;

    (void)state;
    assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &default_limits, &req),
                     HTTPP_COMPLETE);
    assert_int_equal(req.content_length, 0);
    assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Length: 007\r\n\r\n", &default_limits, &req),
                     HTTPP_COMPLETE);
    assert_int_equal(req.content_length, 7);
    assert_int_equal(
        parse("POST / HTTP/1.1\r\nContent-Length: 9007199254740992\r\n\r\n", &default_limits, &req),
        HTTPP_COMPLETE);
    assert_int_equal(req.content_length, INT64_C(9007199254740992));
    assert_int_equal(parse("POST / HTTP/1.1\r\ncOnTeNt-LeNgTh:  12 \r\nContent-Length: 12\r\n\r\n",
                           &default_limits, &req),
                     HTTPP_COMPLETE);
    assert_int_equal(req.content_length, 12);
    assert_false(req.chunked);
}

static void
test_httpparse_chunked(void **state)
{
    struct httpp_request req;

    (void)state;
    assert_int_equal(
        parse("POST / HTTP/1.1\r\nTransfer-Encoding:  CHUNKED \r\n\r\n", &default_limits, &req),
        HTTPP_COMPLETE);
    assert_true(req.chunked);
    assert_int_equal(req.content_length, -1);
    assert_int_equal(httpp_status_code(HTTPP_NOT_IMPLEMENTED), 501);
}

struct conn_case {
    const char *in;
    bool keep_alive;
    bool expect_continue;
};

static void
test_httpparse_keep_alive_and_expect(void **state)
{
    static const struct conn_case cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", true, false},
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false, false},
        {"GET / HTTP/1.1\r\nConnection: CLOSE\r\n\r\n", false, false},
        {"GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n", false, false},
        {"GET / HTTP/1.1\r\nConnection: ,close ,\r\n\r\n", false, false},
        {"GET / HTTP/1.1\r\nConnection: foo\r\nConnection: Close\r\n\r\n", false, false},
        {"GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", true, false},
        {"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true, false},
        {"GET / HTTP/1.1\r\nX-Connection: close\r\n\r\n", true, false},
        {"GET / HTTP/1.0\r\n\r\n", false, false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true, false},
        {"GET / HTTP/1.0\r\nConnection: Upgrade, Keep-Alive\r\n\r\n", true, false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false, false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive-ish\r\n\r\n", false, false},
        {"POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n", true, true},
        {"POST / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n", true, true},
        {"POST / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n", true, false},
        {"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", false, false},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct httpp_request req;

        if (parse(cases[i].in, &default_limits, &req) != HTTPP_COMPLETE)
            fail_msg("case %zu not complete", i);
        if (req.keep_alive != cases[i].keep_alive ||
            req.expect_continue != cases[i].expect_continue)
            fail_msg("case %zu: keep_alive %d expect %d", i, req.keep_alive, req.expect_continue);
    }
}

static void
test_httpparse_method_ids(void **state)
{
    static const struct {
        const char *in;
        enum httpp_method id;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", HTTPP_GET},       {"HEAD / HTTP/1.1\r\n\r\n", HTTPP_HEAD},
        {"POST / HTTP/1.1\r\n\r\n", HTTPP_POST},     {"OPTIONS * HTTP/1.1\r\n\r\n", HTTPP_OPTIONS},
        {"get / HTTP/1.1\r\n\r\n", HTTPP_OTHER},     {"PUT / HTTP/1.1\r\n\r\n", HTTPP_OTHER},
        {"POSTS / HTTP/1.1\r\n\r\n", HTTPP_OTHER},   {"HEAP / HTTP/1.1\r\n\r\n", HTTPP_OTHER},
        {"OPTIONZ / HTTP/1.1\r\n\r\n", HTTPP_OTHER},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct httpp_request req;

        assert_int_equal(parse(cases[i].in, &default_limits, &req), HTTPP_COMPLETE);
        assert_int_equal(req.method_id, cases[i].id);
    }
}

static void
test_httpparse_find_is_case_insensitive(void **state)
{
    struct httpp_request req;
    const struct httpp_header *h;

    static const char in[] = "GET / HTTP/1.1\r\nhost: one\r\nX-A: 1\r\nHOST: two\r\n\r\n";

    (void)state;
    assert_int_equal(httpp_parse(in, sizeof(in) - 1, &default_limits, &req), HTTPP_COMPLETE);
    h = httpp_find(&req, "Host");
    assert_non_null(h);
    assert_str(h->value, "one");
    h = httpp_find(&req, "x-a");
    assert_non_null(h);
    assert_str(h->value, "1");
    assert_null(httpp_find(&req, "X-B"));
    assert_null(httpp_find(&req, "X-"));
    assert_null(httpp_find(&req, "X-AA"));
}

static void
test_httpparse_status_codes(void **state)
{
    (void)state;
    assert_int_equal(httpp_status_code(HTTPP_COMPLETE), 0);
    assert_int_equal(httpp_status_code(HTTPP_INCOMPLETE), 0);
    assert_int_equal(httpp_status_code(HTTPP_BAD_REQUEST), 400);
    assert_int_equal(httpp_status_code(HTTPP_URI_TOO_LONG), 414);
    assert_int_equal(httpp_status_code(HTTPP_HEADERS_TOO_LARGE), 431);
    assert_int_equal(httpp_status_code(HTTPP_VERSION_UNSUPPORTED), 505);
    assert_int_equal(httpp_status_code(HTTPP_NOT_IMPLEMENTED), 501);
}

/* A 1 MB cookie and 64 KiB of headers stop at the head limit without being read past it. */
static void
test_httpparse_huge_header_stops_at_limit(void **state)
{
    const struct httpp_limits lim = {
        .max_request_line = 8192, .max_header_bytes = 16384, .max_headers = 100};
    size_t n = 1 << 20;
    char *in = malloc(n);
    struct httpp_request req;

    (void)state;
    assert_non_null(in);
    memset(in, 'c', n);
    memcpy(in, "GET / HTTP/1.1\r\nCookie: ", 24);
    assert_int_equal(httpp_parse(in, n, &lim, &req), HTTPP_HEADERS_TOO_LARGE);
    /* 16 KiB of it is only a prefix: the same answer. */
    assert_int_equal(httpp_parse(in, 16384, &lim, &req), HTTPP_HEADERS_TOO_LARGE);
    assert_int_equal(httpp_parse(in, 16383, &lim, &req), HTTPP_INCOMPLETE);
    free(in);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_httpparse_parses_simple_get),
        cmocka_unit_test(test_httpparse_status_table),
        cmocka_unit_test(test_httpparse_rejects_embedded_nul),
        cmocka_unit_test(test_httpparse_every_split_point),
        cmocka_unit_test(test_httpparse_pipelined_requests),
        cmocka_unit_test(test_httpparse_request_line_limit),
        cmocka_unit_test(test_httpparse_request_line_8k),
        cmocka_unit_test(test_httpparse_header_bytes_limit),
        cmocka_unit_test(test_httpparse_header_count_limit),
        cmocka_unit_test(test_httpparse_content_length),
        cmocka_unit_test(test_httpparse_chunked),
        cmocka_unit_test(test_httpparse_keep_alive_and_expect),
        cmocka_unit_test(test_httpparse_method_ids),
        cmocka_unit_test(test_httpparse_find_is_case_insensitive),
        cmocka_unit_test(test_httpparse_status_codes),
        cmocka_unit_test(test_httpparse_huge_header_stops_at_limit),
        cmocka_unit_test(test_httpparse_field_line_limit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
