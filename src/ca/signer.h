/* Whatever holds the CA private key: software today, PKCS#11 later. */
#ifndef KP_SIGNER_H
#define KP_SIGNER_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/err.h"

struct signer;

struct signer_ops {
    const char *name;
    /* Sign a fully built certificate (digest chosen from the key). */
    enum kp_err (*sign_cert)(struct signer *s, X509 *cert);
    /* Sign a fully built CRL, likewise. */
    enum kp_err (*sign_crl)(struct signer *s, X509_CRL *crl);
    /* The public half, borrowed. */
    EVP_PKEY *(*public_key)(struct signer *s);
    void (*free)(struct signer *s);
};

/* Every signer starts with this. */
struct signer {
    const struct signer_ops *ops;
};

/* Load a PEM private key file as a software signer. */
enum kp_err signer_soft_load(const char *key_path, struct signer **out);
/* Wrap an in-memory key (takes a reference; the caller keeps its own). */
struct signer *signer_soft_new(EVP_PKEY *key);

static inline enum kp_err signer_sign_cert(struct signer *s, X509 *cert)
{
    return s->ops->sign_cert(s, cert);
}
static inline enum kp_err signer_sign_crl(struct signer *s, X509_CRL *crl)
{
    return s->ops->sign_crl(s, crl);
}
static inline EVP_PKEY *signer_public_key(struct signer *s)
{
    return s->ops->public_key(s);
}
static inline void signer_free(struct signer *s)
{
    if (s)
        s->ops->free(s);
}

/* The digest to pair with a key: SHA-384 for P-384, SHA-256 otherwise. */
const EVP_MD *signer_digest_for(EVP_PKEY *key);

#endif
