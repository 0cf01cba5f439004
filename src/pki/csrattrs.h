/* CsrAttrs (RFC 7030 4.5.2 with the RFC 8951 3.3 ASN.1 correction):
 * SEQUENCE OF (OBJECT IDENTIFIER | Attribute). */
#ifndef KP_CSRATTRS_H
#define KP_CSRATTRS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

/* What a label wants in CSRs. */
struct csrattrs_spec {
    unsigned key_types;      /* 1u << enum key_type */
    bool challenge_password; /* channel binding is required */
    bool request_san;        /* extensionRequest: subjectAltName */
    const char *extra_oids;  /* comma-separated dotted OIDs, may be NULL */
};

/* Encode to DER (caller frees). An empty spec yields an empty SEQUENCE.
 * EC key types become Attribute{id-ecPublicKey, {curve OIDs}}, RSA the
 * rsaEncryption OID, challenge_password the challengePassword OID. */
enum kp_err csrattrs_encode(const struct csrattrs_spec *spec, unsigned char **der, size_t *len);

/* Check that DER is a well-formed CsrAttrs; *count gets its element count. */
enum kp_err csrattrs_check(const unsigned char *der, size_t len, size_t *count);

#endif
