/* libFuzzer harness for steering: arbitrary bytes as a player query (steering_parse_query), as
 * a state token (steering_state_decode) and as a RELOAD-URI (steering_write_manifest). Aborts
 * when an output leaves its bounds, when a refused part leaks into the output, when decode
 * accepts a token that the ring's keys did not sign (every accepted token must re-encode to
 * itself: the fuzzer cannot forge HMAC-SHA256, so anything else is a verification bug), or when
 * a state built from the input does not survive encode + decode. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steerd/steering.h"
#include "steerd/util.h"

#define NOW_S 1700000000u
#define SKEW_S 30u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char key1[] = "steerd fuzz key one, 32 bytes!!!";
static const char key2[] = "steerd fuzz key two (kid 2)";

static void
fail(const char *what)
{
    fprintf(stderr, "fuzz_steering: invariant violated: %s\n", what);
    abort();
}

static struct steering_keyring *
make_ring(void)
{
    struct steering_keyring *r = steering_keyring_new();

    if (steering_keyring_add(r, 1, key1, sizeof(key1) - 1) != 0 ||
        steering_keyring_add(r, 2, key2, sizeof(key2) - 1) != 0 ||
        steering_keyring_set_current(r, 2) != 0)
        fail("ring setup");
    return r;
}

static bool
b64url_only(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

static void
check_query(const struct steering_query *sq, int rc)
{
    const unsigned known = STEERING_QERR_MALFORMED | STEERING_QERR_HLS_PATHWAY |
                           STEERING_QERR_HLS_THROUGHPUT | STEERING_QERR_DASH_PATHWAY |
                           STEERING_QERR_DASH_THROUGHPUT | STEERING_QERR_STATE;

    if ((rc == 0) != (sq->errors == 0) || (sq->errors & ~known) != 0)
        fail("query status");
    if ((sq->errors & STEERING_QERR_MALFORMED) &&
        (sq->has_hls_pathway || sq->has_hls_throughput || sq->ndash_pathways || sq->has_state))
        fail("malformed query still parsed");
    if (sq->has_hls_pathway != (sq->hls_pathway[0] != '\0') ||
        strnlen(sq->hls_pathway, sizeof(sq->hls_pathway)) >= sizeof(sq->hls_pathway) ||
        (sq->has_hls_pathway &&
         !steering_pathway_id_valid(sq->hls_pathway, strlen(sq->hls_pathway), true)))
        fail("hls pathway");
    if ((sq->errors & STEERING_QERR_HLS_PATHWAY) && sq->has_hls_pathway)
        fail("refused hls pathway kept");
    if (sq->hls_throughput_bps > STEERING_THROUGHPUT_MAX ||
        (!sq->has_hls_throughput && sq->hls_throughput_bps != 0) ||
        ((sq->errors & STEERING_QERR_HLS_THROUGHPUT) && sq->has_hls_throughput))
        fail("hls throughput");
    if (sq->ndash_pathways > STEERING_MAX_PATHWAYS ||
        ((sq->errors & STEERING_QERR_DASH_PATHWAY) && sq->ndash_pathways > 0))
        fail("dash pathway count");
    for (size_t i = 0; i < STEERING_MAX_PATHWAYS; i++) {
        const char *id = sq->dash_pathways[i];
        size_t n = strnlen(id, STEERING_ID_MAX + 1);

        if (n > STEERING_ID_MAX || (i < sq->ndash_pathways) != (n > 0) ||
            (n > 0 && !steering_pathway_id_valid(id, n, false)))
            fail("dash pathway");
    }
    if (sq->ndash_throughputs > sq->ndash_pathways ||
        ((sq->errors & STEERING_QERR_DASH_THROUGHPUT) && sq->ndash_throughputs > 0))
        fail("dash throughput count");
    for (size_t i = 0; i < STEERING_MAX_PATHWAYS; i++) {
        if (sq->dash_throughput_bps[i] > STEERING_THROUGHPUT_MAX ||
            (i >= sq->ndash_throughputs && sq->dash_throughput_bps[i] != 0))
            fail("dash throughput");
    }
    if (sq->state_len > STEERING_STATE_TOKEN_MAX ||
        strnlen(sq->state, sizeof(sq->state)) != sq->state_len ||
        sq->has_state != (sq->state_len > 0) || !b64url_only(sq->state, sq->state_len) ||
        ((sq->errors & STEERING_QERR_STATE) && sq->has_state))
        fail("state parameter");
}

/* Decodes tok; an accepted token must be exactly what encode gives for its contents. */
static void
check_token(const struct steering_keyring *r, const char *tok, size_t len)
{
    struct steering_state st;
    char again[STEERING_STATE_TOKEN_MAX + 1];
    enum steering_state_status s = steering_state_decode(r, tok, len, NOW_S, SKEW_S, &st);
    size_t n;

    if (s > STEERING_STATE_NOT_YET_VALID)
        fail("decode status");
    if (s != STEERING_STATE_OK) {
        if (st.kid != 0 || st.session_hash != 0 || st.nprio != 0)
            fail("refused token left output");
        return;
    }
    if (st.kid != 1 && st.kid != 2)
        fail("accepted kid");
    if (st.nprio > STEERING_STATE_MAX_PRIO || st.exp_s < st.iat_s || st.exp_s > UINT32_MAX ||
        st.iat_s > (uint64_t)NOW_S + SKEW_S || (uint64_t)NOW_S > st.exp_s + SKEW_S)
        fail("accepted state out of range");
    n = steering_state_encode(r, &st, again, sizeof(again));
    if (n != len || memcmp(again, tok, len) != 0)
        fail("accepted a token that encode would not produce (forged or non-canonical)");
}

static uint32_t
rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A state made of input bytes survives encode + decode unchanged. */
static void
check_round_trip(const struct steering_keyring *r, const uint8_t *data, size_t size)
{
    struct steering_state in, out;
    char tok[STEERING_STATE_TOKEN_MAX + 1];
    size_t n;

    if (size < 26)
        return;
    memset(&in, 0, sizeof(in));
    in.kid = data[0] % 3; /* 0: the current key */
    in.session_hash = (uint64_t)rd32(data + 1) << 32 | rd32(data + 5);
    in.region = rd32(data + 9);
    in.cdn_set = rd32(data + 13);
    in.iat_s = rd32(data + 17);
    in.exp_s = in.iat_s + (rd32(data + 21) % 100000);
    if (in.exp_s > UINT32_MAX)
        in.exp_s = UINT32_MAX;
    in.nprio = (uint8_t)(data[25] % (STEERING_STATE_MAX_PRIO + 1));
    for (size_t i = 0; i < in.nprio; i++)
        in.prio[i] = i + 26 < size ? data[i + 26] : (uint8_t)i;
    n = steering_state_encode(r, &in, tok, sizeof(tok));
    if (n == 0 || n > STEERING_STATE_TOKEN_MAX || strlen(tok) != n || !b64url_only(tok, n))
        fail("encode");
    if (steering_state_decode(r, tok, n, in.iat_s, 0, &out) != STEERING_STATE_OK)
        fail("own token refused");
    if (out.kid != (in.kid ? in.kid : 2) || out.session_hash != in.session_hash ||
        out.region != in.region || out.cdn_set != in.cdn_set || out.iat_s != in.iat_s ||
        out.exp_s != in.exp_s || out.nprio != in.nprio || memcmp(out.prio, in.prio, in.nprio))
        fail("round trip changed the state");
}

/* The input as RELOAD-URI (up to its first NUL) and the parsed DASH pathways as
 * PATHWAY-PRIORITY: whatever is accepted is safe to put in JSON as is. */
static void
check_manifest(const uint8_t *data, size_t size, const struct steering_query *sq)
{
    const char *prio[STEERING_MAX_PATHWAYS];
    struct steering_manifest m = {
        .kind = STEERING_DASH, .ttl_s = 10, .ttl_min_s = 1, .ttl_max_s = 300};
    char *uri = xstrndup((const char *)data, size);
    struct buf b;
    enum steering_status s;
    bool dup = false;

    for (size_t i = 0; i < sq->ndash_pathways; i++) {
        prio[i] = sq->dash_pathways[i];
        for (size_t j = 0; j < i; j++)
            dup = dup || strcmp(prio[i], prio[j]) == 0;
    }
    if (sq->ndash_pathways == 0) {
        prio[0] = "fallback";
        m.npriority = 1;
    } else {
        m.npriority = sq->ndash_pathways;
    }
    m.priority = prio;
    m.reload_uri = uri;
    buf_init(&b, 16384);
    s = steering_write_manifest(&b, &m);
    if (s == STEERING_OK) {
        if (dup)
            fail("duplicate priority accepted");
        for (size_t i = 0; uri[i]; i++) {
            unsigned char c = (unsigned char)uri[i];

            if (c < 0x21 || c > 0x7E || c == '"' || c == '\\' || c == '\'')
                fail("unsafe RELOAD-URI accepted");
        }
        if (strstr(b.data, uri) == NULL || b.data[b.len - 1] != '}')
            fail("RELOAD-URI not written as given");
        for (size_t i = 0; i < b.len; i++) {
            if ((unsigned char)b.data[i] < 0x20 || (unsigned char)b.data[i] > 0x7E)
                fail("control byte in JSON");
        }
    } else if (b.len != 0) {
        fail("refused manifest left output");
    }
    buf_free(&b);
    free(uri);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct steering_keyring *r = make_ring();
    struct steering_query *sq = xmalloc(sizeof(*sq));
    struct steering_query *sq2 = xmalloc(sizeof(*sq2));
    int rc;

    rc = steering_parse_query((const char *)data, size, sq);
    check_query(sq, rc);
    if (steering_parse_query((const char *)data, size, sq2) != rc ||
        memcmp(sq, sq2, sizeof(*sq)) != 0)
        fail("parse is not deterministic");
    if (sq->has_state)
        check_token(r, sq->state, sq->state_len);
    check_token(r, (const char *)data, size);
    check_round_trip(r, data, size);
    check_manifest(data, size, sq);
    free(sq2);
    free(sq);
    steering_keyring_free(r);
    return 0;
}
