/* CMS/PKCS#7 "certs-only" SignedData (RFC 7030 4.1.3, RFC 5652 5). */
#ifndef KP_PKCS7_H
#define KP_PKCS7_H

#include <openssl/x509.h>
#include <stddef.h>

#include "core/err.h"

/* Degenerate SignedData holding certs in the given order, as DER (caller frees). */
enum kp_err pkcs7_certs_only(STACK_OF(X509) * certs, unsigned char **der, size_t *len);

/* The first certificate of a certs-only SignedData, as DER (caller frees):
 * the issuing CA of /cacerts, the new certificate of an enrollment. For
 * transports that answer application/pkix-cert (RFC 9148 5.4, CoAP 287).
 * KP_ERR_INTERNAL when der is not one or holds none. */
enum kp_err pkcs7_first_cert(const unsigned char *der, size_t len, unsigned char **out,
                             size_t *out_len);

#endif
