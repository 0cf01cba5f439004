/* An issuing CA: its certificate, chain to the root and signer. Knows nothing
 * of EST; it issues a certificate from a finished template. */
#ifndef KP_CA_H
#define KP_CA_H

#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "ca/signer.h"
#include "core/config.h"
#include "core/err.h"

#define CA_SERIAL_LEN 20

struct ca {
    X509 *cert;             /* issuing CA */
    STACK_OF(X509) * chain; /* issuing CA first, then its issuers up to the root */
    struct signer *signer;
    unsigned char *cacerts_der; /* PKCS#7 certs-only of chain, built once */
    size_t cacerts_der_len;
};

/* What goes into an end-entity certificate; everything is borrowed. */
struct ca_template {
    const X509_NAME *subject;
    const GENERAL_NAMES *sans; /* may be NULL */
    EVP_PKEY *pubkey;          /* the certificate's key, encoded afresh (spki_set) */
    time_t not_before;
    time_t not_after;
    unsigned ekus; /* 1u << enum eku */
    unsigned char serial[CA_SERIAL_LEN];
};

/* Load a label's CA: certificate, optional chain file, key. Checks that the
 * key matches the certificate and that the certificate is a CA. */
enum kp_err ca_load(const struct label_cfg *cfg, struct ca **out);
void ca_free(struct ca *ca);

/* Fill serial with CA_SERIAL_LEN CSPRNG bytes, positive and non-zero leading
 * byte so the DER INTEGER is always 20 octets (CA/B BR 7.1). */
enum kp_err ca_serial_random(unsigned char serial[CA_SERIAL_LEN]);

/* Build and sign: version 3, basicConstraints CA:FALSE (critical), keyUsage
 * by key type, EKUs, SKI/AKI, SANs. The SubjectPublicKeyInfo is encoded from
 * t->pubkey's numbers (spki_set), so *out holds the key as bytes only: it
 * encodes and signs whole, but X509_get0_pubkey(*out) is NULL until it is
 * re-read from DER. Caller owns *out. */
enum kp_err ca_issue(struct ca *ca, const struct ca_template *t, X509 **out);

/* Lowercase hex of a certificate's serial (caller frees). */
char *ca_serial_hex(const X509 *cert);

/* A self-signed root for `kipuka init`: CA:TRUE (critical), keyCertSign and
 * cRLSign, SKI/AKI, `days` of validity. Caller owns *out. */
enum kp_err ca_create_root(EVP_PKEY *key, const X509_NAME *subject, long days, X509 **out);
#endif
