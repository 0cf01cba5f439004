/* The private-key part of a /serverkeygen answer (RFC 7030 4.4.2): the
 * generated key as PKCS#8, or that PKCS#8 inside CMS EnvelopedData for a
 * pre-shared key (KEK recipient, 4.4.1.1) or for the client's certificate
 * (key transport for RSA, key agreement for EC, 4.4.1.2). Every DER buffer
 * returned here holds key material: free it with OPENSSL_clear_free. */
#ifndef KP_SERVERKEY_H
#define KP_SERVERKEY_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>

#include "core/err.h"

/* PrivateKeyInfo / OneAsymmetricKey DER (RFC 5958) of key. */
enum kp_err serverkey_pkcs8(EVP_PKEY *key, unsigned char **der, size_t *len);

/* EnvelopedData (AES-256-CBC content) of data for a KEK recipient: key is an
 * AES-128/192/256 key, id its identifier as the client named it. */
enum kp_err serverkey_envelop_kek(const unsigned char *data, size_t data_len,
                                  const unsigned char *key, size_t key_len, const unsigned char *id,
                                  size_t id_len, unsigned char **der, size_t *len);

/* EnvelopedData (AES-256-CBC content) of data for the holder of recip's key. */
enum kp_err serverkey_envelop_cert(const unsigned char *data, size_t data_len, X509 *recip,
                                   unsigned char **der, size_t *len);

struct kek_table;

/* Open an EnvelopedData made by serverkey_envelop_kek with the key its KEK
 * recipient names in keys. KP_ERR_NOT_FOUND when keys has no such key id;
 * *out (key material: OPENSSL_clear_free) holds the content. */
enum kp_err serverkey_open_kek(const unsigned char *der, size_t len, const struct kek_table *keys,
                               unsigned char **out, size_t *out_len);

#endif
