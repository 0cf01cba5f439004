/* Public keys read from a SubjectPublicKeyInfo (RFC 5280 4.1.2.7). */
#ifndef KP_PUBKEY_H
#define KP_PUBKEY_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>

/* The key of an SPKI given as its algorithm and key bits, for RSA
 * (rsaEncryption) and EC on P-256/P-384 (a named curve), built from its
 * numbers: OpenSSL 3.0's generic decoder looks up every decoder it has for
 * each key, which cost more than an enrollment's signature check. NULL when
 * the key does not decode (an EC point off its curve, say); NULL with
 * *other set for any other algorithm, which the caller hands to the
 * decoder (d2i_PUBKEY). */
EVP_PKEY *pubkey_from_numbers(const X509_ALGOR *alg, const ASN1_BIT_STRING *key, bool *other);

#endif
