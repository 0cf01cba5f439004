/* Software signer: the CA key is an OpenSSL EVP_PKEY in process memory. */
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>

#include "ca/signer.h"
#include "core/fsutil.h"
#include "core/log.h"
#include "core/xalloc.h"

struct signer_soft {
    struct signer base;
    EVP_PKEY *key;
};

const EVP_MD *signer_digest_for(EVP_PKEY *key)
{
    if (EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_bits(key) > 256)
        return EVP_sha384();
    return EVP_sha256();
}

static enum kp_err soft_sign_cert(struct signer *s, X509 *cert)
{
    struct signer_soft *ss = (struct signer_soft *)s;
    if (X509_sign(cert, ss->key, signer_digest_for(ss->key)) <= 0) {
        log_openssl("soft signer: X509_sign failed");
        return KP_ERR_SIGN;
    }
    return KP_OK;
}

static enum kp_err soft_sign_crl(struct signer *s, X509_CRL *crl)
{
    struct signer_soft *ss = (struct signer_soft *)s;
    if (X509_CRL_sign(crl, ss->key, signer_digest_for(ss->key)) <= 0) {
        log_openssl("soft signer: X509_CRL_sign failed");
        return KP_ERR_SIGN;
    }
    return KP_OK;
}

static EVP_PKEY *soft_public_key(struct signer *s)
{
    return ((struct signer_soft *)s)->key;
}

static void soft_free(struct signer *s)
{
    struct signer_soft *ss = (struct signer_soft *)s;
    EVP_PKEY_free(ss->key);
    free(ss);
}

static const struct signer_ops soft_ops = {
    .name = "soft",
    .sign_cert = soft_sign_cert,
    .sign_crl = soft_sign_crl,
    .public_key = soft_public_key,
    .free = soft_free,
};

struct signer *signer_soft_new(EVP_PKEY *key)
{
    struct signer_soft *ss = xcalloc(1, sizeof(*ss));
    ss->base.ops = &soft_ops;
    EVP_PKEY_up_ref(key);
    ss->key = key;
    return &ss->base;
}

enum kp_err signer_soft_load(const char *key_path, struct signer **out)
{
    EVP_PKEY *key = NULL;
    FILE *f = NULL;
    enum kp_err rc = fs_secret_check("CA key", key_path);

    if (rc != KP_OK)
        return rc;
    f = fopen(key_path, "r");
    if (f == NULL) {
        log_error("cannot open CA key %s", key_path);
        return KP_ERR_IO;
    }
    key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (key == NULL) {
        log_openssl("cannot read CA key %s", key_path);
        return KP_ERR_CONFIG;
    }
    *out = signer_soft_new(key);
    EVP_PKEY_free(key);
    return KP_OK;
}
