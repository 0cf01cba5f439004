/* base64_decode, base64_encode and base64_or_der: RFC 4648 10 test vectors,
 * the RFC 8951 whitespace tolerance, and the inputs that must be refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base64.h"

/* RFC 4648 10: BASE64("") = "" ... BASE64("foobar") = "Zm9vYmFy". */
static const struct {
    const char *plain;
    const char *b64;
} rfc4648[] = {
    {"f", "Zg=="},        {"fo", "Zm8="},        {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
};

#define NVEC (sizeof(rfc4648) / sizeof(rfc4648[0]))

/* Decode a C string; on success compare with want (want_len bytes). */
static void expect_decodes(const char *in, const void *want, size_t want_len)
{
    unsigned char *out = NULL;
    size_t out_len = 12345;
    enum kp_err rc = base64_decode(in, strlen(in), &out, &out_len);

    if (rc != KP_OK)
        fail_msg("\"%s\": rc %d, want KP_OK", in, (int)rc);
    assert_non_null(out);
    assert_int_equal(out_len, want_len);
    if (want_len > 0)
        assert_memory_equal(out, want, want_len);
    free(out);
}

static void expect_rejected(const char *in, size_t len)
{
    unsigned char *out = NULL;
    size_t out_len = 777;
    enum kp_err rc = base64_decode(in, len, &out, &out_len);

    if (rc != KP_ERR_BASE64)
        fail_msg("\"%.*s\": rc %d, want KP_ERR_BASE64", (int)len, in, (int)rc);
    assert_null(out);
    assert_int_equal(out_len, 777); /* results go out only on success */
}

static void test_rfc4648_vectors_encode(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVEC; i++) {
        size_t len = 0;
        char *got =
            base64_encode((const unsigned char *)rfc4648[i].plain, strlen(rfc4648[i].plain), &len);
        char want[16];
        snprintf(want, sizeof(want), "%s\n", rfc4648[i].b64);
        assert_string_equal(got, want);
        assert_int_equal(len, strlen(want));
        free(got);
    }
}

static void test_rfc4648_vectors_decode(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVEC; i++)
        expect_decodes(rfc4648[i].b64, rfc4648[i].plain, strlen(rfc4648[i].plain));
}

static void test_encode_of_empty_input_is_empty_string(void **state)
{
    size_t len = 99;
    char *got = base64_encode((const unsigned char *)"", 0, &len);
    (void)state;
    assert_string_equal(got, "");
    assert_int_equal(len, 0);
    free(got);
}

static void test_decode_ignores_cr_lf_space_tab_anywhere(void **state)
{
    (void)state;
    expect_decodes("Zm9v\r\nYmFy", "foobar", 6);
    expect_decodes(" Z m 9 v Y m F y ", "foobar", 6);
    expect_decodes("\tZm\t9vYg=\r\n=\n", "foob", 4);
    expect_decodes("\r\n\r\nZm9vYmE=\r\n", "fooba", 5);
    expect_decodes("Z\nm\r9\tv", "foo", 3);
    expect_decodes("Zg=\n=", "f", 1);
}

static void test_decode_accepts_unpadded_input(void **state)
{
    (void)state;
    expect_decodes("Zg", "f", 1);
    expect_decodes("Zm8", "fo", 2);
    expect_decodes("Zm9vYg", "foob", 4);
    expect_decodes("Zm9vYmE", "fooba", 5);
    expect_decodes("Zm9vYmE\r\n", "fooba", 5);
}

static void test_decode_rejects_junk_characters(void **state)
{
    (void)state;
    expect_rejected("Zm9v*mFy", 8);
    expect_rejected("Zm9v-mFy", 8); /* base64url alphabet is not base64 */
    expect_rejected("Zm9v_mFy", 8);
    expect_rejected("Zm9v.", 5);
    expect_rejected("Zm9v\v", 5); /* vertical tab is not in the RFC 8951 set */
    expect_rejected("Zm9v\x80", 5);
    expect_rejected("Zm\0v", 4); /* NUL inside the given length */
}

static void test_decode_rejects_padding_in_the_middle(void **state)
{
    (void)state;
    expect_rejected("Zg==Zm9v", 8);
    expect_rejected("Zm8=Zm8=", 8);
    expect_rejected("Z=g=", 4);
    expect_rejected("=Zm9", 4);
    expect_rejected("Zm9=v", 5);
}

static void test_decode_rejects_too_much_padding(void **state)
{
    (void)state;
    expect_rejected("Zg===", 5);
    expect_rejected("Z===", 4);
    expect_rejected("====", 4);
}

static void test_decode_rejects_single_leftover_character(void **state)
{
    (void)state;
    expect_rejected("Z", 1);
    expect_rejected("Zm9vY", 5);
    expect_rejected("Zm9v\nY\n", 7);
}

static void test_decode_rejects_empty_and_whitespace_only(void **state)
{
    (void)state;
    expect_rejected("", 0);
    expect_rejected(" ", 1);
    expect_rejected("\r\n\t \n", 5);
}

static void test_encode_wraps_at_64_characters_and_ends_with_newline(void **state)
{
    unsigned char in[200];
    size_t len = 0;
    char *got;
    const char *p;
    size_t lines = 0;
    (void)state;

    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)(i * 7 + 3);
    got = base64_encode(in, sizeof(in), &len);
    /* 200 bytes -> 268 characters -> 64 + 64 + 64 + 64 + 12, each ended by \n */
    assert_int_equal(len, 268 + 5);
    assert_int_equal(strlen(got), len);
    assert_int_equal(got[len - 1], '\n');
    for (p = got; *p;) {
        size_t n = strcspn(p, "\n");
        lines++;
        if (p[n] == '\0')
            fail_msg("line %zu not ended by \\n", lines);
        if (lines < 5)
            assert_int_equal(n, 64);
        else
            assert_int_equal(n, 12);
        assert_null(memchr(p, '\r', n));
        p += n + 1;
    }
    assert_int_equal(lines, 5);
    free(got);

    /* exactly 48 bytes: one full line, one newline, no empty line after it */
    got = base64_encode(in, 48, &len);
    assert_int_equal(len, 65);
    assert_int_equal(got[64], '\n');
    free(got);
}

static void test_round_trip_of_random_lengths_0_to_300(void **state)
{
    unsigned char in[300];
    (void)state;

    assert_int_equal(RAND_bytes(in, sizeof(in)), 1);
    for (size_t n = 0; n <= sizeof(in); n++) {
        size_t enc_len = 0, dec_len = 0;
        unsigned char *dec = NULL;
        char *enc = base64_encode(in, n, &enc_len);
        enum kp_err rc;

        assert_int_equal(strlen(enc), enc_len);
        assert_int_equal(enc_len, (n + 2) / 3 * 4 + ((n + 2) / 3 * 4 + 63) / 64);
        rc = base64_decode(enc, enc_len, &dec, &dec_len);
        if (n == 0) {
            /* nothing encodes to "", and "" is not a body */
            assert_int_equal(rc, KP_ERR_BASE64);
        } else {
            if (rc != KP_OK)
                fail_msg("length %zu: rc %d", n, (int)rc);
            assert_int_equal(dec_len, n);
            assert_memory_equal(dec, in, n);
        }
        free(dec);
        free(enc);
    }
}

/* OpenSSL's encoder is the reference: without its newlines, every length
 * 0..300 of random bytes encodes to what EVP_EncodeBlock writes. */
static void test_encode_matches_openssl_for_lengths_0_to_300(void **state)
{
    unsigned char in[300], ref[4 * sizeof(in) / 3 + 4];
    (void)state;

    assert_int_equal(RAND_bytes(in, sizeof(in)), 1);
    for (size_t n = 0; n <= sizeof(in); n++) {
        size_t len = 0, k = 0;
        char *got = base64_encode(in, n, &len);
        int rn = EVP_EncodeBlock(ref, in, (int)n);

        for (size_t i = 0; i < len; i++)
            if (got[i] != '\n')
                got[k++] = got[i];
        got[k] = '\0';
        assert_int_equal(k, (size_t)rn);
        assert_string_equal(got, (const char *)ref);
        free(got);
    }
}

static void test_base64_or_der_takes_raw_der_as_is(void **state)
{
    /* SEQUENCE, long-form length: 0x82 is not a base64 character */
    static const unsigned char der[] = {0x30, 0x82, 0x00, 0x04, 0x02, 0x01, 0x05, 0x00};
    static const unsigned char der2[] = {0x30, 0x03, 0x02, 0x01, 0x07};
    unsigned char *out = NULL;
    size_t out_len = 0;
    (void)state;

    assert_int_equal(base64_or_der(der, sizeof(der), &out, &out_len), KP_OK);
    assert_int_equal(out_len, sizeof(der));
    assert_memory_equal(out, der, sizeof(der));
    assert_ptr_not_equal(out, der);
    free(out);

    /* short-form SEQUENCE: 0x03 is not base64 either */
    out = NULL;
    assert_int_equal(base64_or_der(der2, sizeof(der2), &out, &out_len), KP_OK);
    assert_int_equal(out_len, sizeof(der2));
    assert_memory_equal(out, der2, sizeof(der2));
    free(out);
}

static void test_base64_or_der_decodes_base64_text(void **state)
{
    /* base64 of 30 82 00 04 02 01 05 00, with the line breaks of a real body */
    static const char text[] = "MIIABAIB\r\nBQA=\r\n";
    static const unsigned char want[] = {0x30, 0x82, 0x00, 0x04, 0x02, 0x01, 0x05, 0x00};
    unsigned char *out = NULL;
    size_t out_len = 0;
    (void)state;

    assert_int_equal(base64_or_der((const unsigned char *)text, strlen(text), &out, &out_len),
                     KP_OK);
    assert_int_equal(out_len, sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
    free(out);

    /* "0" (0x30) starts valid base64 too: base64 wins */
    out = NULL;
    assert_int_equal(base64_or_der((const unsigned char *)"0g==", 4, &out, &out_len), KP_OK);
    assert_int_equal(out_len, 1);
    assert_int_equal(out[0], 0xd2);
    free(out);
}

static void test_base64_or_der_rejects_text_that_is_neither(void **state)
{
    unsigned char *out = NULL;
    size_t out_len = 0;
    (void)state;

    assert_int_equal(base64_or_der((const unsigned char *)"not base64!", 11, &out, &out_len),
                     KP_ERR_BASE64);
    assert_null(out);
    assert_int_equal(base64_or_der((const unsigned char *)"", 0, &out, &out_len), KP_ERR_BASE64);
    assert_null(out);
    /* a lone 0x30 byte is "0": one leftover base64 character, and too short for DER */
    assert_int_equal(base64_or_der((const unsigned char *)"0", 1, &out, &out_len), KP_ERR_BASE64);
    assert_null(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors_encode),
        cmocka_unit_test(test_rfc4648_vectors_decode),
        cmocka_unit_test(test_encode_of_empty_input_is_empty_string),
        cmocka_unit_test(test_decode_ignores_cr_lf_space_tab_anywhere),
        cmocka_unit_test(test_decode_accepts_unpadded_input),
        cmocka_unit_test(test_decode_rejects_junk_characters),
        cmocka_unit_test(test_decode_rejects_padding_in_the_middle),
        cmocka_unit_test(test_decode_rejects_too_much_padding),
        cmocka_unit_test(test_decode_rejects_single_leftover_character),
        cmocka_unit_test(test_decode_rejects_empty_and_whitespace_only),
        cmocka_unit_test(test_encode_wraps_at_64_characters_and_ends_with_newline),
        cmocka_unit_test(test_round_trip_of_random_lengths_0_to_300),
        cmocka_unit_test(test_encode_matches_openssl_for_lengths_0_to_300),
        cmocka_unit_test(test_base64_or_der_takes_raw_der_as_is),
        cmocka_unit_test(test_base64_or_der_decodes_base64_text),
        cmocka_unit_test(test_base64_or_der_rejects_text_that_is_neither),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
