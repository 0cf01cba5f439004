#include "pki/spki.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "core/log.h"

/* RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
 * (RFC 8017 A.1.1), DER, into a new OPENSSL_malloc buffer. */
static int spki_rsa_der(const EVP_PKEY *key, unsigned char **out, int *out_len)
{
    BIGNUM *n = NULL, *e = NULL;
    ASN1_INTEGER *ni = NULL, *ei = NULL;
    unsigned char *der = NULL, *p;
    int ok = 0, nlen, elen, total;

    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
        EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) != 1)
        goto out;
    ni = BN_to_ASN1_INTEGER(n, NULL);
    ei = BN_to_ASN1_INTEGER(e, NULL);
    if (ni == NULL || ei == NULL)
        goto out;
    nlen = i2d_ASN1_INTEGER(ni, NULL);
    elen = i2d_ASN1_INTEGER(ei, NULL);
    if (nlen <= 0 || elen <= 0)
        goto out;
    total = ASN1_object_size(1, nlen + elen, V_ASN1_SEQUENCE);
    if (total <= 0)
        goto out;
    der = OPENSSL_malloc((size_t)total);
    if (der == NULL)
        goto out;
    p = der;
    ASN1_put_object(&p, 1, nlen + elen, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
    if (i2d_ASN1_INTEGER(ni, &p) != nlen || i2d_ASN1_INTEGER(ei, &p) != elen || p != der + total)
        goto out;
    *out = der;
    *out_len = total;
    der = NULL; /* steal */
    ok = 1;
out:
    OPENSSL_free(der);
    ASN1_INTEGER_free(ni);
    ASN1_INTEGER_free(ei);
    BN_free(n);
    BN_free(e);
    return ok;
}

/* The curve's NID when it is one we encode here, else NID_undef. */
static int spki_ec_curve(const EVP_PKEY *key)
{
    char name[64];
    size_t n = 0;
    int nid;

    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof(name), &n) !=
        1)
        return NID_undef;
    nid = OBJ_txt2nid(name);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(name);
    return nid == NID_X9_62_prime256v1 || nid == NID_secp384r1 ? nid : NID_undef;
}

/* The uncompressed point 04 || X || Y (SEC 1 2.3.3), into a new buffer.
 * Asked for whole, as OpenSSL encodes it for TLS key shares: one
 * conversion of the point to affine coordinates, where reading X and Y
 * one by one costs two. */
static int spki_ec_point(const EVP_PKEY *key, int field, unsigned char **out, int *out_len)
{
    size_t want = 1 + 2 * (size_t)field, n = 0;
    unsigned char *pt = OPENSSL_malloc(want);

    if (pt == NULL ||
        EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, want, &n) !=
            1 ||
        n != want || pt[0] != 0x04) {
        OPENSSL_free(pt);
        return 0;
    }
    *out = pt;
    *out_len = (int)want;
    return 1;
}

/* Any other key: OpenSSL's encoder, then its algorithm and bits into dst. */
static int spki_set_generic(X509_PUBKEY *dst, const EVP_PKEY *key)
{
    X509_PUBKEY *tmp = NULL;
    X509_ALGOR *src_alg, *dst_alg;
    const unsigned char *bits;
    unsigned char *copy = NULL;
    int len, ok = 0;

    if (X509_PUBKEY_set(&tmp, (EVP_PKEY *)key) != 1 ||
        X509_PUBKEY_get0_param(NULL, &bits, &len, &src_alg, tmp) != 1 || len <= 0)
        goto out;
    copy = OPENSSL_memdup(bits, (size_t)len);
    if (copy == NULL ||
        X509_PUBKEY_set0_param(dst, OBJ_nid2obj(NID_undef), V_ASN1_UNDEF, NULL, copy, len) != 1)
        goto out;
    copy = NULL; /* steal */
    ok = X509_PUBKEY_get0_param(NULL, NULL, NULL, &dst_alg, dst) == 1 &&
         X509_ALGOR_copy(dst_alg, src_alg) == 1;
out:
    OPENSSL_free(copy);
    X509_PUBKEY_free(tmp);
    return ok;
}

int spki_set(X509_PUBKEY *dst, const EVP_PKEY *key)
{
    unsigned char *bits = NULL;
    int len = 0, ok = 0, nid;

    if (dst == NULL || key == NULL)
        goto out;
    nid = EVP_PKEY_is_a(key, "EC") ? spki_ec_curve(key) : NID_undef;
    if (EVP_PKEY_is_a(key, "RSA")) {
        ok = spki_rsa_der(key, &bits, &len) &&
             X509_PUBKEY_set0_param(dst, OBJ_nid2obj(NID_rsaEncryption), V_ASN1_NULL, NULL, bits,
                                    len) == 1;
    } else if (nid != NID_undef) {
        ok = spki_ec_point(key, nid == NID_secp384r1 ? 48 : 32, &bits, &len) &&
             X509_PUBKEY_set0_param(dst, OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
                                    OBJ_nid2obj(nid), bits, len) == 1;
    } else {
        ok = spki_set_generic(dst, key);
        goto out;
    }
    if (ok)
        bits = NULL; /* steal: dst owns the encoding */
out:
    if (!ok)
        log_openssl("spki: cannot encode the public key");
    OPENSSL_free(bits);
    ERR_clear_error();
    return ok;
}
