#include "steerd/steering.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "steerd/uri.h"
#include "steerd/util.h"

/* ---- Character classes ------------------------------------------------------------------ */

static bool
is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 3986 unreserved. */
static bool
is_unreserved(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static bool
is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Bytes a URI may hold literally (RFC 3986 unreserved, gen-delims, sub-delims), minus the
 * apostrophe: no quote of either kind, no space, no control byte, nothing >= 0x7F. */
static bool
is_uri_byte(unsigned char c)
{
    return is_unreserved(c) || (c != '\0' && strchr(":/?#[]@!$&()*+,;=", c) != NULL);
}

static bool
is_b64url(unsigned char c)
{
    return is_alnum(c) || c == '-' || c == '_';
}

bool
steering_pathway_id_valid(const char *s, size_t len, bool dot_ok)
{
    if (s == NULL || len == 0 || len > STEERING_ID_MAX)
        return false;
    if (len == 1 && s[0] == '.')
        return dot_ok;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

/* ---- Steering manifest ------------------------------------------------------------------ */

static bool
id_ok(const char *s, bool dot_ok)
{
    return s != NULL && steering_pathway_id_valid(s, strnlen(s, STEERING_ID_MAX + 1), dot_ok);
}

static bool
has_prefix_nocase(const char *s, const char *prefix)
{
    for (; *prefix; s++, prefix++) {
        unsigned char c = (unsigned char)*s;

        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c != (unsigned char)*prefix)
            return false;
    }
    return true;
}

/* An absolute http(s) URI of at most STEERING_URI_MAX bytes with a non-empty authority and no
 * userinfo, made only of URI bytes and well-formed %xx. */
static bool
abs_uri_ok(const char *s)
{
    size_t n, i, start;
    bool in_authority = true;

    if (s == NULL)
        return false;
    n = strnlen(s, STEERING_URI_MAX + 1);
    if (n > STEERING_URI_MAX)
        return false;
    if (has_prefix_nocase(s, "http://"))
        start = 7;
    else if (has_prefix_nocase(s, "https://"))
        start = 8;
    else
        return false;
    if (start >= n || strchr("/?#:", s[start]) != NULL)
        return false;
    for (i = start; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '/' || c == '?' || c == '#')
            in_authority = false;
        if (c == '@' && in_authority)
            return false;
        if (c == '%') {
            if (i + 2 >= n || !is_hex((unsigned char)s[i + 1]) || !is_hex((unsigned char)s[i + 2]))
                return false;
            i += 2;
            continue;
        }
        if (!is_uri_byte(c))
            return false;
    }
    return true;
}

/* A hostname (or IPv4 literal): dot-separated labels of [A-Za-z0-9-]{1,63} that neither start
 * nor end with '-', at most STEERING_HOST_MAX bytes, no port and no trailing dot. */
static bool
host_ok(const char *s)
{
    size_t n, label = 0;

    if (s == NULL)
        return false;
    n = strnlen(s, STEERING_HOST_MAX + 1);
    if (n == 0 || n > STEERING_HOST_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
        } else if (is_alnum(c) || c == '-') {
            if (c == '-' && label == 0)
                return false;
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0 && s[n - 1] != '-';
}

static bool
unreserved_str_ok(const char *s, size_t min, size_t max)
{
    size_t n;

    if (s == NULL)
        return false;
    n = strnlen(s, max + 1);
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!is_unreserved((unsigned char)s[i]))
            return false;
    }
    return true;
}

/* STABLE-VARIANT-ID / STABLE-RENDITION-ID: [A-Za-z0-9+/=._-]. */
static bool
stable_id_ok(const char *s)
{
    size_t n;

    if (s == NULL)
        return false;
    n = strnlen(s, STEERING_STABLE_ID_MAX + 1);
    if (n == 0 || n > STEERING_STABLE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!(is_alnum(c) || strchr("+/=.-_", c) != NULL))
            return false;
    }
    return true;
}

static bool
params_ok(const struct steering_pair *p, size_t n)
{
    if (n > STEERING_MAX_PARAMS || (n > 0 && p == NULL))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!unreserved_str_ok(p[i].name, 1, STEERING_PARAM_NAME_MAX) ||
            !unreserved_str_ok(p[i].value, 0, STEERING_PARAM_VALUE_MAX))
            return false;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(p[i].name, p[j].name) == 0)
                return false;
        }
    }
    return true;
}

static bool
uri_map_ok(const struct steering_pair *p, size_t n)
{
    if (n > STEERING_MAX_URI_MAPS || (n > 0 && p == NULL))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!stable_id_ok(p[i].name) || !abs_uri_ok(p[i].value))
            return false;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(p[i].name, p[j].name) == 0)
                return false;
        }
    }
    return true;
}

static bool
clone_ok(const struct steering_manifest *m, size_t k)
{
    const struct steering_clone *c = &m->clones[k];
    bool hls = m->kind == STEERING_HLS;

    if (!id_ok(c->id, false) || !id_ok(c->base_id, hls) || strcmp(c->id, c->base_id) == 0)
        return false;
    for (size_t j = 0; j < k; j++) {
        if (strcmp(m->clones[j].id, c->id) == 0)
            return false;
    }
    if (c->host != NULL && !host_ok(c->host))
        return false;
    if (!params_ok(c->params, c->nparams))
        return false;
    if (!hls && (c->nper_variant_uris > 0 || c->nper_rendition_uris > 0))
        return false;
    return uri_map_ok(c->per_variant_uris, c->nper_variant_uris) &&
           uri_map_ok(c->per_rendition_uris, c->nper_rendition_uris);
}

static enum steering_status
manifest_check(const struct steering_manifest *m)
{
    bool hls = m->kind == STEERING_HLS;

    if (m->kind != STEERING_HLS && m->kind != STEERING_DASH)
        return STEERING_BAD_PRIORITY;
    if (m->ttl_min_s == 0 || m->ttl_min_s > m->ttl_max_s)
        return STEERING_BAD_TTL;
    if (m->reload_uri != NULL && !abs_uri_ok(m->reload_uri))
        return STEERING_BAD_RELOAD_URI;
    if (m->npriority == 0 || m->npriority > STEERING_MAX_PATHWAYS || m->priority == NULL)
        return STEERING_BAD_PRIORITY;
    for (size_t i = 0; i < m->npriority; i++) {
        if (!id_ok(m->priority[i], hls))
            return STEERING_BAD_PRIORITY;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(m->priority[i], m->priority[j]) == 0)
                return STEERING_BAD_PRIORITY;
        }
    }
    if (m->nclones > STEERING_MAX_CLONES || (m->nclones > 0 && m->clones == NULL))
        return STEERING_BAD_CLONE;
    for (size_t k = 0; k < m->nclones; k++) {
        if (!clone_ok(m, k))
            return STEERING_BAD_CLONE;
    }
    return STEERING_OK;
}

/* Appends the member name "KEY": inside an object, with a comma unless it is the first. */
static int
write_key(struct buf *out, bool *first, const char *key)
{
    int rc = *first ? 0 : buf_puts(out, ",");

    *first = false;
    if (rc == 0)
        rc = buf_printf(out, "\"%s\":", key);
    return rc;
}

/* Appends "KEY":{"n":"v",...}; every string was validated, buf_json_str escapes regardless. */
static int
write_pairs(struct buf *out, bool *first, const char *key, const struct steering_pair *p, size_t n)
{
    bool first_pair = true;
    int rc = write_key(out, first, key);

    if (rc == 0)
        rc = buf_puts(out, "{");
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = first_pair ? 0 : buf_puts(out, ",");
        first_pair = false;
        if (rc == 0)
            rc = buf_json_str(out, p[i].name);
        if (rc == 0)
            rc = buf_puts(out, ":");
        if (rc == 0)
            rc = buf_json_str(out, p[i].value);
    }
    if (rc == 0)
        rc = buf_puts(out, "}");
    return rc;
}

static int
write_clone(struct buf *out, const struct steering_clone *c)
{
    bool first = true;
    int rc = buf_puts(out, "{\"BASE-ID\":");

    if (rc == 0)
        rc = buf_json_str(out, c->base_id);
    if (rc == 0)
        rc = buf_puts(out, ",\"ID\":");
    if (rc == 0)
        rc = buf_json_str(out, c->id);
    if (rc == 0)
        rc = buf_puts(out, ",\"URI-REPLACEMENT\":{");
    if (rc == 0 && c->host != NULL) {
        rc = write_key(out, &first, "HOST");
        if (rc == 0)
            rc = buf_json_str(out, c->host);
    }
    if (rc == 0 && c->nparams > 0)
        rc = write_pairs(out, &first, "PARAMS", c->params, c->nparams);
    if (rc == 0 && c->nper_variant_uris > 0)
        rc =
            write_pairs(out, &first, "PER-VARIANT-URIS", c->per_variant_uris, c->nper_variant_uris);
    if (rc == 0 && c->nper_rendition_uris > 0)
        rc = write_pairs(out, &first, "PER-RENDITION-URIS", c->per_rendition_uris,
                         c->nper_rendition_uris);
    if (rc == 0)
        rc = buf_puts(out, "}}");
    return rc;
}

enum steering_status
steering_write_manifest(struct buf *out, const struct steering_manifest *m)
{
    enum steering_status st = manifest_check(m);
    size_t start = out->len;
    uint32_t ttl;
    int rc;

    if (st != STEERING_OK)
        return st;
    ttl = m->ttl_s < m->ttl_min_s   ? m->ttl_min_s
          : m->ttl_s > m->ttl_max_s ? m->ttl_max_s
                                    : m->ttl_s;
    rc = buf_printf(out, "{\"VERSION\":1,\"TTL\":%u", (unsigned)ttl);
    if (rc == 0 && m->reload_uri != NULL) {
        rc = buf_puts(out, ",\"RELOAD-URI\":");
        if (rc == 0)
            rc = buf_json_str(out, m->reload_uri);
    }
    if (rc == 0)
        rc = buf_puts(out, ",\"PATHWAY-PRIORITY\":[");
    for (size_t i = 0; i < m->npriority && rc == 0; i++) {
        if (i > 0)
            rc = buf_puts(out, ",");
        if (rc == 0)
            rc = buf_json_str(out, m->priority[i]);
    }
    if (rc == 0)
        rc = buf_puts(out, "]");
    if (rc == 0 && m->nclones > 0) {
        rc = buf_puts(out, ",\"PATHWAY-CLONES\":[");
        for (size_t k = 0; k < m->nclones && rc == 0; k++) {
            if (k > 0)
                rc = buf_puts(out, ",");
            if (rc == 0)
                rc = write_clone(out, &m->clones[k]);
        }
        if (rc == 0)
            rc = buf_puts(out, "]");
    }
    if (rc == 0)
        rc = buf_puts(out, "}");
    if (rc != 0) {
        if (out->data != NULL) {
            out->len = start;
            out->data[start] = '\0';
        }
        return STEERING_OVERFLOW;
    }
    return STEERING_OK;
}

const char *
steering_status_str(enum steering_status s)
{
    switch (s) {
    case STEERING_OK:
        return "ok";
    case STEERING_BAD_TTL:
        return "bad_ttl";
    case STEERING_BAD_RELOAD_URI:
        return "bad_reload_uri";
    case STEERING_BAD_PRIORITY:
        return "bad_priority";
    case STEERING_BAD_CLONE:
        return "bad_clone";
    case STEERING_OVERFLOW:
        return "overflow";
    }
    return "unknown";
}

/* ---- Signed session state --------------------------------------------------------------- */

/* Token layout (big-endian), then STEERING_STATE_TAG_BYTES of tag, all base64url without
 * padding:
 *   0 u8  version (STATE_VERSION)      1 u8  kid          2 u8  nprio     3 u8  flags (0)
 *   4 u32 iat_s                        8 u32 exp_s       12 u64 session_hash
 *  20 u32 region                      24 u32 cdn_set      28 u8[nprio] prio
 * The tag is HMAC-SHA256(key[kid], STATE_LABEL || payload) truncated to 128 bits: RFC 2104 s5
 * and NIST SP 800-107 allow truncating to half the output, 128 bits keep forgery out of reach
 * of any online guessing, and the token (carried in every poll URL) is 21 characters
 * shorter. The label keeps these tags from being valid for any other use of the same key. */
#define STATE_VERSION 1
#define STATE_HDR_BYTES 28
#define STATE_MIN_BYTES (STATE_HDR_BYTES + STEERING_STATE_TAG_BYTES)
#define STATE_MAX_BYTES (STATE_MIN_BYTES + STEERING_STATE_MAX_PRIO)
#define STATE_LABEL "steerd/steering-state/v1"

_Static_assert((STATE_MAX_BYTES * 4 + 2) / 3 <= STEERING_STATE_TOKEN_MAX,
               "STEERING_STATE_TOKEN_MAX too small");

struct keyring_key {
    uint8_t kid;
    size_t len;
    unsigned char key[STEERING_KEY_MAX];
};

struct steering_keyring {
    struct keyring_key keys[STEERING_KEYRING_MAX];
    size_t nkeys;
    uint8_t current;
};

struct steering_keyring *
steering_keyring_new(void)
{
    return xcalloc(1, sizeof(struct steering_keyring));
}

void
steering_keyring_free(struct steering_keyring *r)
{
    if (r == NULL)
        return;
    OPENSSL_cleanse(r, sizeof(*r));
    free(r);
}

static const struct keyring_key *
keyring_find(const struct steering_keyring *r, uint8_t kid)
{
    if (kid == 0)
        return NULL;
    for (size_t i = 0; i < r->nkeys; i++) {
        if (r->keys[i].kid == kid)
            return &r->keys[i];
    }
    return NULL;
}

int
steering_keyring_add(struct steering_keyring *r, uint8_t kid, const void *key, size_t len)
{
    struct keyring_key *k;

    if (kid == 0 || key == NULL || len < STEERING_KEY_MIN || len > STEERING_KEY_MAX ||
        r->nkeys >= STEERING_KEYRING_MAX || keyring_find(r, kid) != NULL)
        return -1;
    k = &r->keys[r->nkeys++];
    k->kid = kid;
    k->len = len;
    memcpy(k->key, key, len);
    if (r->current == 0)
        r->current = kid;
    return 0;
}

int
steering_keyring_set_current(struct steering_keyring *r, uint8_t kid)
{
    if (keyring_find(r, kid) == NULL)
        return -1;
    r->current = kid;
    return 0;
}

uint8_t
steering_keyring_current(const struct steering_keyring *r)
{
    return r->current;
}

static void
put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t
get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void
put_u64(unsigned char *p, uint64_t v)
{
    put_u32(p, (uint32_t)(v >> 32));
    put_u32(p + 4, (uint32_t)v);
}

static uint64_t
get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

/* tag = HMAC-SHA256(key, STATE_LABEL || payload)[0..16). Returns 0 or -1. */
static int
state_tag(const struct keyring_key *k, const unsigned char *payload, size_t n,
          unsigned char tag[STEERING_STATE_TAG_BYTES])
{
    unsigned char msg[sizeof(STATE_LABEL) - 1 + STATE_MAX_BYTES];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (n > STATE_MAX_BYTES - STEERING_STATE_TAG_BYTES)
        return -1;
    memcpy(msg, STATE_LABEL, sizeof(STATE_LABEL) - 1);
    memcpy(msg + sizeof(STATE_LABEL) - 1, payload, n);
    if (HMAC(EVP_sha256(), k->key, (int)k->len, msg, sizeof(STATE_LABEL) - 1 + n, md, &mdlen) ==
            NULL ||
        mdlen < STEERING_STATE_TAG_BYTES)
        return -1;
    memcpy(tag, md, STEERING_STATE_TAG_BYTES);
    OPENSSL_cleanse(md, sizeof(md));
    return 0;
}

static const char b64url_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t
b64url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* Writes b64url_len(n) characters (no NUL). */
static void
b64url_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i, o = 0;

    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

        out[o++] = b64url_chars[v >> 18 & 63];
        out[o++] = b64url_chars[v >> 12 & 63];
        out[o++] = b64url_chars[v >> 6 & 63];
        out[o++] = b64url_chars[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;

        out[o++] = b64url_chars[v >> 18 & 63];
        out[o++] = b64url_chars[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

        out[o++] = b64url_chars[v >> 18 & 63];
        out[o++] = b64url_chars[v >> 12 & 63];
        out[o++] = b64url_chars[v >> 6 & 63];
    }
}

static int
b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Strict decoding: base64url alphabet only, no padding, and the unused low bits of the last
 * character must be zero, so that each byte string has exactly one encoding. Returns the byte
 * count, or -1. */
static long
b64url_decode(const char *s, size_t len, unsigned char *out, size_t outsz)
{
    size_t o = 0, i;
    uint32_t acc = 0;
    int bits = 0;

    if (len % 4 == 1 || len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > outsz)
        return -1;
    for (i = 0; i < len; i++) {
        int v = b64url_val((unsigned char)s[i]);

        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) /* non-zero padding bits: a second spelling of the same bytes */
        return -1;
    return (long)o;
}

size_t
steering_state_encode(const struct steering_keyring *r, const struct steering_state *st, char *out,
                      size_t outsz)
{
    unsigned char raw[STATE_MAX_BYTES];
    const struct keyring_key *k;
    size_t n, tlen;

    if (out != NULL && outsz > 0)
        out[0] = '\0';
    if (r == NULL || st == NULL || out == NULL)
        return 0;
    k = keyring_find(r, st->kid != 0 ? st->kid : r->current);
    if (k == NULL || st->nprio > STEERING_STATE_MAX_PRIO || st->iat_s > UINT32_MAX ||
        st->exp_s > UINT32_MAX || st->exp_s < st->iat_s)
        return 0;
    n = STATE_HDR_BYTES + st->nprio;
    tlen = b64url_len(n + STEERING_STATE_TAG_BYTES);
    if (tlen + 1 > outsz)
        return 0;
    raw[0] = STATE_VERSION;
    raw[1] = k->kid;
    raw[2] = st->nprio;
    raw[3] = 0;
    put_u32(raw + 4, (uint32_t)st->iat_s);
    put_u32(raw + 8, (uint32_t)st->exp_s);
    put_u64(raw + 12, st->session_hash);
    put_u32(raw + 20, st->region);
    put_u32(raw + 24, st->cdn_set);
    memcpy(raw + STATE_HDR_BYTES, st->prio, st->nprio);
    if (state_tag(k, raw, n, raw + n) != 0)
        return 0;
    b64url_encode(raw, n + STEERING_STATE_TAG_BYTES, out);
    out[tlen] = '\0';
    return tlen;
}

enum steering_state_status
steering_state_decode(const struct steering_keyring *r, const char *tok, size_t len, uint64_t now_s,
                      uint32_t skew_s, struct steering_state *out)
{
    unsigned char raw[STATE_MAX_BYTES];
    unsigned char tag[STEERING_STATE_TAG_BYTES];
    const struct keyring_key *k;
    size_t n, nprio;
    long got;
    uint64_t iat, exp;

    memset(out, 0, sizeof(*out));
    if (tok == NULL || len > STEERING_STATE_TOKEN_MAX)
        return STEERING_STATE_MALFORMED;
    got = b64url_decode(tok, len, raw, sizeof(raw));
    if (got < STATE_MIN_BYTES)
        return STEERING_STATE_MALFORMED;
    if (raw[0] != STATE_VERSION)
        return STEERING_STATE_BAD_VERSION;
    nprio = raw[2];
    if (nprio > STEERING_STATE_MAX_PRIO || raw[3] != 0 || (size_t)got != STATE_MIN_BYTES + nprio)
        return STEERING_STATE_MALFORMED;
    n = STATE_HDR_BYTES + nprio;
    k = r != NULL ? keyring_find(r, raw[1]) : NULL;
    if (k == NULL)
        return STEERING_STATE_UNKNOWN_KID;
    if (state_tag(k, raw, n, tag) != 0 ||
        CRYPTO_memcmp(tag, raw + n, STEERING_STATE_TAG_BYTES) != 0)
        return STEERING_STATE_BAD_TAG;
    iat = get_u32(raw + 4);
    exp = get_u32(raw + 8);
    if (exp < iat) /* authentic yet impossible: the encoder refuses it */
        return STEERING_STATE_MALFORMED;
    if (iat > now_s && iat - now_s > skew_s) /* iat > now + skew, without overflow */
        return STEERING_STATE_NOT_YET_VALID;
    if (now_s > exp + skew_s)
        return STEERING_STATE_EXPIRED;
    out->kid = raw[1];
    out->nprio = (uint8_t)nprio;
    out->iat_s = iat;
    out->exp_s = exp;
    out->session_hash = get_u64(raw + 12);
    out->region = get_u32(raw + 20);
    out->cdn_set = get_u32(raw + 24);
    memcpy(out->prio, raw + STATE_HDR_BYTES, nprio);
    return STEERING_STATE_OK;
}

const char *
steering_state_status_str(enum steering_state_status s)
{
    switch (s) {
    case STEERING_STATE_OK:
        return "ok";
    case STEERING_STATE_MALFORMED:
        return "malformed";
    case STEERING_STATE_BAD_VERSION:
        return "bad_version";
    case STEERING_STATE_UNKNOWN_KID:
        return "unknown_kid";
    case STEERING_STATE_BAD_TAG:
        return "bad_tag";
    case STEERING_STATE_EXPIRED:
        return "expired";
    case STEERING_STATE_NOT_YET_VALID:
        return "not_yet_valid";
    }
    return "unknown";
}

/* ---- Player query parameters ------------------------------------------------------------ */

/* Room for the longest value accepted once decoded: 64 ids of 32 bytes, 63 commas, 2 quotes. */
#define QVAL_MAX (STEERING_MAX_PATHWAYS * (STEERING_ID_MAX + 1) + 2)

enum qparam {
    Q_HLS_PATHWAY = 0,
    Q_HLS_THROUGHPUT,
    Q_DASH_PATHWAY,
    Q_DASH_THROUGHPUT,
    Q_STATE,
    Q_N
};

static const struct {
    const char *name;
    unsigned err;
} qparams[Q_N] = {
    [Q_HLS_PATHWAY] = {"_HLS_pathway", STEERING_QERR_HLS_PATHWAY},
    [Q_HLS_THROUGHPUT] = {"_HLS_throughput", STEERING_QERR_HLS_THROUGHPUT},
    [Q_DASH_PATHWAY] = {"_DASH_pathway", STEERING_QERR_DASH_PATHWAY},
    [Q_DASH_THROUGHPUT] = {"_DASH_throughput", STEERING_QERR_DASH_THROUGHPUT},
    [Q_STATE] = {STEERING_STATE_PARAM, STEERING_QERR_STATE},
};

/* Decodes a raw value once into buf (QVAL_MAX + 1 bytes) and removes one pair of surrounding
 * double quotes. Returns the value's length with *val set, or -1 (bad %xx, decoded NUL, too
 * long, an unpaired quote). */
static long
qvalue(const char *raw, size_t rawlen, char *buf, const char **val)
{
    long n = uri_decode(raw, rawlen, buf, QVAL_MAX + 1);

    if (n < 0)
        return -1;
    *val = buf;
    if (n > 0 && buf[0] == '"') {
        if (n < 2 || buf[n - 1] != '"')
            return -1;
        *val = buf + 1;
        n -= 2;
    }
    return n;
}

/* Splits v[0..n) on ',' into out->dash_pathways; returns the entry count, or -1 when v is
 * empty, an entry is not a valid id (empty included) or there are more than
 * STEERING_MAX_PATHWAYS entries. */
static long
qlist_ids(const char *v, long n, struct steering_query *out)
{
    long start = 0, count = 0;

    if (n == 0)
        return -1;
    for (long i = 0; i <= n; i++) {
        if (i < n && v[i] != ',')
            continue;
        if (count >= STEERING_MAX_PATHWAYS ||
            !steering_pathway_id_valid(v + start, (size_t)(i - start), false))
            return -1;
        memcpy(out->dash_pathways[count], v + start, (size_t)(i - start));
        out->dash_pathways[count][i - start] = '\0';
        count++;
        start = i + 1;
    }
    return count;
}

/* Splits v[0..n) on ',' into nums (throughputs 0..STEERING_THROUGHPUT_MAX); returns the count
 * (0 for an empty v), or -1 on a bad number or more than STEERING_MAX_PATHWAYS entries. */
static long
qlist_numbers(const char *v, long n, uint64_t *nums)
{
    long start = 0, count = 0;

    if (n == 0)
        return 0;
    for (long i = 0; i <= n; i++) {
        if (i < n && v[i] != ',')
            continue;
        if (count >= STEERING_MAX_PATHWAYS ||
            util_parse_u64(v + start, (size_t)(i - start), 0, STEERING_THROUGHPUT_MAX,
                           &nums[count]) != 0)
            return -1;
        count++;
        start = i + 1;
    }
    return count;
}

int
steering_parse_query(const char *q, size_t qlen, struct steering_query *out)
{
    const char *raw[Q_N] = {NULL};
    size_t rawlen[Q_N] = {0};
    unsigned seen = 0, dup = 0;
    char buf[QVAL_MAX + 1];
    const char *v;
    long n;

    memset(out, 0, sizeof(*out));
    if (q == NULL)
        qlen = 0;
    for (size_t i = 0; i < qlen; i++) {
        unsigned char c = (unsigned char)q[i];

        if (c < 0x21 || c > 0x7E) {
            out->errors = STEERING_QERR_MALFORMED;
            return -1;
        }
    }

    /* Collect the raw value of each known parameter; a repeated one is ambiguous. */
    for (size_t pos = 0; pos < qlen;) {
        const char *pair = q + pos;
        const char *amp = memchr(pair, '&', qlen - pos);
        size_t plen = amp != NULL ? (size_t)(amp - pair) : qlen - pos;
        const char *eq = memchr(pair, '=', plen);
        size_t klen = eq != NULL ? (size_t)(eq - pair) : plen;

        for (int p = 0; p < Q_N; p++) {
            if (klen != strlen(qparams[p].name) || memcmp(pair, qparams[p].name, klen) != 0)
                continue;
            if (seen & (1u << p))
                dup |= 1u << p;
            seen |= 1u << p;
            raw[p] = eq != NULL ? eq + 1 : pair + plen;
            rawlen[p] = eq != NULL ? plen - klen - 1 : 0;
        }
        pos += plen + 1;
    }
    for (int p = 0; p < Q_N; p++) {
        if (dup & (1u << p)) {
            out->errors |= qparams[p].err;
            seen &= ~(1u << p);
        }
    }

    if (seen & (1u << Q_HLS_PATHWAY)) {
        n = qvalue(raw[Q_HLS_PATHWAY], rawlen[Q_HLS_PATHWAY], buf, &v);
        if (n > 0 && steering_pathway_id_valid(v, (size_t)n, true)) {
            memcpy(out->hls_pathway, v, (size_t)n);
            out->hls_pathway[n] = '\0';
            out->has_hls_pathway = true;
        } else {
            out->errors |= STEERING_QERR_HLS_PATHWAY;
        }
    }
    if (seen & (1u << Q_HLS_THROUGHPUT)) {
        n = qvalue(raw[Q_HLS_THROUGHPUT], rawlen[Q_HLS_THROUGHPUT], buf, &v);
        if (n > 0 &&
            util_parse_u64(v, (size_t)n, 0, STEERING_THROUGHPUT_MAX, &out->hls_throughput_bps) == 0)
            out->has_hls_throughput = true;
        else
            out->errors |= STEERING_QERR_HLS_THROUGHPUT;
    }
    if (seen & (1u << Q_DASH_PATHWAY)) {
        n = qvalue(raw[Q_DASH_PATHWAY], rawlen[Q_DASH_PATHWAY], buf, &v);
        n = n < 0 ? -1 : qlist_ids(v, n, out);
        if (n > 0) {
            out->ndash_pathways = (size_t)n;
        } else {
            memset(out->dash_pathways, 0, sizeof(out->dash_pathways));
            out->errors |= STEERING_QERR_DASH_PATHWAY;
        }
    }
    if (seen & (1u << Q_DASH_THROUGHPUT)) {
        n = qvalue(raw[Q_DASH_THROUGHPUT], rawlen[Q_DASH_THROUGHPUT], buf, &v);
        n = n < 0 ? -1 : qlist_numbers(v, n, out->dash_throughput_bps);
        /* Fewer numbers than pathways is normal (unmeasured locations come last, without a
         * number); more cannot be paired. */
        if (n >= 0 && (size_t)n <= out->ndash_pathways) {
            out->ndash_throughputs = (size_t)n;
        } else {
            memset(out->dash_throughput_bps, 0, sizeof(out->dash_throughput_bps));
            out->errors |= STEERING_QERR_DASH_THROUGHPUT;
        }
    }
    if (seen & (1u << Q_STATE)) {
        bool ok;

        n = uri_decode(raw[Q_STATE], rawlen[Q_STATE], buf, sizeof(buf));
        ok = n > 0 && n <= STEERING_STATE_TOKEN_MAX;
        for (long i = 0; ok && i < n; i++)
            ok = is_b64url((unsigned char)buf[i]);
        if (ok) {
            memcpy(out->state, buf, (size_t)n);
            out->state[n] = '\0';
            out->state_len = (size_t)n;
            out->has_state = true;
        } else {
            out->errors |= STEERING_QERR_STATE;
        }
    }
    return out->errors == 0 ? 0 : -1;
}
