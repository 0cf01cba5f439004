#include "pki/csrattrs.h"

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"
#include "core/xalloc.h"

/* Append an OBJECT IDENTIFIER element (takes ownership of obj). */
static enum kp_err csrattrs_add_oid(ASN1_SEQUENCE_ANY *seq, ASN1_OBJECT *obj)
{
    enum kp_err rc = KP_ERR_INTERNAL;
    ASN1_TYPE *t = NULL;

    if (obj == NULL)
        goto out;
    t = ASN1_TYPE_new();
    if (t == NULL)
        goto out;
    ASN1_TYPE_set(t, V_ASN1_OBJECT, obj);
    obj = NULL; /* steal */
    if (sk_ASN1_TYPE_push(seq, t) <= 0)
        goto out;
    t = NULL; /* steal */
    rc = KP_OK;
out:
    if (rc != KP_OK)
        log_openssl("csrattrs: adding an OID");
    ASN1_TYPE_free(t);
    ASN1_OBJECT_free(obj);
    return rc;
}

/* Append Attribute { type, SET { values[0..n) } } where each value is an
 * OBJECT IDENTIFIER given by NID (RFC 7030 4.5.2). */
static enum kp_err csrattrs_add_attr(ASN1_SEQUENCE_ANY *seq, int type, const int *values, size_t n)
{
    enum kp_err rc = KP_ERR_INTERNAL;
    X509_ATTRIBUTE *attr = NULL;
    ASN1_STRING *enc = NULL;
    ASN1_TYPE *t = NULL;
    unsigned char *der = NULL;
    int len;

    attr = X509_ATTRIBUTE_new();
    if (attr == NULL || X509_ATTRIBUTE_set1_object(attr, OBJ_nid2obj(type)) != 1)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (X509_ATTRIBUTE_set1_data(attr, V_ASN1_OBJECT, OBJ_nid2obj(values[i]), -1) != 1)
            goto out;
    len = i2d_X509_ATTRIBUTE(attr, &der);
    if (len <= 0)
        goto out;
    /* An ANY holding a SEQUENCE keeps its whole TLV encoding. */
    enc = ASN1_STRING_new();
    if (enc == NULL || ASN1_STRING_set(enc, der, len) != 1)
        goto out;
    t = ASN1_TYPE_new();
    if (t == NULL)
        goto out;
    ASN1_TYPE_set(t, V_ASN1_SEQUENCE, enc);
    enc = NULL; /* steal */
    if (sk_ASN1_TYPE_push(seq, t) <= 0)
        goto out;
    t = NULL; /* steal */
    rc = KP_OK;
out:
    if (rc != KP_OK)
        log_openssl("csrattrs: adding attribute %s", OBJ_nid2sn(type));
    ASN1_TYPE_free(t);
    ASN1_STRING_free(enc);
    OPENSSL_free(der);
    X509_ATTRIBUTE_free(attr);
    return rc;
}

/* A dotted OID as configuration may write it: at least two arcs of digits,
 * no leading zeros, first arc 0-2 (X.660). */
static int csrattrs_oid_valid(const char *s)
{
    size_t arcs = 0;

    if (s[0] < '0' || s[0] > '2' || s[1] != '.')
        return 0;
    while (*s != '\0') {
        const char *start = s;
        while (*s >= '0' && *s <= '9')
            s++;
        if (s == start || (s - start > 1 && *start == '0'))
            return 0;
        arcs++;
        if (*s == '.' && s[1] != '\0')
            s++;
        else if (*s != '\0')
            return 0;
    }
    return arcs >= 2;
}

/* Append each OID of a comma-separated list ("1.2.3, 1.2.4"). */
static enum kp_err csrattrs_add_extra(ASN1_SEQUENCE_ANY *seq, const char *list)
{
    enum kp_err rc = KP_ERR_CONFIG;
    char *tok = NULL;
    const char *p = list;

    if (strspn(list, " \t") == strlen(list)) {
        rc = KP_OK;
        goto out;
    }
    for (;;) {
        size_t n = strcspn(p, ",");
        const char *start = p;
        const char *end = p + n;
        ASN1_OBJECT *obj;

        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        free(tok);
        tok = xstrndup(start, (size_t)(end - start));
        if (!csrattrs_oid_valid(tok)) {
            log_error("csrattrs: \"%s\" in csrattrs_extra is not a dotted OID", tok);
            rc = KP_ERR_CONFIG;
            goto out;
        }
        obj = OBJ_txt2obj(tok, 1);
        if (obj == NULL) {
            log_openssl("csrattrs: OID \"%s\" in csrattrs_extra", tok);
            rc = KP_ERR_CONFIG;
            goto out;
        }
        rc = csrattrs_add_oid(seq, obj);
        if (rc != KP_OK)
            goto out;
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    rc = KP_OK;
out:
    free(tok);
    return rc;
}

enum kp_err csrattrs_encode(const struct csrattrs_spec *spec, unsigned char **der, size_t *len)
{
    enum kp_err rc = KP_ERR_INTERNAL;
    ASN1_SEQUENCE_ANY *seq = NULL;
    unsigned char *buf = NULL, *p;
    int curves[2];
    size_t ncurves = 0;
    int n;

    seq = sk_ASN1_TYPE_new_null();
    if (seq == NULL) {
        log_openssl("csrattrs: sk_ASN1_TYPE_new_null");
        goto out;
    }
    /* Channel binding (RFC 7030 3.5) rides in challengePassword. */
    if (spec->challenge_password) {
        rc = csrattrs_add_oid(seq, OBJ_nid2obj(NID_pkcs9_challengePassword));
        if (rc != KP_OK)
            goto out;
    }
    /* RFC 8951 3.3: a key type with parameters is an Attribute whose values
     * are the acceptable parameters. */
    if (spec->key_types & (1u << KEY_EC_P256))
        curves[ncurves++] = NID_X9_62_prime256v1;
    if (spec->key_types & (1u << KEY_EC_P384))
        curves[ncurves++] = NID_secp384r1;
    if (ncurves > 0) {
        rc = csrattrs_add_attr(seq, NID_X9_62_id_ecPublicKey, curves, ncurves);
        if (rc != KP_OK)
            goto out;
    }
    if (spec->key_types & ((1u << KEY_RSA_2048) | (1u << KEY_RSA_3072) | (1u << KEY_RSA_4096))) {
        rc = csrattrs_add_oid(seq, OBJ_nid2obj(NID_rsaEncryption));
        if (rc != KP_OK)
            goto out;
    }
    if (spec->request_san) {
        int san = NID_subject_alt_name;
        rc = csrattrs_add_attr(seq, NID_ext_req, &san, 1);
        if (rc != KP_OK)
            goto out;
    }
    if (spec->extra_oids != NULL) {
        rc = csrattrs_add_extra(seq, spec->extra_oids);
        if (rc != KP_OK)
            goto out;
    }
    rc = KP_ERR_INTERNAL;
    n = i2d_ASN1_SEQUENCE_ANY(seq, NULL);
    if (n <= 0) {
        log_openssl("csrattrs: i2d_ASN1_SEQUENCE_ANY");
        goto out;
    }
    buf = xmalloc((size_t)n);
    p = buf;
    if (i2d_ASN1_SEQUENCE_ANY(seq, &p) != n) {
        log_openssl("csrattrs: i2d_ASN1_SEQUENCE_ANY");
        goto out;
    }
    *der = buf;
    *len = (size_t)n;
    buf = NULL; /* steal */
    rc = KP_OK;
out:
    free(buf);
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
    return rc;
}

/* One Attribute ::= SEQUENCE { type OID, values SET OF ANY }, from the full
 * TLV an ANY holds. */
static int csrattrs_attr_valid(const ASN1_STRING *enc)
{
    const unsigned char *start = ASN1_STRING_get0_data(enc);
    const unsigned char *p = start;
    long len = ASN1_STRING_length(enc);
    X509_ATTRIBUTE *attr = d2i_X509_ATTRIBUTE(NULL, &p, len);
    int ok = attr != NULL && p == start + len;

    X509_ATTRIBUTE_free(attr);
    return ok;
}

/* OpenSSL's decoder also takes BER (indefinite or long-form lengths, a
 * primitive SEQUENCE tag); DER is exactly what re-encodes to the same bytes. */
static int csrattrs_is_der(const ASN1_SEQUENCE_ANY *seq, const unsigned char *der, size_t len)
{
    unsigned char *again = NULL;
    int n = i2d_ASN1_SEQUENCE_ANY(seq, &again);
    int same = n > 0 && (size_t)n == len && memcmp(again, der, len) == 0;

    OPENSSL_free(again);
    return same;
}

enum kp_err csrattrs_check(const unsigned char *der, size_t len, size_t *count)
{
    enum kp_err rc = KP_ERR_BAD_REQUEST;
    ASN1_SEQUENCE_ANY *seq = NULL;
    const unsigned char *p = der;
    int n;

    if (der == NULL || len == 0 || len > LONG_MAX) {
        log_debug("csrattrs: empty body");
        goto out;
    }
    seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)len);
    if (seq == NULL || p != der + len) {
        log_debug("csrattrs: not a DER SEQUENCE OF (RFC 8951 3.3)");
        goto out;
    }
    if (!csrattrs_is_der(seq, der, len)) {
        log_debug("csrattrs: BER, not DER (RFC 7030 4.5.2)");
        goto out;
    }
    n = sk_ASN1_TYPE_num(seq);
    for (int i = 0; i < n; i++) {
        const ASN1_TYPE *t = sk_ASN1_TYPE_value(seq, i);
        if (t->type == V_ASN1_OBJECT)
            continue;
        if (t->type == V_ASN1_SEQUENCE && csrattrs_attr_valid(t->value.sequence))
            continue;
        log_debug("csrattrs: element %d is neither an OID nor an Attribute (RFC 8951 3.3)", i);
        goto out;
    }
    *count = (size_t)n;
    rc = KP_OK;
out:
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
    ERR_clear_error();
    return rc;
}
