/* certs-only PKCS#7 (RFC 7030 4.1.3): built, then decoded back. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>
#include <stdlib.h>

#include "pki/keygen.h"
#include "pki/pkcs7.h"

struct pki {
    EVP_PKEY *ca_key, *leaf_key;
    X509 *ca, *leaf;
};

/* A certificate for subject CN=cn with key, issued by issuer/issuer_key
 * (self-signed when issuer is NULL). */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                       long serial)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();

    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name),
                     1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x;
}

static int setup(void **state)
{
    struct pki *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    assert_int_equal(keygen_generate(KEY_EC_P384, &p->ca_key), KP_OK);
    assert_int_equal(keygen_generate(KEY_RSA_2048, &p->leaf_key), KP_OK);
    p->ca = make_cert("Kipuka Test CA", p->ca_key, NULL, p->ca_key, 1);
    p->leaf = make_cert("leaf.example", p->leaf_key, p->ca, p->ca_key, 2);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct pki *p = *state;
    X509_free(p->leaf);
    X509_free(p->ca);
    EVP_PKEY_free(p->leaf_key);
    EVP_PKEY_free(p->ca_key);
    free(p);
    return 0;
}

/* Decode der and check it is a degenerate SignedData (RFC 5652 5.1 with
 * no signers): version 1, no digestAlgorithms, no signerInfos, content type
 * id-data with no content. Returns the certificates (owned by *p7). */
static STACK_OF(X509) * decode_certs_only(const unsigned char *der, size_t len, PKCS7 **p7)
{
    const unsigned char *p = der;
    PKCS7_SIGNED *sd;

    *p7 = d2i_PKCS7(NULL, &p, (long)len);
    assert_non_null(*p7);
    assert_ptr_equal(p, der + len);
    assert_true(PKCS7_type_is_signed(*p7));
    sd = (*p7)->d.sign;
    assert_int_equal(ASN1_INTEGER_get(sd->version), 1);
    assert_int_equal(sk_X509_ALGOR_num(sd->md_algs), 0);
    assert_int_equal(sk_PKCS7_SIGNER_INFO_num(sd->signer_info), 0);
    assert_true(sk_X509_CRL_num(sd->crl) <= 0);
    assert_int_equal(OBJ_obj2nid(sd->contents->type), NID_pkcs7_data);
    assert_null(sd->contents->d.ptr);
    return sd->cert;
}

static void expect_order(X509 *first, X509 *second)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    unsigned char *der = NULL;
    size_t len = 0;
    PKCS7 *p7 = NULL;
    STACK_OF(X509) * got;

    assert_true(sk_X509_push(certs, first) > 0);
    assert_true(sk_X509_push(certs, second) > 0);
    assert_int_equal(pkcs7_certs_only(certs, &der, &len), KP_OK);
    assert_non_null(der);
    got = decode_certs_only(der, len, &p7);
    assert_int_equal(sk_X509_num(got), 2);
    assert_int_equal(X509_cmp(sk_X509_value(got, 0), first), 0);
    assert_int_equal(X509_cmp(sk_X509_value(got, 1), second), 0);
    PKCS7_free(p7);
    free(der);
    /* The caller's stack and certificates are untouched. */
    assert_int_equal(sk_X509_num(certs), 2);
    sk_X509_free(certs);
}

static void test_certs_keep_leaf_then_ca_order(void **state)
{
    struct pki *p = *state;
    expect_order(p->leaf, p->ca);
}

static void test_certs_keep_ca_then_leaf_order(void **state)
{
    struct pki *p = *state;
    expect_order(p->ca, p->leaf);
}

static void test_single_cert(void **state)
{
    struct pki *p = *state;
    STACK_OF(X509) *certs = sk_X509_new_null();
    unsigned char *der = NULL;
    size_t len = 0;
    PKCS7 *p7 = NULL;
    STACK_OF(X509) * got;

    assert_true(sk_X509_push(certs, p->ca) > 0);
    assert_int_equal(pkcs7_certs_only(certs, &der, &len), KP_OK);
    got = decode_certs_only(der, len, &p7);
    assert_int_equal(sk_X509_num(got), 1);
    assert_int_equal(X509_cmp(sk_X509_value(got, 0), p->ca), 0);
    PKCS7_free(p7);
    free(der);
    sk_X509_free(certs);
}

static void test_empty_stack_gives_no_certificates(void **state)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    unsigned char *der = NULL;
    size_t len = 0;
    PKCS7 *p7 = NULL;
    (void)state;

    assert_int_equal(pkcs7_certs_only(certs, &der, &len), KP_OK);
    assert_true(sk_X509_num(decode_certs_only(der, len, &p7)) <= 0);
    PKCS7_free(p7);
    free(der);
    sk_X509_free(certs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_certs_keep_leaf_then_ca_order),
        cmocka_unit_test(test_certs_keep_ca_then_leaf_order),
        cmocka_unit_test(test_single_cert),
        cmocka_unit_test(test_empty_stack_gives_no_certificates),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
