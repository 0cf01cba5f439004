#include "pki/pubkey.h"

#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>

/* RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
 * (RFC 8017 A.1.1), read as OpenSSL's own RSA decoder reads it. */
typedef struct {
    BIGNUM *n;
    BIGNUM *e;
} PUBKEY_RSA;

ASN1_SEQUENCE(PUBKEY_RSA) =
    {
        ASN1_SIMPLE(PUBKEY_RSA, n, BIGNUM),
        ASN1_SIMPLE(PUBKEY_RSA, e, BIGNUM),
} static_ASN1_SEQUENCE_END(PUBKEY_RSA)

    /* A key from provider parameters: keymgmt import, no decoder. */
    static EVP_PKEY
    * pubkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *key = NULL;

    if (params == NULL)
        goto out;
    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(key);
        key = NULL;
    }
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return key;
}

static EVP_PKEY *pubkey_rsa(const ASN1_BIT_STRING *bits)
{
    const unsigned char *p = ASN1_STRING_get0_data(bits);
    int len = ASN1_STRING_length(bits);
    PUBKEY_RSA *nums = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    EVP_PKEY *key = NULL;

    nums = (PUBKEY_RSA *)ASN1_item_d2i(NULL, &p, len, ASN1_ITEM_rptr(PUBKEY_RSA));
    if (nums == NULL || p != ASN1_STRING_get0_data(bits) + len)
        goto out;
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, nums->n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, nums->e) != 1)
        goto out;
    key = pubkey_fromdata("RSA", bld);
out:
    OSSL_PARAM_BLD_free(bld);
    ASN1_item_free((ASN1_VALUE *)nums, ASN1_ITEM_rptr(PUBKEY_RSA));
    return key;
}

/* The curve's name when the parameters name P-256 or P-384, else NULL. */
static const char *pubkey_ec_curve(int ptype, const void *pval)
{
    if (ptype != V_ASN1_OBJECT)
        return NULL;
    switch (OBJ_obj2nid(pval)) {
    case NID_X9_62_prime256v1:
        return SN_X9_62_prime256v1;
    case NID_secp384r1:
        return SN_secp384r1;
    default:
        return NULL;
    }
}

static EVP_PKEY *pubkey_ec(const char *curve, const ASN1_BIT_STRING *bits)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *key = NULL;

    if (bld == NULL ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curve, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, ASN1_STRING_get0_data(bits),
                                         (size_t)ASN1_STRING_length(bits)) != 1)
        goto out;
    key = pubkey_fromdata("EC", bld);
out:
    OSSL_PARAM_BLD_free(bld);
    return key;
}

EVP_PKEY *pubkey_from_spki(const X509_ALGOR *alg, const ASN1_BIT_STRING *key,
                           const unsigned char *der, long len)
{
    const ASN1_OBJECT *obj = NULL;
    const void *pval = NULL;
    const char *curve;
    int ptype = V_ASN1_UNDEF;
    EVP_PKEY *out = NULL;

    X509_ALGOR_get0(&obj, &ptype, &pval, alg);
    switch (OBJ_obj2nid(obj)) {
    case NID_rsaEncryption:
        out = pubkey_rsa(key);
        break;
    case NID_X9_62_id_ecPublicKey:
        curve = pubkey_ec_curve(ptype, pval);
        /* other curves and explicit parameters: the decoder */
        out = curve != NULL ? pubkey_ec(curve, key) : d2i_PUBKEY(NULL, &der, len);
        break;
    default:
        out = d2i_PUBKEY(NULL, &der, len);
        break;
    }
    ERR_clear_error();
    return out;
}
