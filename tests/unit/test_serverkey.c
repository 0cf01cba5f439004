/* serverkeygen's pki parts: the pre-shared key file (kek.c), the key
 * protection wrappers (serverkey.c) and the key identifier CSR attributes
 * (csr.c), checked by opening what they produce with OpenSSL's CMS. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/cms.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca.h"
#include "core/log.h"
#include "pki/csr.h"
#include "pki/kek.h"
#include "pki/keygen.h"
#include "pki/serverkey.h"

#define KEY256 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

/* ---- kek.c ---- */

static void expect_kek_error(const char *text, int want_line)
{
    struct kek_table *t = NULL;
    const char *why = NULL;
    int line = 0;

    assert_int_equal(kek_parse(text, &t, &why, &line), KP_ERR_CONFIG);
    assert_null(t);
    assert_non_null(why);
    assert_int_equal(line, want_line);
}

static void test_kek_file_maps_ids_to_keys(void **state)
{
    struct kek_table *t = NULL;
    const char *why = NULL;
    const unsigned char *k;
    size_t len = 0;
    int line = 0;
    (void)state;

    assert_int_equal(kek_parse("# comment\n\n  dev-1 " KEY256
                               "\r\nshort 00112233445566778899aabbccddeeff\n",
                               &t, &why, &line),
                     KP_OK);
    k = kek_find(t, (const unsigned char *)"dev-1", 5, &len);
    assert_non_null(k);
    assert_int_equal(len, 32);
    assert_int_equal(k[0], 0x00);
    assert_int_equal(k[31], 0x1f);
    k = kek_find(t, (const unsigned char *)"short", 5, &len);
    assert_non_null(k);
    assert_int_equal(len, 16);
    assert_null(kek_find(t, (const unsigned char *)"dev-", 4, &len));
    assert_null(kek_find(t, (const unsigned char *)"dev-1x", 6, &len));
    assert_null(kek_find(NULL, (const unsigned char *)"dev-1", 5, &len));
    kek_free(t);
    kek_free(NULL);
}

static void test_kek_file_refuses_bad_lines(void **state)
{
    (void)state;
    expect_kek_error("a " KEY256 "\nb 0011\n", 2);               /* not an AES key size */
    expect_kek_error("a " KEY256 "\na " KEY256 "\n", 2);         /* listed twice */
    expect_kek_error("a zz0102030405060708090a0b0c0d0e0f\n", 1); /* not hex */
    expect_kek_error("lonely\n", 1);                             /* no key */
    expect_kek_error("a\x01 " KEY256 "\n", 1);                   /* control byte in id */
}

/* ---- serverkey.c ---- */

/* Decrypt an EnvelopedData with a KEK or with a certificate and key. */
static BIO *open_cms(const unsigned char *der, size_t len, const unsigned char *kek, size_t kek_len,
                     const unsigned char *id, size_t id_len, X509 *cert, EVP_PKEY *pkey)
{
    const unsigned char *p = der;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    BIO *out = BIO_new(BIO_s_mem());
    int ok;

    assert_non_null(cms);
    assert_int_equal(OBJ_obj2nid(CMS_get0_type(cms)), NID_pkcs7_enveloped);
    if (kek != NULL)
        ok = CMS_decrypt_set1_key(cms, (unsigned char *)kek, kek_len, id, id_len) == 1 &&
             CMS_decrypt(cms, NULL, NULL, NULL, out, CMS_BINARY) == 1;
    else
        ok = CMS_decrypt(cms, pkey, cert, NULL, out, CMS_BINARY) == 1;
    CMS_ContentInfo_free(cms);
    if (!ok) {
        BIO_free(out);
        return NULL;
    }
    return out;
}

static void expect_bio_equals(BIO *b, const unsigned char *want, size_t len)
{
    char *data = NULL;
    long n;

    assert_non_null(b);
    n = BIO_get_mem_data(b, &data);
    assert_int_equal((size_t)n, len);
    assert_memory_equal(data, want, len);
    BIO_free(b);
}

static void test_pkcs8_round_trips_the_key(void **state)
{
    EVP_PKEY *key = NULL, *back;
    PKCS8_PRIV_KEY_INFO *p8;
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t len = 0;
    (void)state;

    assert_int_equal(keygen_generate(KEY_EC_P256, &key), KP_OK);
    assert_int_equal(serverkey_pkcs8(key, &der, &len), KP_OK);
    p = der;
    p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
    assert_non_null(p8);
    assert_ptr_equal(p, der + len);
    back = EVP_PKCS82PKEY(p8);
    assert_non_null(back);
    assert_int_equal(EVP_PKEY_eq(key, back), 1);
    EVP_PKEY_free(back);
    PKCS8_PRIV_KEY_INFO_free(p8);
    OPENSSL_clear_free(der, len);
    EVP_PKEY_free(key);
}

static void test_kek_envelope_opens_only_with_that_key(void **state)
{
    static const unsigned char data[] = "private key bytes";
    unsigned char kek[32], wrong[32];
    unsigned char *der = NULL;
    size_t len = 0;
    (void)state;

    for (int i = 0; i < 32; i++) {
        kek[i] = (unsigned char)i;
        wrong[i] = (unsigned char)(31 - i);
    }
    assert_int_equal(serverkey_envelop_kek(data, sizeof(data), kek, sizeof(kek),
                                           (const unsigned char *)"kek-1", 5, &der, &len),
                     KP_OK);
    expect_bio_equals(
        open_cms(der, len, kek, sizeof(kek), (const unsigned char *)"kek-1", 5, NULL, NULL), data,
        sizeof(data));
    assert_null(
        open_cms(der, len, wrong, sizeof(wrong), (const unsigned char *)"kek-1", 5, NULL, NULL));
    OPENSSL_free(der);
}

static void test_archive_opens_with_the_key_its_recipient_names(void **state)
{
    static const unsigned char data[] = "archived key";
    struct kek_table *keys = NULL, *other = NULL;
    const char *why = NULL;
    int line = 0;
    unsigned char *der = NULL, *out = NULL;
    size_t len = 0, out_len = 0, k_len = 0;
    const unsigned char *k;
    (void)state;

    /* the second key of the file (rotated out) still opens what it sealed */
    assert_int_equal(
        kek_parse("new 1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100\n"
                  "old " KEY256 "\n",
                  &keys, &why, &line),
        KP_OK);
    assert_int_equal(kek_parse("else " KEY256 "\n", &other, &why, &line), KP_OK);
    k = kek_find(keys, (const unsigned char *)"old", 3, &k_len);
    assert_int_equal(serverkey_envelop_kek(data, sizeof(data), k, k_len,
                                           (const unsigned char *)"old", 3, &der, &len),
                     KP_OK);
    assert_int_equal(serverkey_open_kek(der, len, keys, &out, &out_len), KP_OK);
    assert_int_equal(out_len, sizeof(data));
    assert_memory_equal(out, data, sizeof(data));
    OPENSSL_clear_free(out, out_len);
    out = NULL;
    assert_int_equal(serverkey_open_kek(der, len, other, &out, &out_len), KP_ERR_NOT_FOUND);
    assert_int_equal(serverkey_open_kek(der, len - 1, keys, &out, &out_len), KP_ERR_BAD_REQUEST);
    assert_null(out);
    OPENSSL_free(der);
    kek_free(keys);
    kek_free(other);
}

/* A self-signed certificate for key, standing in for a client certificate. */
static X509 *cert_for(EVP_PKEY *key)
{
    X509_NAME *name = X509_NAME_new();
    X509 *cert = NULL;

    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"client", -1, -1,
                               0);
    assert_int_equal(ca_create_root(key, name, 1, &cert), KP_OK);
    X509_NAME_free(name);
    return cert;
}

static void check_cert_envelope(enum key_type kt)
{
    static const unsigned char data[] = "another private key";
    EVP_PKEY *client = NULL, *other = NULL;
    X509 *cert, *other_cert;
    unsigned char *der = NULL;
    size_t len = 0;

    assert_int_equal(keygen_generate(kt, &client), KP_OK);
    assert_int_equal(keygen_generate(kt, &other), KP_OK);
    cert = cert_for(client);
    other_cert = cert_for(other);
    assert_int_equal(serverkey_envelop_cert(data, sizeof(data), cert, &der, &len), KP_OK);
    expect_bio_equals(open_cms(der, len, NULL, 0, NULL, 0, cert, client), data, sizeof(data));
    assert_null(open_cms(der, len, NULL, 0, NULL, 0, other_cert, other));
    OPENSSL_free(der);
    X509_free(cert);
    X509_free(other_cert);
    EVP_PKEY_free(client);
    EVP_PKEY_free(other);
}

static void test_cert_envelope_opens_with_the_client_key_ec(void **state)
{
    (void)state;
    check_cert_envelope(KEY_EC_P256);
}

static void test_cert_envelope_opens_with_the_client_key_rsa(void **state)
{
    (void)state;
    check_cert_envelope(KEY_RSA_2048);
}

/* ---- csr.c: the key identifier attributes ---- */

/* A signed CSR with the attribute oid set to value (type: V_ASN1_*).
 * Caller frees the DER. */
static unsigned char *csr_with_attr(const char *oid, int type, const char *value, size_t *len)
{
    EVP_PKEY *key = NULL;
    X509_REQ *req = X509_REQ_new();
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    unsigned char *der = NULL;
    int n;

    assert_int_equal(keygen_generate(KEY_EC_P256, &key), KP_OK);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    assert_int_equal(
        X509_REQ_add1_attr_by_OBJ(req, obj, type, (const unsigned char *)value, (int)strlen(value)),
        1);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    n = i2d_X509_REQ(req, &der);
    assert_true(n > 0);
    *len = (size_t)n;
    ASN1_OBJECT_free(obj);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return der;
}

static void test_decrypt_key_identifiers_are_read(void **state)
{
    struct csr *c = NULL;
    unsigned char *der;
    size_t len = 0;
    (void)state;

    der = csr_with_attr(CSR_OID_DECRYPT_KEY_ID, V_ASN1_OCTET_STRING, "kek-1", &len);
    assert_int_equal(csr_parse(der, len, &c), KP_OK);
    assert_int_equal(c->decrypt_key_id_len, 5);
    assert_memory_equal(c->decrypt_key_id, "kek-1", 5);
    assert_null(c->asymm_decrypt_key_id);
    csr_free(c);
    OPENSSL_free(der);

    der = csr_with_attr(CSR_OID_ASYMM_DECRYPT_KEY_ID, V_ASN1_UTF8STRING, "me", &len);
    assert_int_equal(csr_parse(der, len, &c), KP_OK);
    assert_null(c->decrypt_key_id);
    assert_int_equal(c->asymm_decrypt_key_id_len, 2);
    csr_free(c);
    OPENSSL_free(der);
}

static void test_bad_decrypt_key_identifiers_are_refused(void **state)
{
    static const char long_id[] =
        "0123456789012345678901234567890123456789012345678901234567890123X";
    struct csr *c = NULL;
    unsigned char *der;
    size_t len = 0;
    (void)state;

    der = csr_with_attr(CSR_OID_DECRYPT_KEY_ID, V_ASN1_OCTET_STRING, long_id, &len);
    assert_int_equal(csr_parse(der, len, &c), KP_ERR_CSR); /* 65 bytes */
    OPENSSL_free(der);
    der = csr_with_attr(CSR_OID_ASYMM_DECRYPT_KEY_ID, V_ASN1_BMPSTRING, "ab", &len);
    assert_int_equal(csr_parse(der, len, &c), KP_ERR_CSR); /* BMPString: not an accepted type */
    OPENSSL_free(der);
    assert_null(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kek_file_maps_ids_to_keys),
        cmocka_unit_test(test_kek_file_refuses_bad_lines),
        cmocka_unit_test(test_pkcs8_round_trips_the_key),
        cmocka_unit_test(test_kek_envelope_opens_only_with_that_key),
        cmocka_unit_test(test_archive_opens_with_the_key_its_recipient_names),
        cmocka_unit_test(test_cert_envelope_opens_with_the_client_key_ec),
        cmocka_unit_test(test_cert_envelope_opens_with_the_client_key_rsa),
        cmocka_unit_test(test_decrypt_key_identifiers_are_read),
        cmocka_unit_test(test_bad_decrypt_key_identifiers_are_refused),
    };

    log_setup(LOG_ERROR, LOG_TEXT);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
