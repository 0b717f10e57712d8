#include "steerd/uri.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* Byte classes. */
#define C_KEEP 0x01u   /* kept when sent raw: unreserved, sub-delims but "'", ':' '@' */
#define C_QUERY 0x02u  /* kept raw in a query: 0x21..0x7E but " < > \ ^ ` { | } # */
#define C_REJECT 0x04u /* never in a path, raw or decoded: CTL, DEL, '\', 0xC0, 0xC1 */
#define C_UNRES 0x08u  /* RFC 3986 unreserved: kept even when it was sent as %xx */

static const unsigned char cls[256] = {
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0x00 */
    4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  /* 0x10 */
    0,  3,  0,  0,  3,  2,  3,  2,  3,  3,  3,  3,  3,  11, 11, 2,  /* 0x20 */
    11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 3,  3,  0,  3,  0,  2,  /* 0x30 */
    3,  11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, /* 0x40 */
    11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 2,  4,  2,  0,  11, /* 0x50 */
    0,  11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, /* 0x60 */
    11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 0,  0,  0,  11, 4,  /* 0x70 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x80 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x90 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0xA0 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0xB0 */
    4,  4,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0xC0 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0xD0 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0xE0 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0xF0 */
};

static const signed char hexval[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x00 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x10 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x20 */
    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  -1, -1, -1, -1, -1, -1, /* 0x30 */
    -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x40 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x50 */
    -1, 10, 11, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x60 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x70 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x80 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0x90 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0xA0 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0xB0 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0xC0 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0xD0 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0xE0 */
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, /* 0xF0 */
};

static const char hexdig[] = "0123456789ABCDEF";

/* The segment being canonicalised: its output starts at out_start with the '/' before it. */
struct seg {
    size_t out_start;
    size_t len;       /* decoded bytes */
    size_t lead_dots; /* leading decoded '.' bytes */
    size_t semi;      /* decoded bytes before the first ';', SIZE_MAX when there is none */
};

static void
seg_begin(struct seg *s, size_t out_start)
{
    s->out_start = out_start;
    s->len = 0;
    s->lead_dots = 0;
    s->semi = SIZE_MAX;
}

/* Ends a segment: drops it from the output when it is empty or ".", refuses "..". The part before
 * a ';' counts ("..;x" is ".." to servers that strip path parameters), so "..;x" and ".;x" are
 * refused as well. Returns -1 on refusal; *o and *trailing are updated. */
static int
seg_end(const struct seg *s, size_t *o, bool *trailing)
{
    size_t stem = s->semi == SIZE_MAX ? s->len : s->semi;

    if (s->len == 0 || (stem == 1 && s->lead_dots == 1 && s->semi == SIZE_MAX)) {
        *o = s->out_start;
        *trailing = true;
        return 0;
    }
    if (stem > 0 && stem <= 2 && s->lead_dots == stem)
        return -1;
    *trailing = false;
    return 0;
}

/* Decodes, checks and re-encodes path[0..len) (len >= 1, path[0] == '/') into out->path. */
static enum uri_status
canon_path(const unsigned char *path, size_t len, struct uri_parts *out)
{
    char *dst = out->path;
    size_t o = 0, i = 1;
    unsigned pct = 0; /* how much of a decoded "%" HEXDIG HEXDIG has been seen */
    bool trailing = false;
    struct seg s;

    dst[o++] = '/';
    seg_begin(&s, 0);
    while (i < len) {
        unsigned c = path[i];
        bool encoded = c == '%';

        if (encoded) {
            int hi, lo;

            if (len - i < 3)
                return URI_BAD;
            hi = hexval[path[i + 1]];
            lo = hexval[path[i + 2]];
            if (hi < 0 || lo < 0)
                return URI_BAD;
            c = (unsigned)(hi << 4 | lo);
            i += 3;
        } else {
            i++;
        }
        if (cls[c] & C_REJECT)
            return URI_BAD;
        /* A decoded '%' followed by two hex digits was encoded twice: "%252e" is "%2e". */
        if (pct == 2 && hexval[c] >= 0)
            return URI_BAD;
        pct = (pct == 1 && hexval[c] >= 0) ? 2 : 0;
        if (c == '%')
            pct = 1;

        /* A decoded '/' separates segments like a raw one, so /a%2Fb is /a/b. */
        if (c == '/') {
            if (seg_end(&s, &o, &trailing) != 0)
                return URI_BAD;
            if (o + 1 > URI_MAX_TARGET)
                return URI_TOO_LONG;
            seg_begin(&s, o);
            dst[o++] = '/';
            continue;
        }
        if (c == ';' && s.semi == SIZE_MAX)
            s.semi = s.len;
        if (c == '.' && s.lead_dots == s.len)
            s.lead_dots++;
        s.len++;
        /* RFC 3986 6.2.2.2: only unreserved bytes are the same sent raw or as %xx; a reserved
         * byte sent as %xx stays encoded (origins may treat "+" and "%2B" differently). */
        if ((cls[c] & C_UNRES) || (!encoded && (cls[c] & C_KEEP))) {
            if (o + 1 > URI_MAX_TARGET)
                return URI_TOO_LONG;
            dst[o++] = (char)c;
        } else {
            if (o + 3 > URI_MAX_TARGET)
                return URI_TOO_LONG;
            dst[o++] = '%';
            dst[o++] = hexdig[c >> 4];
            dst[o++] = hexdig[c & 15];
        }
    }
    if (seg_end(&s, &o, &trailing) != 0)
        return URI_BAD;
    /* The '/' of a dropped last segment was written before, so it still fits. */
    if (o == 0 || trailing)
        dst[o++] = '/';
    dst[o] = '\0';
    out->path_len = o;
    return URI_OK;
}

/* A query is passed on as sent, but for the bytes RFC 3986 does not allow in one (" < > \ ^ `
 * { | }), which browsers encode and some players send raw: uri_build_location encodes those. */
static enum uri_status
check_query(const unsigned char *q, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        if (q[i] < 0x21 || q[i] > 0x7E)
            return URI_BAD;
        if (q[i] == '%') {
            if (len - i < 3 || hexval[q[i + 1]] < 0 || hexval[q[i + 2]] < 0)
                return URI_BAD;
            i += 2;
        }
    }
    return URI_OK;
}

enum uri_status
uri_parse_target(const char *target, size_t len, struct uri_parts *out)
{
    const char *hash, *qm;
    size_t end, plen;
    enum uri_status st;

    out->path[0] = '\0';
    out->path_len = 0;
    out->query = NULL;
    out->query_len = 0;
    if (len == 0 || target[0] != '/')
        return URI_BAD;
    if (len > URI_MAX_TARGET)
        return URI_TOO_LONG;

    hash = memchr(target, '#', len);
    end = hash ? (size_t)(hash - target) : len;
    qm = memchr(target, '?', end);
    plen = qm ? (size_t)(qm - target) : end;

    st = canon_path((const unsigned char *)target, plen, out);
    if (st == URI_OK && qm != NULL) {
        st = check_query((const unsigned char *)qm + 1, end - plen - 1);
        if (st == URI_OK) {
            out->query = qm + 1;
            out->query_len = end - plen - 1;
        }
    }
    if (st != URI_OK) {
        out->path[0] = '\0';
        out->path_len = 0;
    }
    return st;
}

/* Every byte is 0x21..0x7E. */
static bool
all_visible(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x21 || c > 0x7E)
            return false;
    }
    return true;
}

size_t
uri_build_location(const char *base, size_t base_len, const struct uri_parts *u, char *out,
                   size_t outsz)
{
    size_t qlen = (u->query != NULL && u->query_len > 0) ? u->query_len : 0;
    size_t n, o = 0;

    if (outsz == 0)
        return 0;
    out[0] = '\0';
    /* The path must start with '/': anything else would extend the base's host name. */
    if (u->path_len == 0 || u->path_len > URI_MAX_TARGET || u->path[0] != '/' ||
        qlen > URI_MAX_TARGET)
        return 0;
    if (base_len >= outsz)
        return 0;
    size_t qout = qlen;
    for (size_t i = 0; i < qlen; i++) {
        if (!(cls[(unsigned char)u->query[i]] & C_QUERY))
            qout += 2;
    }
    n = base_len + u->path_len + (qlen > 0 ? 1 + qout : 0);
    if (n >= outsz)
        return 0;
    memcpy(out, base, base_len);
    o = base_len;
    memcpy(out + o, u->path, u->path_len);
    o += u->path_len;
    if (qlen > 0) {
        out[o++] = '?';
        for (size_t i = 0; i < qlen; i++) {
            unsigned char c = (unsigned char)u->query[i];
            if (cls[c] & C_QUERY || c < 0x21 || c > 0x7E) {
                out[o++] = (char)c; /* unsafe bytes are caught below */
            } else {
                out[o++] = '%';
                out[o++] = hexdig[c >> 4];
                out[o++] = hexdig[c & 15];
            }
        }
    }
    if (!all_visible(out, o)) {
        out[0] = '\0';
        return 0;
    }
    out[o] = '\0';
    return o;
}

bool
uri_header_safe(const char *s, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == ' ') {
            if (i == 0 || i + 1 == len || s[i + 1] == ' ')
                return false;
        } else if (c < 0x21 || c > 0x7E) {
            return false;
        }
    }
    return true;
}

const char *
uri_query_param(const char *q, size_t qlen, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    size_t i = 0;

    if (q == NULL || nlen == 0)
        return NULL;
    for (;;) {
        const char *amp = memchr(q + i, '&', qlen - i);
        size_t e = amp ? (size_t)(amp - q) : qlen;
        const char *eq = memchr(q + i, '=', e - i);
        size_t kend = eq ? (size_t)(eq - q) : e;

        if (kend - i == nlen && memcmp(q + i, name, nlen) == 0) {
            if (eq != NULL) {
                *vlen = e - kend - 1;
                return eq + 1;
            }
            *vlen = 0;
            return q + e;
        }
        if (amp == NULL)
            return NULL;
        i = e + 1;
    }
}

long
uri_decode(const char *s, size_t len, char *out, size_t outsz)
{
    size_t i, o = 0;

    if (outsz == 0)
        return -1;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '%') {
            int hi, lo;

            if (len - i < 3)
                return -1;
            hi = hexval[(unsigned char)s[i + 1]];
            lo = hexval[(unsigned char)s[i + 2]];
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0' || o + 1 >= outsz)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (long)o;
}
