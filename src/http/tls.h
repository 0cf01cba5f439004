/* The HTTPS server's TLS side: one OpenSSL server context per config
 * generation, and the channel binding an EST request is checked against. */
#ifndef KP_HTTP_TLS_H
#define KP_HTTP_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "core/config.h"
#include "core/err.h"

/* Longest channel binding tls_channel_binding writes. */
#define TLS_CHANNEL_BINDING_MAX 64

/* A server context from cfg->tls_*: chain and key, TLS 1.2..1.3, ECDHE+AEAD only, no
 * renegotiation or tickets (the server cache still resumes TLS 1.2). With tls_client_ca,
 * a client certificate is requested, never required, and any is accepted: the EST layer
 * reads SSL_get_verify_result (X509_V_OK only for a chain to tls_client_ca).
 * Caller owns *out (SSL_CTX_free); on failure *errmsg (caller frees) says why. */
enum kp_err tls_ctx_new(const struct kp_config *cfg, SSL_CTX **out, char **errmsg);

/* The channel binding of an established connection: on TLS 1.3 the RFC 9266
 * tls-exporter (32 bytes), on TLS 1.2 tls-unique (RFC 5929 3.1: the first Finished
 * of the latest handshake, the client's for a full handshake, the server's for a
 * resumption). out holds TLS_CHANNEL_BINDING_MAX bytes; *len is set on success. */
enum kp_err tls_channel_binding(SSL *ssl, unsigned char out[TLS_CHANNEL_BINDING_MAX], size_t *len);

#endif
