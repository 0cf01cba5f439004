#include "pki/pubkey.h"

#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <pthread.h>

/* RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
 * (RFC 8017 A.1.1), read as OpenSSL's own RSA decoder reads it. */
typedef struct {
    BIGNUM *n;
    BIGNUM *e;
} PUBKEY_RSA;

/* clang-format off */
ASN1_SEQUENCE(PUBKEY_RSA) = {
    ASN1_SIMPLE(PUBKEY_RSA, n, BIGNUM),
    ASN1_SIMPLE(PUBKEY_RSA, e, BIGNUM),
} static_ASN1_SEQUENCE_END(PUBKEY_RSA)
/* clang-format on */

/* A key from provider parameters: keymgmt import, no decoder. */
static EVP_PKEY *pubkey_fromdata(const char *type, OSSL_PARAM_BLD *bld, int selection)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *key = NULL;

    if (params == NULL)
        goto out;
    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, selection, params) != 1) {
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
    key = pubkey_fromdata("RSA", bld, EVP_PKEY_PUBLIC_KEY);
out:
    OSSL_PARAM_BLD_free(bld);
    ASN1_item_free((ASN1_VALUE *)nums, ASN1_ITEM_rptr(PUBKEY_RSA));
    return key;
}

/* The curves built here: P-256 and P-384. */
enum pubkey_curve { PUBKEY_P256, PUBKEY_P384, PUBKEY_CURVES };

static const char *const pubkey_curve_names[PUBKEY_CURVES] = {SN_X9_62_prime256v1, SN_secp384r1};

/* A key holding only each curve's group, built once: a request's key is a
 * copy of it with the point set, since building a group from its name costs
 * more than copying one. */
static EVP_PKEY *pubkey_groups[PUBKEY_CURVES];
static pthread_once_t pubkey_groups_once = PTHREAD_ONCE_INIT;

static void pubkey_groups_build(void)
{
    for (int i = 0; i < PUBKEY_CURVES; i++) {
        OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();

        if (bld != NULL && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                                           pubkey_curve_names[i], 0) == 1)
            pubkey_groups[i] = pubkey_fromdata("EC", bld, EVP_PKEY_KEY_PARAMETERS);
        OSSL_PARAM_BLD_free(bld);
    }
}

/* The curve when the parameters name P-256 or P-384, else -1. */
static int pubkey_ec_curve(int ptype, const void *pval)
{
    if (ptype != V_ASN1_OBJECT)
        return -1;
    switch (OBJ_obj2nid(pval)) {
    case NID_X9_62_prime256v1:
        return PUBKEY_P256;
    case NID_secp384r1:
        return PUBKEY_P384;
    default:
        return -1;
    }
}

/* The point is checked on the curve as it is set (EC_POINT_oct2point). */
static EVP_PKEY *pubkey_ec(int curve, const ASN1_BIT_STRING *bits)
{
    EVP_PKEY *key = NULL;

    pthread_once(&pubkey_groups_once, pubkey_groups_build);
    if (pubkey_groups[curve] == NULL)
        return NULL;
    key = EVP_PKEY_dup(pubkey_groups[curve]);
    if (key == NULL || EVP_PKEY_set1_encoded_public_key(key, ASN1_STRING_get0_data(bits),
                                                        (size_t)ASN1_STRING_length(bits)) != 1) {
        EVP_PKEY_free(key);
        return NULL;
    }
    return key;
}

EVP_PKEY *pubkey_from_numbers(const X509_ALGOR *alg, const ASN1_BIT_STRING *key, bool *other)
{
    const ASN1_OBJECT *obj = NULL;
    const void *pval = NULL;
    int ptype = V_ASN1_UNDEF, curve = -1;
    EVP_PKEY *out = NULL;

    X509_ALGOR_get0(&obj, &ptype, &pval, alg);
    *other = false;
    switch (OBJ_obj2nid(obj)) {
    case NID_rsaEncryption:
        out = pubkey_rsa(key);
        break;
    case NID_X9_62_id_ecPublicKey:
        curve = pubkey_ec_curve(ptype, pval);
        if (curve >= 0)
            out = pubkey_ec(curve, key);
        else
            *other = true; /* other curves, explicit parameters */
        break;
    default:
        *other = true;
        break;
    }
    ERR_clear_error();
    return out;
}
