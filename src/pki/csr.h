/* PKCS#10 certification requests (RFC 2986) as EST receives them. */
#ifndef KP_CSR_H
#define KP_CSR_H

#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stddef.h>

#include "core/config.h"
#include "core/err.h"

/* Largest CSR we parse: far above an RSA-4096 request with many SANs. */
#define CSR_MAX_DER 16384

struct csr_asn1; /* the request as decoded (csr.c) */

struct csr {
    struct csr_asn1 *req;
    EVP_PKEY *pubkey;         /* the request's key (owned) */
    int key_type;             /* enum key_type, or -1 when not one we know */
    int key_bits;             /* RSA modulus bits or EC field bits */
    X509_NAME *subject;       /* req's subject re-encoded as DER, entry by entry (owned) */
    GENERAL_NAMES *sans;      /* from the extensionRequest, NULL when none */
    unsigned char *challenge; /* challengePassword bytes, NULL when absent */
    size_t challenge_len;
    /* serverkeygen key protection (RFC 7030 4.4.1.1, 4.4.1.2): the value of
     * id-aa-decryptKeyID / id-aa-asymmDecryptKeyID, NULL when absent. */
    unsigned char *decrypt_key_id;
    size_t decrypt_key_id_len;
    unsigned char *asymm_decrypt_key_id;
    size_t asymm_decrypt_key_id_len;
};

#define CSR_OID_DECRYPT_KEY_ID "1.2.840.113549.1.9.16.2.37"       /* id-aa-decryptKeyID */
#define CSR_OID_ASYMM_DECRYPT_KEY_ID "1.2.840.113549.1.9.16.2.54" /* id-aa-asymmDecryptKeyID */

/* Longest key identifier accepted in those attributes. */
#define CSR_KEY_ID_MAX 64

/* Parse DER, reject trailing bytes and anything over CSR_MAX_DER, verify the
 * self-signature (proof of possession, RFC 7030 3.4). KP_ERR_CSR for bad
 * encoding, KP_ERR_CSR_SIGNATURE when the signature does not verify. The
 * subject is kept as a DER re-encoding of its entries, never as received. */
enum kp_err csr_parse(const unsigned char *der, size_t len, struct csr **out);
void csr_free(struct csr *c);

/* The request's signature algorithm: PKCS#1 v1.5 or ECDSA with SHA-256,
 * SHA-384 or SHA-512. SHA-1, MD5 and anything else (RSASSA-PSS included) are
 * refused with KP_ERR_POLICY and *why (static). */
enum kp_err csr_check_signature_alg(const struct csr *c, const char **why);

/* The public key as received (docs/csr-checks.md): rsaEncryption with NULL
 * parameters, an odd modulus without factors under 752, an odd exponent in
 * 2^16+1 .. 2^256-1 (CA/B BR 6.1.6); or id-ecPublicKey on the named curve
 * P-256 or P-384 with an uncompressed (04) or compressed (02, 03) point on the
 * curve (RFC 5480 2.1.1, 2.2). KP_ERR_KEY_TYPE and *why (static) otherwise. */
enum kp_err csr_check_key(const struct csr *c, const char **why);

/* Subject in RFC 2253 form, and SANs as "DNS:a, IP:1.2.3.4" (caller frees). */
char *csr_name_string(const X509_NAME *name);
char *csr_sans_string(const GENERAL_NAMES *sans);
/* The same names (escaped likewise) joined by sep, e.g. "\n" for one a line. */
char *csr_sans_join(const GENERAL_NAMES *sans, const char *sep);

/* Hex length of a request fingerprint, with its NUL. */
#define CSR_FINGERPRINT_HEX 65

/* What identifies a request whatever its signature (RFC 7030 4.2.3 retries):
 * lowercase hex SHA-256 over the public key (SPKI DER), the subject (DER) and
 * the SANs (DER, sorted), each length-prefixed. Challenge, other attributes
 * and the signature do not count: a re-signed CSR has the same fingerprint. */
enum kp_err csr_fingerprint(const struct csr *c, char out[CSR_FINGERPRINT_HEX]);

/* 1 when both GENERAL_NAMES hold the same set of names (order ignored). */
int csr_sans_equal(const GENERAL_NAMES *a, const GENERAL_NAMES *b);

#endif
