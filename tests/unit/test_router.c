/* Tests for router: which requests may carry a body (only POST /beacon), and the reason phrases
 * of the codes the body rules answer with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "steerd/httpparse.h"
#include "steerd/router.h"

static bool
wants_body(const char *head)
{
    struct httpp_limits lim = {
        .max_request_line = 8192, .max_header_bytes = 16384, .max_headers = 64};
    struct httpp_request req;
    assert_int_equal(httpp_parse(head, strlen(head), &lim, &req), HTTPP_COMPLETE);
    return router_wants_body(&req);
}

static void
test_router_wants_body_only_post_beacon(void **state)
{
    (void)state;
    assert_true(wants_body("POST /beacon HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n"));
    assert_true(wants_body("POST /beacon?CMCD=bl%3D1 HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_false(wants_body("GET /beacon HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_false(wants_body("PUT /beacon HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n"));
    assert_false(wants_body("POST /beacons HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n"));
    assert_false(wants_body("POST /beacon/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n"));
    assert_false(wants_body("POST /vod/seg.m4s HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n"));
    assert_false(wants_body("POST /Beacon HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n"));
}

static void
test_router_status_text_body_codes(void **state)
{
    (void)state;
    assert_string_equal(router_status_text(411), "Length Required");
    assert_string_equal(router_status_text(413), "Content Too Large");
    assert_string_equal(router_status_text(415), "Unsupported Media Type");
    assert_string_equal(router_status_text(429), "Too Many Requests");
    assert_string_equal(router_status_text(408), "Request Timeout");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_router_wants_body_only_post_beacon),
        cmocka_unit_test(test_router_status_text_body_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
