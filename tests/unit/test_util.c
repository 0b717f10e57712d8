#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "steerd/diag.h"
#include "steerd/util.h"

static void
test_util_buf_appends_and_terminates(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(b.len, 0);
    assert_false(b.overflow);

    assert_int_equal(buf_append(&b, "ab", 2), 0);
    assert_int_equal(buf_append(&b, NULL, 0), 0);
    assert_int_equal(buf_puts(&b, "cd"), 0);
    assert_int_equal(buf_append(&b, "e\0f", 3), 0); /* bytes, not a C string */
    assert_int_equal(b.len, 7);
    assert_memory_equal(b.data, "abcde\0f", 8); /* and the terminator after len */
    assert_true(b.cap > b.len);

    buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    buf_free(&b);
    assert_null(b.data);
    buf_free(&b); /* twice is fine */
}

static void
test_util_buf_unlimited_grows(void **state)
{
    (void)state;
    struct buf b;
    char chunk[1000];
    memset(chunk, 'z', sizeof(chunk));
    buf_init(&b, 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(buf_append(&b, chunk, sizeof(chunk)), 0);
    assert_int_equal(b.len, 1000000);
    assert_int_equal(strlen(b.data), 1000000);
    assert_false(b.overflow);
    buf_free(&b);
}

static void
test_util_buf_cap_is_exact_and_overflow_sticky(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 10);

    assert_int_equal(buf_append(&b, "12345678", 8), 0);
    /* 8 + 3 > 10: nothing is appended. */
    assert_int_equal(buf_append(&b, "abc", 3), -1);
    assert_true(b.overflow);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "12345678");

    /* Exactly up to the cap still fits, but overflow stays set. */
    assert_int_equal(buf_append(&b, "9A", 2), 0);
    assert_int_equal(b.len, 10);
    assert_string_equal(b.data, "123456789A");
    assert_true(b.overflow);
    assert_int_equal(buf_append(&b, "x", 1), -1);
    assert_int_equal(buf_puts(&b, "x"), -1);
    assert_int_equal(buf_append(&b, "", 0), 0);
    assert_int_equal(b.len, 10);
    assert_true(b.overflow);

    /* Only a reset clears it. */
    buf_reset(&b);
    assert_false(b.overflow);
    assert_int_equal(buf_puts(&b, "0123456789"), 0);
    assert_int_equal(b.len, 10);
    assert_false(b.overflow);
    buf_free(&b);
}

static void
test_util_buf_reserve_presizes_within_cap(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 100);

    /* On an empty buffer: room made, still empty and terminated. */
    assert_int_equal(buf_reserve(&b, 60), 0);
    assert_non_null(b.data);
    assert_true(b.cap >= 61);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");

    /* Appends within the reserved room do not move the data. */
    char *before = b.data;
    for (int i = 0; i < 6; i++)
        assert_int_equal(buf_puts(&b, "0123456789"), 0);
    assert_ptr_equal(b.data, before);
    assert_int_equal(b.len, 60);

    /* Past max: refused, nothing changes but the sticky overflow. */
    size_t cap = b.cap;
    assert_int_equal(buf_reserve(&b, 41), -1);
    assert_true(b.overflow);
    assert_int_equal(b.len, 60);
    assert_int_equal(b.cap, cap);
    assert_int_equal(buf_reserve(&b, 0), 0);
    buf_free(&b);
}

static void
test_util_buf_printf_short_and_long(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);

    assert_int_equal(buf_printf(&b, "%s=%d;", "a", 42), 0);
    assert_string_equal(b.data, "a=42;");

    /* Around and far past the size of the formatter's stack buffer. */
    static const size_t sizes[] = {254, 255, 256, 257, 1000, 70000};
    for (size_t k = 0; k < UTIL_ARRAY_LEN(sizes); k++) {
        size_t n = sizes[k];
        char *s = xmalloc(n + 1);
        for (size_t i = 0; i < n; i++)
            s[i] = (char)('a' + i % 26);
        s[n] = '\0';
        buf_reset(&b);
        assert_int_equal(buf_printf(&b, "<%s|%zu>", s, n), 0);
        char tail[32];
        int tn = snprintf(tail, sizeof(tail), "|%zu>", n);
        assert_int_equal(b.len, n + 1 + (size_t)tn);
        assert_int_equal(b.data[0], '<');
        assert_memory_equal(b.data + 1, s, n);
        assert_string_equal(b.data + 1 + n, tail);
        assert_int_equal(strlen(b.data), b.len);
        free(s);
    }
    buf_free(&b);
}

static void
test_util_buf_printf_respects_cap(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 300);
    assert_int_equal(buf_printf(&b, "%s", "head"), 0);

    char big[400];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    /* Long (formatted straight into the buffer) and over the cap: nothing appended. */
    assert_int_equal(buf_printf(&b, "%s", big), -1);
    assert_true(b.overflow);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "head");

    /* Short and over the cap. */
    buf_reset(&b);
    assert_int_equal(buf_printf(&b, "%.*s", 295, big), 0);
    assert_int_equal(buf_printf(&b, "%d", 123456), -1);
    assert_true(b.overflow);
    assert_int_equal(b.len, 295);
    assert_int_equal(buf_printf(&b, "%d", 12345), 0);
    assert_int_equal(b.len, 300);
    buf_free(&b);
}

static void
test_util_buf_json_str_escapes(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *want;
    } cases[] = {
        {"", "\"\""},
        {"plain", "\"plain\""},
        {"say \"hi\"", "\"say \\\"hi\\\"\""},
        {"a\\b", "\"a\\\\b\""},
        {"l1\nl2\r\t", "\"l1\\u000al2\\u000d\\u0009\""},
        {"\x01\x1f\x20", "\"\\u0001\\u001f \""},
        {"del\x7f", "\"del\\u007f\""},
        {"</script>", "\"</script>\""},
        {"caf\xc3\xa9 \xe2\x82\xac", "\"caf\xc3\xa9 \xe2\x82\xac\""}, /* UTF-8 kept as is */
    };
    struct buf b;
    buf_init(&b, 0);
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        buf_reset(&b);
        assert_int_equal(buf_json_str(&b, cases[i].in), 0);
        assert_string_equal(b.data, cases[i].want);
    }
    /* Appends after what is there. */
    buf_reset(&b);
    buf_puts(&b, "{\"k\":");
    assert_int_equal(buf_json_str(&b, "v"), 0);
    assert_string_equal(b.data, "{\"k\":\"v\"");
    buf_free(&b);
}

static void
test_util_buf_json_str_overflow_appends_nothing(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 16);
    assert_int_equal(buf_puts(&b, "{\"k\":"), 0);
    /* "\n" alone escapes to 6 bytes: the literal cannot fit in the remaining 11. */
    assert_int_equal(buf_json_str(&b, "ab\n\n"), -1);
    assert_true(b.overflow);
    assert_int_equal(b.len, 5);
    assert_string_equal(b.data, "{\"k\":");
    /* The closing quote is the byte that does not fit. */
    buf_reset(&b);
    assert_int_equal(buf_json_str(&b, "0123456789abcde"), -1);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    buf_reset(&b);
    assert_int_equal(buf_json_str(&b, "0123456789abcd"), 0);
    assert_int_equal(b.len, 16);
    buf_free(&b);
}

static void
test_util_parse_u64_accepts_and_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        uint64_t min, max;
        int rc;
        uint64_t want;
    } cases[] = {
        {"0", 0, UINT64_MAX, 0, 0},
        {"7", 0, UINT64_MAX, 0, 7},
        {"007", 0, UINT64_MAX, 0, 7},
        {"18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX},
        {"18446744073709551616", 0, UINT64_MAX, -1, 0},
        {"18446744073709551620", 0, UINT64_MAX, -1, 0},
        {"99999999999999999999", 0, UINT64_MAX, -1, 0},
        {"000000000000000000001", 0, UINT64_MAX, -1, 0}, /* 21 digits */
        {"", 0, UINT64_MAX, -1, 0},
        {"-1", 0, UINT64_MAX, -1, 0},
        {"+1", 0, UINT64_MAX, -1, 0},
        {" 1", 0, UINT64_MAX, -1, 0},
        {"1 ", 0, UINT64_MAX, -1, 0},
        {"1a", 0, UINT64_MAX, -1, 0},
        {"0x10", 0, UINT64_MAX, -1, 0},
        {"1.5", 0, UINT64_MAX, -1, 0},
        {"100", 100, 200, 0, 100},
        {"200", 100, 200, 0, 200},
        {"99", 100, 200, -1, 0},
        {"201", 100, 200, -1, 0},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        uint64_t out = 12345;
        int rc = util_parse_u64(cases[i].s, strlen(cases[i].s), cases[i].min, cases[i].max, &out);
        if (rc != cases[i].rc)
            fail_msg("\"%s\": rc %d, want %d", cases[i].s, rc, cases[i].rc);
        if (rc == 0)
            assert_true(out == cases[i].want);
        else
            assert_int_equal(out, 12345); /* untouched on failure */
    }
    /* Only len bytes are read. */
    uint64_t out = 0;
    assert_int_equal(util_parse_u64("123abc", 3, 0, UINT64_MAX, &out), 0);
    assert_int_equal(out, 123);
    assert_int_equal(util_parse_u64("123", 0, 0, UINT64_MAX, &out), -1);
}

static void
test_util_ct_equal_compares_bytes_and_lengths(void **state)
{
    (void)state;
    assert_true(util_ct_equal("secret", 6, "secret", 6));
    assert_true(util_ct_equal("", 0, "", 0));
    assert_false(util_ct_equal("secret", 6, "secreT", 6));
    assert_false(util_ct_equal("secret", 6, "Secret", 6));
    assert_false(util_ct_equal("secret", 6, "secret2", 7));
    assert_false(util_ct_equal("secret2", 7, "secret", 6));
    assert_false(util_ct_equal("", 0, "x", 1));
    assert_false(util_ct_equal("\x80", 1, "\x00", 1));
    assert_true(util_ct_equal("a\0b", 3, "a\0b", 3));
    assert_false(util_ct_equal("a\0b", 3, "a\0c", 3));
}

static void
test_util_hash64_is_stable(void **state)
{
    (void)state;
    /* Pinned: session stickiness across restarts and builds depends on these never changing. */
    assert_true(util_hash64("", 0, 0) == 0xefd01f60ba992926ULL);
    assert_true(util_hash64("steerd", 6, 0) == 0xf316fddfb408ff92ULL);
    assert_true(util_hash64("cdn-0", 5, 42) == 0xc2c04e2a638d2c0dULL);
    assert_true(util_hash64("cdn-0", 5, 43) == 0x2708b2fb5ba24c64ULL);
    unsigned char all[256];
    for (size_t i = 0; i < sizeof(all); i++)
        all[i] = (unsigned char)i;
    assert_true(util_hash64(all, sizeof(all), 0xdeadbeefcafef00dULL) == 0x9bceb2f3368778a7ULL);
    /* Only the n bytes given count. */
    assert_true(util_hash64("steerd-extra", 6, 0) == 0xf316fddfb408ff92ULL);
}

static void
test_util_xstrndup_stops_at_nul_or_n(void **state)
{
    (void)state;
    char *p = xstrndup("abcdef", 3);
    assert_string_equal(p, "abc");
    free(p);
    char shorter[4] = {'x', 'y', '\0', 'z'};
    p = xstrndup(shorter, 100); /* must not read past the NUL */
    assert_string_equal(p, "xy");
    free(p);
    p = xstrdup("");
    assert_string_equal(p, "");
    free(p);
    p = xcalloc(0, 0);
    assert_non_null(p);
    free(p);
}

static void
test_diag_add_formats_lines(void **state)
{
    (void)state;
    struct diag d;
    diag_init(&d);
    char *s = diag_join(&d);
    assert_string_equal(s, "");
    free(s);

    diag_add(&d, "%s:%d:%d: %s", "conf.json", 3, 14, "unexpected token");
    diag_add(&d, "cdns[%zu].weight: must be 1..%u", (size_t)2, 1000u);
    assert_int_equal(d.count, 2);
    assert_int_equal(d.dropped, 0);
    assert_string_equal(d.lines[0], "conf.json:3:14: unexpected token");
    assert_string_equal(d.lines[1], "cdns[2].weight: must be 1..1000");
    s = diag_join(&d);
    assert_string_equal(s, "conf.json:3:14: unexpected token\ncdns[2].weight: must be 1..1000");
    free(s);

    diag_add(&d, "%s", "");
    assert_int_equal(d.count, 3);
    assert_string_equal(d.lines[2], "");

    diag_add(NULL, "ignored %d", 1); /* callers may pass no diag */
    diag_free(&d);
    assert_int_equal(d.count, 0);
    assert_null(d.lines);
    diag_free(&d);
}

static void
test_diag_add_escapes_control_bytes(void **state)
{
    (void)state;
    struct diag d;
    diag_init(&d);
    diag_add(&d, "id \"%s\": bad", "a\nb\r\tc\x1b[31m\x7f");
    diag_add(&d, "name: %s", "caf\xc3\xa9"); /* UTF-8 is not a control byte */
    assert_int_equal(d.count, 2);
    assert_string_equal(d.lines[0], "id \"a\\x0ab\\x0d\\x09c\\x1b[31m\\x7f\": bad");
    assert_string_equal(d.lines[1], "name: caf\xc3\xa9");
    assert_null(strchr(d.lines[0], '\n'));
    diag_free(&d);
}

static void
test_diag_add_long_message_is_cut_visibly(void **state)
{
    (void)state;
    struct diag d;
    char big[3000];
    memset(big, 'v', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    diag_init(&d);
    diag_add(&d, "url: %s", big);
    assert_int_equal(d.count, 1);
    size_t len = strlen(d.lines[0]);
    assert_true(len >= 1000 && len < 1100);
    assert_memory_equal(d.lines[0], "url: vvv", 8);
    assert_string_equal(d.lines[0] + len - 3, "...");

    /* Escaping a cut message full of control bytes stays whole and bounded. */
    memset(big, '\n', sizeof(big) - 1);
    diag_add(&d, "%s", big);
    assert_int_equal(d.count, 2);
    len = strlen(d.lines[1]);
    assert_true(len > 4000 && len <= 4096);
    assert_memory_equal(d.lines[1], "\\x0a\\x0a", 8);
    assert_string_equal(d.lines[1] + len - 3, "...");
    diag_free(&d);
}

static void
test_diag_caps_lines_and_counts_dropped(void **state)
{
    (void)state;
    struct diag d;
    diag_init(&d);
    for (int i = 0; i < DIAG_MAX_LINES + 44; i++)
        diag_add(&d, "problem %d", i);
    assert_int_equal(d.count, DIAG_MAX_LINES);
    assert_int_equal(d.dropped, 44);
    assert_string_equal(d.lines[0], "problem 0");
    assert_string_equal(d.lines[DIAG_MAX_LINES - 1], "problem 255");

    char *s = diag_join(&d);
    size_t newlines = 0;
    for (const char *p = s; *p; p++)
        newlines += *p == '\n';
    assert_int_equal(newlines, DIAG_MAX_LINES); /* 256 lines, then the summary */
    assert_non_null(strstr(s, "problem 255\n(44 more problems not shown)"));
    assert_null(strstr(s, "problem 256"));
    const char *tail = "(44 more problems not shown)";
    assert_string_equal(s + strlen(s) - strlen(tail), tail);
    free(s);
    diag_free(&d);

    /* Dropped lines alone: just the summary. */
    struct diag only = {NULL, 0, 3};
    s = diag_join(&only);
    assert_string_equal(s, "(3 more problems not shown)");
    free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_util_buf_appends_and_terminates),
        cmocka_unit_test(test_util_buf_unlimited_grows),
        cmocka_unit_test(test_util_buf_cap_is_exact_and_overflow_sticky),
        cmocka_unit_test(test_util_buf_reserve_presizes_within_cap),
        cmocka_unit_test(test_util_buf_printf_short_and_long),
        cmocka_unit_test(test_util_buf_printf_respects_cap),
        cmocka_unit_test(test_util_buf_json_str_escapes),
        cmocka_unit_test(test_util_buf_json_str_overflow_appends_nothing),
        cmocka_unit_test(test_util_parse_u64_accepts_and_rejects),
        cmocka_unit_test(test_util_ct_equal_compares_bytes_and_lengths),
        cmocka_unit_test(test_util_hash64_is_stable),
        cmocka_unit_test(test_util_xstrndup_stops_at_nul_or_n),
        cmocka_unit_test(test_diag_add_formats_lines),
        cmocka_unit_test(test_diag_add_escapes_control_bytes),
        cmocka_unit_test(test_diag_add_long_message_is_cut_visibly),
        cmocka_unit_test(test_diag_caps_lines_and_counts_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
