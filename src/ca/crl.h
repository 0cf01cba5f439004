/* Certificate revocation lists (RFC 5280 5): a CA's signed list of the
 * serials it revoked. Built from entries the caller gathers from the store. */
#ifndef KP_CRL_H
#define KP_CRL_H

#include <stddef.h>
#include <stdint.h>

#include "ca/ca.h"
#include "core/err.h"

struct crl_entry {
    const char *serial; /* lowercase hex */
    int64_t revoked_at;
    const char *reason; /* RFC 5280 5.3.1 name ("keyCompromise"), NULL: unspecified */
};

/* The RFC 5280 5.3.1 reason names kipuka accepts; -1 for anything else. */
int crl_reason_code(const char *name);

/* A v2 CRL of ca with the entries, crlNumber `number`, AKI, thisUpdate and
 * nextUpdate; signed by the CA's signer. *der (OPENSSL_free) is DER. */
enum kp_err crl_build(struct ca *ca, const struct crl_entry *entries, size_t n, int64_t number,
                      int64_t this_update, int64_t next_update, unsigned char **der,
                      size_t *der_len);

#endif
