/* libFuzzer harness for httpparse: checks the parser's invariants on arbitrary bytes and aborts on
 * any violation. Each input is parsed under generous and under tight limits; a complete head is
 * also fed to uri_parse_target, as the daemon does. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "steerd/httpparse.h"
#include "steerd/uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fail(const char *what)
{
    fprintf(stderr, "fuzz_http: invariant violated: %s\n", what);
    abort();
}

static int
inside(const char *buf, size_t len, const struct httpp_str *s)
{
    return s->p >= buf && s->len <= len && (size_t)(s->p - buf) <= len - s->len;
}

static int
is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void
check_complete(const char *buf, size_t len, const struct httpp_limits *lim,
               const struct httpp_request *req)
{
    size_t i, j;

    if (req->head_len == 0 || req->head_len > len)
        fail("head_len out of range");
    if (req->head_len > lim->max_header_bytes)
        fail("head_len above max_header_bytes");
    if (buf[req->head_len - 1] != '\n')
        fail("head does not end with LF");
    if (!inside(buf, req->head_len, &req->method) || req->method.len == 0)
        fail("method outside the head");
    if (!inside(buf, req->head_len, &req->target) || req->target.len == 0)
        fail("target outside the head");
    if (req->method.len + req->target.len + 10 > lim->max_request_line)
        fail("request line above max_request_line");
    if (req->minor_version != 0 && req->minor_version != 1)
        fail("minor_version");
    for (i = 0; i < req->method.len; i++) {
        if (!is_tchar((unsigned char)req->method.p[i]))
            fail("method is not a token");
    }
    for (i = 0; i < req->target.len; i++) {
        unsigned char c = (unsigned char)req->target.p[i];

        if (c <= 0x20 || c == 0x7f)
            fail("CTL or space in target");
    }
    if (req->nheaders > lim->max_headers || req->nheaders > HTTPP_MAX_HEADERS)
        fail("too many headers");
    for (i = 0; i < req->nheaders; i++) {
        const struct httpp_header *h = &req->headers[i];

        if (!inside(buf, req->head_len, &h->name) || !inside(buf, req->head_len, &h->value))
            fail("header outside the head");
        if (h->name.len == 0)
            fail("empty header name");
        for (j = 0; j < h->name.len; j++) {
            if (!is_tchar((unsigned char)h->name.p[j]))
                fail("header name is not a token");
        }
        for (j = 0; j < h->value.len; j++) {
            unsigned char c = (unsigned char)h->value.p[j];

            if (c == '\r' || c == '\n' || c == '\0')
                fail("CR, LF or NUL in a header value");
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                fail("control byte in a header value");
        }
        if (h->value.len > 0) {
            char a = h->value.p[0], z = h->value.p[h->value.len - 1];

            if (a == ' ' || a == '\t' || z == ' ' || z == '\t')
                fail("header value not trimmed");
        }
    }
    if (httpp_find(req, "") != NULL)
        fail("found an empty name");
    {
        const struct httpp_header *h = httpp_find(req, "host");

        if (h != NULL && (h < req->headers || h >= req->headers + req->nheaders ||
                          h->name.len != 4 || strncasecmp(h->name.p, "host", 4) != 0))
            fail("httpp_find returned the wrong field");
        for (i = 0; i < req->nheaders && h == NULL; i++) {
            if (req->headers[i].name.len == 4 &&
                strncasecmp(req->headers[i].name.p, "host", 4) == 0)
                fail("httpp_find missed a field");
        }
    }
    if (req->chunked && req->content_length != -1)
        fail("chunked with a Content-Length");
    if (req->content_length < -1 || req->content_length > ((int64_t)1 << 53))
        fail("content_length out of range");
    if (req->expect_continue && req->minor_version != 1)
        fail("100-continue honoured for HTTP/1.0");
}

static enum httpp_status
run(const char *buf, size_t len, const struct httpp_limits *lim, struct httpp_request *req)
{
    enum httpp_status st = httpp_parse(buf, len, lim, req);

    if (st > HTTPP_NOT_IMPLEMENTED)
        fail("unknown status");
    if ((st == HTTPP_COMPLETE || st == HTTPP_INCOMPLETE) != (httpp_status_code(st) == 0))
        fail("status code mapping");
    if (st == HTTPP_COMPLETE)
        check_complete(buf, len, lim, req);
    return st;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct httpp_limits wide = {
        .max_request_line = 8192, .max_header_bytes = 65536, .max_headers = 100};
    static const struct httpp_limits tight = {
        .max_request_line = 40, .max_header_bytes = 120, .max_headers = 3};
    struct httpp_request req, req2;
    /* An exact-size copy, so ASan flags any read past size. */
    char *buf = malloc(size ? size : 1);
    enum httpp_status st, st_tight;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);

    st = run(buf, size, &wide, &req);
    if (st == HTTPP_COMPLETE) {
        size_t head_len = req.head_len;
        struct uri_parts u;
        char loc[URI_MAX_TARGET + 64];

        /* The head alone parses the same; one byte less is not complete. */
        if (run(buf, head_len, &wide, &req2) != HTTPP_COMPLETE || req2.head_len != head_len)
            fail("the head alone does not parse the same");
        if (run(buf, head_len - 1, &wide, &req2) != HTTPP_INCOMPLETE)
            fail("the head minus its last byte is not incomplete");

        /* The daemon's path: the target goes through uri. */
        if (uri_parse_target(req.target.p, req.target.len, &u) == URI_OK) {
            size_t n = uri_build_location("http://cdn.example", 18, &u, loc, sizeof(loc));

            if (n == 0 || strncmp(loc, "http://cdn.example/", 19) != 0)
                fail("Location not under the base");
        }
    }
    /* Tighter limits never accept what wider ones refuse, and agree on the head. */
    st_tight = run(buf, size, &tight, &req2);
    if (st_tight == HTTPP_COMPLETE && (st != HTTPP_COMPLETE || req2.head_len != req.head_len))
        fail("tight limits accept what wide limits do not");
    free(buf);
    return 0;
}
