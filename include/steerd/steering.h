/* steering: the pure building blocks of the Content Steering endpoints (GET /steer/hls,
 * GET /steer/dash):
 *  - the steering manifest JSON (HLS steering manifest, DASH DCSM), validated before it is
 *    written;
 *  - the query parameters players append (_HLS_pathway, _HLS_throughput, _DASH_pathway,
 *    _DASH_throughput) plus steerd's own state parameter, parsed strictly into fixed-size
 *    outputs;
 *  - a signed, stateless session state token carried in RELOAD-URI, so that any replica can
 *    answer the next poll (HMAC-SHA256 with a key ring indexed by key id).
 * Pure: no I/O, no logging, no clock reads (`now` is an argument). Fuzzed by
 * tests/fuzz/fuzz_steering.c. */
#ifndef STEERD_STEERING_H
#define STEERD_STEERING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

#define STEERING_ID_MAX 32            /* a pathway id is [a-z0-9-]{1,32}, or "." (HLS only) */
#define STEERING_MAX_PATHWAYS 64      /* PATHWAY-PRIORITY entries, DASH query list entries */
#define STEERING_MAX_CLONES 64        /* PATHWAY-CLONES entries */
#define STEERING_MAX_PARAMS 32        /* URI-REPLACEMENT.PARAMS entries per clone */
#define STEERING_MAX_URI_MAPS 1024    /* PER-VARIANT-URIS / PER-RENDITION-URIS entries per clone */
#define STEERING_URI_MAX 4096         /* RELOAD-URI and per-variant / per-rendition URI bytes */
#define STEERING_HOST_MAX 253         /* URI-REPLACEMENT.HOST bytes */
#define STEERING_PARAM_NAME_MAX 64    /* URI-REPLACEMENT.PARAMS name bytes */
#define STEERING_PARAM_VALUE_MAX 1024 /* URI-REPLACEMENT.PARAMS value bytes */
#define STEERING_STABLE_ID_MAX 256    /* STABLE-VARIANT-ID / STABLE-RENDITION-ID bytes */
#define STEERING_THROUGHPUT_MAX 1000000000000ull /* bit/s accepted from players (10^12) */

/* ---- Steering manifest ------------------------------------------------------------------ */

enum steering_kind { STEERING_HLS = 0, STEERING_DASH };

enum steering_status {
    STEERING_OK = 0,
    STEERING_BAD_TTL,        /* ttl_min_s is 0 or greater than ttl_max_s */
    STEERING_BAD_RELOAD_URI, /* not absolute http(s), a byte outside the URI set, a quote,
                                a control byte, a bad %xx, or longer than STEERING_URI_MAX */
    STEERING_BAD_PRIORITY,   /* empty, too long, a duplicate or an invalid pathway id */
    STEERING_BAD_CLONE,      /* a clone's ID / BASE-ID / HOST / PARAMS / URIs are invalid,
                                a duplicate clone ID, or per-variant URIs in a DASH manifest */
    STEERING_OVERFLOW,       /* the output buffer reached its max */
};

/* One name -> value pair: URI-REPLACEMENT.PARAMS (name and value already percent-encoded:
 * only unreserved bytes A-Z a-z 0-9 - . _ ~ are accepted, since players re-encode them), or a
 * PER-VARIANT-URIS / PER-RENDITION-URIS entry (name: a STABLE-VARIANT-ID or
 * STABLE-RENDITION-ID, [A-Za-z0-9+/=._-]; value: an absolute http(s) URI). */
struct steering_pair {
    const char *name;
    const char *value;
};

struct steering_clone {
    const char *base_id; /* a pathway id, "." allowed for HLS (the unnamed pathway) */
    const char *id;      /* a pathway id, never "."; unique among the clones */
    const char *host;    /* NULL: no HOST; else a hostname only: no port, no userinfo */
    const struct steering_pair *params;
    size_t nparams;
    const struct steering_pair *per_variant_uris; /* HLS only */
    size_t nper_variant_uris;
    const struct steering_pair *per_rendition_uris; /* HLS only */
    size_t nper_rendition_uris;
};

/* Everything is borrowed from the caller for the duration of the call. */
struct steering_manifest {
    enum steering_kind kind;
    uint32_t ttl_s;              /* wanted TTL, clamped to [ttl_min_s, ttl_max_s] when written */
    uint32_t ttl_min_s;          /* >= 1 */
    uint32_t ttl_max_s;          /* >= ttl_min_s */
    const char *reload_uri;      /* NULL: the key is omitted (never written as null); else an
                                    absolute http(s) URI written as given */
    const char *const *priority; /* PATHWAY-PRIORITY, 1..STEERING_MAX_PATHWAYS unique ids */
    size_t npriority;
    const struct steering_clone *clones; /* PATHWAY-CLONES, omitted when nclones is 0 */
    size_t nclones;
};

/* Validates m whole, then appends its JSON (one line, no trailing newline) to out: VERSION 1,
 * TTL, RELOAD-URI, PATHWAY-PRIORITY, PATHWAY-CLONES. Returns STEERING_OK, or the first problem
 * found; on any error out is left exactly as it was (its sticky overflow flag aside). */
enum steering_status steering_write_manifest(struct buf *out, const struct steering_manifest *m);

/* A static name for s ("ok", "bad_ttl", ...), for logs and metrics. */
const char *steering_status_str(enum steering_status s);

/* True when s[0..len) is a pathway id steerd accepts: [a-z0-9-]{1,32} (the CDN id grammar), or
 * "." when dot_ok (HLS: the pathway of variants without PATHWAY-ID). */
bool steering_pathway_id_valid(const char *s, size_t len, bool dot_ok);

/* ---- Signed session state --------------------------------------------------------------- */

#define STEERING_STATE_PARAM "st"    /* its query parameter name in RELOAD-URI */
#define STEERING_STATE_MAX_PRIO 64   /* PATHWAY-PRIORITY entries remembered */
#define STEERING_STATE_TOKEN_MAX 144 /* base64url characters of the longest token */
#define STEERING_STATE_TAG_BYTES 16  /* HMAC-SHA256 truncated to 128 bits */
#define STEERING_KEY_MIN 16          /* key bytes */
#define STEERING_KEY_MAX 64          /* key bytes (the SHA-256 block size) */
#define STEERING_KEYRING_MAX 8       /* keys in one ring */

/* The session state. Every field round-trips exactly; none is interpreted here. */
struct steering_state {
    uint8_t kid;           /* encode: the key to sign with, 0 = the ring's current key;
                              decode: the key that verified the token */
    uint64_t session_hash; /* the session's policy hash */
    uint32_t region;       /* the caller's region tag (a hash of the region name survives
                              config reloads that reorder regions; an index does not) */
    uint32_t cdn_set;      /* the caller's tag for what prio[] indexes (e.g. a hash of the CDN
                              id list): a replica with another CDN list must ignore prio[] */
    uint64_t iat_s;        /* issued at, seconds since the Unix epoch, <= UINT32_MAX */
    uint64_t exp_s;        /* expires at, seconds, iat_s <= exp_s <= UINT32_MAX */
    uint8_t nprio;         /* 0..STEERING_STATE_MAX_PRIO */
    uint8_t prio[STEERING_STATE_MAX_PRIO]; /* the last PATHWAY-PRIORITY sent, as CDN indexes */
};

enum steering_state_status {
    STEERING_STATE_OK = 0,
    STEERING_STATE_MALFORMED,     /* not base64url, wrong length, bad layout */
    STEERING_STATE_BAD_VERSION,   /* well-formed but of a token version this build cannot read */
    STEERING_STATE_UNKNOWN_KID,   /* no key with that id in the ring */
    STEERING_STATE_BAD_TAG,       /* the HMAC does not match: tampered or forged */
    STEERING_STATE_EXPIRED,       /* now > exp + skew */
    STEERING_STATE_NOT_YET_VALID, /* iat > now + skew */
};

/* A set of HMAC keys by key id (1..255), one of them current for signing. Rotation without a
 * gap: add the new key to every replica's ring first, make it current afterwards, and drop the
 * old one once the tokens it signed have expired. Immutable once built, so one ring may be
 * shared by threads. */
struct steering_keyring;

/* A new, empty ring the caller frees with steering_keyring_free. Cannot fail (aborts on OOM). */
struct steering_keyring *steering_keyring_new(void);
/* Zeroes every key (OPENSSL_cleanse) and frees the ring; accepts NULL. */
void steering_keyring_free(struct steering_keyring *r);
/* Copies key[0..len) as key kid. The first key added becomes current. Returns 0, or -1 when kid
 * is 0 or already present, len is outside [STEERING_KEY_MIN, STEERING_KEY_MAX], or the ring
 * holds STEERING_KEYRING_MAX keys. */
int steering_keyring_add(struct steering_keyring *r, uint8_t kid, const void *key, size_t len);
/* Makes kid the signing key. Returns 0, or -1 when the ring has no such key. */
int steering_keyring_set_current(struct steering_keyring *r, uint8_t kid);
/* The current kid, 0 when the ring is empty. */
uint8_t steering_keyring_current(const struct steering_keyring *r);

/* Serialises st, signs it with the key st->kid (0: the current key) and writes the token
 * (base64url, no padding, NUL-terminated) to out. Deterministic: the same state and key give
 * the same token. Returns the token length (<= STEERING_STATE_TOKEN_MAX), or 0 when the key is
 * absent, a field is out of range, or outsz is too small (out is then ""). */
size_t steering_state_encode(const struct steering_keyring *r, const struct steering_state *st,
                             char *out, size_t outsz);

/* Verifies and decodes tok[0..len): layout, key id, HMAC tag (constant-time comparison), then
 * time (valid while iat - skew_s <= now_s <= exp + skew_s). Fills out only on STEERING_STATE_OK
 * (zeroed otherwise). Never reads past len. */
enum steering_state_status steering_state_decode(const struct steering_keyring *r, const char *tok,
                                                 size_t len, uint64_t now_s, uint32_t skew_s,
                                                 struct steering_state *out);

/* A static name for s ("ok", "malformed", ...). */
const char *steering_state_status_str(enum steering_state_status s);

/* ---- Player query parameters ------------------------------------------------------------ */

/* Bits of steering_query.errors: which parameter was rejected (its output fields are left
 * empty; the other parameters are still parsed). */
#define STEERING_QERR_MALFORMED (1u << 0)      /* a raw byte outside 0x21..0x7E: nothing parsed */
#define STEERING_QERR_HLS_PATHWAY (1u << 1)    /* not one valid id (optionally quoted), repeated */
#define STEERING_QERR_HLS_THROUGHPUT (1u << 2) /* not an integer 0..10^12, repeated */
#define STEERING_QERR_DASH_PATHWAY (1u << 3)   /* an invalid or empty id, > 64 entries, repeated */
#define STEERING_QERR_DASH_THROUGHPUT                                                              \
    (1u << 4)                         /* a bad number, > 64 entries, more entries than             \
                                         valid pathways, repeated */
#define STEERING_QERR_STATE (1u << 5) /* not base64url, too long, repeated */

/* The parameters of one steering request. Fixed size; nothing points into the query. */
struct steering_query {
    bool has_hls_pathway;
    char hls_pathway[STEERING_ID_MAX + 1];
    bool has_hls_throughput;
    uint64_t hls_throughput_bps;
    /* _DASH_pathway: every service location the player used since its last request, in its
     * order (by throughput, descending); may repeat an id (BaseURL and Location lists). */
    size_t ndash_pathways;
    char dash_pathways[STEERING_MAX_PATHWAYS][STEERING_ID_MAX + 1];
    /* _DASH_throughput: dash_throughput_bps[i] is dash_pathways[i]'s. dash.js lists the
     * locations without a measurement last and sends no number for them, so there may be
     * fewer numbers than pathways, never more. */
    size_t ndash_throughputs;
    uint64_t dash_throughput_bps[STEERING_MAX_PATHWAYS];
    bool has_state; /* the STEERING_STATE_PARAM value, syntax-checked only (decode it) */
    size_t state_len;
    char state[STEERING_STATE_TOKEN_MAX + 1];
    unsigned errors; /* STEERING_QERR_* bits */
};

/* Parses the raw query q[0..qlen) (no '?': "a=1&b=2"). Pairs split on '&'; keys are matched
 * exactly; values are percent-decoded once ('+' is not a space) and may be wrapped in double
 * quotes; unknown parameters are ignored. Returns 0 when nothing was rejected, -1 when
 * out->errors is non-zero; the accepted parameters are filled in either case. */
int steering_parse_query(const char *q, size_t qlen, struct steering_query *out);

#endif
