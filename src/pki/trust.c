#include "pki/trust.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "core/xalloc.h"

#define TRUST_MAX_FILE (1024 * 1024)

enum kp_err trust_anchors_load(const char *path, struct trust_anchors **out, char **errmsg)
{
    enum kp_err rc = KP_ERR_CONFIG;
    struct trust_anchors *t = xcalloc(1, sizeof(*t));
    BIO *bio = NULL;
    X509 *cert = NULL;

    t->store = X509_STORE_new();
    t->certs = sk_X509_new_null();
    if (t->store == NULL || t->certs == NULL) {
        rc = KP_ERR_INTERNAL;
        *errmsg = xasprintf("%s: out of memory", path);
        goto out;
    }
    bio = BIO_new_file(path, "r");
    if (bio == NULL) {
        *errmsg = xasprintf("%s: cannot read", path);
        goto out;
    }
    while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(t->store, cert) != 1 || sk_X509_push(t->certs, cert) <= 0) {
            *errmsg = xasprintf("%s: cannot add a certificate", path);
            goto out;
        }
        cert = NULL; /* steal */
        if (BIO_tell(bio) > TRUST_MAX_FILE) {
            *errmsg = xasprintf("%s: over 1 MB", path);
            goto out;
        }
    }
    /* the loop ends on PEM_R_NO_START_LINE at the end of the file; anything
     * else is a broken certificate */
    if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE ||
        sk_X509_num(t->certs) == 0) {
        *errmsg = xasprintf("%s: %s", path,
                            sk_X509_num(t->certs) == 0 ? "no PEM certificate in it"
                                                       : "a certificate in it does not parse");
        goto out;
    }
    ERR_clear_error();
    *out = t;
    t = NULL; /* steal */
    rc = KP_OK;
out:
    ERR_clear_error();
    X509_free(cert);
    BIO_free(bio);
    trust_anchors_free(t);
    return rc;
}

void trust_anchors_free(struct trust_anchors *t)
{
    if (t == NULL)
        return;
    X509_STORE_free(t->store);
    sk_X509_pop_free(t->certs, X509_free);
    free(t);
}

long trust_anchors_verify(const struct trust_anchors *t, X509 *leaf, STACK_OF(X509) * untrusted)
{
    X509_STORE_CTX *ctx = NULL;
    long err = X509_V_ERR_CERT_UNTRUSTED;

    if (t == NULL || leaf == NULL)
        return err;
    ctx = X509_STORE_CTX_new();
    if (ctx == NULL || X509_STORE_CTX_init(ctx, t->store, leaf, untrusted) != 1) {
        err = X509_V_ERR_UNSPECIFIED;
        goto out;
    }
    /* the checks a TLS server applies to its client's chain */
    if (X509_STORE_CTX_set_default(ctx, "ssl_client") != 1) {
        err = X509_V_ERR_UNSPECIFIED;
        goto out;
    }
    if (X509_verify_cert(ctx) == 1)
        err = X509_V_OK;
    else
        err = X509_STORE_CTX_get_error(ctx);
out:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    return err;
}

bool trust_anchors_cover(const struct trust_anchors *t, X509 *cert)
{
    if (t == NULL || cert == NULL)
        return false;
    for (int i = 0; i < sk_X509_num(t->certs); i++) {
        X509 *a = sk_X509_value(t->certs, i);
        if (X509_cmp(a, cert) == 0 || X509_check_issued(a, cert) == X509_V_OK)
            return true;
    }
    return false;
}

bool trust_name_identical(const X509_NAME *a, const X509_NAME *b)
{
    const unsigned char *da = NULL, *db = NULL;
    size_t la = 0, lb = 0;

    if (a == NULL || b == NULL)
        return false;
    if (X509_NAME_get0_der(a, &da, &la) != 1 || X509_NAME_get0_der(b, &db, &lb) != 1)
        return false;
    return la == lb && memcmp(da, db, la) == 0;
}
