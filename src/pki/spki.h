/* SubjectPublicKeyInfo (RFC 5280 4.1.2.7) written from a key's numbers. */
#ifndef KP_SPKI_H
#define KP_SPKI_H

#include <openssl/evp.h>
#include <openssl/x509.h>

/* Set dst (a certificate's, from X509_get_X509_PUBKEY) to key's
 * SubjectPublicKeyInfo, encoded here from the key's numbers and never copied
 * from a request: RSA as rsaEncryption with NULL parameters (RFC 3279 2.3.1),
 * EC on P-256/P-384 as the named curve with the point uncompressed (RFC 5480
 * 2.1.1, 2.2). Other key types go through OpenSSL's encoder. dst's cached
 * EVP_PKEY is left unset (X509_get0_pubkey on that certificate is NULL until
 * it is read back from DER). 1 on success, 0 on failure. */
int spki_set(X509_PUBKEY *dst, const EVP_PKEY *key);

#endif
