/* Client certificate trust anchors (pki/trust.c): loading a PEM file, path
 * validation against it alone, whether it covers a CA, and exact names. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pki/keygen.h"
#include "pki/trust.h"

struct pki {
    EVP_PKEY *key;
    X509 *ca, *sub, *other, *leaf, *stranger;
    char path[64];
};

/* CN=cn with key (the same key throughout: only names and signatures
 * matter here), issued by issuer (self-signed when NULL). */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, bool ca, long serial)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509_EXTENSION *ext;

    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_subject_name(x, name), 1);
    assert_int_equal(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name),
                     1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    ext = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints,
                              ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return x;
}

static int setup(void **state)
{
    struct pki *p = calloc(1, sizeof(*p));
    FILE *f;
    int fd;

    assert_non_null(p);
    assert_int_equal(keygen_generate(KEY_EC_P256, &p->key), KP_OK);
    p->ca = make_cert("Anchor CA", p->key, NULL, true, 1);
    p->sub = make_cert("Issuing CA", p->key, p->ca, true, 2);
    p->other = make_cert("Other CA", p->key, NULL, true, 3);
    p->leaf = make_cert("device-001", p->key, p->sub, false, 4);
    p->stranger = make_cert("device-001", p->key, p->other, false, 4);
    snprintf(p->path, sizeof(p->path), "/tmp/kp-test-trust-XXXXXX");
    fd = mkstemp(p->path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fputs("a comment before the certificate\n", f);
    assert_int_equal(PEM_write_X509(f, p->ca), 1);
    fclose(f);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    struct pki *p = *state;

    unlink(p->path);
    X509_free(p->ca);
    X509_free(p->sub);
    X509_free(p->other);
    X509_free(p->leaf);
    X509_free(p->stranger);
    EVP_PKEY_free(p->key);
    free(p);
    return 0;
}

static void test_anchors_verify_only_their_own_chains(void **state)
{
    struct pki *p = *state;
    struct trust_anchors *t = NULL;
    STACK_OF(X509) *sent = sk_X509_new_null();
    char *err = NULL;

    assert_int_equal(trust_anchors_load(p->path, &t, &err), KP_OK);
    assert_int_equal(sk_X509_num(t->certs), 1);
    /* the leaf with the intermediate the client sends */
    assert_int_equal(sk_X509_push(sent, p->sub), 1);
    assert_int_equal(trust_anchors_verify(t, p->leaf, sent), X509_V_OK);
    /* without it, no path */
    assert_int_not_equal(trust_anchors_verify(t, p->leaf, NULL), X509_V_OK);
    /* another CA's certificate, same subject and serial */
    assert_int_not_equal(trust_anchors_verify(t, p->stranger, NULL), X509_V_OK);
    /* a client sending another CA along does not make it an anchor */
    assert_int_equal(sk_X509_push(sent, p->other), 2);
    assert_int_not_equal(trust_anchors_verify(t, p->stranger, sent), X509_V_OK);
    /* no anchors at all */
    assert_int_equal(trust_anchors_verify(NULL, p->leaf, NULL), X509_V_ERR_CERT_UNTRUSTED);
    sk_X509_free(sent);
    trust_anchors_free(t);
}

static void test_anchors_cover_themselves_and_what_they_issued(void **state)
{
    struct pki *p = *state;
    struct trust_anchors *t = NULL;
    char *err = NULL;

    assert_int_equal(trust_anchors_load(p->path, &t, &err), KP_OK);
    assert_true(trust_anchors_cover(t, p->ca));
    assert_true(trust_anchors_cover(t, p->sub));
    assert_false(trust_anchors_cover(t, p->other));
    assert_false(trust_anchors_cover(NULL, p->ca));
    trust_anchors_free(t);
}

static void test_load_refuses_missing_and_empty_files(void **state)
{
    struct pki *p = *state;
    struct trust_anchors *t = NULL;
    char *err = NULL, path[64];
    FILE *f;
    int fd;

    (void)p;
    assert_int_equal(trust_anchors_load("/nonexistent/anchors.pem", &t, &err), KP_ERR_CONFIG);
    assert_null(t);
    assert_non_null(strstr(err, "/nonexistent/anchors.pem"));
    free(err);
    err = NULL;
    snprintf(path, sizeof(path), "/tmp/kp-test-trust-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fputs("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    assert_int_equal(trust_anchors_load(path, &t, &err), KP_ERR_CONFIG);
    assert_null(t);
    assert_non_null(err);
    free(err);
    err = NULL;
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(trust_anchors_load(path, &t, &err), KP_ERR_CONFIG);
    assert_non_null(strstr(err, "no PEM certificate"));
    free(err);
    unlink(path);
}

static void test_names_are_identical_only_byte_for_byte(void **state)
{
    X509_NAME *lower = X509_NAME_new(), *upper = X509_NAME_new(), *same = X509_NAME_new();

    (void)state;
    X509_NAME_add_entry_by_txt(lower, "CN", MBSTRING_ASC, (const unsigned char *)"device-001", -1,
                               -1, 0);
    X509_NAME_add_entry_by_txt(same, "CN", MBSTRING_ASC, (const unsigned char *)"device-001", -1,
                               -1, 0);
    X509_NAME_add_entry_by_txt(upper, "CN", MBSTRING_ASC, (const unsigned char *)"DEVICE-001", -1,
                               -1, 0);
    /* X509_NAME_cmp folds case: the reason this helper exists */
    assert_int_equal(X509_NAME_cmp(lower, upper), 0);
    assert_false(trust_name_identical(lower, upper));
    assert_true(trust_name_identical(lower, same));
    assert_false(trust_name_identical(lower, NULL));
    X509_NAME_free(lower);
    X509_NAME_free(upper);
    X509_NAME_free(same);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anchors_verify_only_their_own_chains),
        cmocka_unit_test(test_anchors_cover_themselves_and_what_they_issued),
        cmocka_unit_test(test_load_refuses_missing_and_empty_files),
        cmocka_unit_test(test_names_are_identical_only_byte_for_byte),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
