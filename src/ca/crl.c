#include "ca/crl.h"

#include <openssl/bn.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "core/log.h"

/* RFC 5280 5.3.1 CRLReason; 7 is unused, removeFromCRL is for delta CRLs. */
static const char *const crl_reasons[] = {
    [0] = "unspecified",        [1] = "keyCompromise",      [2] = "cACompromise",
    [3] = "affiliationChanged", [4] = "superseded",         [5] = "cessationOfOperation",
    [6] = "certificateHold",    [9] = "privilegeWithdrawn", [10] = "aACompromise",
};

int crl_reason_code(const char *name)
{
    if (name == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(crl_reasons) / sizeof(crl_reasons[0]); i++)
        if (crl_reasons[i] != NULL && strcmp(crl_reasons[i], name) == 0)
            return (int)i;
    return -1;
}

static ASN1_INTEGER *crl_serial(const char *hex)
{
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai = NULL;

    if (BN_hex2bn(&bn, hex) > 0)
        ai = BN_to_ASN1_INTEGER(bn, NULL);
    BN_free(bn);
    return ai;
}

static int crl_add_entry(X509_CRL *crl, const struct crl_entry *e)
{
    X509_REVOKED *r = X509_REVOKED_new();
    ASN1_INTEGER *serial = crl_serial(e->serial);
    ASN1_TIME *when = ASN1_TIME_set(NULL, (time_t)e->revoked_at);
    int code = crl_reason_code(e->reason);
    int ok = r != NULL && serial != NULL && when != NULL &&
             X509_REVOKED_set_serialNumber(r, serial) == 1 &&
             X509_REVOKED_set_revocationDate(r, when) == 1;

    /* RFC 5280 5.3.1: omit the extension rather than say "unspecified" */
    if (ok && code > 0) {
        ASN1_ENUMERATED *reason = ASN1_ENUMERATED_new();
        ok = reason != NULL && ASN1_ENUMERATED_set(reason, code) == 1 &&
             X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, reason, 0, 0) == 1;
        ASN1_ENUMERATED_free(reason);
    }
    if (ok && X509_CRL_add0_revoked(crl, r) == 1)
        r = NULL; /* owned by crl */
    else
        ok = 0;
    X509_REVOKED_free(r);
    ASN1_INTEGER_free(serial);
    ASN1_TIME_free(when);
    return ok;
}

enum kp_err crl_build(struct ca *ca, const struct crl_entry *entries, size_t n, int64_t number,
                      int64_t this_update, int64_t next_update, unsigned char **der,
                      size_t *der_len)
{
    enum kp_err rc = KP_ERR_SIGN;
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t1 = ASN1_TIME_set(NULL, (time_t)this_update);
    ASN1_TIME *t2 = ASN1_TIME_set(NULL, (time_t)next_update);
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    X509V3_CTX ctx;
    X509_EXTENSION *aki = NULL;
    unsigned char *out = NULL;
    int len;

    if (crl == NULL || t1 == NULL || t2 == NULL || num == NULL ||
        X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) != 1 ||
        X509_CRL_set1_lastUpdate(crl, t1) != 1 || X509_CRL_set1_nextUpdate(crl, t2) != 1 ||
        ASN1_INTEGER_set_int64(num, number) != 1 ||
        X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1) {
        log_openssl("crl: building the CRL failed");
        goto out;
    }
    X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, crl, 0);
    aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
    if (aki == NULL || X509_CRL_add_ext(crl, aki, -1) != 1) {
        log_openssl("crl: authorityKeyIdentifier");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!crl_add_entry(crl, &entries[i])) {
            log_openssl("crl: entry for serial %s", entries[i].serial);
            goto out;
        }
    }
    X509_CRL_sort(crl);
    rc = signer_sign_crl(ca->signer, crl);
    if (rc != KP_OK)
        goto out;
    len = i2d_X509_CRL(crl, &out);
    if (len <= 0) {
        log_openssl("crl: encoding");
        rc = KP_ERR_SIGN;
        goto out;
    }
    *der = out;
    *der_len = (size_t)len;
    rc = KP_OK;
out:
    X509_EXTENSION_free(aki);
    ASN1_INTEGER_free(num);
    ASN1_TIME_free(t1);
    ASN1_TIME_free(t2);
    X509_CRL_free(crl);
    return rc;
}
