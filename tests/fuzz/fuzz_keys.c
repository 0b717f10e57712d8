/* libFuzzer harness for the steering key file parser (cfg_parse_steering_keys): arbitrary bytes
 * as the file's text. Aborts when a keyring comes back together with problems, or none without
 * them; when a problem line quotes a run of 16 or more hex digits of the input (a key must never
 * reach a log: S9); when an accepted keyring cannot sign and verify a state with its current
 * key; or when the input buffer was modified. */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steerd/cfg.h"
#include "steerd/diag.h"
#include "steerd/steering.h"
#include "steerd/util.h"

#define HEX_RUN 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fail(const char *what)
{
    fprintf(stderr, "fuzz_keys: invariant violated: %s\n", what);
    abort();
}

/* true when line holds a run of HEX_RUN hex digits that also appears in the input. */
static bool
quotes_hex(const char *line, const uint8_t *in, size_t n)
{
    size_t len = strlen(line);
    for (size_t i = 0; i + HEX_RUN <= len; i++) {
        size_t k = 0;
        while (k < HEX_RUN && isxdigit((unsigned char)line[i + k]))
            k++;
        if (k == HEX_RUN && memmem(in, n, line + i, HEX_RUN) != NULL)
            return true;
    }
    return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct diag d;
    char *copy = xmalloc(size + 1);
    memcpy(copy, data, size);
    copy[size] = '\0';

    diag_init(&d);
    struct steering_keyring *r = cfg_parse_steering_keys(copy, size, "keys.json", &d);
    if (memcmp(copy, data, size) != 0)
        fail("input modified");
    if ((r == NULL) != (d.count > 0))
        fail("a keyring with problems, or none without");
    for (size_t i = 0; i < d.count; i++) {
        if (quotes_hex(d.lines[i], data, size))
            fail("a problem line quotes key material");
    }
    if (r != NULL) {
        struct steering_state st = {0};
        char tok[STEERING_STATE_TOKEN_MAX + 1];
        struct steering_state back;
        st.session_hash = 0x0123456789abcdefULL;
        st.iat_s = 1700000000u;
        st.exp_s = 1700000600u;
        size_t n = steering_state_encode(r, &st, tok, sizeof(tok));
        if (n == 0)
            fail("the current key cannot sign");
        if (steering_state_decode(r, tok, n, 1700000001u, 30, &back) != STEERING_STATE_OK)
            fail("a state signed with the current key does not verify");
        steering_keyring_free(r);
    }
    diag_free(&d);
    free(copy);
    return 0;
}
