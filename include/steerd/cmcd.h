/* cmcd: Common Media Client Data (CTA-5004 v1, CTA-5004-B v2) as players send it: the CMCD query
 * argument, the CMCD-Object/-Request/-Session/-Status headers and application/cmcd bodies.
 * Pure; bounded; never allocates.
 *
 * Two layers:
 *  - cmcd_find / cmcd_find_sid: a lenient look-up of one key, for the hot path (session id);
 *  - cmcd_parse*: a strict parser into struct cmcd_report of the keys steering uses. A payload
 *    is an RFC 8941 dictionary (key=value, strings quoted, tokens bare, boolean true = bare key,
 *    inner lists for v2 per-object-type keys, parameters accepted and skipped) or, in bodies, a
 *    JSON object. Unknown and custom (hyphenated) keys are checked for syntax and ignored. Any
 *    error rejects the whole payload: the report is then empty (has == 0). */
#ifndef STEERD_CMCD_H
#define STEERD_CMCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CMCD_SID_MAX 64
#define CMCD_CID_MAX 128
#define CMCD_CDN_MAX 128
/* Longest payload accepted: one decoded query value, one header value, one body line. */
#define CMCD_PAYLOAD_MAX 8192
/* Reports taken from one body; the rest count as bad. */
#define CMCD_BODY_MAX_REPORTS 256

/* Finds key in a CMCD list s[0..len) ("k1=v1,k2,sid=\"abc\"") and returns a pointer to its value
 * (quotes removed for a string value) with *vlen set, or NULL when absent or malformed. */
const char *cmcd_find(const char *s, size_t len, const char *key, size_t *vlen);

/* The session id (sid) of a CMCD list: a quoted string of 1..CMCD_SID_MAX bytes without
 * controls. Returns NULL when absent, unquoted, empty, too long or malformed. */
const char *cmcd_find_sid(const char *s, size_t len, size_t *sidlen);

enum cmcd_status {
    CMCD_OK = 0,
    CMCD_ABSENT,  /* nothing to parse (a query without a CMCD argument, no CMCD header) */
    CMCD_ESYNTAX, /* not a dictionary / JSON object, bad percent-encoding, duplicate CMCD= */
    CMCD_ETYPE,   /* a key below with a value of the wrong type, or a token outside its set */
    CMCD_ERANGE,  /* a negative or too large integer, a string too long (or an empty sid), a
                     payload longer than CMCD_PAYLOAD_MAX, too many reports in a body */
};

/* Bits of struct cmcd_report.has: which keys the payload carried. */
enum cmcd_key {
    CMCD_KEY_BR = 1u << 0,
    CMCD_KEY_BL = 1u << 1,
    CMCD_KEY_MTP = 1u << 2,
    CMCD_KEY_BS = 1u << 3,
    CMCD_KEY_BSD = 1u << 4,
    CMCD_KEY_BSA = 1u << 5,
    CMCD_KEY_CDN = 1u << 6,
    CMCD_KEY_SID = 1u << 7,
    CMCD_KEY_CID = 1u << 8,
    CMCD_KEY_OT = 1u << 9,
    CMCD_KEY_SF = 1u << 10,
    CMCD_KEY_ST = 1u << 11,
    CMCD_KEY_SU = 1u << 12,
    CMCD_KEY_D = 1u << 13,
    CMCD_KEY_TB = 1u << 14,
    CMCD_KEY_RTP = 1u << 15,
    CMCD_KEY_V = 1u << 16,
    CMCD_KEY_EC = 1u << 17,
    CMCD_KEY_PT = 1u << 18,
    CMCD_KEY_STA = 1u << 19,
    CMCD_KEY_TTFB = 1u << 20,
};

/* The keys steering reads. A field is meaningful only when its bit is set in has. Integer keys
 * that v2 sends as inner lists per object type (br bl mtp bsa tb) keep the first item; bsd keeps
 * the sum of its items; ec keeps the number of codes. Strings and tokens are NUL-terminated. */
struct cmcd_report {
    uint32_t has;      /* CMCD_KEY_* bits */
    uint32_t br_kbps;  /* encoded bitrate */
    uint32_t bl_ms;    /* buffer length */
    uint32_t mtp_kbps; /* measured throughput */
    uint32_t bsd_ms;   /* starvation durations since the last report (v2) */
    uint32_t bsa;      /* starvation events since the session began (v2) */
    uint32_t d_ms;     /* object duration */
    uint32_t tb_kbps;  /* top bitrate */
    uint32_t rtp_kbps; /* requested maximum throughput */
    uint32_t ttfb_ms;  /* time to first byte (v2 event mode) */
    uint32_t v;        /* version; 1 when the key is absent */
    uint32_t nec;      /* number of player error codes in ec (v2) */
    uint64_t pt_ms;    /* playhead time (v2) */
    bool bs;           /* buffer starvation since the last report */
    bool su;           /* startup / urgent */
    char ot[3];        /* object type m a v av i c tt k o */
    char sf[2];        /* streaming format d h e s o */
    char st[3];        /* stream type v l ll */
    char sta[2];       /* player state s p k r a w e f q d (v2) */
    char sid[CMCD_SID_MAX + 1];
    char cid[CMCD_CID_MAX + 1];
    char cdn[CMCD_CDN_MAX + 1];
};

/* An empty report (has == 0, v == 1). */
void cmcd_report_init(struct cmcd_report *r);

/* Parses one dictionary s[0..len) (a header value, or a query value already decoded). Returns
 * CMCD_OK with *out filled, or an error with *out empty. An empty payload is CMCD_OK with has 0. */
enum cmcd_status cmcd_parse(const char *s, size_t len, struct cmcd_report *out);

/* Finds the CMCD argument in a query string q[0..len) (a leading '?' is skipped; arguments are
 * separated by '&'), percent-decodes it ('+' stays '+') and parses it. CMCD_ABSENT when there is
 * none; two CMCD arguments are CMCD_ESYNTAX. */
enum cmcd_status cmcd_parse_query(const char *q, size_t len, struct cmcd_report *out);

enum cmcd_header { CMCD_HDR_OBJECT = 0, CMCD_HDR_REQUEST, CMCD_HDR_SESSION, CMCD_HDR_STATUS };
#define CMCD_NHEADERS 4

/* Which CMCD header a field name is (case-insensitive), or -1. */
int cmcd_header_index(const char *name, size_t len);

/* Parses and merges the four header values (vals[CMCD_HDR_*], NULL when the header is absent;
 * lens their lengths). A key sent twice keeps the last value (headers in enum order). Any bad
 * header rejects them all. CMCD_ABSENT when no header is present. */
enum cmcd_status cmcd_parse_headers(const char *const vals[CMCD_NHEADERS],
                                    const size_t lens[CMCD_NHEADERS], struct cmcd_report *out);

/* Called once per good report of a body; r is valid during the call only. */
typedef void (*cmcd_report_fn)(const struct cmcd_report *r, void *arg);

struct cmcd_body_result {
    uint32_t ok;                  /* reports passed to the callback */
    uint32_t bad;                 /* reports rejected */
    enum cmcd_status first_error; /* CMCD_OK when bad == 0 */
};

/* Parses an application/cmcd body: one report per line (CR LF or LF), each an RFC 8941
 * dictionary or a JSON object; a JSON array of objects may also span lines. Blank lines are
 * skipped. A malformed line counts as one bad report; a JSON syntax error ends the body there
 * (the rest counts as one bad report), and a JSON array with a syntax error is used not at all.
 * At most CMCD_BODY_MAX_REPORTS reports are passed on. Never fails as a whole. */
void cmcd_parse_body(const char *body, size_t len, cmcd_report_fn fn, void *arg,
                     struct cmcd_body_result *res);

/* "ok", "absent", "syntax", "type" or "range" (a static string, for metric labels). */
const char *cmcd_status_str(enum cmcd_status s);

#endif
