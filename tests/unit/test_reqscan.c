/* reqscan: each limit at its value and one over, Content-Length and chunked
 * bodies, and the same answer whether a request arrives whole or byte by byte. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/reqscan.h"

static const struct reqscan_limits lim = {
    .max_header_bytes = 512,
    .max_header_count = 8,
    .max_url = 64,
    .max_body = 256,
};

/* Feed req whole, then byte by byte: both must give the same status and end
 * state; returns the status, *on is whether the scan still runs at the end. */
static int scan(const char *req, size_t len, bool *on)
{
    struct reqscan whole, bytes;
    const char *why = NULL, *why1 = NULL;
    int st, st1 = 0;

    reqscan_start(&whole);
    st = reqscan_feed(&whole, &lim, (const unsigned char *)req, len, &why);
    reqscan_start(&bytes);
    for (size_t i = 0; i < len && st1 == 0; i++)
        st1 = reqscan_feed(&bytes, &lim, (const unsigned char *)req + i, 1, &why1);
    assert_int_equal(st, st1);
    if (st != 0) {
        assert_non_null(why);
        assert_string_equal(why, why1);
    } else {
        assert_int_equal(whole.on, bytes.on);
    }
    *on = whole.on;
    return st;
}

static int scan_str(const char *req, bool *on)
{
    return scan(req, strlen(req), on);
}

/* "GET /<path of n bytes> HTTP/1.1\r\nHost: x\r\n\r\n" */
static char *get_with_target(size_t n)
{
    char *r = malloc(n + 64);
    size_t off;

    assert_non_null(r);
    memcpy(r, "GET /", 5);
    memset(r + 5, 'a', n - 1);
    off = 5 + n - 1;
    snprintf(r + off, 64, " HTTP/1.1\r\nHost: x\r\n\r\n");
    return r;
}

static void test_plain_get_passes_and_ends_at_the_blank_line(void **state)
{
    bool on = true;

    (void)state;
    assert_int_equal(scan_str("GET /.well-known/est/cacerts HTTP/1.1\r\nHost: x\r\n\r\n", &on), 0);
    assert_false(on);
    assert_int_equal(scan_str("GET / HTTP/1.1\nHost: x\n\n", &on), 0); /* bare LF */
    assert_false(on);
    assert_int_equal(scan_str("GET / HTTP/1.1\r\nHost: x\r\n", &on), 0); /* not finished */
    assert_true(on);
}

static void test_empty_lines_before_the_request_line_do_not_end_it(void **state)
{
    bool on = false;

    (void)state;
    assert_int_equal(scan_str("\r\n\r\nGET / HTTP/1.1\r\n", &on), 0);
    assert_true(on);
}

static void test_request_target_limit(void **state)
{
    char *ok = get_with_target(64), *over = get_with_target(65);
    bool on;

    (void)state;
    assert_int_equal(scan_str(ok, &on), 0);
    assert_int_equal(scan_str(over, &on), 414);
    free(ok);
    free(over);
}

static void test_header_block_size_limit(void **state)
{
    /* request line 16 + CRLF, "X: " + value + CRLF, CRLF */
    char req[1024];
    size_t fixed = strlen("GET / HTTP/1.1\r\nX: \r\n\r\n");
    bool on;

    (void)state;
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX: %0*d\r\n\r\n", (int)(512 - fixed), 0);
    assert_int_equal(strlen(req), 512);
    assert_int_equal(scan_str(req, &on), 0);
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX: %0*d\r\n\r\n", (int)(513 - fixed), 0);
    assert_int_equal(scan_str(req, &on), 431);
    /* a request line that never ends is cut at the same size */
    memset(req, 'A', sizeof(req));
    assert_int_equal(scan(req, sizeof(req), &on), 431);
}

static void test_header_count_limit(void **state)
{
    char req[512];
    size_t off;
    bool on;

    (void)state;
    for (int n = 8; n <= 9; n++) {
        off = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\n");
        for (int i = 0; i < n; i++)
            off += (size_t)snprintf(req + off, sizeof(req) - off, "H%d: v\r\n", i);
        snprintf(req + off, sizeof(req) - off, "\r\n");
        assert_int_equal(scan_str(req, &on), n == 8 ? 0 : 431);
    }
}

static void test_content_length_over_the_body_limit_is_413_before_the_body(void **state)
{
    bool on;

    (void)state;
    assert_int_equal(scan_str("POST / HTTP/1.1\r\nContent-Length: 256\r\n\r\n", &on), 0);
    assert_false(on); /* the body itself is not scanned */
    assert_int_equal(scan_str("POST / HTTP/1.1\r\nContent-Length: 257\r\n", &on), 413);
    assert_int_equal(scan_str("POST / HTTP/1.1\r\ncontent-LENGTH:\t 10000000000\r\n", &on), 413);
    assert_int_equal(
        scan_str("POST / HTTP/1.1\r\nContent-Length: 000000000000000000000000000001\r\n", &on),
        413);
    /* malformed: left to the HTTP parser */
    assert_int_equal(scan_str("POST / HTTP/1.1\r\nContent-Length: x99999\r\n\r\n", &on), 0);
    /* the request line is not a header */
    assert_int_equal(scan_str("Content-Length: 999999 / HTTP/1.1\r\n\r\n", &on), 0);
}

static void test_chunked_body_is_followed_to_its_last_chunk(void **state)
{
    bool on = true;

    (void)state;
    assert_int_equal(scan_str("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "80;ext=1\r\n"
                              "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                              "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                              "\r\n"
                              "7F\r\n"
                              "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
                              "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde"
                              "\r\n"
                              "1\r\nx\r\n"
                              "0\r\n\r\n",
                              &on),
                     0);
    assert_false(on);
    assert_int_equal(scan_str("POST / HTTP/1.1\r\ntransfer-encoding: gzip, CHUNKED\r\n\r\n"
                              "10\r\n0123456789abcdef\r\n",
                              &on),
                     0);
    assert_true(on); /* no last chunk yet */
}

static void test_chunked_body_over_the_limit_is_413_at_the_size_line(void **state)
{
    bool on;

    (void)state;
    /* 0x100 = 256 fits; one more byte in the next chunk does not */
    assert_int_equal(scan_str("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n", &on),
                     0);
    assert_int_equal(scan_str("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n101\r\n", &on),
                     413);
    assert_int_equal(scan_str("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "ffffffffffffffffffffffffffffffffffffffff\r\n",
                              &on),
                     413);
}

static void test_chunk_size_line_without_end_is_400(void **state)
{
    char req[2048];
    size_t off = (size_t)snprintf(req, sizeof(req),
                                  "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;");
    bool on;

    (void)state;
    memset(req + off, 'e', sizeof(req) - off);
    assert_int_equal(scan(req, sizeof(req), &on), 400);
}

static void test_broken_chunk_framing_is_left_to_the_parser(void **state)
{
    bool on = true;

    (void)state;
    assert_int_equal(scan_str("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "2\r\nabXX",
                              &on),
                     0);
    assert_false(on);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_get_passes_and_ends_at_the_blank_line),
        cmocka_unit_test(test_empty_lines_before_the_request_line_do_not_end_it),
        cmocka_unit_test(test_request_target_limit),
        cmocka_unit_test(test_header_block_size_limit),
        cmocka_unit_test(test_header_count_limit),
        cmocka_unit_test(test_content_length_over_the_body_limit_is_413_before_the_body),
        cmocka_unit_test(test_chunked_body_is_followed_to_its_last_chunk),
        cmocka_unit_test(test_chunked_body_over_the_limit_is_413_at_the_size_line),
        cmocka_unit_test(test_chunk_size_line_without_end_is_400),
        cmocka_unit_test(test_broken_chunk_framing_is_left_to_the_parser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
