/* map_request (RFC 9148 5.1 routing, methods, Content-Formats) and
 * multipart_core_encode (RFC 8710), without a network. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "coap/map.h"
#include "coap/multipart.h"

/* in from "a/b/c", a method and the two options */
static void input(struct map_input *in, const char *path, int method, int cf, int accept)
{
    const char *p = path;

    memset(in, 0, sizeof(*in));
    while (*p != '\0' && in->nseg < MAP_SEG_MAX) {
        size_t n = strcspn(p, "/");
        in->seg[in->nseg].p = (const unsigned char *)p;
        in->seg[in->nseg].len = n;
        in->nseg++;
        p += n;
        if (*p == '/')
            p++;
    }
    in->method = method;
    in->content_format = cf;
    in->accept = accept;
}

static enum kp_err route(const char *path, int method, int cf, int accept, struct bridge_request *r,
                         bool *not_acceptable)
{
    struct map_input in;

    input(&in, path, method, cf, accept);
    memset(r, 0, sizeof(*r));
    return map_request(&in, r, not_acceptable);
}

static void test_both_roots_and_labels_route_to_the_short_names(void **state)
{
    struct bridge_request r;
    bool na;

    (void)state;
    assert_int_equal(route("est/crts", MAP_METHOD_GET, COAP_CF_NONE, COAP_CF_NONE, &r, &na), KP_OK);
    assert_string_equal(r.op->name, "cacerts");
    assert_string_equal(r.label, "");
    assert_int_equal(route(".well-known/est/iot-fleet/sen", MAP_METHOD_POST, COAP_CF_PKCS10,
                           COAP_CF_PKIX_CERT, &r, &na),
                     KP_OK);
    assert_string_equal(r.op->name, "simpleenroll");
    assert_string_equal(r.label, "iot-fleet");
    assert_int_equal(r.accept, COAP_CF_PKIX_CERT);
    assert_int_equal(
        route("est/a.b_c-1/att", MAP_METHOD_GET, COAP_CF_NONE, COAP_CF_CSRATTRS, &r, &na), KP_OK);
    assert_string_equal(r.label, "a.b_c-1");
}

static void test_other_paths_are_not_found(void **state)
{
    struct bridge_request r;
    bool na;

    (void)state;
    assert_int_equal(route("est", MAP_METHOD_GET, -1, -1, &r, &na), KP_ERR_NOT_FOUND);
    assert_int_equal(route("est/cacerts", MAP_METHOD_GET, -1, -1, &r, &na), KP_ERR_NOT_FOUND);
    assert_int_equal(route("est/skc", MAP_METHOD_POST, 286, -1, &r, &na), KP_ERR_NOT_FOUND);
    assert_int_equal(route("est/a/b/crts", MAP_METHOD_GET, -1, -1, &r, &na), KP_ERR_NOT_FOUND);
    assert_int_equal(route(".well-known/crts", MAP_METHOD_GET, -1, -1, &r, &na), KP_ERR_NOT_FOUND);
    assert_int_equal(route("x/est/crts", MAP_METHOD_GET, -1, -1, &r, &na), KP_ERR_NOT_FOUND);
    assert_int_equal(route("est/a b/crts", MAP_METHOD_GET, -1, -1, &r, &na), KP_ERR_UNKNOWN_LABEL);
    assert_int_equal(route("est/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/crts", MAP_METHOD_GET, -1,
                           -1, &r, &na),
                     KP_ERR_UNKNOWN_LABEL);
}

static void test_methods_and_content_formats_are_checked(void **state)
{
    struct bridge_request r;
    bool na;

    (void)state;
    assert_int_equal(route("est/crts", MAP_METHOD_POST, 286, -1, &r, &na), KP_ERR_METHOD);
    assert_int_equal(route("est/sen", MAP_METHOD_GET, -1, -1, &r, &na), KP_ERR_METHOD);
    assert_int_equal(route("est/sen", 3 /* PUT */, 286, -1, &r, &na), KP_ERR_METHOD);
    assert_int_equal(route("est/sen", MAP_METHOD_POST, COAP_CF_NONE, -1, &r, &na),
                     KP_ERR_MEDIA_TYPE);
    assert_false(na);
    assert_int_equal(route("est/sren", MAP_METHOD_POST, 0, -1, &r, &na), KP_ERR_MEDIA_TYPE);
    assert_int_equal(route("est/sen", MAP_METHOD_POST, -2, -1, &r, &na), KP_ERR_MEDIA_TYPE);
    assert_int_equal(route("est/crts", MAP_METHOD_GET, -1, COAP_CF_CSRATTRS, &r, &na),
                     KP_ERR_MEDIA_TYPE);
    assert_true(na);
    assert_int_equal(route("est/skg", MAP_METHOD_POST, 286, COAP_CF_CERTS, &r, &na),
                     KP_ERR_MEDIA_TYPE);
    assert_true(na);
    assert_int_equal(route("est/skg", MAP_METHOD_POST, 286, COAP_CF_MULTIPART, &r, &na), KP_OK);
    assert_int_equal(route("est/crts", MAP_METHOD_GET, -1, -2, &r, &na), KP_ERR_MEDIA_TYPE);
    assert_true(na);
}

static void test_multipart_core_is_a_cbor_array_of_pairs(void **state)
{
    unsigned char big[300];
    struct multipart_part p[2] = {{284, (const unsigned char *)"\x30\x00", 2}, {281, big, 300}};
    unsigned char *out = NULL;
    size_t len = 0;
    static const unsigned char head[] = {0x84, 0x19, 0x01, 0x1c, 0x42, 0x30, 0x00,
                                         0x19, 0x01, 0x19, 0x59, 0x01, 0x2c};

    (void)state;
    memset(big, 0xab, sizeof(big));
    multipart_core_encode(p, 2, &out, &len);
    assert_int_equal(len, sizeof(head) + 300);
    assert_memory_equal(out, head, sizeof(head));
    assert_memory_equal(out + sizeof(head), big, 300);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_both_roots_and_labels_route_to_the_short_names),
        cmocka_unit_test(test_other_paths_are_not_found),
        cmocka_unit_test(test_methods_and_content_formats_are_checked),
        cmocka_unit_test(test_multipart_core_is_a_cbor_array_of_pairs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
