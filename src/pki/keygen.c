#include "pki/keygen.h"

#include <openssl/err.h>
#include <stddef.h>

#include "core/log.h"

enum kp_err keygen_generate(enum key_type type, EVP_PKEY **out)
{
    enum kp_err rc = KP_ERR_INTERNAL;
    EVP_PKEY *pkey = NULL;

    /* EC keys from the default provider use the named-curve encoding
     * (RFC 5480 2.1.1), which is what we accept in CSRs too. */
    switch (type) {
    case KEY_EC_P256:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        break;
    case KEY_EC_P384:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        break;
    case KEY_RSA_2048:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        break;
    case KEY_RSA_3072:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
        break;
    case KEY_RSA_4096:
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)4096);
        break;
    default:
        log_error("keygen: unknown key type %d", (int)type);
        goto out;
    }
    if (pkey == NULL) {
        log_openssl("keygen: generating key type %d", (int)type);
        goto out;
    }
    *out = pkey;
    pkey = NULL; /* steal */
    rc = KP_OK;
out:
    EVP_PKEY_free(pkey);
    return rc;
}
