#include "pki/csr.h"

#include <arpa/inet.h>
#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/strbuf.h"
#include "core/xalloc.h"
#include "pki/pubkey.h"

/* PKCS#10 (RFC 2986 4) as OpenSSL's X509_REQ declares it, except that the
 * subjectPublicKeyInfo stays two plain fields: d2i_X509_REQ would also run
 * OpenSSL 3.0's generic key decoder on it (pki/pubkey.h says why not). */
/* clang-format off */
typedef struct {
    X509_ALGOR *algor;
    ASN1_BIT_STRING *public_key;
} CSR_SPKI;

ASN1_SEQUENCE(CSR_SPKI) = {
    ASN1_SIMPLE(CSR_SPKI, algor, X509_ALGOR),
    ASN1_SIMPLE(CSR_SPKI, public_key, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CSR_SPKI)

/* The signed part keeps its encoding as received (enc): the signature is
 * checked over those bytes, never over a re-encoding. */
typedef struct {
    ASN1_ENCODING enc;
    ASN1_INTEGER *version;
    X509_NAME *subject;
    CSR_SPKI *spki;
    STACK_OF(X509_ATTRIBUTE) *attributes; /* NULL when the [0] set is absent */
} CSR_INFO;

ASN1_SEQUENCE_enc(CSR_INFO, enc, 0) = {
    ASN1_SIMPLE(CSR_INFO, version, ASN1_INTEGER),
    ASN1_SIMPLE(CSR_INFO, subject, X509_NAME),
    ASN1_SIMPLE(CSR_INFO, spki, CSR_SPKI),
    /* OPTIONAL as in OpenSSL, which takes requests that leave it out */
    ASN1_IMP_SET_OF_OPT(CSR_INFO, attributes, X509_ATTRIBUTE, 0),
} static_ASN1_SEQUENCE_END_ref(CSR_INFO, CSR_INFO)

struct csr_asn1 {
    CSR_INFO *info;
    X509_ALGOR *sig_alg;
    ASN1_BIT_STRING *signature;
};

ASN1_SEQUENCE(csr_asn1) = {
    ASN1_SIMPLE(struct csr_asn1, info, CSR_INFO),
    ASN1_SIMPLE(struct csr_asn1, sig_alg, X509_ALGOR),
    ASN1_SIMPLE(struct csr_asn1, signature, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END_name(struct csr_asn1, csr_asn1)
/* clang-format on */

/* Append an IA5String-like value, escaping anything not printable ASCII so a
 * hostile name cannot forge separators, truncate at a NUL or inject control
 * characters into logs. */
static void strbuf_add_escaped(struct strbuf *b, const ASN1_STRING *str)
{
    const unsigned char *p = ASN1_STRING_get0_data(str);
    int n = ASN1_STRING_length(str);
    char hex[5];

    for (int i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
            strbuf_add(b, (const char *)&p[i], 1);
        } else {
            snprintf(hex, sizeof(hex), "\\x%02x", p[i]);
            strbuf_adds(b, hex);
        }
    }
}

/* A memory BIO; failing to get one is running out of memory. */
static BIO *csr_bio_new(void)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        log_openssl("csr: BIO_new");
        log_abort();
    }
    return bio;
}

/* The contents of a memory BIO as a new string. */
static char *csr_bio_string(BIO *bio)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    if (n <= 0 || data == NULL)
        return xstrdup("");
    return xstrndup(data, (size_t)n);
}

/* Map the public key onto enum key_type; -1 for anything we do not issue for.
 * EC keys must name their curve (RFC 5480 2.1.1): explicit parameters that
 * happen to describe P-256 are refused like any unknown curve. */
static void csr_classify_key(struct csr *c)
{
    char buf[64];
    size_t n = 0;
    int nid;

    c->key_type = -1;
    c->key_bits = EVP_PKEY_get_bits(c->pubkey);
    if (EVP_PKEY_is_a(c->pubkey, "RSA")) {
        if (c->key_bits == 2048)
            c->key_type = KEY_RSA_2048;
        else if (c->key_bits == 3072)
            c->key_type = KEY_RSA_3072;
        else if (c->key_bits == 4096)
            c->key_type = KEY_RSA_4096;
        return;
    }
    if (!EVP_PKEY_is_a(c->pubkey, "EC"))
        return;
    if (EVP_PKEY_get_utf8_string_param(c->pubkey, OSSL_PKEY_PARAM_EC_ENCODING, buf, sizeof(buf),
                                       &n) != 1 ||
        strcmp(buf, OSSL_PKEY_EC_ENCODING_GROUP) != 0)
        goto out;
    if (EVP_PKEY_get_utf8_string_param(c->pubkey, OSSL_PKEY_PARAM_GROUP_NAME, buf, sizeof(buf),
                                       &n) != 1)
        goto out;
    nid = OBJ_txt2nid(buf);
    if (nid == NID_undef)
        nid = EC_curve_nist2nid(buf);
    if (nid == NID_X9_62_prime256v1)
        c->key_type = KEY_EC_P256;
    else if (nid == NID_secp384r1)
        c->key_type = KEY_EC_P384;
out:
    ERR_clear_error();
}

/* Names that must be IA5String text: no NUL, no control characters. */
static int csr_name_is_clean(const ASN1_IA5STRING *s)
{
    const unsigned char *p = ASN1_STRING_get0_data(s);
    int n = ASN1_STRING_length(s);

    if (n <= 0)
        return 0;
    for (int i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] >= 0x7f)
            return 0;
    return 1;
}

/* Reject SAN entries that decode but cannot be meant: an IP address that is
 * neither 4 nor 16 bytes, DNS/email/URI text with NULs or control bytes. */
static int csr_sans_valid(const GENERAL_NAMES *sans)
{
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        int n;
        switch (gn->type) {
        case GEN_DNS:
        case GEN_EMAIL:
        case GEN_URI:
            if (!csr_name_is_clean(gn->d.ia5))
                return 0;
            break;
        case GEN_IPADD:
            n = ASN1_STRING_length(gn->d.iPAddress);
            if (n != 4 && n != 16)
                return 0;
            break;
        default:
            break;
        }
    }
    return 1;
}

/* Number of extensionRequest attributes, under either OID OpenSSL honours. */
static int csr_ext_req_count(const STACK_OF(X509_ATTRIBUTE) * attrs)
{
    static const int nids[] = {NID_ext_req, NID_ms_ext_req};
    int count = 0;

    for (size_t i = 0; i < sizeof(nids) / sizeof(nids[0]); i++)
        for (int idx = X509at_get_attr_by_NID(attrs, nids[i], -1); idx >= 0;
             idx = X509at_get_attr_by_NID(attrs, nids[i], idx))
            count++;
    return count;
}

/* subjectAltName from the extensionRequest attribute (RFC 2985 5.4.2).
 * *sans stays NULL when there is none. At most one extensionRequest with one
 * value and one subjectAltName are allowed, so that what we check is what the
 * CA would copy. */
static enum kp_err csr_extract_sans(const STACK_OF(X509_ATTRIBUTE) * attrs, GENERAL_NAMES **sans)
{
    enum kp_err rc = KP_ERR_CSR;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    GENERAL_NAMES *names = NULL;
    X509_EXTENSION *ext;
    X509_ATTRIBUTE *attr;
    const ASN1_TYPE *t;
    const ASN1_OCTET_STRING *data;
    const unsigned char *p;
    int idx, count;

    count = csr_ext_req_count(attrs);
    if (count == 0) {
        rc = KP_OK;
        goto out;
    }
    if (count > 1) {
        log_debug("csr: more than one extensionRequest attribute");
        goto out;
    }
    idx = X509at_get_attr_by_NID(attrs, NID_ext_req, -1);
    if (idx < 0)
        idx = X509at_get_attr_by_NID(attrs, NID_ms_ext_req, -1);
    attr = X509at_get_attr(attrs, idx);
    if (X509_ATTRIBUTE_count(attr) != 1) {
        log_debug("csr: extensionRequest must have exactly one value (RFC 2985 5.4.2)");
        goto out;
    }
    /* Extensions ::= SEQUENCE OF Extension, the attribute's value */
    t = X509_ATTRIBUTE_get0_type(attr, 0);
    if (t != NULL && t->type == V_ASN1_SEQUENCE) {
        p = ASN1_STRING_get0_data(t->value.sequence);
        exts = (STACK_OF(X509_EXTENSION) *)ASN1_item_d2i(
            NULL, &p, ASN1_STRING_length(t->value.sequence), ASN1_ITEM_rptr(X509_EXTENSIONS));
    }
    if (exts == NULL) {
        log_debug("csr: malformed extensionRequest (RFC 2985 5.4.2)");
        goto out;
    }
    idx = X509v3_get_ext_by_NID(exts, NID_subject_alt_name, -1);
    if (idx < 0) {
        rc = KP_OK;
        goto out;
    }
    if (X509v3_get_ext_by_NID(exts, NID_subject_alt_name, idx) >= 0) {
        log_debug("csr: subjectAltName requested twice");
        goto out;
    }
    ext = X509v3_get_ext(exts, idx);
    data = X509_EXTENSION_get_data(ext);
    p = ASN1_STRING_get0_data(data);
    names = d2i_GENERAL_NAMES(NULL, &p, ASN1_STRING_length(data));
    if (names == NULL || p != ASN1_STRING_get0_data(data) + ASN1_STRING_length(data)) {
        log_debug("csr: malformed subjectAltName (RFC 5280 4.2.1.6)");
        goto out;
    }
    /* GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName */
    if (sk_GENERAL_NAME_num(names) < 1 || !csr_sans_valid(names)) {
        log_debug("csr: invalid name in subjectAltName (RFC 5280 4.2.1.6)");
        goto out;
    }
    *sans = names;
    names = NULL; /* steal */
    rc = KP_OK;
out:
    GENERAL_NAMES_free(names);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ERR_clear_error();
    return rc;
}

/* challengePassword (RFC 2985 5.4.1): one DirectoryString value. We take the
 * string types clients actually send and keep the raw bytes (caller frees,
 * after OPENSSL_cleanse: it may be an OTP). */
static enum kp_err csr_extract_challenge(const STACK_OF(X509_ATTRIBUTE) * attrs,
                                         unsigned char **out, size_t *out_len)
{
    enum kp_err rc = KP_ERR_CSR;
    X509_ATTRIBUTE *attr;
    const ASN1_TYPE *t;
    unsigned char *buf;
    int idx, n;

    idx = X509at_get_attr_by_NID(attrs, NID_pkcs9_challengePassword, -1);
    if (idx < 0) {
        rc = KP_OK;
        goto out;
    }
    if (X509at_get_attr_by_NID(attrs, NID_pkcs9_challengePassword, idx) >= 0) {
        log_debug("csr: more than one challengePassword attribute");
        goto out;
    }
    attr = X509at_get_attr(attrs, idx);
    if (X509_ATTRIBUTE_count(attr) != 1) {
        log_debug("csr: challengePassword must have exactly one value (RFC 2985 5.4.1)");
        goto out;
    }
    t = X509_ATTRIBUTE_get0_type(attr, 0);
    if (t == NULL || (t->type != V_ASN1_PRINTABLESTRING && t->type != V_ASN1_UTF8STRING &&
                      t->type != V_ASN1_IA5STRING)) {
        log_debug("csr: challengePassword is not a string (RFC 2985 5.4.1)");
        goto out;
    }
    n = ASN1_STRING_length(t->value.asn1_string);
    buf = xmalloc((size_t)n + 1);
    memcpy(buf, ASN1_STRING_get0_data(t->value.asn1_string), (size_t)n);
    buf[n] = '\0';
    *out = buf;
    *out_len = (size_t)n;
    rc = KP_OK;
out:
    return rc;
}

/* A key identifier attribute (RFC 7030 4.4.1.1 DecryptKeyIdentifier, 4.4.1.2
 * AsymmetricDecryptKeyIdentifier): at most one, with one value, an OCTET
 * STRING of 1..CSR_KEY_ID_MAX bytes. Text string types are taken too, as
 * `openssl req` can only write attributes that way. *out stays NULL when the
 * attribute is absent. */
static enum kp_err csr_extract_key_id(const STACK_OF(X509_ATTRIBUTE) * attrs, const char *oid,
                                      unsigned char **out, size_t *out_len)
{
    enum kp_err rc = KP_ERR_CSR;
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    const X509_ATTRIBUTE *attr;
    const ASN1_TYPE *t;
    int idx, n;

    if (obj == NULL) {
        log_openssl("csr: OBJ_txt2obj %s", oid);
        rc = KP_ERR_INTERNAL;
        goto out;
    }
    idx = X509at_get_attr_by_OBJ(attrs, obj, -1);
    if (idx < 0) {
        rc = KP_OK;
        goto out;
    }
    if (X509at_get_attr_by_OBJ(attrs, obj, idx) >= 0) {
        log_debug("csr: attribute %s appears twice", oid);
        goto out;
    }
    attr = X509at_get_attr(attrs, idx);
    if (X509_ATTRIBUTE_count(attr) != 1) {
        log_debug("csr: attribute %s must have exactly one value", oid);
        goto out;
    }
    t = X509_ATTRIBUTE_get0_type((X509_ATTRIBUTE *)attr, 0);
    if (t == NULL || (t->type != V_ASN1_OCTET_STRING && t->type != V_ASN1_PRINTABLESTRING &&
                      t->type != V_ASN1_UTF8STRING && t->type != V_ASN1_IA5STRING)) {
        log_debug("csr: attribute %s is not an OCTET STRING (RFC 7030 4.4.1)", oid);
        goto out;
    }
    n = ASN1_STRING_length(t->value.asn1_string);
    if (n < 1 || n > CSR_KEY_ID_MAX) {
        log_debug("csr: attribute %s: %d bytes is outside 1..%d", oid, n, CSR_KEY_ID_MAX);
        goto out;
    }
    *out = xmalloc((size_t)n);
    memcpy(*out, ASN1_STRING_get0_data(t->value.asn1_string), (size_t)n);
    *out_len = (size_t)n;
    rc = KP_OK;
out:
    ASN1_OBJECT_free(obj);
    return rc;
}

/* A copy of a parsed name made entry by entry, so that it encodes as DER:
 * OpenSSL keeps a parsed name's bytes as received (BER constructed or
 * indefinite-length strings included) and would copy them into a
 * certificate. Multi-valued RDNs keep their grouping. NULL when an entry
 * cannot be encoded. */
static X509_NAME *csr_name_rebuild(const X509_NAME *src)
{
    X509_NAME *dst = X509_NAME_new();
    int prev = -1;

    if (dst == NULL) {
        log_openssl("csr: X509_NAME_new");
        log_abort();
    }
    for (int i = 0; i < X509_NAME_entry_count(src); i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(src, i);
        int set = X509_NAME_ENTRY_set(e);
        if (X509_NAME_add_entry(dst, e, -1, set == prev ? -1 : 0) != 1)
            goto fail;
        prev = set;
    }
    /* encode now: later readers share the name and must not write to it */
    if (i2d_X509_NAME(dst, NULL) <= 0)
        goto fail;
    return dst;
fail:
    X509_NAME_free(dst);
    return NULL;
}

/* The SubjectPublicKeyInfo's DER, re-encoded from its two fields (the
 * bytes received, for a DER request). */
static int csr_spki_der(const CSR_SPKI *spki, unsigned char **out)
{
    return ASN1_item_i2d((const ASN1_VALUE *)spki, out, ASN1_ITEM_rptr(CSR_SPKI));
}

/* The request's key from its SubjectPublicKeyInfo; NULL when unreadable.
 * The SPKI is encoded again only for keys pki/pubkey.c does not build. */
static EVP_PKEY *csr_pubkey(const CSR_SPKI *spki)
{
    bool other = false;
    EVP_PKEY *key = pubkey_from_numbers(spki->algor, spki->public_key, &other);
    unsigned char *der = NULL;
    const unsigned char *p;
    int len;

    if (!other)
        return key;
    len = csr_spki_der(spki, &der);
    p = der;
    key = len > 0 ? d2i_PUBKEY(NULL, &p, len) : NULL;
    OPENSSL_free(der);
    ERR_clear_error();
    return key;
}

enum kp_err csr_parse(const unsigned char *der, size_t len, struct csr **out)
{
    enum kp_err rc = KP_ERR_CSR;
    struct csr *c = NULL;
    const unsigned char *p = der;
    CSR_INFO *info;

    if (der == NULL || len == 0 || len > CSR_MAX_DER) {
        log_debug("csr: %zu bytes is outside 1..%d", len, CSR_MAX_DER);
        goto out;
    }
    c = xcalloc(1, sizeof(*c));
    c->key_type = -1;
    c->req = (struct csr_asn1 *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(csr_asn1));
    if (c->req == NULL) {
        log_debug("csr: not a DER PKCS#10 request (RFC 2986 4)");
        goto out;
    }
    if (p != der + len) {
        log_debug("csr: %zu trailing bytes after the request", (size_t)(der + len - p));
        goto out;
    }
    info = c->req->info;
    /* RFC 2986 4.1: version is 0 (v1) */
    if (ASN1_INTEGER_get(info->version) != 0) {
        log_debug("csr: unknown version %ld (RFC 2986 4.1)", ASN1_INTEGER_get(info->version));
        goto out;
    }
    c->pubkey = csr_pubkey(info->spki);
    if (c->pubkey == NULL) {
        log_debug("csr: unreadable subjectPublicKeyInfo");
        goto out;
    }
    csr_classify_key(c);
    /* Proof of possession (RFC 7030 3.4): the request is signed by its key,
     * over the CertificationRequestInfo as received. */
    if (ASN1_item_verify_ex(ASN1_ITEM_rptr(CSR_INFO), c->req->sig_alg, c->req->signature, info,
                            NULL, c->pubkey, NULL, NULL) != 1) {
        log_debug("csr: self-signature does not verify (RFC 2986 3)");
        rc = KP_ERR_CSR_SIGNATURE;
        goto out;
    }
    c->subject = csr_name_rebuild(info->subject);
    if (c->subject == NULL) {
        log_debug("csr: subject cannot be re-encoded (RFC 5280 4.1.2.6)");
        goto out;
    }
    rc = csr_extract_sans(info->attributes, &c->sans);
    if (rc != KP_OK)
        goto out;
    rc = csr_extract_challenge(info->attributes, &c->challenge, &c->challenge_len);
    if (rc != KP_OK)
        goto out;
    rc = csr_extract_key_id(info->attributes, CSR_OID_DECRYPT_KEY_ID, &c->decrypt_key_id,
                            &c->decrypt_key_id_len);
    if (rc != KP_OK)
        goto out;
    rc = csr_extract_key_id(info->attributes, CSR_OID_ASYMM_DECRYPT_KEY_ID,
                            &c->asymm_decrypt_key_id, &c->asymm_decrypt_key_id_len);
    if (rc != KP_OK)
        goto out;
    *out = c;
    c = NULL; /* steal */
    rc = KP_OK;
out:
    csr_free(c);
    ERR_clear_error();
    return rc;
}

void csr_free(struct csr *c)
{
    if (c == NULL)
        return;
    if (c->challenge != NULL)
        OPENSSL_cleanse(c->challenge, c->challenge_len);
    free(c->challenge);
    free(c->decrypt_key_id);
    free(c->asymm_decrypt_key_id);
    GENERAL_NAMES_free(c->sans);
    X509_NAME_free(c->subject);
    EVP_PKEY_free(c->pubkey);
    ASN1_item_free((ASN1_VALUE *)c->req, ASN1_ITEM_rptr(csr_asn1));
    free(c);
}

enum kp_err csr_check_signature_alg(const struct csr *c, const char **why)
{
    const X509_ALGOR *alg = NULL;
    const ASN1_OBJECT *obj = NULL;
    int md_nid = NID_undef, pk_nid = NID_undef;

    alg = c->req->sig_alg;
    X509_ALGOR_get0(&obj, NULL, NULL, alg);
    if (obj == NULL || OBJ_find_sigid_algs(OBJ_obj2nid(obj), &md_nid, &pk_nid) != 1 ||
        (pk_nid != NID_rsaEncryption && pk_nid != NID_X9_62_id_ecPublicKey)) {
        *why = "CSR signature algorithm not allowed (RSA PKCS#1 v1.5 or ECDSA with SHA-256, "
               "SHA-384 or SHA-512 are)";
        return KP_ERR_POLICY;
    }
    switch (md_nid) {
    case NID_sha256:
    case NID_sha384:
    case NID_sha512:
        return KP_OK;
    case NID_sha1:
        *why = "CSR signed with SHA-1, which no longer proves possession of the key (SHA-256, "
               "SHA-384 or SHA-512 are allowed)";
        return KP_ERR_POLICY;
    case NID_md5:
    case NID_md4:
    case NID_md2:
        *why = "CSR signed with MD5 or older, which proves nothing (SHA-256, SHA-384 or SHA-512 "
               "are allowed)";
        return KP_ERR_POLICY;
    default:
        *why = "CSR signature digest not allowed (SHA-256, SHA-384 or SHA-512 are)";
        return KP_ERR_POLICY;
    }
}

/* Largest prime below 752: a modulus with a factor up to here is no RSA
 * modulus (CA/B BR 6.1.6 SHOULD, NIST SP 800-89 5.3.3). */
#define CSR_RSA_SMALL_FACTOR_MAX 751

/* rsaEncryption (RFC 3279 2.3.1): parameters NULL, n odd and free of small
 * factors, e odd and 2^16+1 <= e <= 2^256-1 (CA/B BR 6.1.6; e = 3 is refused
 * too, docs/csr-checks.md says why). */
static enum kp_err csr_check_rsa(const EVP_PKEY *key, int ptype, const char **why)
{
    enum kp_err rc = KP_ERR_KEY_TYPE;
    BIGNUM *n = NULL, *e = NULL;

    if (ptype != V_ASN1_NULL) {
        *why = "rsaEncryption key parameters must be NULL (RFC 3279 2.3.1)";
        goto out;
    }
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
        EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
        *why = "RSA key without modulus or exponent";
        goto out;
    }
    if (BN_is_negative(e) || !BN_is_odd(e) || BN_num_bits(e) < 17 || BN_num_bits(e) > 256) {
        *why = "RSA public exponent must be odd and between 2^16+1 and 2^256-1 (CA/B BR 6.1.6)";
        goto out;
    }
    if (BN_is_negative(n) || !BN_is_odd(n) || BN_cmp(e, n) >= 0) {
        *why = "RSA modulus must be odd, positive and larger than the exponent (CA/B BR 6.1.6)";
        goto out;
    }
    /* odd divisors only: n is odd, and a composite divisor has a prime one */
    for (BN_ULONG d = 3; d <= CSR_RSA_SMALL_FACTOR_MAX; d += 2) {
        if (BN_mod_word(n, d) == 0) {
            *why = "RSA modulus has a small factor (CA/B BR 6.1.6)";
            goto out;
        }
    }
    rc = KP_OK;
out:
    BN_free(n);
    BN_free(e);
    ERR_clear_error();
    return rc;
}

/* id-ecPublicKey (RFC 5480 2.1.1, 2.2): a named curve we issue for, a point
 * uncompressed or compressed with the curve's length, on the curve and not
 * the point at infinity (whose encoding, 00, is refused by its first byte). */
static enum kp_err csr_check_ec(const EVP_PKEY *key, int ptype, const void *pval,
                                const unsigned char *point, int len, const char **why)
{
    enum kp_err rc = KP_ERR_KEY_TYPE;
    EVP_PKEY_CTX *ctx = NULL;
    int nid, field;

    if (ptype != V_ASN1_OBJECT) {
        *why = "EC key must name its curve: no explicit or implicit parameters (RFC 5480 2.1.1)";
        goto out;
    }
    nid = OBJ_obj2nid(pval);
    if (nid == NID_X9_62_prime256v1) {
        field = 32;
    } else if (nid == NID_secp384r1) {
        field = 48;
    } else {
        *why = "EC curve not allowed (P-256 and P-384 are)";
        goto out;
    }
    if (len < 1 || (point[0] == 0x04 && len != 1 + 2 * field) ||
        ((point[0] == 0x02 || point[0] == 0x03) && len != 1 + field) ||
        (point[0] != 0x04 && point[0] != 0x02 && point[0] != 0x03)) {
        *why = "EC point must be uncompressed (04) or compressed (02, 03) and of the curve's "
               "length (RFC 5480 2.2)";
        goto out;
    }
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, (EVP_PKEY *)key, NULL);
    if (ctx == NULL || EVP_PKEY_public_check_quick(ctx) != 1) {
        *why = "EC point is not on the curve (RFC 5480 2.2)";
        goto out;
    }
    rc = KP_OK;
out:
    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

enum kp_err csr_check_key(const struct csr *c, const char **why)
{
    const CSR_SPKI *spki = c->req->info->spki;
    const unsigned char *bits = ASN1_STRING_get0_data(spki->public_key);
    const ASN1_OBJECT *obj = NULL;
    const void *pval = NULL;
    int len = ASN1_STRING_length(spki->public_key), ptype = V_ASN1_UNDEF;

    X509_ALGOR_get0(&obj, &ptype, &pval, spki->algor);
    switch (OBJ_obj2nid(obj)) {
    case NID_rsaEncryption:
        return csr_check_rsa(c->pubkey, ptype, why);
    case NID_X9_62_id_ecPublicKey:
        return csr_check_ec(c->pubkey, ptype, pval, bits, len, why);
    case NID_rsassaPss:
        *why = "RSASSA-PSS keys are not issued for (use rsaEncryption)";
        return KP_ERR_KEY_TYPE;
    default:
        *why = "public key algorithm not allowed (RSA and EC are)";
        return KP_ERR_KEY_TYPE;
    }
}

char *csr_name_string(const X509_NAME *name)
{
    BIO *bio;
    char *s;

    if (name == NULL)
        return xstrdup("");
    bio = csr_bio_new();
    if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0)
        log_openssl("csr: X509_NAME_print_ex");
    s = csr_bio_string(bio);
    BIO_free(bio);
    return s;
}

/* One GeneralName in the style of the openssl CLI ("DNS:a.example",
 * "IP:2001:db8::1"), appended to b. */
static void csr_sans_add_one(struct strbuf *b, const GENERAL_NAME *gn)
{
    char txt[INET6_ADDRSTRLEN + 1];
    char *s;
    int n;

    switch (gn->type) {
    case GEN_DNS:
        strbuf_adds(b, "DNS:");
        strbuf_add_escaped(b, gn->d.dNSName);
        break;
    case GEN_EMAIL:
        strbuf_adds(b, "email:");
        strbuf_add_escaped(b, gn->d.rfc822Name);
        break;
    case GEN_URI:
        strbuf_adds(b, "URI:");
        strbuf_add_escaped(b, gn->d.uniformResourceIdentifier);
        break;
    case GEN_IPADD:
        n = ASN1_STRING_length(gn->d.iPAddress);
        strbuf_adds(b, "IP:");
        if ((n == 4 && inet_ntop(AF_INET, ASN1_STRING_get0_data(gn->d.iPAddress), txt,
                                 sizeof(txt)) != NULL) ||
            (n == 16 &&
             inet_ntop(AF_INET6, ASN1_STRING_get0_data(gn->d.iPAddress), txt, sizeof(txt)) != NULL))
            strbuf_adds(b, txt);
        else
            strbuf_adds(b, "<invalid>");
        break;
    case GEN_DIRNAME:
        strbuf_adds(b, "DirName:");
        s = csr_name_string(gn->d.directoryName);
        strbuf_adds(b, s);
        free(s);
        break;
    case GEN_RID:
        strbuf_adds(b, "RID:");
        n = OBJ_obj2txt(txt, sizeof(txt), gn->d.registeredID, 1);
        strbuf_adds(b, n > 0 && (size_t)n < sizeof(txt) ? txt : "<invalid>");
        break;
    case GEN_OTHERNAME:
        strbuf_adds(b, "othername:");
        n = OBJ_obj2txt(txt, sizeof(txt), gn->d.otherName->type_id, 1);
        strbuf_adds(b, n > 0 && (size_t)n < sizeof(txt) ? txt : "<invalid>");
        break;
    case GEN_X400:
        strbuf_adds(b, "X400Name:<unsupported>");
        break;
    case GEN_EDIPARTY:
        strbuf_adds(b, "EdiPartyName:<unsupported>");
        break;
    default:
        strbuf_adds(b, "<unknown>");
        break;
    }
}

char *csr_sans_string(const GENERAL_NAMES *sans)
{
    return csr_sans_join(sans, ", ");
}

char *csr_sans_join(const GENERAL_NAMES *sans, const char *sep)
{
    struct strbuf b = {NULL, 0, 0};

    strbuf_add(&b, "", 0);
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
        if (i > 0)
            strbuf_adds(&b, sep);
        csr_sans_add_one(&b, sk_GENERAL_NAME_value(sans, i));
    }
    return b.s;
}

int csr_sans_equal(const GENERAL_NAMES *a, const GENERAL_NAMES *b)
{
    int na = a == NULL ? 0 : sk_GENERAL_NAME_num(a);
    int nb = b == NULL ? 0 : sk_GENERAL_NAME_num(b);
    unsigned char *used = NULL;
    int equal = 0;

    if (na != nb)
        goto out;
    /* Multiset equality: pair each name of a with a distinct equal name of b. */
    used = xcalloc((size_t)nb + 1, 1);
    for (int i = 0; i < na; i++) {
        int j;
        for (j = 0; j < nb; j++)
            if (!used[j] &&
                GENERAL_NAME_cmp(sk_GENERAL_NAME_value(a, i), sk_GENERAL_NAME_value(b, j)) == 0)
                break;
        if (j == nb)
            goto out;
        used[j] = 1;
    }
    equal = 1;
out:
    free(used);
    return equal;
}

/* One DER encoding, for sorting the SANs into a canonical order. */
struct csr_der {
    unsigned char *der;
    int len;
};

static int csr_der_cmp(const void *a, const void *b)
{
    const struct csr_der *x = a, *y = b;
    int n = memcmp(x->der, y->der, (size_t)(x->len < y->len ? x->len : y->len));

    if (n != 0)
        return n;
    return (x->len > y->len) - (x->len < y->len);
}

/* Digest a count as 4 bytes, big-endian. */
static int csr_digest_count(EVP_MD_CTX *md, int n)
{
    unsigned char be[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
                           (unsigned char)(n >> 8), (unsigned char)n};

    return n >= 0 && EVP_DigestUpdate(md, be, sizeof(be)) == 1;
}

/* Digest one field with its length in front, so no two field lists collide. */
static int csr_digest_field(EVP_MD_CTX *md, const unsigned char *p, int len)
{
    return csr_digest_count(md, len) && (len == 0 || EVP_DigestUpdate(md, p, (size_t)len) == 1);
}

enum kp_err csr_fingerprint(const struct csr *c, char out[CSR_FINGERPRINT_HEX])
{
    static const char tag[] = "kipuka request v1";
    EVP_MD_CTX *md = NULL;
    unsigned char *spki = NULL, *subject = NULL, digest[32];
    struct csr_der *names = NULL;
    int nsans = c->sans != NULL ? sk_GENERAL_NAME_num(c->sans) : 0, nspki, nsubject, i;
    unsigned dlen = 0;
    enum kp_err rc = KP_ERR_INTERNAL;

    nspki = csr_spki_der(c->req->info->spki, &spki);
    nsubject = i2d_X509_NAME(c->subject, &subject);
    if (nspki <= 0 || nsubject < 0)
        goto out;
    names = xcalloc((size_t)nsans + 1, sizeof(*names));
    for (i = 0; i < nsans; i++) {
        names[i].len = i2d_GENERAL_NAME(sk_GENERAL_NAME_value(c->sans, i), &names[i].der);
        if (names[i].len <= 0)
            goto out;
    }
    /* the same names in another order are the same request */
    qsort(names, (size_t)nsans, sizeof(*names), csr_der_cmp);
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        !csr_digest_field(md, (const unsigned char *)tag, (int)sizeof(tag) - 1) ||
        !csr_digest_field(md, spki, nspki) || !csr_digest_field(md, subject, nsubject) ||
        !csr_digest_count(md, nsans))
        goto out;
    for (i = 0; i < nsans; i++)
        if (!csr_digest_field(md, names[i].der, names[i].len))
            goto out;
    if (EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen != sizeof(digest))
        goto out;
    for (i = 0; i < (int)sizeof(digest); i++)
        snprintf(&out[2 * i], 3, "%02x", digest[i]);
    rc = KP_OK;
out:
    if (rc != KP_OK)
        log_openssl("csr: request fingerprint");
    EVP_MD_CTX_free(md);
    for (i = 0; names != NULL && i < nsans; i++)
        OPENSSL_free(names[i].der);
    free(names);
    OPENSSL_free(spki);
    OPENSSL_free(subject);
    return rc;
}
