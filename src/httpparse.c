#include "steerd/httpparse.h"

#include <string.h>

/* Byte classes (RFC 9110 5.6.2 tchar, RFC 9112 3.2 request-target, RFC 9110 5.5 field-value). */
#define C_TOKEN 0x01u  /* tchar */
#define C_TARGET 0x02u /* 0x21..0x7E and obs-text 0x80..0xFF: no CTL, SP or DEL */
#define C_VALUE 0x04u  /* field-vchar, SP and HTAB */

static const unsigned char cls[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    4, 7, 6, 7, 7, 7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 6, /* 0x20 */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, /* 0x30 */
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* 0x40 */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 7, 7, /* 0x50 */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* 0x60 */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 7, 6, 7, 0, /* 0x70 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0x80 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0x90 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0xA0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0xB0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0xC0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0xD0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0xE0 */
    6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, /* 0xF0 */
};

/* Largest Content-Length accepted: 2^53, so the value survives a round trip through a double. */
#define CL_MAX ((int64_t)1 << 53)

/* Framing state collected while the header fields are read. */
struct framing {
    bool have_cl;
    bool have_te;
    bool te_unsupported; /* a Transfer-Encoding other than exactly "chunked" */
    bool conn_close;
    bool conn_keep_alive;
    bool expect_continue;
    int64_t cl;
};

static unsigned char
lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Case-insensitive comparison of s[0..n) with the lower-case literal lit[0..litlen). */
static bool
eq_nocase(const char *s, size_t n, const char *lit, size_t litlen)
{
    size_t i;

    if (n != litlen)
        return false;
    for (i = 0; i < n; i++) {
        if (lower((unsigned char)s[i]) != (unsigned char)lit[i])
            return false;
    }
    return true;
}

#define EQ_LIT(s, n, lit) eq_nocase((s), (n), (lit), sizeof(lit) - 1)

/* True when the comma-separated list v[0..n) (RFC 9110 5.6.1, OWS around elements, empty
 * elements allowed) holds the token lit, compared case-insensitively. */
static bool
list_has(const char *v, size_t n, const char *lit, size_t litlen)
{
    size_t i = 0;

    while (i < n) {
        size_t s, e;

        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        s = i;
        while (i < n && v[i] != ',')
            i++;
        e = i;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e > s && eq_nocase(v + s, e - s, lit, litlen))
            return true;
    }
    return false;
}

/* Content-Length = 1*DIGIT, at most CL_MAX. Returns -1 when it is not. */
static int64_t
parse_cl(const char *v, size_t n)
{
    int64_t x = 0;
    size_t i;

    if (n == 0)
        return -1;
    for (i = 0; i < n; i++) {
        unsigned d = (unsigned char)v[i] - (unsigned)'0';

        if (d > 9)
            return -1;
        if (x > (CL_MAX - (int64_t)d) / 10)
            return -1;
        x = x * 10 + (int64_t)d;
    }
    return x;
}

/* Looks at one header field for the framing and connection fields. */
static enum httpp_status
note_field(const struct httpp_header *h, struct framing *f)
{
    const char *n = h->name.p;
    const char *v = h->value.p;
    size_t vl = h->value.len;

    switch (h->name.len) {
    case 14:
        if (EQ_LIT(n, 14, "content-length")) {
            int64_t cl = parse_cl(v, vl);

            if (cl < 0 || (f->have_cl && cl != f->cl))
                return HTTPP_BAD_REQUEST;
            f->have_cl = true;
            f->cl = cl;
        }
        break;
    case 17:
        if (EQ_LIT(n, 17, "transfer-encoding")) {
            /* A second field line would apply a coding after chunked, or chunked twice. */
            if (f->have_te)
                return HTTPP_BAD_REQUEST;
            f->have_te = true;
            f->te_unsupported = !EQ_LIT(v, vl, "chunked");
        }
        break;
    case 10:
        if (EQ_LIT(n, 10, "connection")) {
            f->conn_close |= list_has(v, vl, "close", 5);
            f->conn_keep_alive |= list_has(v, vl, "keep-alive", 10);
        }
        break;
    case 6:
        if (EQ_LIT(n, 6, "expect") && EQ_LIT(v, vl, "100-continue"))
            f->expect_continue = true;
        break;
    default:
        break;
    }
    return HTTPP_COMPLETE;
}

static enum httpp_method
method_of(const char *m, size_t n)
{
    switch (n) {
    case 3:
        return memcmp(m, "GET", 3) == 0 ? HTTPP_GET : HTTPP_OTHER;
    case 4:
        if (memcmp(m, "HEAD", 4) == 0)
            return HTTPP_HEAD;
        return memcmp(m, "POST", 4) == 0 ? HTTPP_POST : HTTPP_OTHER;
    case 7:
        return memcmp(m, "OPTIONS", 7) == 0 ? HTTPP_OPTIONS : HTTPP_OTHER;
    default:
        return HTTPP_OTHER;
    }
}

/* The parse stopped at pos, the end of what it may look at (min(len, max_header_bytes)):
 * either more bytes are needed, or the head is already too large. */
static enum httpp_status
ran_out(size_t pos, size_t max_hb)
{
    return pos >= max_hb ? HTTPP_HEADERS_TOO_LARGE : HTTPP_INCOMPLETE;
}

/* Same inside the request line, which starts at start and is capped at max_rl bytes. */
static enum httpp_status
rl_ran_out(size_t pos, size_t start, size_t max_rl, size_t max_hb)
{
    if (pos - start >= max_rl)
        return HTTPP_URI_TOO_LONG;
    return ran_out(pos, max_hb);
}

/* Same inside a header field line starting at fs, capped at max_fl bytes (0: no own cap): a line
 * already longer is refused before it ends. */
static enum httpp_status
field_ran_out(size_t pos, size_t fs, size_t max_fl, size_t max_hb)
{
    if (max_fl > 0 && pos - fs > max_fl)
        return HTTPP_HEADERS_TOO_LARGE;
    return ran_out(pos, max_hb);
}

/* Checks the available bytes of "HTTP/" DIGIT "." DIGIT; n <= 8. */
static bool
version_prefix_ok(const unsigned char *v, size_t n)
{
    static const char name[] = "HTTP/";
    size_t i;

    for (i = 0; i < n; i++) {
        bool ok;

        if (i < 5)
            ok = v[i] == (unsigned char)name[i];
        else if (i == 6)
            ok = v[i] == '.';
        else
            ok = v[i] >= '0' && v[i] <= '9';
        if (!ok)
            return false;
    }
    return true;
}

static void
reset(struct httpp_request *req)
{
    req->method.p = NULL;
    req->method.len = 0;
    req->method_id = HTTPP_OTHER;
    req->target.p = NULL;
    req->target.len = 0;
    req->minor_version = 0;
    req->nheaders = 0;
    req->head_len = 0;
    req->content_length = -1;
    req->chunked = false;
    req->keep_alive = false;
    req->expect_continue = false;
}

enum httpp_status
httpp_parse(const char *buf, size_t len, const struct httpp_limits *lim, struct httpp_request *req)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t max_rl = lim->max_request_line;
    size_t max_hb = lim->max_header_bytes;
    size_t max_fields = lim->max_headers < HTTPP_MAX_HEADERS ? lim->max_headers : HTTPP_MAX_HEADERS;
    size_t max_fl = lim->max_field_line;
    /* Nothing at or past hend is ever read: the head may not be longer than max_hb. */
    size_t hend = len < max_hb ? len : max_hb;
    struct framing f = {.cl = -1};
    size_t p = 0, start, rl_lim, q, v, e, fs;

    reset(req);

    /* RFC 9112 2.2: one empty line before the request line is tolerated. */
    if (p == hend)
        return ran_out(p, max_hb);
    if (b[p] == '\r') {
        if (p + 1 == hend)
            return ran_out(p + 1, max_hb);
        if (b[p + 1] != '\n')
            return HTTPP_BAD_REQUEST;
        p += 2;
    } else if (b[p] == '\n') {
        p++;
    }

    /* Request line: method SP request-target SP HTTP-version, each part checked as it comes, so
     * garbage is refused before its line ends. */
    start = p;
    rl_lim = hend - start > max_rl ? start + max_rl : hend;

    q = p;
    while (q < rl_lim && (cls[b[q]] & C_TOKEN))
        q++;
    if (q == rl_lim)
        return rl_ran_out(q, start, max_rl, max_hb);
    if (q == p || b[q] != ' ')
        return HTTPP_BAD_REQUEST;
    req->method.p = buf + p;
    req->method.len = q - p;

    p = ++q;
    while (q < rl_lim && (cls[b[q]] & C_TARGET))
        q++;
    if (q == rl_lim)
        return rl_ran_out(q, start, max_rl, max_hb);
    if (q == p || b[q] != ' ')
        return HTTPP_BAD_REQUEST;
    req->target.p = buf + p;
    req->target.len = q - p;

    v = q + 1;
    if (v - start + 8 > max_rl)
        return HTTPP_URI_TOO_LONG;
    if (!version_prefix_ok(b + v, hend - v < 8 ? hend - v : 8))
        return HTTPP_BAD_REQUEST;
    if (hend - v < 8)
        return ran_out(hend, max_hb);
    e = v + 8;
    if (e == hend)
        return ran_out(e, max_hb);
    if (b[e] == '\r') {
        if (e + 1 == hend)
            return ran_out(e + 1, max_hb);
        if (b[e + 1] != '\n')
            return HTTPP_BAD_REQUEST;
        p = e + 2;
    } else if (b[e] == '\n') {
        p = e + 1;
    } else {
        return HTTPP_BAD_REQUEST;
    }
    if (b[v + 5] != '1' || b[v + 7] > '1')
        return HTTPP_VERSION_UNSUPPORTED;
    req->minor_version = b[v + 7] - '0';

    /* Header fields, up to the empty line. */
    for (;;) {
        struct httpp_header *h;
        size_t vs, ve;
        enum httpp_status st;

        if (p == hend)
            return ran_out(p, max_hb);
        if (b[p] == '\n') {
            p++;
            break;
        }
        if (b[p] == '\r') {
            if (p + 1 == hend)
                return ran_out(p + 1, max_hb);
            if (b[p + 1] != '\n')
                return HTTPP_BAD_REQUEST;
            p += 2;
            break;
        }
        /* obs-fold, or whitespace between the request line and the first field. */
        if (b[p] == ' ' || b[p] == '\t')
            return HTTPP_BAD_REQUEST;
        if (req->nheaders == max_fields)
            return HTTPP_HEADERS_TOO_LARGE;

        fs = p;
        q = p;
        while (q < hend && (cls[b[q]] & C_TOKEN))
            q++;
        if (q == hend)
            return field_ran_out(q, fs, max_fl, max_hb);
        if (q == p || b[q] != ':')
            return HTTPP_BAD_REQUEST;
        h = &req->headers[req->nheaders];
        h->name.p = buf + p;
        h->name.len = q - p;

        q++;
        while (q < hend && (b[q] == ' ' || b[q] == '\t'))
            q++;
        vs = q;
        while (q < hend && (cls[b[q]] & C_VALUE))
            q++;
        if (q == hend)
            return field_ran_out(q, fs, max_fl, max_hb);
        if (max_fl > 0 && q - fs > max_fl)
            return HTTPP_HEADERS_TOO_LARGE;
        ve = q;
        if (b[q] == '\r') {
            if (q + 1 == hend)
                return ran_out(q + 1, max_hb);
            if (b[q + 1] != '\n')
                return HTTPP_BAD_REQUEST;
            p = q + 2;
        } else if (b[q] == '\n') {
            p = q + 1;
        } else {
            return HTTPP_BAD_REQUEST; /* NUL or another control byte */
        }
        while (ve > vs && (b[ve - 1] == ' ' || b[ve - 1] == '\t'))
            ve--;
        h->value.p = buf + vs;
        h->value.len = ve - vs;
        req->nheaders++;

        st = note_field(h, &f);
        if (st != HTTPP_COMPLETE)
            return st;
    }

    /* Framing (RFC 9112 6.1-6.3): Transfer-Encoding with Content-Length is a smuggling vector;
     * HTTP/1.0 has no transfer codings, so a Transfer-Encoding there is faulty framing. */
    if (f.have_te) {
        if (f.have_cl || req->minor_version == 0)
            return HTTPP_BAD_REQUEST;
        if (f.te_unsupported)
            return HTTPP_NOT_IMPLEMENTED;
        req->chunked = true;
    }
    req->content_length = f.have_cl ? f.cl : -1;
    if (req->minor_version == 1)
        req->keep_alive = !f.conn_close;
    else
        req->keep_alive = f.conn_keep_alive && !f.conn_close;
    /* RFC 9110 10.1.1: a 100-continue expectation in an HTTP/1.0 request is ignored. */
    req->expect_continue = f.expect_continue && req->minor_version == 1;
    req->method_id = method_of(req->method.p, req->method.len);
    req->head_len = p;
    return HTTPP_COMPLETE;
}

const struct httpp_header *
httpp_find(const struct httpp_request *req, const char *name)
{
    size_t n = strlen(name);
    size_t i, j;

    for (i = 0; i < req->nheaders; i++) {
        const struct httpp_header *h = &req->headers[i];

        if (h->name.len != n)
            continue;
        for (j = 0; j < n; j++) {
            if (lower((unsigned char)h->name.p[j]) != lower((unsigned char)name[j]))
                break;
        }
        if (j == n)
            return h;
    }
    return NULL;
}

int
httpp_status_code(enum httpp_status st)
{
    switch (st) {
    case HTTPP_BAD_REQUEST:
        return 400;
    case HTTPP_URI_TOO_LONG:
        return 414;
    case HTTPP_HEADERS_TOO_LARGE:
        return 431;
    case HTTPP_VERSION_UNSUPPORTED:
        return 505;
    case HTTPP_NOT_IMPLEMENTED:
        return 501;
    case HTTPP_COMPLETE:
    case HTTPP_INCOMPLETE:
    default:
        return 0;
    }
}
