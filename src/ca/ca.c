#include "ca/ca.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/xalloc.h"
#include "pki/pkcs7.h"
#include "pki/spki.h"

/* Append every certificate of a PEM file to chain. Returns count or -1. */
static int ca_read_pem_certs(const char *path, STACK_OF(X509) * chain)
{
    int n = 0;
    X509 *x;
    FILE *f = fopen(path, "r");

    if (f == NULL)
        return -1;
    while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
        sk_X509_push(chain, x);
        n++;
    }
    ERR_clear_error(); /* the read that ends the loop leaves "no start line" */
    fclose(f);
    return n;
}

enum kp_err ca_load(const struct label_cfg *cfg, struct ca **out)
{
    enum kp_err rc = KP_ERR_CONFIG;
    struct ca *ca = xcalloc(1, sizeof(*ca));
    STACK_OF(X509) *certs = sk_X509_new_null();

    if (ca_read_pem_certs(cfg->ca_cert, certs) < 1) {
        log_error("label %s: cannot read CA certificate %s", cfg->name, cfg->ca_cert);
        goto out;
    }
    if (cfg->ca_chain[0] != '\0' && ca_read_pem_certs(cfg->ca_chain, certs) < 1) {
        log_error("label %s: cannot read CA chain %s", cfg->name, cfg->ca_chain);
        goto out;
    }
    ca->cert = sk_X509_value(certs, 0);
    X509_up_ref(ca->cert);
    ca->chain = certs;
    certs = NULL; /* steal */

    if (X509_check_ca(ca->cert) < 1) {
        log_error("label %s: %s is not a CA certificate", cfg->name, cfg->ca_cert);
        goto out;
    }
    rc = signer_soft_load(cfg->ca_key, &ca->signer);
    if (rc != KP_OK) {
        log_error("label %s: cannot load CA key %s", cfg->name, cfg->ca_key);
        goto out;
    }
    if (X509_check_private_key(ca->cert, signer_public_key(ca->signer)) != 1) {
        log_openssl("label %s: CA key %s does not match %s", cfg->name, cfg->ca_key, cfg->ca_cert);
        rc = KP_ERR_CONFIG;
        goto out;
    }
    rc = pkcs7_certs_only(ca->chain, &ca->cacerts_der, &ca->cacerts_der_len);
    if (rc != KP_OK)
        goto out;
    *out = ca;
    ca = NULL; /* steal */
    rc = KP_OK;
out:
    sk_X509_pop_free(certs, X509_free);
    ca_free(ca);
    return rc;
}

void ca_free(struct ca *ca)
{
    if (ca == NULL)
        return;
    X509_free(ca->cert);
    sk_X509_pop_free(ca->chain, X509_free);
    signer_free(ca->signer);
    free(ca->cacerts_der);
    free(ca);
}

enum kp_err ca_serial_random(unsigned char serial[CA_SERIAL_LEN])
{
    if (RAND_bytes(serial, CA_SERIAL_LEN) != 1) {
        log_openssl("RAND_bytes failed");
        return KP_ERR_INTERNAL;
    }
    serial[0] &= 0x7f; /* positive */
    if (serial[0] == 0)
        serial[0] = 0x01; /* keep 20 octets, no leading zero to strip */
    return KP_OK;
}

char *ca_serial_hex(const X509 *cert)
{
    const ASN1_INTEGER *ai = X509_get0_serialNumber(cert);
    BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    char *out;

    BN_free(bn);
    if (hex == NULL)
        return xstrdup("0");
    for (char *p = hex; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    out = xstrdup(hex);
    OPENSSL_free(hex);
    return out;
}

/* Add one extension by its config-style value (e.g. "critical,CA:FALSE"). */
static int ca_add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ext != NULL && X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

static const char *ca_eku_value(unsigned ekus, char *buf, size_t len)
{
    static const char *const names[EKU__MAX] = {"clientAuth", "serverAuth", "codeSigning",
                                                "emailProtection"};
    size_t off = 0;
    buf[0] = '\0';
    for (int i = 0; i < EKU__MAX; i++)
        if (ekus & (1u << i))
            off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "," : "", names[i]);
    return buf;
}

enum kp_err ca_issue(struct ca *ca, const struct ca_template *t, X509 **out)
{
    enum kp_err rc = KP_ERR_SIGN;
    X509 *cert = X509_new();
    ASN1_INTEGER *serial = NULL;
    BIGNUM *bn = NULL;
    X509V3_CTX ctx;
    char eku[128];
    const char *ku;

    bn = BN_bin2bn(t->serial, CA_SERIAL_LEN, NULL);
    serial = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    if (cert == NULL || serial == NULL || X509_set_version(cert, X509_VERSION_3) != 1 ||
        X509_set_serialNumber(cert, serial) != 1 ||
        X509_set_issuer_name(cert, X509_get_subject_name(ca->cert)) != 1 ||
        X509_set_subject_name(cert, t->subject) != 1 ||
        spki_set(X509_get_X509_PUBKEY(cert), t->pubkey) != 1 ||
        ASN1_TIME_set(X509_getm_notBefore(cert), t->not_before) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(cert), t->not_after) == NULL) {
        log_openssl("ca: building certificate failed");
        goto out;
    }

    X509V3_set_ctx(&ctx, ca->cert, cert, NULL, NULL, 0);
    /* RFC 5280 4.2.1.3: RSA keys may encipher keys; EC keys agree on them. */
    ku = EVP_PKEY_is_a(t->pubkey, "RSA") ? "critical,digitalSignature,keyEncipherment"
                                         : "critical,digitalSignature,keyAgreement";
    if (!ca_add_ext(cert, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
        !ca_add_ext(cert, &ctx, NID_key_usage, ku) ||
        !ca_add_ext(cert, &ctx, NID_subject_key_identifier, "hash") ||
        !ca_add_ext(cert, &ctx, NID_authority_key_identifier, "keyid:always")) {
        log_openssl("ca: adding extensions failed");
        goto out;
    }
    if (t->ekus != 0 &&
        !ca_add_ext(cert, &ctx, NID_ext_key_usage, ca_eku_value(t->ekus, eku, sizeof(eku)))) {
        log_openssl("ca: adding extendedKeyUsage failed");
        goto out;
    }
    if (t->sans != NULL && sk_GENERAL_NAME_num(t->sans) > 0) {
        /* critical when the subject is empty (RFC 5280 4.2.1.6) */
        int critical = X509_NAME_entry_count(t->subject) == 0;
        if (X509_add1_ext_i2d(cert, NID_subject_alt_name, (void *)t->sans, critical,
                              X509V3_ADD_DEFAULT) != 1) {
            log_openssl("ca: adding subjectAltName failed");
            goto out;
        }
    }
    rc = signer_sign_cert(ca->signer, cert);
    if (rc != KP_OK)
        goto out;
    *out = cert;
    cert = NULL; /* steal */
    rc = KP_OK;
out:
    BN_free(bn);
    ASN1_INTEGER_free(serial);
    X509_free(cert);
    return rc;
}

enum kp_err ca_create_root(EVP_PKEY *key, const X509_NAME *subject, long days, X509 **out)
{
    enum kp_err rc = KP_ERR_SIGN;
    unsigned char raw[CA_SERIAL_LEN];
    X509 *cert = X509_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    struct signer *signer = NULL;
    X509V3_CTX ctx;
    time_t now = time(NULL);

    if (ca_serial_random(raw) != KP_OK)
        goto out;
    bn = BN_bin2bn(raw, sizeof(raw), NULL);
    serial = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    if (cert == NULL || serial == NULL || X509_set_version(cert, X509_VERSION_3) != 1 ||
        X509_set_serialNumber(cert, serial) != 1 || X509_set_subject_name(cert, subject) != 1 ||
        X509_set_issuer_name(cert, subject) != 1 || X509_set_pubkey(cert, key) != 1 ||
        ASN1_TIME_set(X509_getm_notBefore(cert), now - 300) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(cert), now + (time_t)days * 86400) == NULL) {
        log_openssl("ca: building root certificate failed");
        goto out;
    }
    X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
    if (!ca_add_ext(cert, &ctx, NID_basic_constraints, "critical,CA:TRUE") ||
        !ca_add_ext(cert, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") ||
        !ca_add_ext(cert, &ctx, NID_subject_key_identifier, "hash") ||
        !ca_add_ext(cert, &ctx, NID_authority_key_identifier, "keyid:always")) {
        log_openssl("ca: root extensions failed");
        goto out;
    }
    signer = signer_soft_new(key);
    rc = signer_sign_cert(signer, cert);
    if (rc != KP_OK)
        goto out;
    *out = cert;
    cert = NULL; /* steal */
out:
    signer_free(signer);
    BN_free(bn);
    ASN1_INTEGER_free(serial);
    X509_free(cert);
    return rc;
}
