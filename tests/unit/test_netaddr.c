#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "steerd/netaddr.h"
#include "steerd/util.h"

static struct netaddr
addr(const char *s)
{
    struct netaddr a;
    memset(&a, 0xaa, sizeof(a));
    assert_int_equal(netaddr_parse(s, strlen(s), &a), 0);
    return a;
}

static struct netaddr_cidr
cidr(const char *s)
{
    struct netaddr_cidr c;
    assert_int_equal(netaddr_parse_cidr(s, &c), 0);
    return c;
}

static void
test_netaddr_parse_valid_round_trips(void **state)
{
    (void)state;
    static const struct {
        const char *in, *formatted;
        bool v4;
    } cases[] = {
        {"0.0.0.0", "0.0.0.0", true},
        {"1.2.3.4", "1.2.3.4", true},
        {"255.255.255.255", "255.255.255.255", true},
        {"10.0.0.1", "10.0.0.1", true},
        {"::", "::", false},
        {"::1", "::1", false},
        {"2001:db8::1", "2001:db8::1", false},
        {"2001:DB8:0:0:0:0:0:1", "2001:db8::1", false},
        {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1", false},
        {"fe80::1:2:3:4", "fe80::1:2:3:4", false},
        {"::ffff:1.2.3.4", "1.2.3.4", true},
        {"::FFFF:102:304", "1.2.3.4", true},
        {"0:0:0:0:0:ffff:0102:0304", "1.2.3.4", true},
        {"::1.2.3.4", "::1.2.3.4", false}, /* IPv4-compatible, as inet_ntop writes it */
        {"64:ff9b::1.2.3.4", "64:ff9b::102:304", false},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        struct netaddr a = addr(cases[i].in);
        char out[NETADDR_STRLEN];
        netaddr_format(&a, out);
        assert_string_equal(out, cases[i].formatted);
        assert_int_equal(netaddr_is_v4(&a), cases[i].v4);
    }
}

static void
test_netaddr_parse_rejects_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        " ",
        "1.2.3",
        "127.1",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.2.3.-1",
        "01.2.3.4",
        "1.2.3.04",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "1.2.3.4 ",
        " 1.2.3.4",
        "1.2.3.",
        ".1.2.3",
        "1..2.3",
        "1.2.3.4/24",
        "1.2.3.4:80",
        "[::1]",
        "[::1]:80",
        "fe80::1%eth0",
        "fe80::1%1",
        ":::",
        "1:2:3:4:5:6:7:8:9",
        "2001:db8::g",
        "::1::2",
        "12345::",
        "::ffff:1.2.3",
        "localhost",
        "1.2.3.4\n",
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++) {
        struct netaddr a;
        if (netaddr_parse(bad[i], strlen(bad[i]), &a) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    struct netaddr a;
    assert_int_equal(netaddr_parse(NULL, 0, &a), -1);
    /* An embedded NUL inside the given length is not an address. */
    assert_int_equal(netaddr_parse("1.2.3.4\0", 8, &a), -1);
    /* Far too long for any literal. */
    char long_s[200];
    memset(long_s, '1', sizeof(long_s));
    assert_int_equal(netaddr_parse(long_s, sizeof(long_s), &a), -1);
}

static void
test_netaddr_parse_honours_length(void **state)
{
    (void)state;
    const char *s = "10.1.2.3,10.9.9.9";
    struct netaddr a;
    assert_int_equal(netaddr_parse(s, 8, &a), 0);
    char out[NETADDR_STRLEN];
    netaddr_format(&a, out);
    assert_string_equal(out, "10.1.2.3");
    assert_int_equal(netaddr_parse(s, 9, &a), -1);
}

static void
test_netaddr_v4_and_mapped_v6_are_equal(void **state)
{
    (void)state;
    struct netaddr a = addr("192.0.2.33");
    struct netaddr b = addr("::ffff:192.0.2.33");
    struct netaddr c = addr("::ffff:c000:221");
    assert_memory_equal(a.b, b.b, 16);
    assert_memory_equal(a.b, c.b, 16);
    static const uint8_t expect[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 33};
    assert_memory_equal(a.b, expect, 16);
}

static void
test_netaddr_parse_cidr_valid(void **state)
{
    (void)state;
    static const struct {
        const char *in, *addr;
        unsigned prefix;
    } cases[] = {
        {"10.0.0.0/8", "10.0.0.0", 104},
        {"0.0.0.0/0", "0.0.0.0", 96},
        {"192.0.2.1/32", "192.0.2.1", 128},
        {"192.0.2.1", "192.0.2.1", 128},
        {"192.0.2.128/25", "192.0.2.128", 121},
        {"2001:db8::/32", "2001:db8::", 32},
        {"::/0", "::", 0},
        {"2001:db8::1/128", "2001:db8::1", 128},
        {"2001:db8::1", "2001:db8::1", 128},
        {"2001:db8:8000::/33", "2001:db8:8000::", 33},
        {"::ffff:10.0.0.0/104", "10.0.0.0", 104},
        {"::ffff:0:0/96", "0.0.0.0", 96},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        struct netaddr_cidr c = cidr(cases[i].in);
        char out[NETADDR_STRLEN];
        netaddr_format(&c.addr, out);
        assert_string_equal(out, cases[i].addr);
        assert_int_equal(c.prefix, cases[i].prefix);
    }
}

static void
test_netaddr_parse_cidr_rejects_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "/8",
        "10.0.0.0/",
        "10.0.0.0/33",
        "10.0.0.0/-1",
        "10.0.0.0/+8",
        "10.0.0.0/08",
        "10.0.0.0/8/8",
        "10.0.0.0/ 8",
        "10.0.0.0/8 ",
        "10.0.0.1/8",
        "10.0.0.0/x",
        "192.0.2.1/31",
        "10.0/8",
        "2001:db8::/129",
        "2001:db8::1/64",
        "2001:db8:8000::/32",
        "::/0000",
        "[2001:db8::]/32",
        "fe80::%eth0/64",
        "10.0.0.0/1000",
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(bad); i++) {
        struct netaddr_cidr c;
        if (netaddr_parse_cidr(bad[i], &c) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    struct netaddr_cidr c;
    assert_int_equal(netaddr_parse_cidr(NULL, &c), -1);
}

static void
test_netaddr_in_cidr(void **state)
{
    (void)state;
    static const struct {
        const char *addr, *cidr;
        bool in;
    } cases[] = {
        {"10.1.2.3", "10.0.0.0/8", true},
        {"11.1.2.3", "10.0.0.0/8", false},
        {"192.0.2.127", "192.0.2.0/25", true},
        {"192.0.2.128", "192.0.2.0/25", false},
        {"192.0.2.128", "192.0.2.128/25", true},
        {"192.0.2.7", "192.0.2.7/32", true},
        {"192.0.2.8", "192.0.2.7", false},
        {"8.8.8.8", "0.0.0.0/0", true},
        {"::ffff:10.1.2.3", "10.0.0.0/8", true},
        {"10.1.2.3", "::ffff:10.0.0.0/104", true},
        {"2001:db8::1", "0.0.0.0/0", false},
        {"2001:db8::1", "2001:db8::/32", true},
        {"2001:db9::1", "2001:db8::/32", false},
        {"2001:db8:8000::1", "2001:db8::/33", false},
        {"2001:db8:7fff::1", "2001:db8::/33", true},
        {"8.8.8.8", "::/0", true},
        {"::1", "::1/128", true},
        {"::2", "::1/128", false},
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(cases); i++) {
        struct netaddr a = addr(cases[i].addr);
        struct netaddr_cidr c = cidr(cases[i].cidr);
        if (netaddr_in_cidr(&a, &c) != cases[i].in)
            fail_msg("%s in %s: expected %d", cases[i].addr, cases[i].cidr, cases[i].in);
    }
}

static void
test_netaddr_from_sockaddr(void **state)
{
    (void)state;
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(80);
    assert_int_equal(inet_pton(AF_INET, "203.0.113.9", &sin.sin_addr), 1);
    struct netaddr a;
    assert_int_equal(netaddr_from_sockaddr((const struct sockaddr *)&sin, &a), 0);
    struct netaddr want = addr("203.0.113.9");
    assert_memory_equal(a.b, want.b, 16);
    assert_true(netaddr_is_v4(&a));

    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, "2001:db8::42", &sin6.sin6_addr), 1);
    assert_int_equal(netaddr_from_sockaddr((const struct sockaddr *)&sin6, &a), 0);
    want = addr("2001:db8::42");
    assert_memory_equal(a.b, want.b, 16);
    assert_false(netaddr_is_v4(&a));

    /* A v4-mapped IPv6 peer (dual-stack socket) equals the plain IPv4 peer. */
    assert_int_equal(inet_pton(AF_INET6, "::ffff:203.0.113.9", &sin6.sin6_addr), 1);
    assert_int_equal(netaddr_from_sockaddr((const struct sockaddr *)&sin6, &a), 0);
    want = addr("203.0.113.9");
    assert_memory_equal(a.b, want.b, 16);

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    assert_int_equal(netaddr_from_sockaddr((const struct sockaddr *)&ss, &a), -1);
    assert_int_equal(netaddr_from_sockaddr(NULL, &a), -1);
}

static void
test_netaddr_format_longest(void **state)
{
    (void)state;
    struct netaddr a = addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
    char out[NETADDR_STRLEN];
    netaddr_format(&a, out);
    assert_string_equal(out, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
    a = addr("1:0:0:2:0:0:0:3");
    netaddr_format(&a, out);
    assert_string_equal(out, "1:0:0:2::3");
}

static void
test_netaddr_is_internal(void **state)
{
    (void)state;
    static const char *const internal[] = {
        "0.0.0.0",
        "0.255.255.255",
        "10.0.0.0",
        "10.255.255.255",
        "100.64.0.0",
        "100.127.255.255",
        "127.0.0.1",
        "127.255.255.254",
        "169.254.0.1",
        "169.254.169.254",
        "172.16.0.1",
        "172.31.255.255",
        "192.0.0.1",
        "192.0.0.255",
        "192.168.0.1",
        "192.168.255.255",
        "198.18.0.1",
        "198.19.255.255",
        "224.0.0.1",
        "239.255.255.255",
        "240.0.0.1",
        "255.255.255.255",
        "::",
        "::1",
        "fe80::1",
        "febf::1",
        "fc00::1",
        "fdff:ffff::1",
        "ff02::1",
        "ff00::",
        "::ffff:127.0.0.1",
        "::ffff:10.1.2.3",
        "::ffff:169.254.169.254",
        "64:ff9b::127.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b::10.0.0.1",
        "::127.0.0.1",
        "::192.168.1.1",
    };
    static const char *const external[] = {
        "1.1.1.1",
        "8.8.8.8",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "169.253.255.255",
        "169.255.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.0",
        "192.0.2.1",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
        "2001:db8::1",
        "2606:4700::1111",
        "fec0::1",
        "fe7f::1",
        "fbff::1",
        "fe00::1",
        "::2:0:0:1",
        "::ffff:8.8.8.8",
        "64:ff9b::8.8.8.8",
        "64:ff9b:1::127.0.0.1",
        "::8.8.8.8",
        "::1:0:0:0",
    };
    for (size_t i = 0; i < UTIL_ARRAY_LEN(internal); i++) {
        struct netaddr a = addr(internal[i]);
        if (!netaddr_is_internal(&a))
            fail_msg("%s should be internal", internal[i]);
    }
    for (size_t i = 0; i < UTIL_ARRAY_LEN(external); i++) {
        struct netaddr a = addr(external[i]);
        if (netaddr_is_internal(&a))
            fail_msg("%s should not be internal", external[i]);
    }
}

static void
test_netaddr_is_internal_from_sockaddr(void **state)
{
    (void)state;
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    struct netaddr a;
    assert_int_equal(inet_pton(AF_INET, "169.254.169.254", &sin.sin_addr), 1);
    assert_int_equal(netaddr_from_sockaddr((const struct sockaddr *)&sin, &a), 0);
    assert_true(netaddr_is_internal(&a));
    assert_int_equal(inet_pton(AF_INET, "93.184.216.34", &sin.sin_addr), 1);
    assert_int_equal(netaddr_from_sockaddr((const struct sockaddr *)&sin, &a), 0);
    assert_false(netaddr_is_internal(&a));

    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof(sin6));
    sin6.sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, "::ffff:192.168.0.10", &sin6.sin6_addr), 1);
    assert_int_equal(netaddr_from_sockaddr((const struct sockaddr *)&sin6, &a), 0);
    assert_true(netaddr_is_internal(&a));
    assert_int_equal(inet_pton(AF_INET6, "::1", &sin6.sin6_addr), 1);
    assert_int_equal(netaddr_from_sockaddr((const struct sockaddr *)&sin6, &a), 0);
    assert_true(netaddr_is_internal(&a));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_netaddr_parse_valid_round_trips),
        cmocka_unit_test(test_netaddr_parse_rejects_invalid),
        cmocka_unit_test(test_netaddr_parse_honours_length),
        cmocka_unit_test(test_netaddr_v4_and_mapped_v6_are_equal),
        cmocka_unit_test(test_netaddr_parse_cidr_valid),
        cmocka_unit_test(test_netaddr_parse_cidr_rejects_invalid),
        cmocka_unit_test(test_netaddr_in_cidr),
        cmocka_unit_test(test_netaddr_from_sockaddr),
        cmocka_unit_test(test_netaddr_format_longest),
        cmocka_unit_test(test_netaddr_is_internal),
        cmocka_unit_test(test_netaddr_is_internal_from_sockaddr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
