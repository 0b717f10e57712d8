/* Tests for the CMCD parsers: every sample in tests/fixtures/cmcd (see SOURCES.md there), a table
 * of valid and invalid payloads, the query, header and body forms, and the lenient look-ups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "steerd/cmcd.h"
#include "steerd/util.h"

static char *
fixture_read(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/cmcd/%s", FIXTURE_DIR, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    struct buf b;
    buf_init(&b, 1u << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(buf_append(&b, chunk, n), 0);
    fclose(f);
    *len = b.len;
    return b.data;
}

/* The next line of text[*pos..len) (without its LF), or NULL at the end. */
static const char *
next_line(const char *text, size_t len, size_t *pos, size_t *llen)
{
    if (*pos >= len)
        return NULL;
    const char *start = text + *pos;
    const char *nl = memchr(start, '\n', len - *pos);
    size_t n = nl != NULL ? (size_t)(nl - start) : len - *pos;
    *pos += n + (nl != NULL ? 1 : 0);
    *llen = n;
    return start;
}

static enum cmcd_status
parse_str(const char *s, struct cmcd_report *r)
{
    return cmcd_parse(s, strlen(s), r);
}

/* ---- fixtures ------------------------------------------------------------------------------ */

static void
check_cml_v1(const struct cmcd_report *r)
{
    uint32_t want = CMCD_KEY_BL | CMCD_KEY_BR | CMCD_KEY_BS | CMCD_KEY_CID | CMCD_KEY_D |
                    CMCD_KEY_MTP | CMCD_KEY_OT | CMCD_KEY_RTP | CMCD_KEY_SF | CMCD_KEY_SID |
                    CMCD_KEY_ST | CMCD_KEY_SU | CMCD_KEY_TB;
    assert_int_equal(r->has, want);
    assert_int_equal(r->bl_ms, 5000);
    assert_int_equal(r->br_kbps, 200);
    assert_true(r->bs);
    assert_string_equal(r->cid, "content-id");
    assert_int_equal(r->d_ms, 325);
    assert_int_equal(r->mtp_kbps, 10000);
    assert_string_equal(r->ot, "m");
    assert_int_equal(r->rtp_kbps, 8000);
    assert_string_equal(r->sf, "d");
    assert_string_equal(r->sid, "session-id");
    assert_string_equal(r->st, "v");
    assert_true(r->su);
    assert_int_equal(r->tb_kbps, 5000);
    assert_int_equal(r->v, 1);
}

static void
test_cmcd_fixture_cml_v1_string(void **state)
{
    (void)state;
    size_t len;
    char *s = fixture_read("cml-cmcd-v1-string.txt", &len);
    struct cmcd_report r;
    /* The file ends with a newline that is not part of the payload. */
    assert_int_equal(cmcd_parse(s, len - 1, &r), CMCD_OK);
    check_cml_v1(&r);
    free(s);
}

static void
test_cmcd_fixture_cml_v1_query_matches_string(void **state)
{
    (void)state;
    size_t qlen, slen;
    char *q = fixture_read("cml-cmcd-v1-query.txt", &qlen);
    char *s = fixture_read("cml-cmcd-v1-string.txt", &slen);
    struct cmcd_report rq, rs;
    assert_int_equal(cmcd_parse_query(q, qlen - 1, &rq), CMCD_OK);
    assert_int_equal(cmcd_parse(s, slen - 1, &rs), CMCD_OK);
    check_cml_v1(&rq);
    assert_memory_equal(&rq, &rs, sizeof(rq));
    free(q);
    free(s);
}

static void
test_cmcd_fixture_cml_v2_headers_merge(void **state)
{
    (void)state;
    size_t len, pos = 0, llen;
    char *text = fixture_read("cml-cmcd-v2-headers.txt", &len);
    const char *vals[CMCD_NHEADERS] = {NULL, NULL, NULL, NULL};
    size_t lens[CMCD_NHEADERS] = {0};
    const char *line;
    while ((line = next_line(text, len, &pos, &llen)) != NULL) {
        const char *colon = memchr(line, ':', llen);
        assert_non_null(colon);
        int h = cmcd_header_index(line, (size_t)(colon - line));
        assert_true(h >= 0);
        vals[h] = colon + 2;
        lens[h] = llen - (size_t)(colon + 2 - line);
    }
    for (int h = 0; h < CMCD_NHEADERS; h++)
        assert_non_null(vals[h]);

    struct cmcd_report r;
    assert_int_equal(cmcd_parse_headers(vals, lens, &r), CMCD_OK);
    assert_int_equal(r.br_kbps, 200); /* br=(200) */
    assert_int_equal(r.tb_kbps, 5000);
    assert_int_equal(r.d_ms, 325);
    assert_string_equal(r.ot, "m");
    assert_int_equal(r.bl_ms, 5000);
    assert_int_equal(r.mtp_kbps, 10000);
    assert_string_equal(r.sta, "p");
    assert_true(r.su);
    assert_true(r.bs);
    assert_int_equal(r.bsd_ms, 2000);
    assert_string_equal(r.cdn, "cdn-provider");
    assert_int_equal(r.nec, 2);
    assert_int_equal(r.pt_ms, 45000);
    assert_int_equal(r.rtp_kbps, 8000);
    assert_string_equal(r.cid, "content-id");
    assert_string_equal(r.sid, "session-id");
    assert_string_equal(r.sf, "d");
    assert_string_equal(r.st, "v");
    assert_int_equal(r.v, 2);
    assert_true((r.has & CMCD_KEY_V) != 0);
    assert_true((r.has & CMCD_KEY_EC) != 0);

    /* One bad header rejects them all. */
    vals[CMCD_HDR_STATUS] = "bs,rtp=1.5";
    lens[CMCD_HDR_STATUS] = strlen(vals[CMCD_HDR_STATUS]);
    assert_int_equal(cmcd_parse_headers(vals, lens, &r), CMCD_ETYPE);
    assert_int_equal(r.has, 0);
    free(text);
}

static void
test_cmcd_fixture_dashjs_queries(void **state)
{
    (void)state;
    size_t len, pos = 0, llen;
    char *text = fixture_read("cmcd-validator-dashjs-queries.txt", &len);
    const char *line;
    size_t n = 0, with_mtp = 0;
    while ((line = next_line(text, len, &pos, &llen)) != NULL) {
        if (llen == 0)
            continue;
        const char *q = memchr(line, '?', llen);
        assert_non_null(q);
        struct cmcd_report r;
        assert_int_equal(cmcd_parse_query(q, llen - (size_t)(q - line), &r), CMCD_OK);
        assert_string_equal(r.sid, "b248658d-1d1a-4039-91d0-8c08ba597da5");
        assert_string_equal(r.cid, "21cf726cfe3d937b5f974f72bb5bd06a");
        assert_string_equal(r.sf, "d");
        assert_true(r.ot[0] == 'i' || r.ot[0] == 'v' || r.ot[0] == 'a');
        if (r.has & CMCD_KEY_MTP) {
            assert_true(r.mtp_kbps > 0);
            assert_true((r.has & CMCD_KEY_BL) != 0);
            with_mtp++;
        } else {
            assert_true(r.su); /* the init segments carry su and no measurements */
        }
        n++;
    }
    assert_int_equal(n, 20);
    assert_true(with_mtp >= 10);
    free(text);
}

static void
test_cmcd_fixture_dashjs_headers(void **state)
{
    (void)state;
    size_t len, pos = 0, llen;
    char *text = fixture_read("cmcd-validator-dashjs-headers.txt", &len);
    const char *vals[CMCD_NHEADERS] = {NULL, NULL, NULL, NULL};
    size_t lens[CMCD_NHEADERS] = {0};
    size_t requests = 0, reports = 0;
    const char *line;
    bool in_request = false;
    for (;;) {
        line = next_line(text, len, &pos, &llen);
        if (line == NULL || llen == 0 || (llen > 4 && memcmp(line, "GET ", 4) == 0)) {
            if (in_request) {
                struct cmcd_report r;
                assert_int_equal(cmcd_parse_headers(vals, lens, &r), CMCD_OK);
                assert_string_equal(r.sid, "b62ac932-1967-4368-8e9a-31df70ef2bc5");
                assert_true((r.has & CMCD_KEY_OT) != 0);
                reports++;
                memset(vals, 0, sizeof(vals));
                in_request = false;
            }
            if (line == NULL)
                break;
            if (llen > 4) {
                in_request = true;
                requests++;
            }
            continue;
        }
        const char *colon = memchr(line, ':', llen);
        if (colon == NULL)
            continue;
        int h = cmcd_header_index(line, (size_t)(colon - line));
        if (h >= 0) {
            vals[h] = colon + 2;
            lens[h] = llen - (size_t)(colon + 2 - line);
        }
    }
    assert_int_equal(requests, 20);
    assert_int_equal(reports, requests);
    free(text);
}

/* True when a header value of the line carries a non-integer number (k=12.5). */
static bool
has_decimal(const char *line, size_t n)
{
    for (size_t i = 1; i + 2 < n; i++)
        if (line[i] == '.' && line[i - 1] >= '0' && line[i - 1] <= '9' && line[i + 1] >= '0' &&
            line[i + 1] <= '9')
            return true;
    return false;
}

/* Bitmovin 8.100 logs one request per line: {CMCD-Request: '...', CMCD-Object: '...', ...}.
 * Its non-integer bl/dl/mtp/tb values break CTA-5004 (integers) and, with more than three
 * fractional digits, RFC 8941 itself: those requests are rejected whole. */
static void
test_cmcd_fixture_bitmovin_strict(void **state)
{
    (void)state;
    size_t len, pos = 0, llen;
    char *text = fixture_read("cmcd-bitmovin-8.100-headers.log", &len);
    const char *line;
    size_t good = 0, bad_syntax = 0, bad_type = 0;
    while ((line = next_line(text, len, &pos, &llen)) != NULL) {
        if (llen == 0 || line[0] != '{')
            continue;
        const char *vals[CMCD_NHEADERS] = {NULL, NULL, NULL, NULL};
        size_t lens[CMCD_NHEADERS] = {0};
        const char *p = line + 1, *end = line + llen;
        while (p < end) {
            const char *colon = memchr(p, ':', (size_t)(end - p));
            assert_non_null(colon);
            int h = cmcd_header_index(p, (size_t)(colon - p));
            assert_true(h >= 0);
            const char *v = colon + 3; /* ": '" */
            const char *q = memchr(v, '\'', (size_t)(end - v));
            assert_non_null(q);
            vals[h] = v;
            lens[h] = (size_t)(q - v);
            p = q + 1;
            while (p < end && (*p == ',' || *p == ' ' || *p == '}'))
                p++;
        }
        struct cmcd_report r;
        enum cmcd_status st = cmcd_parse_headers(vals, lens, &r);
        if (has_decimal(line, llen)) {
            assert_true(st == CMCD_ESYNTAX || st == CMCD_ETYPE);
            assert_int_equal(r.has, 0);
            bad_syntax += st == CMCD_ESYNTAX;
            bad_type += st == CMCD_ETYPE;
        } else {
            assert_int_equal(st, CMCD_OK);
            assert_string_equal(r.sid, "6e2fb550-c457-11e9-bb97-0800200c9a66");
            assert_string_equal(r.sf, "h");
            good++;
        }
    }
    assert_int_equal(good + bad_syntax + bad_type, 373);
    assert_int_equal(good, 5);
    assert_true(bad_syntax > 0); /* bl=3993.8321995464853 */
    assert_true(bad_type > 0);   /* mtp=13.06: a valid decimal where an integer belongs */
    free(text);
}

struct collected {
    struct cmcd_report r[16];
    size_t n;
};

static void
collect(const struct cmcd_report *r, void *arg)
{
    struct collected *c = arg;
    if (c->n < UTIL_ARRAY_LEN(c->r))
        c->r[c->n] = *r;
    c->n++;
}

static void
test_cmcd_fixture_json_samples_body(void **state)
{
    (void)state;
    size_t len;
    char *text = fixture_read("cmcd-validator-json-samples.txt", &len);
    struct collected c = {.n = 0};
    struct cmcd_body_result res;
    cmcd_parse_body(text, len, collect, &c, &res);
    assert_int_equal(res.ok, 9);
    assert_int_equal(res.bad, 0);
    assert_int_equal(res.first_error, CMCD_OK);
    assert_int_equal(c.n, 9);
    assert_int_equal(c.r[0].has, CMCD_KEY_SID);
    assert_int_equal(c.r[3].has, CMCD_KEY_BS | CMCD_KEY_SU);
    assert_int_equal(c.r[4].has, CMCD_KEY_D); /* custom keys ignored */
    const struct cmcd_report *r = &c.r[8];    /* the CTA-5004 example */
    assert_int_equal(r->bl_ms, 21300);
    assert_int_equal(r->br_kbps, 3200);
    assert_true(r->bs);
    assert_string_equal(r->cid, "faec5fc2-ac30-11ea-bb37-0242ac130002");
    assert_int_equal(r->d_ms, 4004);
    assert_int_equal(r->mtp_kbps, 48100);
    assert_string_equal(r->ot, "v");
    assert_int_equal(r->rtp_kbps, 12000);
    assert_string_equal(r->sf, "d");
    assert_string_equal(r->sid, "6e2fb550-c457-11e9-bb97-0800200c9a66");
    assert_string_equal(r->st, "v");
    assert_true(r->su);
    assert_int_equal(r->tb_kbps, 6000);
    free(text);
}

/* ---- vectors ------------------------------------------------------------------------------- */

struct vector {
    const char *in;
    enum cmcd_status want;
};

static void
test_cmcd_parse_vectors(void **state)
{
    (void)state;
    static const struct vector v[] = {
        {"", CMCD_OK},
        {"br=5", CMCD_OK},
        {" br=5 ,\tbl=100 ", CMCD_OK},
        {"br=(1 2)", CMCD_OK},
        {"br=(1;v 2;a);x", CMCD_OK},
        {"br=()", CMCD_OK},
        {"bs=?1", CMCD_OK},
        {"bs=?0", CMCD_OK},
        {"sta=r,st=ll,sf=e,ot=tt", CMCD_OK},
        {"com.example-x=(1 2 3),br=5", CMCD_OK},
        {"x=:aGVsbG8=:,y=?1,z=-3.25,w=*tok/a:b,br=5", CMCD_OK},
        {"br=5;foo=bar;baz", CMCD_OK},
        {"pt=999999999999999", CMCD_OK},
        {"sid=\"a\\\"b\"", CMCD_OK},
        {"ec=()", CMCD_OK},
        /* syntax */
        {"sid=\"abc", CMCD_ESYNTAX},
        {"br=1,", CMCD_ESYNTAX},
        {",br=1", CMCD_ESYNTAX},
        {"br=1,,bl=2", CMCD_ESYNTAX},
        {"Br=1", CMCD_ESYNTAX},
        {"br=1234567890123456", CMCD_ESYNTAX},
        {"bl=1.2345", CMCD_ESYNTAX},
        {"bl=1.", CMCD_ESYNTAX},
        {"br=-", CMCD_ESYNTAX},
        {"br=(1,2)", CMCD_ESYNTAX},
        {"br=(1", CMCD_ESYNTAX},
        {"br=5 bl=1", CMCD_ESYNTAX},
        {"br=5\tbl=1", CMCD_ESYNTAX},
        {"sid=\"a\\nb\"", CMCD_ESYNTAX},
        {"sid=\"\xc3\xa9\"", CMCD_ESYNTAX},
        {"x=:a*b:", CMCD_ESYNTAX},
        {"bs=?2", CMCD_ESYNTAX},
        {"br==1", CMCD_ESYNTAX},
        {"br=5;", CMCD_ESYNTAX},
        /* types */
        {"br=abc", CMCD_ETYPE},
        {"br=1.5", CMCD_ETYPE},
        {"mtp=13.06", CMCD_ETYPE},
        {"br=(1 \"a\")", CMCD_ETYPE},
        {"d=(1)", CMCD_ETYPE},
        {"ot=x", CMCD_ETYPE},
        {"ot=\"v\"", CMCD_ETYPE},
        {"sid=abc", CMCD_ETYPE},
        {"sid", CMCD_ETYPE},
        {"bs=1", CMCD_ETYPE},
        {"ec=\"x\"", CMCD_ETYPE},
        {"ec=(1)", CMCD_ETYPE},
        {"su=(?1)", CMCD_ETYPE},
        {"cdn=:aGk=:", CMCD_ETYPE},
        /* ranges */
        {"br=-1", CMCD_ERANGE},
        {"br=4294967296", CMCD_ERANGE},
        {"bsd=(4294967295 1)", CMCD_ERANGE},
        {"pt=-1", CMCD_ERANGE},
        {"sid=\"\"", CMCD_ERANGE},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(v); i++) {
        struct cmcd_report r;
        enum cmcd_status st = parse_str(v[i].in, &r);
        if (st != v[i].want)
            fail_msg("\"%s\": %s, want %s", v[i].in, cmcd_status_str(st),
                     cmcd_status_str(v[i].want));
        if (st != CMCD_OK)
            assert_int_equal(r.has, 0);
    }
}

static void
test_cmcd_parse_values(void **state)
{
    (void)state;
    struct cmcd_report r;

    assert_int_equal(parse_str("br=(1;v 2;a),bl=(300),mtp=(4500 200)", &r), CMCD_OK);
    assert_int_equal(r.br_kbps, 1);
    assert_int_equal(r.bl_ms, 300);
    assert_int_equal(r.mtp_kbps, 4500);

    assert_int_equal(parse_str("br=()", &r), CMCD_OK);
    assert_int_equal(r.has, 0); /* an empty inner list says nothing */

    assert_int_equal(parse_str("bs=?0,su", &r), CMCD_OK);
    assert_int_equal(r.has, CMCD_KEY_BS | CMCD_KEY_SU);
    assert_false(r.bs);
    assert_true(r.su);

    assert_int_equal(parse_str("bsd=(100 250;v),bsa=(3)", &r), CMCD_OK);
    assert_int_equal(r.bsd_ms, 350);
    assert_int_equal(r.bsa, 3);

    assert_int_equal(parse_str("br=1,br=2", &r), CMCD_OK); /* the last one wins */
    assert_int_equal(r.br_kbps, 2);
    assert_int_equal(parse_str("bsd=(1 2),bsd=(5)", &r), CMCD_OK);
    assert_int_equal(r.bsd_ms, 5);

    assert_int_equal(parse_str("sid=\"a\\\"b\\\\c\"", &r), CMCD_OK);
    assert_string_equal(r.sid, "a\"b\\c");

    assert_int_equal(parse_str("ttfb=120,pt=999999999999999,v=2,ec=()", &r), CMCD_OK);
    assert_int_equal(r.ttfb_ms, 120);
    assert_true(r.pt_ms == 999999999999999ULL);
    assert_int_equal(r.v, 2);
    assert_int_equal(r.nec, 0);
    assert_true((r.has & CMCD_KEY_EC) != 0);

    assert_int_equal(parse_str("br=4294967295", &r), CMCD_OK);
    assert_true(r.br_kbps == UINT32_MAX);

    /* Bounds of strings: sid <= 64, cid and cdn <= 128. */
    char s[300];
    char big[200];
    memset(big, 'x', sizeof(big));
    snprintf(s, sizeof(s), "sid=\"%.*s\"", CMCD_SID_MAX, big);
    assert_int_equal(parse_str(s, &r), CMCD_OK);
    assert_int_equal(strlen(r.sid), CMCD_SID_MAX);
    snprintf(s, sizeof(s), "sid=\"%.*s\"", CMCD_SID_MAX + 1, big);
    assert_int_equal(parse_str(s, &r), CMCD_ERANGE);
    snprintf(s, sizeof(s), "cid=\"%.*s\",cdn=\"%.*s\"", CMCD_CID_MAX, big, CMCD_CDN_MAX, big);
    assert_int_equal(parse_str(s, &r), CMCD_OK);
    assert_int_equal(strlen(r.cid), CMCD_CID_MAX);
    assert_int_equal(strlen(r.cdn), CMCD_CDN_MAX);
    snprintf(s, sizeof(s), "cdn=\"%.*s\"", CMCD_CDN_MAX + 1, big);
    assert_int_equal(parse_str(s, &r), CMCD_ERANGE);
    /* An unknown key's long string is fine. */
    snprintf(s, sizeof(s), "nor=\"%.*s\",br=1", 199, big);
    assert_int_equal(parse_str(s, &r), CMCD_OK);

    /* Too long a payload. */
    char *huge = xmalloc(CMCD_PAYLOAD_MAX + 2);
    memset(huge, ' ', CMCD_PAYLOAD_MAX + 1);
    memcpy(huge, "br=1", 4);
    assert_int_equal(cmcd_parse(huge, CMCD_PAYLOAD_MAX + 1, &r), CMCD_ERANGE);
    assert_int_equal(r.has, 0);
    assert_int_equal(cmcd_parse(huge, CMCD_PAYLOAD_MAX, &r), CMCD_OK);
    assert_int_equal(r.br_kbps, 1);
    free(huge);
}

static void
test_cmcd_parse_query_forms(void **state)
{
    (void)state;
    struct cmcd_report r;
    const char *q;

    q = "a=1&b=2";
    assert_int_equal(cmcd_parse_query(q, strlen(q), &r), CMCD_ABSENT);
    q = "";
    assert_int_equal(cmcd_parse_query(q, 0, &r), CMCD_ABSENT);
    q = "?x=1&CMCD=br%3D5%2Csid%3D%22s%201%22&y=2";
    assert_int_equal(cmcd_parse_query(q, strlen(q), &r), CMCD_OK);
    assert_int_equal(r.br_kbps, 5);
    assert_string_equal(r.sid, "s 1");
    q = "CMCD=";
    assert_int_equal(cmcd_parse_query(q, strlen(q), &r), CMCD_OK);
    assert_int_equal(r.has, 0);
    q = "CMCDX=br%3D5";
    assert_int_equal(cmcd_parse_query(q, strlen(q), &r), CMCD_ABSENT);
    q = "CMCD=br%3";
    assert_int_equal(cmcd_parse_query(q, strlen(q), &r), CMCD_ESYNTAX);
    q = "CMCD=br%zz5";
    assert_int_equal(cmcd_parse_query(q, strlen(q), &r), CMCD_ESYNTAX);
    q = "CMCD=br%3D5&CMCD=bl%3D1";
    assert_int_equal(cmcd_parse_query(q, strlen(q), &r), CMCD_ESYNTAX);
    q = "CMCD=br%3D5.5";
    assert_int_equal(cmcd_parse_query(q, strlen(q), &r), CMCD_ETYPE);
    assert_int_equal(r.has, 0);
    /* '+' stays '+' (not a space): "v+" is a token outside the object types. */
    q = "CMCD=ot%3Dv+";
    assert_int_equal(cmcd_parse_query(q, strlen(q), &r), CMCD_ETYPE);

    size_t n = 3 * (CMCD_PAYLOAD_MAX + 1) + 5;
    char *big = xmalloc(n + 1);
    memcpy(big, "CMCD=", 5);
    for (size_t i = 5; i < n; i += 3)
        memcpy(big + i, "%20", 3);
    assert_int_equal(cmcd_parse_query(big, n, &r), CMCD_ERANGE);
    free(big);
}

static void
test_cmcd_parse_headers_forms(void **state)
{
    (void)state;
    const char *vals[CMCD_NHEADERS] = {NULL, NULL, NULL, NULL};
    size_t lens[CMCD_NHEADERS] = {0};
    struct cmcd_report r;

    assert_int_equal(cmcd_parse_headers(vals, lens, &r), CMCD_ABSENT);
    vals[CMCD_HDR_SESSION] = "sid=\"abc\"";
    lens[CMCD_HDR_SESSION] = strlen(vals[CMCD_HDR_SESSION]);
    vals[CMCD_HDR_REQUEST] = "mtp=2000";
    lens[CMCD_HDR_REQUEST] = strlen(vals[CMCD_HDR_REQUEST]);
    assert_int_equal(cmcd_parse_headers(vals, lens, &r), CMCD_OK);
    assert_int_equal(r.has, CMCD_KEY_SID | CMCD_KEY_MTP);
    /* A key in two headers: the later header (enum order) wins. */
    vals[CMCD_HDR_STATUS] = "mtp=3000";
    lens[CMCD_HDR_STATUS] = strlen(vals[CMCD_HDR_STATUS]);
    assert_int_equal(cmcd_parse_headers(vals, lens, &r), CMCD_OK);
    assert_int_equal(r.mtp_kbps, 3000);
    lens[CMCD_HDR_STATUS] = CMCD_PAYLOAD_MAX + 1;
    assert_int_equal(cmcd_parse_headers(vals, lens, &r), CMCD_ERANGE);
    assert_int_equal(r.has, 0);

    assert_int_equal(cmcd_header_index("CMCD-Object", 11), CMCD_HDR_OBJECT);
    assert_int_equal(cmcd_header_index("cmcd-request", 12), CMCD_HDR_REQUEST);
    assert_int_equal(cmcd_header_index("CMCD-SESSION", 12), CMCD_HDR_SESSION);
    assert_int_equal(cmcd_header_index("Cmcd-Status", 11), CMCD_HDR_STATUS);
    assert_int_equal(cmcd_header_index("CMCD-Statu", 10), -1);
    assert_int_equal(cmcd_header_index("CMSD-Static", 11), -1);
}

static void
test_cmcd_parse_body_forms(void **state)
{
    (void)state;
    struct collected c;
    struct cmcd_body_result res;
    const char *b;

    /* Dictionary lines, CRLF, blank lines, one bad line in the middle. */
    b = "br=1,sid=\"a\"\r\n\nbr=x\nbl=300\n";
    memset(&c, 0, sizeof(c));
    cmcd_parse_body(b, strlen(b), collect, &c, &res);
    assert_int_equal(res.ok, 2);
    assert_int_equal(res.bad, 1);
    assert_int_equal(res.first_error, CMCD_ETYPE);
    assert_int_equal(c.r[0].br_kbps, 1);
    assert_string_equal(c.r[0].sid, "a");
    assert_int_equal(c.r[1].bl_ms, 300);

    /* A JSON array spanning lines, one object with a type error. */
    b = "[\n {\"br\": 100, \"ec\": [\"E1\"], \"bs\": false},\n {\"br\": 1.5},\n"
        " {\"sid\": \"x\\u0041\", \"v\": 2, \"pr\": 1.08, \"nor\": null}\n]\n";
    memset(&c, 0, sizeof(c));
    cmcd_parse_body(b, strlen(b), collect, &c, &res);
    assert_int_equal(res.ok, 2);
    assert_int_equal(res.bad, 1);
    assert_int_equal(c.r[0].br_kbps, 100);
    assert_int_equal(c.r[0].nec, 1);
    assert_true((c.r[0].has & CMCD_KEY_BS) != 0);
    assert_false(c.r[0].bs);
    assert_string_equal(c.r[1].sid, "xA");
    assert_int_equal(c.r[1].v, 2);

    /* A JSON array with a syntax error is used not at all. */
    b = "[{\"br\": 1}, {\"br\": 2]\nbr=3\n";
    memset(&c, 0, sizeof(c));
    cmcd_parse_body(b, strlen(b), collect, &c, &res);
    assert_int_equal(res.ok, 0);
    assert_int_equal(res.bad, 1);
    assert_int_equal(res.first_error, CMCD_ESYNTAX);
    assert_int_equal(c.n, 0);

    /* JSON types and ranges. */
    static const struct vector v[] = {
        {"{\"br\": 5}", CMCD_OK},
        {"{}", CMCD_OK},
        {"{\"x\": {\"y\": 1}}", CMCD_ESYNTAX},
        {"{\"br\": 05}", CMCD_ESYNTAX},
        {"{\"br\": 5,}", CMCD_ESYNTAX},
        {"{\"br\": 5} x", CMCD_ESYNTAX},
        {"{\"sid\": \"a\nb\"}", CMCD_ESYNTAX},
        {"{\"br\": 1e3}", CMCD_ETYPE},
        {"{\"br\": \"5\"}", CMCD_ETYPE},
        {"{\"br\": null}", CMCD_ETYPE},
        {"{\"bs\": 1}", CMCD_ETYPE},
        {"{\"ot\": \"x\"}", CMCD_ETYPE},
        {"{\"sid\": \"\\u00e9\"}", CMCD_ETYPE},
        {"{\"ec\": \"E1\"}", CMCD_ETYPE},
        {"{\"br\": -5}", CMCD_ERANGE},
        {"{\"br\": 12345678901234567890}", CMCD_ERANGE},
        {"{\"pt\": 1000000000000000}", CMCD_ERANGE},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(v); i++) {
        memset(&c, 0, sizeof(c));
        cmcd_parse_body(v[i].in, strlen(v[i].in), collect, &c, &res);
        enum cmcd_status st = res.bad ? res.first_error : CMCD_OK;
        if (st != v[i].want || res.ok + res.bad != 1)
            fail_msg("%s: %s (ok %u bad %u), want %s", v[i].in, cmcd_status_str(st), res.ok,
                     res.bad, cmcd_status_str(v[i].want));
    }

    /* At most CMCD_BODY_MAX_REPORTS reports. */
    struct buf many;
    buf_init(&many, 0);
    for (int i = 0; i < CMCD_BODY_MAX_REPORTS + 10; i++)
        buf_printf(&many, "br=%d\n", i);
    memset(&c, 0, sizeof(c));
    cmcd_parse_body(many.data, many.len, collect, &c, &res);
    assert_int_equal(res.ok, CMCD_BODY_MAX_REPORTS);
    assert_int_equal(res.bad, 10);
    assert_int_equal(res.first_error, CMCD_ERANGE);
    buf_free(&many);

    /* No callback: only counted. */
    b = "br=1\nbr=2\n";
    cmcd_parse_body(b, strlen(b), NULL, NULL, &res);
    assert_int_equal(res.ok, 2);
}

static void
test_cmcd_find_unchanged(void **state)
{
    (void)state;
    const char *s = "br=3200,bs,sid=\"6e2fb550\",ot=v";
    size_t n = 0;
    const char *v = cmcd_find(s, strlen(s), "br", &n);
    assert_non_null(v);
    assert_int_equal(n, 4);
    assert_memory_equal(v, "3200", 4);
    assert_null(cmcd_find(s, strlen(s), "bs", &n)); /* no value */
    v = cmcd_find_sid(s, strlen(s), &n);
    assert_non_null(v);
    assert_int_equal(n, 8);
    assert_memory_equal(v, "6e2fb550", 8);
    assert_null(cmcd_find_sid("sid=abc", 7, &n));
}

static void
test_cmcd_status_names(void **state)
{
    (void)state;
    assert_string_equal(cmcd_status_str(CMCD_OK), "ok");
    assert_string_equal(cmcd_status_str(CMCD_ABSENT), "absent");
    assert_string_equal(cmcd_status_str(CMCD_ESYNTAX), "syntax");
    assert_string_equal(cmcd_status_str(CMCD_ETYPE), "type");
    assert_string_equal(cmcd_status_str(CMCD_ERANGE), "range");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cmcd_fixture_cml_v1_string),
        cmocka_unit_test(test_cmcd_fixture_cml_v1_query_matches_string),
        cmocka_unit_test(test_cmcd_fixture_cml_v2_headers_merge),
        cmocka_unit_test(test_cmcd_fixture_dashjs_queries),
        cmocka_unit_test(test_cmcd_fixture_dashjs_headers),
        cmocka_unit_test(test_cmcd_fixture_bitmovin_strict),
        cmocka_unit_test(test_cmcd_fixture_json_samples_body),
        cmocka_unit_test(test_cmcd_parse_vectors),
        cmocka_unit_test(test_cmcd_parse_values),
        cmocka_unit_test(test_cmcd_parse_query_forms),
        cmocka_unit_test(test_cmcd_parse_headers_forms),
        cmocka_unit_test(test_cmcd_parse_body_forms),
        cmocka_unit_test(test_cmcd_find_unchanged),
        cmocka_unit_test(test_cmcd_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
