/* httpparse: a bounded HTTP/1.x request-head parser (request line + header fields, RFC 9112).
 * Pure: it never allocates, never reads past len, and returns pointers into the caller's
 * buffer. Fuzzed (tests/fuzz/fuzz_http.c). Why not libevent's evhttp or libhttp-parser: the
 * hot path needs one pass over a contiguous buffer with our own limits and status codes
 * (414/431/400), which evhttp does not give; this parser is ~300 lines and fuzzed. */
#ifndef STEERD_HTTPPARSE_H
#define STEERD_HTTPPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTPP_MAX_HEADERS 100

struct httpp_limits {
    size_t max_request_line; /* bytes of the request line, CRLF excluded */
    size_t max_header_bytes; /* bytes of the whole head, request line and final CRLF included */
    size_t max_headers;      /* <= HTTPP_MAX_HEADERS */
    size_t max_field_line;   /* bytes of one header field line, CRLF excluded; 0: no own cap */
};

struct httpp_str {
    const char *p;
    size_t len;
};

struct httpp_header {
    struct httpp_str name;  /* as sent (token chars); compare case-insensitively */
    struct httpp_str value; /* leading/trailing OWS removed */
};

enum httpp_method { HTTPP_GET, HTTPP_HEAD, HTTPP_POST, HTTPP_OPTIONS, HTTPP_OTHER };

struct httpp_request {
    struct httpp_str method;
    enum httpp_method method_id;
    struct httpp_str target; /* origin-form ("/..."), absolute-form or "*" as sent */
    int minor_version;       /* HTTP/1.0 -> 0, HTTP/1.1 -> 1 */
    struct httpp_header headers[HTTPP_MAX_HEADERS];
    size_t nheaders;
    size_t head_len; /* bytes consumed by the head, final CRLF included */

    /* Framing, derived from the headers (RFC 9112 section 6). */
    int64_t content_length; /* -1 when absent */
    bool chunked;           /* Transfer-Encoding: chunked (then content_length is -1) */
    bool keep_alive;        /* 1.1 unless "Connection: close"; 1.0 only with keep-alive */
    bool expect_continue;
};

enum httpp_status {
    HTTPP_COMPLETE = 0,        /* a whole head was parsed; req->head_len is set */
    HTTPP_INCOMPLETE,          /* need more bytes (and none of the limits is passed yet) */
    HTTPP_BAD_REQUEST,         /* 400: malformed, or ambiguous framing */
    HTTPP_URI_TOO_LONG,        /* 414 */
    HTTPP_HEADERS_TOO_LARGE,   /* 431: head too large, a field line too long, or too many
                                  fields */
    HTTPP_VERSION_UNSUPPORTED, /* 505: not HTTP/1.0 or 1.1 */
    HTTPP_NOT_IMPLEMENTED,     /* 501: a transfer coding other than chunked */
};

/* Parses one request head from buf[0..len). Bare LF line ends are accepted as RFC 9112 allows;
 * obs-fold, NUL/CTL bytes in fields, whitespace before the colon, conflicting Content-Length
 * values and Content-Length together with Transfer-Encoding are 400.
 * Details: one empty line before the request line is skipped (and counted in head_len); a bare
 * CR is 400; "HTTP/" DIGIT "." DIGIT other than 1.0/1.1 is 505, any other version text 400;
 * Content-Length is 1*DIGIT up to 2^53 (repeats must be equal); Transfer-Encoding must be
 * exactly "chunked" (else 501), appear once, and not in HTTP/1.0 (400). Garbage is refused as
 * soon as it is seen, before its line ends. The caller may parse again from the start when more
 * bytes arrive; on any status but HTTPP_COMPLETE the fields of req are unspecified. */
enum httpp_status httpp_parse(const char *buf, size_t len, const struct httpp_limits *lim,
                              struct httpp_request *req);

/* The first header named name (case-insensitive), or NULL. */
const struct httpp_header *httpp_find(const struct httpp_request *req, const char *name);

/* The status code an error status maps to (400, 414, 431, 505, 501); 0 for the others. */
int httpp_status_code(enum httpp_status st);

#endif
