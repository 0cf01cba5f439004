#include "pki/serverkey.h"

#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "core/log.h"

enum kp_err serverkey_pkcs8(EVP_PKEY *key, unsigned char **der, size_t *len)
{
    enum kp_err rc = KP_ERR_INTERNAL;
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
    unsigned char *buf = NULL;
    int n;

    if (p8 == NULL) {
        log_openssl("serverkey: EVP_PKEY2PKCS8");
        goto out;
    }
    n = i2d_PKCS8_PRIV_KEY_INFO(p8, &buf);
    if (n <= 0) {
        log_openssl("serverkey: i2d_PKCS8_PRIV_KEY_INFO");
        goto out;
    }
    *der = buf;
    *len = (size_t)n;
    rc = KP_OK;
out:
    PKCS8_PRIV_KEY_INFO_free(p8); /* clears the key copy it holds */
    return rc;
}

/* Encrypt data into cms (recipients already added) and encode it. */
static enum kp_err serverkey_finish(CMS_ContentInfo *cms, const unsigned char *data,
                                    size_t data_len, unsigned char **der, size_t *len)
{
    enum kp_err rc = KP_ERR_INTERNAL;
    BIO *in = BIO_new_mem_buf(data, (int)data_len);
    unsigned char *buf = NULL;
    int n;

    /* the ciphertext goes inside the EnvelopedData, not alongside it */
    if (in == NULL || CMS_set_detached(cms, 0) != 1 || CMS_final(cms, in, NULL, CMS_BINARY) != 1) {
        log_openssl("serverkey: CMS_final");
        goto out;
    }
    n = i2d_CMS_ContentInfo(cms, &buf);
    if (n <= 0) {
        log_openssl("serverkey: i2d_CMS_ContentInfo");
        goto out;
    }
    *der = buf;
    *len = (size_t)n;
    rc = KP_OK;
out:
    BIO_free(in);
    return rc;
}

enum kp_err serverkey_envelop_kek(const unsigned char *data, size_t data_len,
                                  const unsigned char *key, size_t key_len, const unsigned char *id,
                                  size_t id_len, unsigned char **der, size_t *len)
{
    enum kp_err rc = KP_ERR_INTERNAL;
    CMS_ContentInfo *cms = CMS_EnvelopedData_create(EVP_aes_256_cbc());
    unsigned char *k = NULL, *i = NULL;

    if (cms == NULL) {
        log_openssl("serverkey: CMS_EnvelopedData_create");
        goto out;
    }
    /* CMS_add0_recipient_key takes both buffers on success */
    k = OPENSSL_memdup(key, key_len);
    i = OPENSSL_memdup(id, id_len);
    if (k == NULL || i == NULL ||
        CMS_add0_recipient_key(cms, NID_undef, k, key_len, i, id_len, NULL, NULL, NULL) == NULL) {
        log_openssl("serverkey: CMS_add0_recipient_key");
        goto out;
    }
    k = NULL; /* steal */
    i = NULL; /* steal */
    rc = serverkey_finish(cms, data, data_len, der, len);
out:
    OPENSSL_clear_free(k, key_len);
    OPENSSL_free(i);
    CMS_ContentInfo_free(cms);
    return rc;
}

enum kp_err serverkey_envelop_cert(const unsigned char *data, size_t data_len, X509 *recip,
                                   unsigned char **der, size_t *len)
{
    enum kp_err rc = KP_ERR_INTERNAL;
    CMS_ContentInfo *cms = CMS_EnvelopedData_create(EVP_aes_256_cbc());

    if (cms == NULL) {
        log_openssl("serverkey: CMS_EnvelopedData_create");
        goto out;
    }
    /* OpenSSL picks key transport for RSA and ECDH key agreement for EC */
    if (CMS_add1_recipient_cert(cms, recip, 0) == NULL) {
        log_openssl("serverkey: CMS_add1_recipient_cert");
        rc = KP_ERR_BAD_REQUEST;
        goto out;
    }
    rc = serverkey_finish(cms, data, data_len, der, len);
out:
    CMS_ContentInfo_free(cms);
    return rc;
}
