/* Trust anchors for client certificates (tls.client_ca, admin.client_ca):
 * each layer that accepts a certificate verifies it against its own set, so
 * one file's certificates are never credentials for the other's layer. */
#ifndef KP_TRUST_H
#define KP_TRUST_H

#include <openssl/x509.h>
#include <stdbool.h>

#include "core/err.h"

struct trust_anchors {
    X509_STORE *store;      /* the anchors, for path validation */
    STACK_OF(X509) * certs; /* every certificate of the file, in its order */
};

/* Read every certificate of a PEM file (at least one). On error *errmsg
 * (caller frees) says which file and why. */
enum kp_err trust_anchors_load(const char *path, struct trust_anchors **out, char **errmsg);
void trust_anchors_free(struct trust_anchors *t);

/* RFC 5280 6.1 path validation of a TLS client certificate (purpose
 * sslclient, current time) to one of t's anchors, with the certificates the
 * client sent (untrusted, may be NULL). X509_V_OK or the X509_V_ERR_* reason;
 * X509_V_ERR_CERT_UNTRUSTED when t is NULL (no anchors configured). */
long trust_anchors_verify(const struct trust_anchors *t, X509 *leaf, STACK_OF(X509) * untrusted);

/* Whether cert is one of t's certificates, or one of them issued it: then
 * whatever cert certifies also chains to t. */
bool trust_anchors_cover(const struct trust_anchors *t, X509 *cert);

/* RFC 7030 4.2.2 "identical": the same DER encoding, with no case folding
 * or space collapsing (which X509_NAME_cmp does). */
bool trust_name_identical(const X509_NAME *a, const X509_NAME *b);

#endif
