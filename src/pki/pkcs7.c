#include "pki/pkcs7.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xalloc.h"

enum kp_err pkcs7_certs_only(STACK_OF(X509) * certs, unsigned char **der, size_t *len)
{
    enum kp_err rc = KP_ERR_INTERNAL;
    PKCS7 *p7 = NULL;
    unsigned char *buf = NULL, *p;
    int n;

    /* RFC 7030 4.1.3 / RFC 5652 5.1: version 1, no digestAlgorithms, no
     * signerInfos, encapContentInfo id-data without eContent. */
    p7 = PKCS7_new();
    if (p7 == NULL || PKCS7_set_type(p7, NID_pkcs7_signed) != 1 ||
        PKCS7_set0_type_other(p7->d.sign->contents, NID_pkcs7_data, NULL) != 1) {
        log_openssl("pkcs7: building SignedData");
        goto out;
    }
    /* PKCS7_SIGNED encodes certificates as a SEQUENCE OF, so this order is
     * the order on the wire (leaf or issuing CA first, as the caller says). */
    for (int i = 0; i < sk_X509_num(certs); i++) {
        if (PKCS7_add_certificate(p7, sk_X509_value(certs, i)) != 1) {
            log_openssl("pkcs7: PKCS7_add_certificate");
            goto out;
        }
    }
    n = i2d_PKCS7(p7, NULL);
    if (n <= 0) {
        log_openssl("pkcs7: i2d_PKCS7");
        goto out;
    }
    buf = xmalloc((size_t)n);
    p = buf;
    if (i2d_PKCS7(p7, &p) != n) {
        log_openssl("pkcs7: i2d_PKCS7");
        goto out;
    }
    *der = buf;
    *len = (size_t)n;
    buf = NULL; /* steal */
    rc = KP_OK;
out:
    free(buf);
    PKCS7_free(p7);
    return rc;
}

enum kp_err pkcs7_first_cert(const unsigned char *der, size_t len, unsigned char **out,
                             size_t *out_len)
{
    enum kp_err rc = KP_ERR_INTERNAL;
    const unsigned char *p = der;
    PKCS7 *p7 = NULL;
    STACK_OF(X509) * certs;
    unsigned char *buf = NULL;
    int n;

    if (len > LONG_MAX)
        goto out;
    p7 = d2i_PKCS7(NULL, &p, (long)len);
    if (p7 == NULL || p != der + len || !PKCS7_type_is_signed(p7) || p7->d.sign == NULL)
        goto out;
    certs = p7->d.sign->cert;
    if (sk_X509_num(certs) < 1)
        goto out;
    n = i2d_X509(sk_X509_value(certs, 0), &buf);
    if (n <= 0)
        goto out;
    *out = xmalloc((size_t)n);
    memcpy(*out, buf, (size_t)n);
    *out_len = (size_t)n;
    rc = KP_OK;
out:
    if (rc != KP_OK)
        log_openssl("pkcs7: no certificate to take from a certs-only SignedData");
    OPENSSL_free(buf);
    PKCS7_free(p7);
    return rc;
}
