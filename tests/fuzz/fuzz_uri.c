/* libFuzzer harness for uri: checks the redirect-safety invariants of uri_parse_target and
 * uri_build_location (RELIABILITY S1-S3) on arbitrary targets, plus uri_decode and
 * uri_query_param bounds, and aborts on any violation. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steerd/uri.h"

#define BASE "http://cdn.example"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fail(const char *what)
{
    fprintf(stderr, "fuzz_uri: invariant violated: %s\n", what);
    abort();
}

/* Bytes a canonical path may hold literally: pchar without '%' escapes, plus '/'. */
static int
path_byte_ok(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("-._~!$&()*+,;=:@/%", c) != NULL);
}

static int
is_upper_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static void
check_path(const struct uri_parts *u)
{
    char dec[URI_MAX_TARGET + 1];
    const char *p = u->path;
    size_t n = u->path_len, i, s;
    long dn;

    if (n == 0 || n > URI_MAX_TARGET || p[0] != '/' || p[n] != '\0' || strlen(p) != n)
        fail("path shape");
    if (strstr(p, "//") != NULL)
        fail("empty segment in path");
    if (strstr(p, "/../") != NULL || strstr(p, "/./") != NULL)
        fail("dot segment in path");
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        if (!path_byte_ok(c))
            fail("byte outside the allowed set");
        if (c == '%' && (i + 2 >= n || !is_upper_hex((unsigned char)p[i + 1]) ||
                         !is_upper_hex((unsigned char)p[i + 2])))
            fail("bad escape in canonical path");
    }
    /* Decoding the canonical path once more yields no dot segment and no control byte. */
    dn = uri_decode(p, n, dec, sizeof(dec));
    if (dn < 0)
        fail("canonical path does not decode");
    for (s = 0; s < (size_t)dn;) {
        size_t e = s + 1;

        while (e < (size_t)dn && dec[e] != '/')
            e++;
        if ((e - s == 3 && memcmp(dec + s, "/..", 3) == 0) ||
            (e - s == 2 && memcmp(dec + s, "/.", 2) == 0))
            fail("decoding again yields a dot segment");
        s = e;
    }
    for (i = 0; i < (size_t)dn; i++) {
        unsigned char c = (unsigned char)dec[i];

        if (c < 0x20 || c == 0x7f || c == '\\')
            fail("decoding again yields a control byte or backslash");
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct uri_parts u, again;
    char loc[URI_MAX_TARGET * 4 + 64];
    char *buf = malloc(size ? size : 1);
    enum uri_status st;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);

    st = uri_parse_target(buf, size, &u);
    if (st != URI_OK && st != URI_BAD && st != URI_TOO_LONG)
        fail("unknown status");
    if (st == URI_OK) {
        size_t n, i;

        check_path(&u);
        if (u.query != NULL) {
            if (u.query < buf || u.query_len > size || (size_t)(u.query - buf) > size - u.query_len)
                fail("query outside the target");
            for (i = 0; i < u.query_len; i++) {
                unsigned char c = (unsigned char)u.query[i];

                if (c < 0x21 || c > 0x7e || c == '#')
                    fail("query byte");
            }
        } else if (u.query_len != 0) {
            fail("query_len without query");
        }
        /* The canonical path is a fixed point. */
        if (uri_parse_target(u.path, u.path_len, &again) != URI_OK ||
            again.path_len != u.path_len || memcmp(again.path, u.path, u.path_len) != 0)
            fail("canonical path is not a fixed point");

        n = uri_build_location(BASE, strlen(BASE), &u, loc, sizeof(loc));
        if (n == 0 || n != strlen(loc))
            fail("no Location for a valid target");
        if (strncmp(loc, BASE "/", strlen(BASE "/")) != 0)
            fail("Location not under the base");
        for (i = 0; i < n; i++) {
            if ((unsigned char)loc[i] < 0x21 || (unsigned char)loc[i] > 0x7e)
                fail("unsafe byte in Location");
            if (strchr("\"<>\\^`{|}", loc[i]) != NULL)
                fail("byte RFC 3986 does not allow in a URI");
        }
        if (!uri_header_safe(loc, n))
            fail("Location not header-safe");
        /* Too small an output is refused, never truncated. */
        if (uri_build_location(BASE, strlen(BASE), &u, loc, n) != 0 || loc[0] != '\0')
            fail("Location truncated instead of refused");
    } else if (u.path_len != 0 || u.query != NULL) {
        fail("parts set on error");
    }

    /* uri_decode and uri_query_param stay inside their buffers. */
    {
        char small[16];
        size_t vlen = 0;
        const char *v;
        long dn = uri_decode(buf, size, small, sizeof(small));

        if (dn >= (long)sizeof(small) || (dn >= 0 && (size_t)dn != strlen(small)))
            fail("uri_decode length");
        v = uri_query_param(buf, size, "a", &vlen);
        if (v != NULL && (v < buf || (size_t)(v - buf) + vlen > size))
            fail("query param outside the query");
    }
    free(buf);
    return 0;
}
