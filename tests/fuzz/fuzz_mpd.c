/* libFuzzer harness for dash: rewrites arbitrary bytes as an MPD and aborts when an invariant
 * breaks. On DASH_OK the output must parse again, satisfy every property of
 * tests/unit/dash_invariants.h (URLs steered or from the input, structure unchanged apart from
 * BaseURLs), stay within max_output, and be accepted by the rewriter itself; on any other status
 * the output must be empty. Odd-sized inputs run without self_base. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steerd/dash.h"
#include "steerd/util.h"

#include "../unit/dash_invariants.h"

#define FUZZ_MAX_INPUT (1u << 20)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct dash_target cdns[] = {
    {"alpha", "http://cdn-a.example/edge", sizeof("http://cdn-a.example/edge") - 1},
    {"beta", "https://cdn-b.example", sizeof("https://cdn-b.example") - 1},
};

static void
fail(const char *what)
{
    fprintf(stderr, "fuzz_mpd: invariant violated: %s\n", what);
    abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    dash_global_init();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dash_opts o = {
        .mpd_url = "http://origin.example/vod/x/fuzz.mpd?token=t",
        .origin_base = "http://origin.example",
        .cdns = cdns,
        .ncdns = UTIL_ARRAY_LEN(cdns),
        .self_base = (size & 1) ? NULL : "http://steerd.example:8080",
        .nested_query = "steerd_sid=s1",
        .max_input = FUZZ_MAX_INPUT,
        .max_output = 4 * FUZZ_MAX_INPUT,
    };
    const char *in = (const char *)data;
    struct buf out, again;
    struct dash_info info;
    enum dash_status st;
    char why[512];

    buf_init(&out, 0);
    st = dash_rewrite(in, size, &o, &out, &info);
    if (st != DASH_OK) {
        if (out.len != 0)
            fail("output left behind on an error");
        buf_free(&out);
        return 0;
    }
    if (out.len == 0 || out.len > o.max_output || strlen(out.data) != out.len)
        fail("output size");
    if (memcmp(out.data, "<?xml", 5) != 0)
        fail("no XML declaration");
    if (info.nrewritten > out.len)
        fail("info");
    if (dash_inv_check(in, size, out.data, out.len, &o, false, why, sizeof(why)) != 0)
        fail(why);

    /* The rewriter accepts its own output. */
    o.max_input = out.len;
    o.max_output = 0;
    buf_init(&again, 0);
    st = dash_rewrite(out.data, out.len, &o, &again, NULL);
    if (st != DASH_OK && st != DASH_LIMIT && st != DASH_TOO_LARGE)
        fail("own output refused");
    buf_free(&again);
    buf_free(&out);
    return 0;
}
