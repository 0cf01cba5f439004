/* CsrAttrs encoding and checking (RFC 7030 4.5.2, RFC 8951 3.3). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "pki/csrattrs.h"

/* The example from RFC 8951 3.3 (base64
 * MEEGCSqGSIb3DQEJBzASBgcqhkjOPQIBMQcGBSuBBAAiMBYGCSqGSIb3DQEJDjEJBgcrBgEBAQEWBggqhkjOPQQDAw==):
 * challengePassword, {id-ecPublicKey, {secp384r1}},
 * {extensionRequest, {macAddress}}, ecdsa-with-SHA384. */
static const unsigned char rfc8951_example[] = {
    0x30, 0x41, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x07, 0x30,
    0x12, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x31, 0x07, 0x06, 0x05,
    0x2b, 0x81, 0x04, 0x00, 0x22, 0x30, 0x16, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7,
    0x0d, 0x01, 0x09, 0x0e, 0x31, 0x09, 0x06, 0x07, 0x2b, 0x06, 0x01, 0x01, 0x01, 0x01,
    0x16, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
};

#define KT(t) (1u << (t))
#define ALL_KEYS                                                                                   \
    (KT(KEY_EC_P256) | KT(KEY_EC_P384) | KT(KEY_RSA_2048) | KT(KEY_RSA_3072) | KT(KEY_RSA_4096))

static ASN1_SEQUENCE_ANY *decode(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    ASN1_SEQUENCE_ANY *seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)len);
    assert_non_null(seq);
    assert_ptr_equal(p, der + len);
    return seq;
}

static void expect_oid(const ASN1_TYPE *t, int nid)
{
    assert_int_equal(t->type, V_ASN1_OBJECT);
    assert_int_equal(OBJ_obj2nid(t->value.object), nid);
}

static void expect_oid_txt(const ASN1_TYPE *t, const char *dotted)
{
    char buf[128];
    assert_int_equal(t->type, V_ASN1_OBJECT);
    assert_true(OBJ_obj2txt(buf, sizeof(buf), t->value.object, 1) > 0);
    assert_string_equal(buf, dotted);
}

/* t is Attribute { type, SET { OIDs values[0..n) } } in this order. */
static void expect_attr(const ASN1_TYPE *t, int type, const int *values, int n)
{
    const unsigned char *p;
    X509_ATTRIBUTE *attr;

    assert_int_equal(t->type, V_ASN1_SEQUENCE);
    p = t->value.sequence->data;
    attr = d2i_X509_ATTRIBUTE(NULL, &p, t->value.sequence->length);
    assert_non_null(attr);
    assert_ptr_equal(p, t->value.sequence->data + t->value.sequence->length);
    assert_int_equal(OBJ_obj2nid(X509_ATTRIBUTE_get0_object(attr)), type);
    assert_int_equal(X509_ATTRIBUTE_count(attr), n);
    for (int i = 0; i < n; i++) {
        ASN1_TYPE *v = X509_ATTRIBUTE_get0_type(attr, i);
        expect_oid(v, values[i]);
    }
    X509_ATTRIBUTE_free(attr);
}

static void encode_ok(const struct csrattrs_spec *spec, unsigned char **der, size_t *len)
{
    size_t count = 99;
    *der = NULL;
    assert_int_equal(csrattrs_encode(spec, der, len), KP_OK);
    assert_non_null(*der);
    /* Everything we produce passes our own check. */
    assert_int_equal(csrattrs_check(*der, *len, &count), KP_OK);
}

static void test_empty_spec_gives_empty_sequence(void **state)
{
    struct csrattrs_spec spec = {0};
    unsigned char *der;
    size_t len, count = 99;
    (void)state;
    encode_ok(&spec, &der, &len);
    assert_int_equal(len, 2);
    assert_memory_equal(der, "\x30\x00", 2);
    assert_int_equal(csrattrs_check(der, len, &count), KP_OK);
    assert_int_equal(count, 0);
    free(der);

    spec.extra_oids = "  ";
    encode_ok(&spec, &der, &len);
    assert_int_equal(len, 2);
    free(der);
}

static void test_full_spec_lists_elements_in_order(void **state)
{
    struct csrattrs_spec spec = {
        .key_types = ALL_KEYS,
        .challenge_password = true,
        .request_san = true,
        .extra_oids = "1.2.3.4, 1.3.6.1.4.1.99999.1 ,2.5.29.37",
    };
    /* DER sorts SET OF: secp384r1 (06 05 ...) before prime256v1 (06 08 ...). */
    static const int curves[] = {NID_secp384r1, NID_X9_62_prime256v1};
    static const int san[] = {NID_subject_alt_name};
    unsigned char *der;
    size_t len, count = 0;
    ASN1_SEQUENCE_ANY *seq;
    (void)state;

    encode_ok(&spec, &der, &len);
    assert_int_equal(csrattrs_check(der, len, &count), KP_OK);
    assert_int_equal(count, 7);
    seq = decode(der, len);
    assert_int_equal(sk_ASN1_TYPE_num(seq), 7);
    expect_oid(sk_ASN1_TYPE_value(seq, 0), NID_pkcs9_challengePassword);
    expect_attr(sk_ASN1_TYPE_value(seq, 1), NID_X9_62_id_ecPublicKey, curves, 2);
    expect_oid(sk_ASN1_TYPE_value(seq, 2), NID_rsaEncryption);
    expect_attr(sk_ASN1_TYPE_value(seq, 3), NID_ext_req, san, 1);
    expect_oid_txt(sk_ASN1_TYPE_value(seq, 4), "1.2.3.4");
    expect_oid_txt(sk_ASN1_TYPE_value(seq, 5), "1.3.6.1.4.1.99999.1");
    expect_oid_txt(sk_ASN1_TYPE_value(seq, 6), "2.5.29.37");
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
    free(der);
}

static void test_p384_spec_has_exact_encoding(void **state)
{
    struct csrattrs_spec spec = {
        .key_types = KT(KEY_EC_P384),
        .challenge_password = true,
        .request_san = true,
    };
    /* Shaped like the RFC 8951 example, with subjectAltName requested. */
    static const unsigned char want[] = {
        0x30, 0x33,                                                       /* SEQUENCE */
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x07, /* challengePwd */
        0x30, 0x12, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, /* ecPublicKey */
        0x31, 0x07, 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22,             /* {secp384r1} */
        0x30, 0x12, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
        0x09, 0x0e,                               /* extensionRequest */
        0x31, 0x05, 0x06, 0x03, 0x55, 0x1d, 0x11, /* {subjectAltName} */
    };
    unsigned char *der;
    size_t len;
    (void)state;

    encode_ok(&spec, &der, &len);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(der, want, sizeof(want));
    free(der);
}

static void test_rsa_only_spec_is_one_oid(void **state)
{
    struct csrattrs_spec spec = {.key_types = KT(KEY_RSA_3072)};
    static const unsigned char want[] = {0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48,
                                         0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
    unsigned char *der;
    size_t len;
    (void)state;

    encode_ok(&spec, &der, &len);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(der, want, sizeof(want));
    free(der);
}

static void test_p256_only_spec_names_one_curve(void **state)
{
    struct csrattrs_spec spec = {.key_types = KT(KEY_EC_P256) | KT(KEY__MAX + 3)};
    static const int curves[] = {NID_X9_62_prime256v1};
    unsigned char *der;
    size_t len;
    ASN1_SEQUENCE_ANY *seq;
    (void)state;

    encode_ok(&spec, &der, &len);
    seq = decode(der, len);
    assert_int_equal(sk_ASN1_TYPE_num(seq), 1);
    expect_attr(sk_ASN1_TYPE_value(seq, 0), NID_X9_62_id_ecPublicKey, curves, 1);
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
    free(der);
}

static void test_malformed_extra_oid_is_config_error(void **state)
{
    static const char *const bad[] = {
        "foo",    "1.2.3,foo", "1..2", "1.2.",  ".1.2",        "1",    "3.1",  "1.2.3,",
        ",1.2.3", "1.2,,1.3",  "1.02", "1.2 3", "1.2.3;1.2.4", "10.1", "1.40", "-1.2",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct csrattrs_spec spec = {.key_types = ALL_KEYS, .extra_oids = bad[i]};
        unsigned char *der = NULL;
        size_t len = 12345;
        enum kp_err rc = csrattrs_encode(&spec, &der, &len);
        if (rc != KP_ERR_CONFIG)
            fail_msg("\"%s\": got %d, want KP_ERR_CONFIG", bad[i], (int)rc);
        assert_null(der);
        assert_int_equal(len, 12345);
    }
}

static void test_rfc8951_example_passes_check(void **state)
{
    size_t count = 0;
    (void)state;
    assert_int_equal(csrattrs_check(rfc8951_example, sizeof(rfc8951_example), &count), KP_OK);
    assert_int_equal(count, 4);
}

static void test_junk_fails_check(void **state)
{
    static const unsigned char integer_elem[] = {0x30, 0x03, 0x02, 0x01, 0x05};
    static const unsigned char set_top[] = {0x31, 0x00};
    static const unsigned char set_elem[] = {0x30, 0x02, 0x31, 0x00};
    /* SEQUENCE { SEQUENCE { OID } }: an Attribute without its SET */
    static const unsigned char attr_no_set[] = {0x30, 0x07, 0x30, 0x05, 0x06,
                                                0x03, 0x55, 0x1d, 0x11};
    /* SEQUENCE { SEQUENCE { OID, SET {}, NULL } }: an Attribute with extra */
    static const unsigned char attr_extra[] = {0x30, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55,
                                               0x1d, 0x11, 0x31, 0x00, 0x05, 0x00};
    static const unsigned char truncated[] = {0x30, 0x41, 0x06, 0x09, 0x2a};
    static const unsigned char junk[] = "this is not DER at all";
    unsigned char trailing[sizeof(rfc8951_example) + 1];
    size_t count = 77;
    (void)state;

    memcpy(trailing, rfc8951_example, sizeof(rfc8951_example));
    trailing[sizeof(rfc8951_example)] = 0x00;

    assert_int_equal(csrattrs_check(integer_elem, sizeof(integer_elem), &count),
                     KP_ERR_BAD_REQUEST);
    assert_int_equal(csrattrs_check(set_top, sizeof(set_top), &count), KP_ERR_BAD_REQUEST);
    assert_int_equal(csrattrs_check(set_elem, sizeof(set_elem), &count), KP_ERR_BAD_REQUEST);
    assert_int_equal(csrattrs_check(attr_no_set, sizeof(attr_no_set), &count), KP_ERR_BAD_REQUEST);
    assert_int_equal(csrattrs_check(attr_extra, sizeof(attr_extra), &count), KP_ERR_BAD_REQUEST);
    assert_int_equal(csrattrs_check(truncated, sizeof(truncated), &count), KP_ERR_BAD_REQUEST);
    assert_int_equal(csrattrs_check(junk, sizeof(junk) - 1, &count), KP_ERR_BAD_REQUEST);
    assert_int_equal(csrattrs_check(trailing, sizeof(trailing), &count), KP_ERR_BAD_REQUEST);
    assert_int_equal(csrattrs_check(rfc8951_example, 0, &count), KP_ERR_BAD_REQUEST);
    assert_int_equal(csrattrs_check(NULL, 0, &count), KP_ERR_BAD_REQUEST);
    assert_int_equal(count, 77);
}

/* Found by fuzz_csrattrs: OpenSSL decodes BER, so these passed before the
 * re-encoding check. */
static void test_ber_fails_check(void **state)
{
    static const unsigned char indefinite[] = {0x30, 0x80, 0x06, 0x03, 0x55,
                                               0x1d, 0x11, 0x00, 0x00};
    static const unsigned char long_form[] = {0x30, 0x81, 0x05, 0x06, 0x03, 0x55, 0x1d, 0x11};
    static const unsigned char primitive_seq[] = {0x10, 0x00};
    static const unsigned char one_oid[] = {0x30, 0x05, 0x06, 0x03, 0x55, 0x1d, 0x11};
    size_t count = 0;
    (void)state;

    assert_int_equal(csrattrs_check(indefinite, sizeof(indefinite), &count), KP_ERR_BAD_REQUEST);
    assert_int_equal(csrattrs_check(long_form, sizeof(long_form), &count), KP_ERR_BAD_REQUEST);
    assert_int_equal(csrattrs_check(primitive_seq, sizeof(primitive_seq), &count),
                     KP_ERR_BAD_REQUEST);
    assert_int_equal(csrattrs_check(one_oid, sizeof(one_oid), &count), KP_OK);
    assert_int_equal(count, 1);
}

static void test_every_truncation_fails_check(void **state)
{
    (void)state;
    for (size_t n = 0; n < sizeof(rfc8951_example); n++) {
        unsigned char *cut = malloc(n + 1);
        size_t count;
        memcpy(cut, rfc8951_example, n);
        if (csrattrs_check(cut, n, &count) == KP_OK)
            fail_msg("prefix of %zu bytes accepted", n);
        free(cut);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_spec_gives_empty_sequence),
        cmocka_unit_test(test_full_spec_lists_elements_in_order),
        cmocka_unit_test(test_p384_spec_has_exact_encoding),
        cmocka_unit_test(test_rsa_only_spec_is_one_oid),
        cmocka_unit_test(test_p256_only_spec_names_one_curve),
        cmocka_unit_test(test_malformed_extra_oid_is_config_error),
        cmocka_unit_test(test_rfc8951_example_passes_check),
        cmocka_unit_test(test_junk_fails_check),
        cmocka_unit_test(test_ber_fails_check),
        cmocka_unit_test(test_every_truncation_fails_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
