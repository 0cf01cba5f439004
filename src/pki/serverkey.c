#include "pki/serverkey.h"

#include <openssl/cms.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "core/log.h"
#include "pki/kek.h"

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

enum kp_err serverkey_open_kek(const unsigned char *der, size_t len, const struct kek_table *keys,
                               unsigned char **out, size_t *out_len)
{
    enum kp_err rc = KP_ERR_BAD_REQUEST;
    const unsigned char *p = der;
    CMS_ContentInfo *cms = d2i_CMS_ContentInfo(NULL, &p, (long)len);
    STACK_OF(CMS_RecipientInfo) * ris;
    ASN1_OCTET_STRING *id = NULL;
    const unsigned char *key = NULL;
    size_t key_len = 0;
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n;

    if (cms == NULL || bio == NULL || p != der + len) {
        log_openssl("serverkey: not a CMS structure");
        goto out;
    }
    ris = CMS_get0_RecipientInfos(cms);
    for (int i = 0; ris != NULL && i < sk_CMS_RecipientInfo_num(ris) && key == NULL; i++) {
        CMS_RecipientInfo *ri = sk_CMS_RecipientInfo_value(ris, i);
        if (CMS_RecipientInfo_type(ri) != CMS_RECIPINFO_KEK ||
            CMS_RecipientInfo_kekri_get0_id(ri, NULL, &id, NULL, NULL, NULL) != 1)
            continue;
        key = kek_find(keys, ASN1_STRING_get0_data(id), (size_t)ASN1_STRING_length(id), &key_len);
    }
    if (key == NULL) {
        rc = KP_ERR_NOT_FOUND;
        goto out;
    }
    if (CMS_decrypt_set1_key(cms, (unsigned char *)key, key_len, ASN1_STRING_get0_data(id),
                             (size_t)ASN1_STRING_length(id)) != 1 ||
        CMS_decrypt(cms, NULL, NULL, NULL, bio, CMS_BINARY) != 1) {
        log_openssl("serverkey: CMS_decrypt");
        goto out;
    }
    n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || (*out = OPENSSL_memdup(data, (size_t)n)) == NULL)
        goto out;
    *out_len = (size_t)n;
    OPENSSL_cleanse(data, (size_t)n);
    rc = KP_OK;
out:
    BIO_free(bio);
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return rc;
}
