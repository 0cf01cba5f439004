/* Filling and releasing an est_answer. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xalloc.h"
#include "est/est_internal.h"
#include "pki/pkcs7.h"

static void answer_parts_free(struct est_answer *ans)
{
    for (size_t i = 0; i < ans->nparts; i++) {
        struct est_part *p = &ans->parts[i];
        if (p->der != NULL && p->secret)
            OPENSSL_cleanse(p->der, p->len);
        free(p->der);
        memset(p, 0, sizeof(*p));
    }
    ans->nparts = 0;
}

void est_answer_part(struct est_answer *ans, enum est_media media, unsigned char *der, size_t len,
                     bool secret)
{
    struct est_part *p;

    if (ans->nparts >= EST_PARTS_MAX)
        log_abort(); /* programmer error: no operation answers more */
    p = &ans->parts[ans->nparts++];
    p->media = media;
    p->der = der; /* steal */
    p->len = len;
    p->secret = secret;
    ans->outcome = EST_DONE;
    ans->err = KP_OK;
}

void est_answer_part_copy(struct est_answer *ans, enum est_media media, const unsigned char *der,
                          size_t len)
{
    unsigned char *copy = xmalloc(len > 0 ? len : 1);

    memcpy(copy, der, len);
    est_answer_part(ans, media, copy, len, false);
}

void est_answer_fail(struct est_answer *ans, enum kp_err err, const char *detail)
{
    answer_parts_free(ans);
    ans->outcome = err == KP_ERR_PENDING ? EST_HELD : EST_FAILED;
    ans->err = err == KP_ERR_PENDING ? KP_OK : err;
    snprintf(ans->detail, sizeof(ans->detail), "%s", detail != NULL ? detail : "");
}

void est_answer_cleanup(struct est_answer *ans)
{
    answer_parts_free(ans);
}

enum kp_err est_answer_cert(struct est_answer *ans, X509 *cert, enum est_media accept)
{
    STACK_OF(X509) *certs = NULL;
    unsigned char *der = NULL;
    size_t der_len = 0;
    enum kp_err rc;

    if (accept == EST_MEDIA_PKIX_CERT) {
        int n = i2d_X509(cert, &der);
        if (n <= 0)
            return KP_ERR_INTERNAL;
        est_answer_part_copy(ans, EST_MEDIA_PKIX_CERT, der, (size_t)n);
        OPENSSL_free(der);
        return KP_OK;
    }
    certs = sk_X509_new_null();
    if (certs == NULL || sk_X509_push(certs, cert) <= 0) {
        sk_X509_free(certs);
        return KP_ERR_INTERNAL;
    }
    rc = pkcs7_certs_only(certs, &der, &der_len);
    if (rc == KP_OK) {
        est_answer_part(ans, EST_MEDIA_CERTS, der, der_len, false);
        der = NULL; /* steal */
    }
    sk_X509_free(certs);
    free(der);
    return rc;
}
