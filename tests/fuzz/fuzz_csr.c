/* csr_parse on arbitrary DER (RFC 2986 PKCS#10, RFC 7030 3.4): refused with
 * KP_ERR_CSR or KP_ERR_CSR_SIGNATURE, or a request whose strings print
 * without control characters, whose SANs equal themselves, whose subject is
 * DER equal to the request's, and whose key and signature checks answer
 * KP_OK or their refusal with a reason; the SPKI written from an accepted
 * key decodes to that key. OpenSSL's own PKCS#10 parser is the reference:
 * what csr_parse accepts, it reads too, to the same key and subject, with a
 * signature that verifies; what it verifies, csr_parse never calls badly
 * signed. */
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

#include "pki/csr.h"
#include "pki/spki.h"
#include "support.h"

/* What goes into logs and the store: no byte that could forge a line. */
static void check_printable(const char *s)
{
    for (const char *p = s; *p != '\0'; p++)
        FUZZ_CHECK((unsigned char)*p >= 0x20);
}

static void check_against_openssl(const uint8_t *data, size_t size, enum kp_err rc,
                                  const struct csr *c, int queue_was_clean)
{
    const unsigned char *p = data;
    X509_REQ *req = size <= CSR_MAX_DER ? d2i_X509_REQ(NULL, &p, (long)size) : NULL;
    EVP_PKEY *key = req != NULL && p == data + size ? X509_REQ_get0_pubkey(req) : NULL;
    int verifies = key != NULL && X509_REQ_verify(req, key) == 1;

    FUZZ_CHECK(queue_was_clean);
    if (rc == KP_OK) {
        FUZZ_CHECK(verifies);
        FUZZ_CHECK(EVP_PKEY_eq(key, c->pubkey) == 1);
        FUZZ_CHECK(X509_NAME_cmp(c->subject, X509_REQ_get_subject_name(req)) == 0);
    }
    if (rc == KP_ERR_CSR_SIGNATURE)
        FUZZ_CHECK(!verifies);
    X509_REQ_free(req);
    ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    struct csr *c = NULL;
    enum kp_err rc;
    char *name, *sans;
    const char *why;
    unsigned char *der = NULL;
    const unsigned char *p;
    X509_PUBKEY *pub;
    EVP_PKEY *back;
    int len;

    if (!quiet) {
        fuzz_quiet();
        quiet = 1;
    }
    rc = csr_parse(data, size, &c);
    check_against_openssl(data, size, rc, c, ERR_peek_error() == 0);
    if (rc != KP_OK) {
        FUZZ_CHECK(rc == KP_ERR_CSR || rc == KP_ERR_CSR_SIGNATURE);
        FUZZ_CHECK(c == NULL);
        FUZZ_CHECK(ERR_peek_error() == 0);
        return 0;
    }
    FUZZ_CHECK(size > 0 && size <= CSR_MAX_DER);
    FUZZ_CHECK(c->req != NULL && c->pubkey != NULL && c->subject != NULL);
    FUZZ_CHECK(c->key_type >= -1 && c->key_type < KEY__MAX);
    FUZZ_CHECK(c->challenge == NULL || c->challenge[c->challenge_len] == '\0');
    FUZZ_CHECK(c->sans == NULL || sk_GENERAL_NAME_num(c->sans) > 0);

    name = csr_name_string(c->subject);
    FUZZ_CHECK(name != NULL);
    check_printable(name);
    sans = csr_sans_string(c->sans);
    FUZZ_CHECK(sans != NULL);
    FUZZ_CHECK(c->sans != NULL || sans[0] == '\0');
    check_printable(sans);
    FUZZ_CHECK(csr_sans_equal(c->sans, c->sans) == 1);
    FUZZ_CHECK(csr_sans_equal(c->sans, NULL) == (c->sans == NULL));

    why = NULL;
    rc = csr_check_signature_alg(c, &why);
    FUZZ_CHECK(rc == KP_OK ? why == NULL : rc == KP_ERR_POLICY && why != NULL);
    why = NULL;
    rc = csr_check_key(c, &why);
    FUZZ_CHECK(rc == KP_OK ? why == NULL : rc == KP_ERR_KEY_TYPE && why != NULL);
    FUZZ_CHECK(ERR_peek_error() == 0);
    if (rc == KP_OK) {
        pub = X509_PUBKEY_new();
        FUZZ_CHECK(pub != NULL && spki_set(pub, c->pubkey) == 1);
        len = i2d_X509_PUBKEY(pub, &der);
        FUZZ_CHECK(len > 0);
        p = der;
        back = d2i_PUBKEY(NULL, &p, len);
        FUZZ_CHECK(back != NULL && EVP_PKEY_eq(back, c->pubkey) == 1);
        EVP_PKEY_free(back);
        OPENSSL_free(der);
        X509_PUBKEY_free(pub);
    }

    free(sans);
    free(name);
    csr_free(c);
    ERR_clear_error();
    return 0;
}
